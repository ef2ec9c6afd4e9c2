/**
 * cty values with three explicit states: null, unknown ("known after apply", optionally refined) and known.
 *
 * Values do not carry their type; every operation that needs one (codecs, conformance, paths) takes the
 * {@link CtyType} alongside. The one exception is a value in a `dynamic` slot: its concrete type is part of the data
 * (`CtyValue.dynamic(type, value)`), exactly as on the wire.
 */
import { CtyNumber } from './number.js'
import { CtyError, type CtyPath, attrStep, indexStep, keyStep } from './path.js'
import { type CtyType, encodeTypeJson, shortTypeName, sortedNames, typeEquals } from './types.js'

/** An inclusive or exclusive numeric bound of a refined unknown number. */
export interface CtyNumberBound {
  readonly value: CtyNumber
  readonly inclusive: boolean
}

/**
 * What Terraform knows about an unknown value. On the msgpack wire these are extension 12 with integer keys
 * (1 null-ness, 2 string prefix, 3/4 number lower/upper bound, 5/6 collection length lower/upper bound).
 */
export interface CtyRefinements {
  /** The value will definitely not be null (wire key 1 = `false`). */
  readonly notNull?: boolean
  /** A string value will start with this prefix (wire key 2; string type only). */
  readonly stringPrefix?: string
  /** A number will be ≥ (inclusive) or > this bound (wire key 3; number type only). */
  readonly numberLowerBound?: CtyNumberBound
  /** A number will be ≤ (inclusive) or < this bound (wire key 4; number type only). */
  readonly numberUpperBound?: CtyNumberBound
  /** A list, set or map will have at least this many elements (wire key 5). */
  readonly lengthLowerBound?: number
  /** A list, set or map will have at most this many elements (wire key 6). */
  readonly lengthUpperBound?: number
}

export interface CtyNull {
  readonly kind: 'null'
}
export interface CtyUnknown {
  readonly kind: 'unknown'
  /** Absent when nothing is known about the value. */
  readonly refinements?: CtyRefinements
}
export interface CtyString {
  readonly kind: 'string'
  readonly value: string
}
export interface CtyNumberValue {
  readonly kind: 'number'
  readonly value: CtyNumber
}
export interface CtyBool {
  readonly kind: 'bool'
  readonly value: boolean
}
export interface CtyList {
  readonly kind: 'list'
  readonly elements: readonly CtyValue[]
}
/** A set: elements are unique by value (wholly-known duplicates are dropped); order is kept but not significant. */
export interface CtySet {
  readonly kind: 'set'
  readonly elements: readonly CtyValue[]
}
export interface CtyTuple {
  readonly kind: 'tuple'
  readonly elements: readonly CtyValue[]
}
/** A map; a `Map` so any key (including `__proto__`) is plain data. */
export interface CtyMap {
  readonly kind: 'map'
  readonly entries: ReadonlyMap<string, CtyValue>
}
/** An object; carries every attribute of its type (null ones included). */
export interface CtyObject {
  readonly kind: 'object'
  readonly attributes: ReadonlyMap<string, CtyValue>
}
/** A value in a `dynamic` slot together with its concrete type. */
export interface CtyDynamic {
  readonly kind: 'dynamic'
  readonly type: CtyType
  readonly value: CtyValue
}

/** A known (non-null, not unknown) value at the top level; its children may still be null or unknown. */
export type CtyKnown = CtyString | CtyNumberValue | CtyBool | CtyList | CtySet | CtyTuple | CtyMap | CtyObject | CtyDynamic
export type CtyValue = CtyNull | CtyUnknown | CtyKnown

const NULL: CtyNull = Object.freeze({ kind: 'null' })
const UNKNOWN: CtyUnknown = Object.freeze({ kind: 'unknown' })
const TRUE: CtyBool = Object.freeze({ kind: 'bool', value: true })
const FALSE: CtyBool = Object.freeze({ kind: 'bool', value: false })

type Entries = ReadonlyMap<string, CtyValue> | Iterable<readonly [string, CtyValue]> | { readonly [key: string]: CtyValue }

function toMap(entries: Entries): Map<string, CtyValue> {
  if (entries instanceof Map) return new Map(entries as ReadonlyMap<string, CtyValue>)
  if (Symbol.iterator in entries) return new Map(entries as Iterable<readonly [string, CtyValue]>)
  return new Map(Object.entries(entries))
}

