/**
 * cty types and their JSON representation.
 *
 * The JSON form is what Terraform puts in schema documents (`SchemaAttribute.type` bytes), in dynamic values
 * (`[typeJSON, value]` in msgpack, `{"value":…,"type":…}` in JSON) and in `terraform providers schema -json`:
 * `"string"`, `"number"`, `"bool"`, `"dynamic"`, `["list",T]`, `["set",T]`, `["map",T]`, `["tuple",[T…]]`,
 * `["object",{"attr":T…}]` and `["object",{…},["optional_attr"…]]` (the third element only when non-empty, sorted).
 */
import { CtyError } from './path.js'
import { parseJsonText, JsonNumberLiteral, type JsonNode } from './json-text.js'

export type CtyPrimitiveType =
  | { readonly kind: 'string' }
  | { readonly kind: 'number' }
  | { readonly kind: 'bool' }

export type CtyType =
  | CtyPrimitiveType
  /** Any type; values in a dynamic slot carry their concrete type (see `CtyValue.dynamic`). */
  | { readonly kind: 'dynamic' }
  | { readonly kind: 'list'; readonly element: CtyType }
  | { readonly kind: 'set'; readonly element: CtyType }
  | { readonly kind: 'map'; readonly element: CtyType }
  | {
      readonly kind: 'object'
      /** Attribute types. A `Map`, so an attribute named `__proto__` is ordinary data. */
      readonly attributes: ReadonlyMap<string, CtyType>
      /** Attributes that are optional in a type constraint. Values still carry every attribute. */
      readonly optional: ReadonlySet<string>
    }
  | { readonly kind: 'tuple'; readonly elements: readonly CtyType[] }

/** The JSON type representation, as a JS value. */
export type CtyTypeJson =
  | 'string'
  | 'number'
  | 'bool'
  | 'dynamic'
  | readonly ['list' | 'set' | 'map', CtyTypeJson]
  | readonly ['tuple', readonly CtyTypeJson[]]
  | readonly ['object', { readonly [attribute: string]: CtyTypeJson }]
  | readonly ['object', { readonly [attribute: string]: CtyTypeJson }, readonly string[]]

type AttributeTypes = ReadonlyMap<string, CtyType> | { readonly [attribute: string]: CtyType }

const STRING: CtyType = Object.freeze({ kind: 'string' })
const NUMBER: CtyType = Object.freeze({ kind: 'number' })
const BOOL: CtyType = Object.freeze({ kind: 'bool' })
const DYNAMIC: CtyType = Object.freeze({ kind: 'dynamic' })

/** Type constructors: `CtyType.object({ name: CtyType.string, tags: CtyType.map(CtyType.string) })`. */
export const CtyType = {
  string: STRING,
  number: NUMBER,
  bool: BOOL,
  dynamic: DYNAMIC,
  list: (element: CtyType): CtyType => ({ kind: 'list', element }),
  set: (element: CtyType): CtyType => ({ kind: 'set', element }),
  map: (element: CtyType): CtyType => ({ kind: 'map', element }),
  tuple: (elements: readonly CtyType[]): CtyType => ({ kind: 'tuple', elements: [...elements] }),
  /** `optional` names attributes that are optional in a type constraint; each must be an attribute. */
  object: (attributes: AttributeTypes, optional: Iterable<string> = []): CtyType => {
    const attrs = new Map(attributes instanceof Map ? attributes : Object.entries(attributes))
    const opt = new Set(optional)
    for (const name of opt) {
      if (!attrs.has(name)) throw new CtyError([], `optional attribute ${JSON.stringify(name)} is not an attribute of the object type`)
    }
    return { kind: 'object', attributes: attrs, optional: opt }
  },
} as const

/** Structural type equality (object attribute order does not matter; optional sets must match). */
export function typeEquals(a: CtyType, b: CtyType): boolean {
  if (a === b) return true
  switch (a.kind) {
    case 'string':
    case 'number':
    case 'bool':
    case 'dynamic':
      return a.kind === b.kind
    case 'list':
    case 'set':
    case 'map':
      return b.kind === a.kind && typeEquals(a.element, b.element)
    case 'tuple':
      return b.kind === 'tuple' && a.elements.length === b.elements.length && a.elements.every((t, i) => typeEquals(t, b.elements[i] as CtyType))
    case 'object': {
      if (b.kind !== 'object' || a.attributes.size !== b.attributes.size || a.optional.size !== b.optional.size) return false
      for (const [name, t] of a.attributes) {
        const other = b.attributes.get(name)
        if (!other || !typeEquals(t, other)) return false
      }
      for (const name of a.optional) if (!b.optional.has(name)) return false
      return true
    }
  }
}

