/**
 * Terraform values ↔ API bodies, derived from the resource definitions: `name` ↔ `slug`, single-item block lists
 * ↔ objects, base64 implementations, `"<null>"` placeholders, case-insensitive slugs, settings maps tolerant of
 * server-side null keys. Terraform values here are plain JSON-like objects keyed by Terraform attribute names,
 * with everything known (the runtime resolves unknowns before a call reaches the API).
 */
import {
  decodeBase64Text,
  encodeBase64Text,
  jsonName,
  type AttributeDef,
  type BlockDef,
  type ResourceDef,
} from '@opensym/provider-schema'

export type TfValue = null | string | number | boolean | TfValue[] | TfObject
export interface TfObject {
  [attribute: string]: TfValue
}
type Json = Record<string, unknown>

type Attributes = Readonly<Record<string, AttributeDef>>
type Blocks = Readonly<Record<string, BlockDef>> | undefined

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)

export interface ApiBodyOptions {
  /** Base64 attributes keep their text (for `validateEntityRules` with `base64AsText`), rather than being encoded. */
  readonly base64AsText?: boolean
}

/** The API body for a planned or configured object (create and update send the full object). */
export function toApiBody(r: ResourceDef, tf: TfObject, options: ApiBodyOptions = {}): Json {
  return bodyOf(r.attributes, r.blocks, tf, options.base64AsText === true)
}

function bodyOf(attributes: Attributes, blocks: Blocks, tf: TfObject, base64AsText: boolean): Json {
  const body: Json = {}
  for (const [name, a] of Object.entries(attributes)) {
    if (a.mode === 'computed') continue
    const v = tf[name] ?? null
    const key = jsonName(name, a)
    if (v === null) {
      // Absent optional values are left out, so the platform default applies; placeholders say "none" explicitly.
      if (a.nullPlaceholder) body[key] = a.nullPlaceholder
      continue
    }
    body[key] = a.encoding === 'base64' && typeof v === 'string' && !base64AsText ? encodeBase64Text(v) : v
  }
  for (const [name, b] of Object.entries(blocks ?? {})) {
    const items = (Array.isArray(tf[name]) ? tf[name] : []) as TfObject[]
    const key = jsonName(name, b)
    // Sym's provider sends `{}` for a single-item block that is absent.
    body[key] =
      b.apiShape === 'object' ? (items[0] ? bodyOf(b.attributes, b.blocks, items[0], base64AsText) : {}) : items.map((i) => bodyOf(b.attributes, b.blocks, i, base64AsText))
  }
  return body
}

/**
 * The Terraform state for an API view. `prior` (the configuration or previous state) keeps what the API
 * normalises from showing up as a diff: the case of a slug, `[]` versus an omitted empty list.
 */
export function fromApiView(r: ResourceDef, view: Json, prior?: TfObject | null): TfObject {
  return stateOf(r.attributes, r.blocks, view, prior ?? null)
}

function stateOf(attributes: Attributes, blocks: Blocks, view: Json, prior: TfObject | null): TfObject {
  const tf: TfObject = {}
  for (const [name, a] of Object.entries(attributes)) {
    tf[name] = attributeState(a, view[jsonName(name, a)], prior?.[name] ?? null)
  }
  for (const [name, b] of Object.entries(blocks ?? {})) {
    const v = view[jsonName(name, b)]
    const priorItems = (Array.isArray(prior?.[name]) ? prior[name] : []) as TfObject[]
    if (b.apiShape === 'object') {
      // An empty object is how the API carries "no block".
      tf[name] = isObject(v) && Object.keys(v).length ? [stateOf(b.attributes, b.blocks, v, priorItems[0] ?? null)] : []
    } else {
      tf[name] = Array.isArray(v) ? v.map((item, i) => stateOf(b.attributes, b.blocks, isObject(item) ? item : {}, priorItems[i] ?? null)) : []
    }
  }
  return tf
}

function attributeState(a: AttributeDef, v: unknown, prior: TfValue): TfValue {
  if (v === undefined || v === null || (a.nullPlaceholder !== undefined && v === a.nullPlaceholder)) {
    if (a.type === 'list' && Array.isArray(prior) && prior.length === 0) return []
    return a.default === undefined ? null : structuredClone(a.default)
  }
  switch (a.type) {
    case 'string': {
      const s = typeof v === 'string' ? v : JSON.stringify(v)
      if (a.slug && typeof prior === 'string' && prior.toLowerCase() === s.toLowerCase()) return prior
      if (a.encoding === 'base64') return decodeBase64Text(s) ?? s
      return s
    }
    case 'map': {
      // The API may return every known settings key, some null: null and absent mean the same.
      const out: TfObject = {}
      if (isObject(v)) for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x
      return out
    }
    case 'list':
      return Array.isArray(v) ? v.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))) : null
    case 'bool':
      return typeof v === 'boolean' ? v : null
    case 'number':
      return typeof v === 'number' ? v : null
  }
}

/** One step of a Terraform attribute path, as diagnostics carry it. */
export type PathStep = { readonly attribute: string } | { readonly key: string } | { readonly index: number }

/**
 * Maps an API field path (`params.prompt_fields[1].type`, `settings.group_id`, `targets[0]`) to the Terraform
 * attribute path (`params[0].prompt_field[1].type`), so an API 400 lands on the right line of configuration.
 * Stops at the deepest step it can place.
 */
export function terraformPath(r: ResourceDef, field: string): PathStep[] {
  const segments = field.match(/[^.[\]]+|\[\d+\]/g) ?? []
  const path: PathStep[] = []
  let attributes: Attributes = r.attributes
  let blocks: Blocks = r.blocks
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!
    const attr = Object.entries(attributes).find(([n, a]) => jsonName(n, a) === seg)
    if (attr) {
      path.push({ attribute: attr[0] })
      const next = segments[i + 1]
      if (attr[1].type === 'map' && next !== undefined) path.push({ key: next })
      else if (attr[1].type === 'list' && next?.startsWith('[')) path.push({ index: Number(next.slice(1, -1)) })
      break
    }
    const block = Object.entries(blocks ?? {}).find(([n, b]) => jsonName(n, b) === seg)
    if (!block) break
    path.push({ attribute: block[0] })
    const [, b] = block
    if (b.apiShape === 'object') path.push({ index: 0 })
    else {
      const next = segments[i + 1]
      if (!next?.startsWith('[')) break
      path.push({ index: Number(next.slice(1, -1)) })
      i++
    }
    attributes = b.attributes
    blocks = b.blocks
  }
  return path
}

/** `params[0].prompt_field[1].type`, for messages. */
export function formatPath(path: readonly PathStep[]): string {
  return path
    .map((s, i) => ('attribute' in s ? `${i ? '.' : ''}${s.attribute}` : 'key' in s ? `["${s.key}"]` : `[${s.index}]`))
    .join('')
}

/**
 * A configuration as Terraform plans it: every attribute present, unset optional ones at their default (or null),
 * absent blocks as empty lists. The partial state of an import is built with it (the runtime plans defaults itself).
 */
export function withDefaults(attributes: Attributes, blocks: Blocks, config: TfObject): TfObject {
  const out: TfObject = {}
  for (const [name, a] of Object.entries(attributes)) {
    const v = config[name] ?? null
    out[name] = v === null && a.default !== undefined ? structuredClone(a.default) : v
  }
  for (const [name, b] of Object.entries(blocks ?? {})) {
    const items = Array.isArray(config[name]) ? (config[name] as TfObject[]) : []
    out[name] = items.map((item) => withDefaults(b.attributes, b.blocks, item))
  }
  return out
}