/** Value constructors. Strings are NFC-normalized, as cty does; sets drop wholly-known duplicates. */
export const CtyValue = {
  /** The null value (of any type). */
  null: NULL,
  /** An unknown value; pass refinements to say what is known about it (empty/false refinements are dropped). */
  unknown(refinements?: CtyRefinements): CtyUnknown {
    const r = normalizeRefinements(refinements)
    return r ? { kind: 'unknown', refinements: r } : UNKNOWN
  },
  string: (value: string): CtyString => ({ kind: 'string', value: value.normalize('NFC') }),
  number: (value: CtyNumber | number | bigint | string): CtyNumberValue => ({ kind: 'number', value: CtyNumber.from(value) }),
  bool: (value: boolean): CtyBool => (value ? TRUE : FALSE),
  list: (elements: Iterable<CtyValue>): CtyList => ({ kind: 'list', elements: [...elements] }),
  set: (elements: Iterable<CtyValue>): CtySet => ({ kind: 'set', elements: dedupe(elements) }),
  tuple: (elements: Iterable<CtyValue>): CtyTuple => ({ kind: 'tuple', elements: [...elements] }),
  map: (entries: Entries): CtyMap => ({ kind: 'map', entries: toMap(entries) }),
  object: (attributes: Entries): CtyObject => ({ kind: 'object', attributes: toMap(attributes) }),
  /** A value for a `dynamic` slot, with the concrete type it is encoded with. */
  dynamic: (type: CtyType, value: CtyValue): CtyDynamic => ({ kind: 'dynamic', type, value }),
} as const

/**
 * Constructors that take ownership of a freshly built Map or array instead of copying it, for the codecs and the
 * plan pipeline (hundreds of values per RPC). The caller must not change it afterwards.
 */
export const ownObject = (attributes: Map<string, CtyValue>): CtyObject => ({ kind: 'object', attributes })
export const ownMap = (entries: Map<string, CtyValue>): CtyMap => ({ kind: 'map', entries })
export const ownList = (elements: CtyValue[]): CtyList => ({ kind: 'list', elements })

function normalizeRefinements(r: CtyRefinements | undefined): CtyRefinements | undefined {
  if (!r) return undefined
  const out: { -readonly [K in keyof CtyRefinements]: CtyRefinements[K] } = {}
  if (r.notNull) out.notNull = true
  if (r.stringPrefix) out.stringPrefix = r.stringPrefix.normalize('NFC')
  if (r.numberLowerBound) out.numberLowerBound = { value: r.numberLowerBound.value, inclusive: r.numberLowerBound.inclusive }
  if (r.numberUpperBound) out.numberUpperBound = { value: r.numberUpperBound.value, inclusive: r.numberUpperBound.inclusive }
  for (const k of ['lengthLowerBound', 'lengthUpperBound'] as const) {
    const n = r[k]
    if (n === undefined) continue
    if (!Number.isSafeInteger(n) || n < 0) throw new CtyError([], `${k} must be a non-negative integer, got ${n}`)
    if (k === 'lengthLowerBound' && n === 0) continue
    out[k] = n
  }
  return Object.keys(out).length > 0 ? out : undefined
}

function dedupe(elements: Iterable<CtyValue>): CtyValue[] {
  const seen = new Set<string>()
  const out: CtyValue[] = []
  for (const e of elements) {
    if (isWhollyKnown(e)) {
      const key = valueKey(e)
      if (seen.has(key)) continue
      seen.add(key)
    }
    out.push(e)
  }
  return out
}

/** Unwraps dynamic wrappers to the value underneath. */
function base(v: CtyValue): CtyValue {
  let cur = v
  while (cur.kind === 'dynamic') cur = cur.value
  return cur
}

/** The value's state, looking through dynamic wrappers: the three states of terraform-plugin-framework. */
export function ctyState(v: CtyValue): 'null' | 'unknown' | 'known' {
  const b = base(v)
  return b.kind === 'null' ? 'null' : b.kind === 'unknown' ? 'unknown' : 'known'
}
export const isNull = (v: CtyValue): boolean => ctyState(v) === 'null'
export const isUnknown = (v: CtyValue): boolean => ctyState(v) === 'unknown'
export const isKnown = (v: CtyValue): boolean => ctyState(v) === 'known'