/** HCL type-constraint syntax, for messages: `list(object({ name = string, size = optional(number) }))`. */
export function typeToString(t: CtyType): string {
  switch (t.kind) {
    case 'string':
    case 'number':
    case 'bool':
    case 'dynamic':
      return t.kind === 'dynamic' ? 'any' : t.kind
    case 'list':
    case 'set':
    case 'map':
      return `${t.kind}(${typeToString(t.element)})`
    case 'tuple':
      return `tuple([${t.elements.map(typeToString).join(', ')}])`
    case 'object': {
      const attrs = sortedNames(t.attributes.keys()).map((name) => {
        const inner = typeToString(t.attributes.get(name) as CtyType)
        return `${name} = ${t.optional.has(name) ? `optional(${inner})` : inner}`
      })
      return attrs.length === 0 ? 'object({})' : `object({ ${attrs.join(', ')} })`
    }
  }
}

/** A short name for error messages: `string`, `list(string)`, `object`, `tuple`, `dynamic`. */
export function shortTypeName(t: CtyType): string {
  switch (t.kind) {
    case 'list':
    case 'set':
    case 'map':
      return `${t.kind}(${shortTypeName(t.element)})`
    default:
      return t.kind
  }
}

/** The JSON type representation as a JS value (objects are null-prototype, keys in sorted order). */
export function typeToJson(t: CtyType): CtyTypeJson {
  switch (t.kind) {
    case 'string':
    case 'number':
    case 'bool':
    case 'dynamic':
      return t.kind
    case 'list':
    case 'set':
    case 'map':
      return [t.kind, typeToJson(t.element)]
    case 'tuple':
      return ['tuple', t.elements.map(typeToJson)]
    case 'object': {
      const attrs: Record<string, CtyTypeJson> = Object.create(null) as Record<string, CtyTypeJson>
      for (const name of sortedNames(t.attributes.keys())) attrs[name] = typeToJson(t.attributes.get(name) as CtyType)
      return t.optional.size > 0 ? ['object', attrs, sortedNames(t.optional)] : ['object', attrs]
    }
  }
}

/** The JSON type representation as compact text, byte-compatible with go-cty's `Type.MarshalJSON` (keys sorted). */
export function encodeTypeJson(t: CtyType): string {
  switch (t.kind) {
    case 'string':
    case 'number':
    case 'bool':
    case 'dynamic':
      return `"${t.kind}"`
    case 'list':
    case 'set':
    case 'map':
      return `["${t.kind}",${encodeTypeJson(t.element)}]`
    case 'tuple':
      return `["tuple",[${t.elements.map(encodeTypeJson).join(',')}]]`
    case 'object': {
      const attrs = sortedNames(t.attributes.keys()).map((n) => `${JSON.stringify(n)}:${encodeTypeJson(t.attributes.get(n) as CtyType)}`)
      const opt = t.optional.size > 0 ? `,[${sortedNames(t.optional).map((n) => JSON.stringify(n)).join(',')}]` : ''
      return `["object",{${attrs.join(',')}}${opt}]`
    }
  }
}

/** Parses JSON type text or bytes (a schema's `type` field, a dynamic value's type). Throws {@link CtyError}. */
export function decodeTypeJson(text: string | Uint8Array): CtyType {
  let node: JsonNode
  try {
    node = parseJsonText(text)
  } catch (e) {
    throw new CtyError([], `invalid type JSON: ${(e as Error).message}`)
  }
  return typeFromNode(node, 0)
}

/** Converts an already-parsed JSON type (for example from `JSON.parse`) into a {@link CtyType}. Throws {@link CtyError}. */
export function typeFromJson(json: unknown): CtyType {
  return typeFromNode(fromPlain(json, 0), 0)
}

const MAX_TYPE_DEPTH = 256

