/**
 * Rules over an entity's API body that JSON Schema cannot say precisely, all derived from the definitions:
 * placeholder-or-UUID references, base64 encodings, per-type requirements, unique block items. Also the
 * body normalisation and reference walk the API needs. Pure functions: the API answers 400 with these
 * errors, and the provider can run the same checks at plan time.
 */
import { isReservedAddress } from './addresses.js'
import type { AttributeDef, BlockDef, EntityKind, ResourceDef, SettingDef } from '../dsl.js'
import { resourceList } from '../catalog.js'
import { jsonName } from './api.js'

/** A problem with one field of a body; `field` is a path like `params.prompt_fields[0].type`. */
export interface FieldError {
  readonly field: string
  readonly message: string
}

/** A reference from one entity to another, found in a body. */
export interface EntityReference {
  readonly field: string
  readonly kind: EntityKind
  readonly id: string
}

type Json = Record<string, unknown>

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
export const isUuid = (s: string): boolean => UUID_RE.test(s)

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
const utf8 = new TextDecoder('utf-8', { fatal: true })

/** Decodes canonical base64 of UTF-8 text; undefined when the value is not that. */
export function decodeBase64Text(value: string): string | undefined {
  if (!BASE64_RE.test(value)) return undefined
  try {
    return utf8.decode(Buffer.from(value, 'base64'))
  } catch {
    return undefined
  }
}

export const encodeBase64Text = (text: string): string => Buffer.from(text, 'utf8').toString('base64')

const join = (base: string, key: string) => (base ? `${base}.${key}` : key)

/** True when a value counts as "not set" for this attribute (absent, null, "" or the placeholder). */
export function isUnset(a: AttributeDef, v: unknown): boolean {
  if (v === undefined || v === null) return true
  if (typeof v === 'string' && ((a.emptyIsUnset && v === '') || (a.nullPlaceholder && v === a.nullPlaceholder))) return true
  return false
}

/**
 * Calls `fn` with every attribute value in a body, blocks included, and its field path. A callback rather than a
 * generator: the provider runs this on every ValidateResourceConfig, in processes too short-lived for V8 to
 * optimise generator resumption.
 */
function visit(
  attributes: Readonly<Record<string, AttributeDef>>,
  blocks: Readonly<Record<string, BlockDef>> | undefined,
  body: Json,
  fn: (path: string, a: AttributeDef, value: unknown) => void,
  base = '',
): void {
  for (const name in attributes) {
    const a = attributes[name]!
    if (a.mode === 'computed') continue
    const key = jsonName(name, a)
    fn(join(base, key), a, body[key])
  }
  for (const name in blocks) {
    const b = blocks[name]!
    const key = jsonName(name, b)
    const v = body[key]
    if (b.apiShape === 'object') {
      if (v && typeof v === 'object' && !Array.isArray(v)) visit(b.attributes, b.blocks, v as Json, fn, join(base, key))
    } else if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const item: unknown = v[i]
        if (item && typeof item === 'object') visit(b.attributes, b.blocks, item as Json, fn, `${join(base, key)}[${i}]`)
      }
    }
  }
}

/** Calls `fn` with every block that the API carries as an array, with its field path. */
function arrayBlocks(
  blocks: Readonly<Record<string, BlockDef>> | undefined,
  body: Json,
  fn: (path: string, block: BlockDef, items: Json[]) => void,
  base = '',
): void {
  for (const name in blocks) {
    const b = blocks[name]!
    const key = jsonName(name, b)
    const v = body[key]
    if (b.apiShape === 'array' && Array.isArray(v)) fn(join(base, key), b, v as Json[])
    if (b.apiShape === 'object' && v && typeof v === 'object') arrayBlocks(b.blocks, v as Json, fn, join(base, key))
  }
}

export interface EntityRulesOptions {
  /**
   * The body's base64 attributes hold their text, not yet encoded (a body the provider builds from configuration,
   * whose encoding cannot fail): their encoding is not checked, which spares an encode and decode per validation.
   */
  readonly base64AsText?: boolean
}

/**
 * The checks JSON Schema leaves to us. Assumes the body passed the derived JSON Schema, except that any value may
 * be a placeholder for "not known yet" (the provider validates configuration before references are resolved):
 * checks skip values that are not plain JSON.
 */
