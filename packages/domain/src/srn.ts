/**
 * SRNs (Sym Resource Names): `<org>:<model>[:<type>]:<slug>:<version>[:<identifier>]`, e.g.
 * `healthy-health:flow:approval-ci-deploy-prod:latest` or
 * `healthy-health:access_target:custom:ci-deploy-target:latest:<uuid>`. The one parser of the code base: the Events
 * API reads flow and target SRNs with it.
 */

/** One SRN component: letters, digits, `_`, `-` and `.` (versions such as `1.0.0`). */
const PART = /^[A-Za-z0-9_.-]+$/
const SLUG = /^[A-Za-z0-9_-]+$/
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export type ParseResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string }

/** An SRN split into its org, model (`flow`, `access_target`, `run`, …) and the remaining parts. */
export interface Srn {
  readonly org: string
  readonly model: string
  readonly parts: readonly string[]
}

export function parseSrn(text: string): ParseResult<Srn> {
  const all = text.trim().split(':')
  if (all.length < 3) return { ok: false, reason: `"${text}" is not an SRN (expected <org>:<model>:…:<version>)` }
  const bad = all.find((p) => !PART.test(p))
  if (bad !== undefined) return { ok: false, reason: `"${text}" is not an SRN: "${bad}" may contain only letters, digits, "_", "-" and "."` }
  const [org, model, ...parts] = all as [string, string, ...string[]]
  return { ok: true, value: { org, model, parts } }
}

/** A flow as the Events API names it: its slug, and `latest` or the flow's version number. */
export interface FlowRef {
  /** Null when only a slug was given. */
  readonly org: string | null
  readonly slug: string
  readonly version: 'latest' | number
}

/**
 * `org:flow:<slug>:latest`, `org:flow:<slug>:<n>` (the flow's version, also written `<n>.0.0`), or a bare slug.
 * Slugs are case-insensitive and returned lower-cased.
 */
export function parseFlowRef(text: string): ParseResult<FlowRef> {
  const trimmed = text.trim()
  if (!trimmed.includes(':')) {
    return SLUG.test(trimmed) ? { ok: true, value: { org: null, slug: trimmed.toLowerCase(), version: 'latest' } } : { ok: false, reason: `"${text}" is neither a flow SRN nor a flow slug` }
  }
  const srn = parseSrn(trimmed)
  if (!srn.ok) return srn
  const { org, model, parts } = srn.value
  if (model !== 'flow') return { ok: false, reason: `"${text}" is not a flow SRN (its model is "${model}")` }
  if (parts.length !== 2) return { ok: false, reason: `"${text}" is not a flow SRN (expected <org>:flow:<slug>:<version>, e.g. ${org}:flow:my-flow:latest)` }
  const [slug, version] = parts as [string, string]
  if (!SLUG.test(slug)) return { ok: false, reason: `"${slug}" is not a flow slug` }
  const v = parseFlowVersion(version)
  if (v === undefined) return { ok: false, reason: `"${version}" is not a flow version: use "latest" or the flow's version number` }
  return { ok: true, value: { org: org.toLowerCase(), slug: slug.toLowerCase(), version: v } }
}

function parseFlowVersion(text: string): FlowRef['version'] | undefined {
  if (text === 'latest') return 'latest'
  const m = /^(\d{1,9})(?:\.0\.0)?$/.exec(text)
  return m && Number(m[1]) >= 1 ? Number(m[1]) : undefined
}

/** A target as `target_srn` names it: `org:access_target:<type>:<slug>:<version>[:<uuid>]`. */
export interface TargetRef {
  readonly org: string
  readonly type: string
  readonly slug: string
  /** The target's id, when the SRN carries one. */
  readonly id: string | null
}

export function parseTargetRef(text: string): ParseResult<TargetRef> {
  const srn = parseSrn(text)
  if (!srn.ok) return srn
  const { org, model, parts } = srn.value
  if (model !== 'access_target') return { ok: false, reason: `"${text}" is not a target SRN (its model is "${model}")` }
  if (parts.length !== 3 && parts.length !== 4) {
    return { ok: false, reason: `"${text}" is not a target SRN (expected <org>:access_target:<type>:<slug>:latest[:<id>])` }
  }
  const [type, slug, , id] = parts as [string, string, string, string | undefined]
  if (id !== undefined && !UUID.test(id)) return { ok: false, reason: `"${id}" is not a target id (a UUID)` }
  return { ok: true, value: { org: org.toLowerCase(), type, slug: slug.toLowerCase(), id: id?.toLowerCase() ?? null } }
}

/** SRNs the platform writes (log entries, API responses). */
export const srns = {
  flow: (org: string, slug: string, version: number | 'latest') => `${org}:flow:${slug}:${version}`,
  run: (org: string, flowSlug: string, flowVersion: number, runId: string) => `${org}:run:${flowSlug}:${flowVersion}:${runId}`,
  target: (org: string, type: string, slug: string, id: string) => `${org}:access_target:${type}:${slug}:latest:${id}`,
  user: (org: string, type: 'normal' | 'bot', id: string) => `${org}:user:${type}:${id}:latest`,
}