function typeFromNode(node: JsonNode, depth: number): CtyType {
  if (depth > MAX_TYPE_DEPTH) throw new CtyError([], 'invalid type JSON: nested too deeply')
  if (typeof node === 'string') {
    switch (node) {
      case 'string':
        return STRING
      case 'number':
        return NUMBER
      case 'bool':
        return BOOL
      case 'dynamic':
        return DYNAMIC
      default:
        throw new CtyError([], `invalid type JSON: unknown primitive type ${JSON.stringify(node)}`)
    }
  }
  if (!Array.isArray(node)) throw new CtyError([], `invalid type JSON: expected a string or an array, got ${describeNode(node)}`)
  const [kind, arg, extra] = node as readonly JsonNode[]
  const arity = kind === 'object' ? [2, 3] : [2]
  if (!arity.includes(node.length)) throw new CtyError([], `invalid type JSON: ${JSON.stringify(kind)} type must have ${arity.join(' or ')} elements, got ${node.length}`)
  switch (kind) {
    case 'list':
    case 'set':
    case 'map':
      return { kind, element: typeFromNode(arg as JsonNode, depth + 1) }
    case 'tuple':
      if (!Array.isArray(arg)) throw new CtyError([], 'invalid type JSON: tuple element types must be an array')
      return { kind: 'tuple', elements: (arg as readonly JsonNode[]).map((e) => typeFromNode(e, depth + 1)) }
    case 'object': {
      if (!(arg instanceof Map)) throw new CtyError([], 'invalid type JSON: object attribute types must be a JSON object')
      const attrs = new Map<string, CtyType>()
      for (const [name, t] of arg) attrs.set(name, typeFromNode(t, depth + 1))
      const optional = new Set<string>()
      if (extra !== undefined) {
        if (!Array.isArray(extra)) throw new CtyError([], 'invalid type JSON: optional attribute names must be an array')
        for (const name of extra as readonly JsonNode[]) {
          if (typeof name !== 'string') throw new CtyError([], 'invalid type JSON: optional attribute names must be strings')
          if (!attrs.has(name)) throw new CtyError([], `invalid type JSON: optional attribute ${JSON.stringify(name)} is not an attribute`)
          optional.add(name)
        }
      }
      return { kind: 'object', attributes: attrs, optional }
    }
    default:
      throw new CtyError([], `invalid type JSON: unknown type kind ${JSON.stringify(kind)}`)
  }
}

function describeNode(node: JsonNode): string {
  if (node === null) return 'null'
  if (node instanceof JsonNumberLiteral) return 'a number'
  if (node instanceof Map) return 'an object'
  return typeof node
}

/** Converts a JS value from `JSON.parse` (or built by hand) into a {@link JsonNode}. */
export function fromPlain(value: unknown, depth: number): JsonNode {
  if (depth > 512) throw new CtyError([], 'JSON value nested too deeply')
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new CtyError([], `${value} is not a JSON number`)
    return new JsonNumberLiteral(String(value))
  }
  if (typeof value === 'bigint') return new JsonNumberLiteral(value.toString())
  if (value instanceof JsonNumberLiteral) return value
  if (Array.isArray(value)) return value.map((v: unknown) => fromPlain(v, depth + 1))
  if (value instanceof Map) {
    const out = new Map<string, JsonNode>()
    for (const [k, v] of value as Map<unknown, unknown>) {
      if (typeof k !== 'string') throw new CtyError([], 'JSON object keys must be strings')
      out.set(k, fromPlain(v, depth + 1))
    }
    return out
  }
  if (typeof value === 'object') {
    const out = new Map<string, JsonNode>()
    for (const k of Object.keys(value)) out.set(k, fromPlain((value as Record<string, unknown>)[k], depth + 1))
    return out
  }
  throw new CtyError([], `${typeof value} is not a JSON value`)
}

/** Sorts names in Unicode code point order, which is UTF-8 byte order (Go's `sort.Strings`). */
export function sortedNames(names: Iterable<string>): string[] {
  return [...names].sort(compareCodePoints)
}

const sortedAttributeNames = new WeakMap<ReadonlyMap<string, CtyType>, readonly string[]>()

/** The attribute names of an object type in {@link sortedNames} order, sorted once per type (types are long-lived). */
export function attributeOrder(attributes: ReadonlyMap<string, CtyType>): readonly string[] {
  let names = sortedAttributeNames.get(attributes)
  if (!names) sortedAttributeNames.set(attributes, (names = sortedNames(attributes.keys())))
  return names
}

export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i) as number
    const y = b.codePointAt(i) as number
    if (x !== y) return x - y
    if (x > 0xffff) i++
  }
  return a.length - b.length
}