export function validateEntityRules(r: ResourceDef, body: Json, options: EntityRulesOptions = {}): FieldError[] {
  const errors: FieldError[] = []
  visit(r.attributes, r.blocks, body, (path, a, value) => {
    if (a.references && Array.isArray(value)) {
      const seen = new Set<string>()
      for (const [i, id] of value.entries()) {
        if (typeof id !== 'string') continue
        if (seen.has(id)) errors.push({ field: `${path}[${i}]`, message: `is listed twice` })
        seen.add(id)
      }
    }
    if (isUnset(a, value) || typeof value !== 'string') return
    if (a.format === 'uuid' && !isUuid(value)) {
      const alt = a.nullPlaceholder ? ` or "${a.nullPlaceholder}"` : ''
      errors.push({ field: path, message: `must be a UUID${alt}` })
    }
    if (a.encoding === 'base64' && !options.base64AsText && decodeBase64Text(value) === undefined) {
      errors.push({ field: path, message: 'must be base64-encoded UTF-8 text' })
    }
  })
  arrayBlocks(r.blocks, body, (path, block, items) => {
    const by = block.uniqueBy
    if (!by) return
    const seen = new Set<string>()
    for (let i = 0; i < items.length; i++) {
      const v = items[i]![by]
      if (typeof v !== 'string') continue
      if (seen.has(v)) errors.push({ field: `${path}[${i}].${by}`, message: `duplicate ${by} "${String(v)}"` })
      seen.add(v)
    }
  })
  const type = typeof body.type === 'string' ? body.type : undefined
  for (const rule of r.rules ?? []) {
    const a = r.attributes[rule.attribute]
    if (!a) continue
    const key = jsonName(rule.attribute, a)
    if (rule.rule === 'required_unless_type') {
      if (type !== undefined && !rule.types.includes(type) && isUnset(a, body[key])) {
        errors.push({ field: key, message: rule.message })
      }
    } else if (rule.rule === 'settings_by_type' && type !== undefined) {
      const wanted = rule.settings[type]
      if (!wanted) continue
      const raw = body[key] ?? {}
      const rawBound = rule.bindingsAttribute ? (body[rule.bindingsAttribute] ?? []) : []
      if (typeof raw !== 'object' || !Array.isArray(rawBound)) continue
      const settings = raw as Record<string, unknown>
      const bound = rawBound as unknown[]
      for (const [setting, def] of Object.entries(wanted)) {
        const value = settings[setting]
        if (def.required && [undefined, null, ''].includes(value as string) && !bound.includes(setting)) {
          errors.push({ field: `${key}.${setting}`, message: `is required for type "${type}"` })
        } else if (typeof value === 'string' && value !== '') {
          const problem = settingFormatProblem(def, value)
          if (problem) errors.push({ field: `${key}.${setting}`, message: problem })
        }
      }
    }
  }
  return errors
}

/** Why a set settings value does not have its declared format, or undefined when it does (or has none). */
function settingFormatProblem(def: SettingDef, value: string): string | undefined {
  switch (def.format) {
    case 'http_url': {
      let url: URL
      try {
        url = new URL(value)
      } catch {
        return 'must be an absolute http:// or https:// URL'
      }
      if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname) return 'must be an absolute http:// or https:// URL'
      if (url.username || url.password) return 'must not contain credentials (user:password@)'
      // The URL parser has normalised the host (octal, hex and integer IPv4 forms become dotted quads).
      const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
      if (isReservedAddress(host)) return `must not point at a link-local, metadata or reserved address (${host})`
      return undefined
    }
    case 'uuid':
      return isUuid(value) ? undefined : 'must be a UUID'
    case 'integer': {
      const [min, max] = def.range ?? [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER]
      const n = /^-?\d+$/.test(value.trim()) ? Number(value.trim()) : NaN
      return Number.isSafeInteger(n) && n >= min && n <= max ? undefined : `must be a whole number from ${min} to ${max}`
    }
    default:
      return undefined
  }
}

/** The ids this body points at, by field, skipping unset values. */
export function collectReferences(r: ResourceDef, body: Json): EntityReference[] {
  const refs: EntityReference[] = []
  visit(r.attributes, r.blocks, body, (path, a, value) => {
    if (!a.references || isUnset(a, value)) return
    if (typeof value === 'string') refs.push({ field: path, kind: a.references, id: value })
    else if (Array.isArray(value)) {
      for (const [i, id] of value.entries()) if (typeof id === 'string') refs.push({ field: `${path}[${i}]`, kind: a.references, id })
    } else if (typeof value === 'object') {
      for (const [k, id] of Object.entries(value as Record<string, unknown>)) {
        if (typeof id === 'string') refs.push({ field: `${path}.${k}`, kind: a.references, id })
      }
    }
  })
  return refs
}

/**
 * The body as the API stores it: unset markers ("" where it means unset, placeholders such as "<null>") removed,
 * slugs lower-cased, base64 fields decoded to text. Assumes `validateEntityRules` found nothing.
 */
export function normalizeEntityBody(r: ResourceDef, body: Json): Json {
  return normalizeObject(r.attributes, r.blocks, body)
}