/** True when the value contains no unknown anywhere (null counts as known): what JSON state and apply results need. */
export function isWhollyKnown(v: CtyValue): boolean {
  switch (v.kind) {
    case 'unknown':
      return false
    case 'list':
    case 'set':
    case 'tuple':
      return v.elements.every(isWhollyKnown)
    case 'map':
      return [...v.entries.values()].every(isWhollyKnown)
    case 'object':
      return [...v.attributes.values()].every(isWhollyKnown)
    case 'dynamic':
      return isWhollyKnown(v.value)
    default:
      return true
  }
}

/**
 * Raw equality, as go-cty's `RawEquals`: same states, same refinements, same values; sets and maps ignore order;
 * numbers compare by value. Used for plan checks ("does the planned value equal the config value?").
 */
export function ctyEquals(a: CtyValue, b: CtyValue): boolean {
  if (a === b) return true
  if (a.kind !== b.kind) return false
  switch (a.kind) {
    case 'null':
      return true
    case 'string':
    case 'bool':
      return a.value === (b as typeof a).value
    case 'number':
      return a.value.equals((b as typeof a).value)
    case 'unknown':
      return refinementsKey(a.refinements) === refinementsKey((b as typeof a).refinements)
    case 'list':
    case 'tuple': {
      const other = (b as typeof a).elements
      return a.elements.length === other.length && a.elements.every((e, i) => ctyEquals(e, other[i] as CtyValue))
    }
    case 'set': {
      const other = (b as typeof a).elements
      if (a.elements.length !== other.length) return false
      const counts = new Map<string, number>()
      for (const e of a.elements) counts.set(valueKey(e), (counts.get(valueKey(e)) ?? 0) + 1)
      for (const e of other) {
        const k = valueKey(e)
        const n = counts.get(k)
        if (!n) return false
        counts.set(k, n - 1)
      }
      return true
    }
    case 'map':
    case 'object': {
      const x = a.kind === 'map' ? a.entries : a.attributes
      const y = a.kind === 'map' ? (b as CtyMap).entries : (b as CtyObject).attributes
      if (x.size !== y.size) return false
      for (const [k, v] of x) {
        const w = y.get(k)
        if (!w || !ctyEquals(v, w)) return false
      }
      return true
    }
    case 'dynamic': {
      const other = b as typeof a
      return typeEquals(a.type, other.type) && ctyEquals(a.value, other.value)
    }
  }
}

function refinementsKey(r: CtyRefinements | undefined): string {
  if (!r) return ''
  const bound = (b: CtyNumberBound | undefined): string => (b ? `${b.value.decimal}${b.inclusive ? ']' : ')'}` : '')
  return [r.notNull ? 1 : 0, JSON.stringify(r.stringPrefix ?? ''), bound(r.numberLowerBound), bound(r.numberUpperBound), r.lengthLowerBound ?? '', r.lengthUpperBound ?? ''].join('|')
}

/** A canonical string for a value: equal values (by {@link ctyEquals}) have equal keys. Used for set membership. */
export function valueKey(v: CtyValue): string {
  switch (v.kind) {
    case 'null':
      return 'N'
    case 'unknown':
      return `U(${refinementsKey(v.refinements)})`
    case 'string':
      return `s${JSON.stringify(v.value)}`
    case 'number':
      return `n${v.value.decimal}`
    case 'bool':
      return v.value ? 'T' : 'F'
    case 'list':
      return `L[${v.elements.map(valueKey).join(',')}]`
    case 'tuple':
      return `P[${v.elements.map(valueKey).join(',')}]`
    case 'set':
      return `S[${v.elements.map(valueKey).sort().join(',')}]`
    case 'map':
      return `M{${entriesKey(v.entries)}}`
    case 'object':
      return `O{${entriesKey(v.attributes)}}`
    case 'dynamic':
      return `D${encodeTypeJson(v.type)}:${valueKey(v.value)}`
  }
}

function entriesKey(entries: ReadonlyMap<string, CtyValue>): string {
  return sortedNames(entries.keys())
    .map((k) => `${JSON.stringify(k)}:${valueKey(entries.get(k) as CtyValue)}`)
    .join(',')
}

/** Describes a value's kind for error messages. */
export function describeValue(v: CtyValue): string {
  return v.kind === 'dynamic' ? `dynamic value of type ${shortTypeName(v.type)}` : `${v.kind} value`
}

