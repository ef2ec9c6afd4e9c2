/**
 * The rules of running a flow's implementation (reference §3.3–§3.7): what an `on…` hook's result means for the
 * event it was called for, which permissions a run keeps, and how a request's notification chain moves on. The
 * engine calls its sandbox and applies these; nothing here does I/O.
 */
import type { ApproveDenyPermission, RequestPermission } from './runs.js'

/** The steps whose events run `on…`/`after…` hooks in the engine (`prompt` happens in Slack, before a run exists). */
export type HookStep = 'request' | 'approve' | 'deny' | 'escalate' | 'deescalate'

/** What a hook may ask for besides nothing (the SDK's `HookResult`, as the sandbox validated it). */
export type HookReply =
  | { readonly type: 'proceed' }
  | { readonly type: 'transition'; readonly transition: 'request' | 'approve' | 'deny' | 'deescalate'; readonly fields: Readonly<Record<string, unknown>> }
  | { readonly type: 'ignore'; readonly message: string }

/**
 * What the engine does with the event after its `on…` hook:
 * - `proceed`: the step happens, with `fields` (the hook's keyword arguments, when it returned the event itself)
 *   added to the event's fields;
 * - `replace`: the event does not take effect; a `step` event (channel `sdk`) with `fields` takes its place;
 * - `ignore`: the event is recorded as an error with `message`; the run stays where it was;
 * - `refuse`: the hook asked for something it may not (a backwards move): recorded as an error with `reason`.
 */
export type HookDecision =
  | { readonly kind: 'proceed'; readonly fields: Readonly<Record<string, unknown>> }
  | { readonly kind: 'replace'; readonly step: 'approve' | 'deny' | 'deescalate'; readonly fields: Readonly<Record<string, unknown>> }
  | { readonly kind: 'ignore'; readonly message: string }
  | { readonly kind: 'refuse'; readonly reason: string }

/**
 * What each step's `on…` hook may return (runs only move forward). Mirrors the SDK's `HOOK_RETURNS`: the engine
 * checks again what the sandbox already checked, because it is the authority.
 */
export const HOOK_MAY_RETURN: Readonly<Record<HookStep, readonly ('request' | 'approve' | 'deny' | 'deescalate' | 'ignore')[]>> = {
  request: ['request', 'approve', 'deny', 'ignore'],
  approve: ['approve', 'deny', 'ignore'],
  deny: ['deny', 'ignore'],
  escalate: ['deescalate'],
  deescalate: ['deescalate', 'ignore'],
}

const ON_HOOK: Readonly<Record<HookStep, string>> = {
  request: 'onRequest',
  approve: 'onApprove',
  deny: 'onDeny',
  escalate: 'onEscalate',
  deescalate: 'onDeescalate',
}

/** The name of a step's `on…` hook (`onRequest`) and `after…` hook (`afterRequest`). */
export const hookNames = (step: HookStep): { on: string; after: string } => ({ on: ON_HOOK[step], after: ON_HOOK[step].replace(/^on/, 'after') })

/**
 * What an `on…` hook's reply means for the event of `step` (reference §3.2–§3.3):
 * returning the event itself is processed once, as the event (its keyword arguments become fields); another
 * transition replaces the event; `ignore` blocks it. A scheduled de-escalation cannot be blocked: access must end
 * on time whatever the flow says (the hook's `ignore` is then only a note).
 */
export function interpretHookReply(step: HookStep, reply: HookReply, options: { scheduled?: boolean } = {}): HookDecision {
  if (reply.type === 'proceed') return { kind: 'proceed', fields: {} }
  const what = reply.type === 'ignore' ? 'ignore' : reply.transition
  if (!HOOK_MAY_RETURN[step].includes(what)) {
    return { kind: 'refuse', reason: `${ON_HOOK[step]} cannot return ApprovalTemplate.${what}(…): runs only move forward (allowed: ${HOOK_MAY_RETURN[step].join(', ')})` }
  }
  if (reply.type === 'ignore') {
    if (step === 'deescalate' && options.scheduled) return { kind: 'proceed', fields: {} }
    return { kind: 'ignore', message: reply.message }
  }
  if (reply.transition === step) return { kind: 'proceed', fields: { ...reply.fields } }
  if (reply.transition === 'request') return { kind: 'proceed', fields: { ...reply.fields } }
  return { kind: 'replace', step: reply.transition, fields: { ...reply.fields } }
}

/**
 * Where a run goes when its event is ignored by a hook or its hook fails: a request that could not be routed (its
 * `onRequest` failed or ignored it) ends `errored` — nobody was asked, so nobody could decide it; every other step
 * leaves the run where it was (an ignored approval keeps the request open).
 */
export function hookFailureStatus(status: string, step: HookStep): 'errored' | undefined {
  if (step === 'request' && status === 'requested') return 'errored'
  if (step === 'escalate' && status === 'approved') return 'errored'
  return undefined
}

// ---------------------------------------------------------------------------------------------------------------
// Permissions

const LEVELS = new Set(['admin', 'member', 'all_users'])

function permissionOf(v: unknown): ApproveDenyPermission | undefined {
  if (typeof v === 'string') return LEVELS.has(v) ? (v as ApproveDenyPermission) : undefined
  if (Array.isArray(v) && v.every((x): x is string => typeof x === 'string')) return v
  return undefined
}

/** A run's stored permission (`Run.permission`), or undefined when there is none or it is not one. */
export function parseRequestPermission(stored: unknown): RequestPermission | undefined {
  if (!stored || typeof stored !== 'object' || Array.isArray(stored)) return undefined
  const o = stored as Record<string, unknown>
  const approveDeny = permissionOf(o.approveDeny)
  if (approveDeny === undefined) return undefined
  const webappView = permissionOf(o.webappView)
  return { approveDeny, allowSelfApproval: o.allowSelfApproval === true, ...(webappView !== undefined ? { webappView } : {}) }
}

/**
 * What the API checks a decision against before the worker has routed the request (its permission is not stored
 * yet): only what holds whatever the flow's `getPermissions` says — no self-approval, guests per
 * `allow_guest_interaction`. The worker checks the decision again with the stored permission when it processes it.
 */
export const UNROUTED_PERMISSION: RequestPermission = { approveDeny: 'all_users', allowSelfApproval: false }

// ---------------------------------------------------------------------------------------------------------------
// Notification chains (§3.7)

/** When a posted link's timeout passes, or null when it has none (it never moves on by itself). */
export function linkDueAt(postedAt: Date, timeoutSeconds: number | null): Date | null {
  return timeoutSeconds === null ? null : new Date(postedAt.getTime() + timeoutSeconds * 1000)
}

/**
 * What happens when the chain moves on from link `index` of `count` (its timeout passed, or it could not be
 * delivered): the next link is posted, or after the last the request expires.
 */
export function afterLink(index: number, count: number): { readonly next: number } | { readonly expire: true } {
  return index + 1 < count ? { next: index + 1 } : { expire: true }
}

/**
 * Whether the chain decides when the request expires: when its last link has a timeout, the request expires when
 * that link times out, and the deployment's default expiry does not apply (it could cut a long chain short). A
 * chain whose last link waits forever keeps the default expiry.
 */
export function chainExpires(timeouts: readonly (number | null)[]): boolean {
  return timeouts.length > 0 && timeouts[timeouts.length - 1] !== null
}