function normalizeObject(
  attributes: Readonly<Record<string, AttributeDef>>,
  blocks: Readonly<Record<string, BlockDef>> | undefined,
  body: Json,
): Json {
  const out: Json = {}
  for (const [name, a] of Object.entries(attributes)) {
    if (a.mode === 'computed') continue
    const key = jsonName(name, a)
    const v = body[key]
    if (isUnset(a, v)) continue
    if (typeof v === 'string' && a.slug) out[key] = v.toLowerCase()
    else if (typeof v === 'string' && a.encoding === 'base64') out[key] = decodeBase64Text(v)
    else out[key] = v
  }
  for (const [name, b] of Object.entries(blocks ?? {})) {
    const key = jsonName(name, b)
    const v = body[key]
    if (v === undefined || v === null) continue
    out[key] = Array.isArray(v)
      ? v.map((item: Json) => normalizeObject(b.attributes, b.blocks, item))
      : normalizeObject(b.attributes, b.blocks, v as Json)
  }
  return out
}

/** The inverse of `normalizeEntityBody` for responses: base64 fields encoded again. */
export function encodeEntityFields(r: ResourceDef, stored: Json): Json {
  return encodeObject(r.attributes, r.blocks, stored)
}

function encodeObject(
  attributes: Readonly<Record<string, AttributeDef>>,
  blocks: Readonly<Record<string, BlockDef>> | undefined,
  stored: Json,
): Json {
  const out: Json = { ...stored }
  for (const [name, a] of Object.entries(attributes)) {
    const key = jsonName(name, a)
    const v = stored[key]
    if (a.encoding === 'base64' && typeof v === 'string') out[key] = encodeBase64Text(v)
  }
  for (const [name, b] of Object.entries(blocks ?? {})) {
    const key = jsonName(name, b)
    const v = stored[key]
    if (v === undefined || v === null) continue
    out[key] = Array.isArray(v)
      ? v.map((item: Json) => encodeObject(b.attributes, b.blocks, item))
      : encodeObject(b.attributes, b.blocks, v as Json)
  }
  return out
}

const slugify = (s: string) =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/^-+|-+$/g, '')

/** The lookup slug of an entity: its `name`, or for resources without one, derived as their definition says. */
export function slugOf(r: ResourceDef, body: Json): string {
  const text = (v: unknown) => (typeof v === 'string' ? v : '')
  if (typeof body.slug === 'string') return body.slug.toLowerCase()
  switch (r.derivedSlug?.from) {
    case 'path':
      return slugify(text(body.path))
    case 'destination':
      return text(body.destination)
        .replace(/^#/, '')
        .toLowerCase()
    case 'settings': {
      const settings = (body.settings ?? {}) as Record<string, string>
      const source = settings.stream_name || settings.url?.replace(/^[a-z]+:\/\//i, '') || settings.bucket || text(body.type)
      return slugify(source)
    }
    default:
      return ''
  }
}

/** Every attribute that points at another entity, by the kind that holds it and its API field path. */
export function referenceAttributes(): { kind: EntityKind; path: string; references: EntityKind }[] {
  const out: { kind: EntityKind; path: string; references: EntityKind }[] = []
  const walk = (kind: EntityKind, attributes: Readonly<Record<string, AttributeDef>>, blocks: Readonly<Record<string, BlockDef>> | undefined, base: string) => {
    for (const [name, a] of Object.entries(attributes)) if (a.references) out.push({ kind, path: join(base, jsonName(name, a)), references: a.references })
    for (const [name, b] of Object.entries(blocks ?? {})) walk(kind, b.attributes, b.blocks, join(base, jsonName(name, b)))
  }
  for (const r of resourceList) walk(r.kind, r.attributes, r.blocks, '')
  return out
}

/**
 * A stored body with the schema's defaults filled in where a value is unset, blocks included (an absent
 * single-object block counts as empty). For readers of configuration — the engine asking "may this flow be
 * revoked?" — since the API stores bodies as sent.
 */
export function applyDefaults(r: ResourceDef, stored: Json): Json {
  return defaultsIn(r.attributes, r.blocks, stored)
}

function defaultsIn(
  attributes: Readonly<Record<string, AttributeDef>>,
  blocks: Readonly<Record<string, BlockDef>> | undefined,
  stored: Json,
): Json {
  const out: Json = { ...stored }
  for (const [name, a] of Object.entries(attributes)) {
    const key = jsonName(name, a)
    if (a.default !== undefined && isUnset(a, out[key])) out[key] = a.default
  }
  for (const [name, b] of Object.entries(blocks ?? {})) {
    const key = jsonName(name, b)
    const v = out[key]
    if (b.apiShape === 'object') out[key] = defaultsIn(b.attributes, b.blocks, (v && typeof v === 'object' ? v : {}) as Json)
    else if (Array.isArray(v)) out[key] = v.map((item: Json) => defaultsIn(b.attributes, b.blocks, item))
  }
  return out
}