/** The refinements that make sense for a type; anything else is a conformance error. */
export function checkRefinements(r: CtyRefinements, type: CtyType, path: CtyPath): void {
  if (type.kind === 'dynamic') return // go-cty never refines a dynamic unknown; the encoder drops them
  if (r.stringPrefix !== undefined && type.kind !== 'string') throw new CtyError(path, `a string prefix refinement is only valid for string, not ${shortTypeName(type)}`)
  if ((r.numberLowerBound || r.numberUpperBound) && type.kind !== 'number') throw new CtyError(path, `number bound refinements are only valid for number, not ${shortTypeName(type)}`)
  if ((r.lengthLowerBound !== undefined || r.lengthUpperBound !== undefined) && !['list', 'set', 'map'].includes(type.kind)) {
    throw new CtyError(path, `length bound refinements are only valid for list, set or map, not ${shortTypeName(type)}`)
  }
}

/**
 * Throws a {@link CtyError} naming the first place where `value` does not conform to `type`: wrong kind, an object
 * missing or adding attributes, a tuple of the wrong length, a refinement that does not apply, a `dynamic` slot
 * holding an unwrapped known value. Both codecs apply the same rules while encoding.
 */
export function assertConforms(value: CtyValue, type: CtyType, path: CtyPath = []): void {
  const p = [...path]
  const go = (v: CtyValue, t: CtyType): void => {
    if (v.kind === 'null') return
    if (v.kind === 'unknown') {
      if (v.refinements) checkRefinements(v.refinements, t, p)
      return
    }
    if (t.kind === 'dynamic') {
      if (v.kind !== 'dynamic') throw new CtyError(p, `a known value in a dynamic slot must be wrapped with CtyValue.dynamic(type, value), got ${describeValue(v)}`)
      go(v.value, v.type)
      return
    }
    expectKind(v, t, p)
    switch (v.kind) {
      case 'list':
      case 'set':
        v.elements.forEach((e, i) => {
          p.push(indexStep(i))
          go(e, (t as { element: CtyType }).element)
          p.pop()
        })
        return
      case 'tuple': {
        const ts = (t as { elements: readonly CtyType[] }).elements
        if (v.elements.length !== ts.length) throw new CtyError(p, `expected a tuple of ${ts.length} elements, got ${v.elements.length}`)
        v.elements.forEach((e, i) => {
          p.push(indexStep(i))
          go(e, ts[i] as CtyType)
          p.pop()
        })
        return
      }
      case 'map':
        for (const [k, e] of v.entries) {
          p.push(keyStep(k))
          go(e, (t as { element: CtyType }).element)
          p.pop()
        }
        return
      case 'object': {
        const attrs = (t as { attributes: ReadonlyMap<string, CtyType> }).attributes
        checkObjectAttributes(v.attributes, attrs, p)
        for (const [name, at] of attrs) {
          p.push(attrStep(name))
          go(v.attributes.get(name) as CtyValue, at)
          p.pop()
        }
        return
      }
      default:
        return
    }
  }
  go(value, type)
}

/** Throws when a known value's kind does not match a non-dynamic type. */
export function expectKind(v: CtyKnown, t: CtyType, path: CtyPath): void {
  if (v.kind !== t.kind) throw new CtyError(path, `expected ${shortTypeName(t)}, got ${describeValue(v)}`)
}

/** Throws naming missing and unexpected attributes. */
export function checkObjectAttributes(have: ReadonlyMap<string, unknown>, want: ReadonlyMap<string, CtyType>, path: CtyPath): void {
  // The usual case, checked without allocating: the same number of names, all of them wanted.
  if (have.size === want.size) {
    let all = true
    for (const n of have.keys()) {
      if (!want.has(n)) {
        all = false
        break
      }
    }
    if (all) return
  }
  const missing = sortedNames([...want.keys()].filter((n) => !have.has(n)))
  if (missing.length > 0) {
    const names = missing.map((n) => JSON.stringify(n)).join(', ')
    throw new CtyError(path, `object is missing attribute${missing.length > 1 ? 's' : ''} ${names} (an object with ${want.size} attributes is required, ${have.size} given)`)
  }
  for (const n of have.keys()) {
    if (!want.has(n)) throw new CtyError(path, `unsupported attribute ${JSON.stringify(n)}`)
  }
}
