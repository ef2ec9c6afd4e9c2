/**
 * The cty msgpack codec: the `msgpack` bytes of a protocol `DynamicValue`, driven by the schema's type.
 *
 * Wire rules (terraform-plugin-protocol.md §6, checked against zclconf/go-cty `cty/msgpack/{marshal,unmarshal,
 * unknown,dynamic}.go`):
 * - null is `c0`; an unknown is extension type 0 (`d4 00 00`); a refined unknown is extension type 12 whose payload
 *   is a msgpack map with INTEGER keys: 1 null-ness (bool; `false` = definitely not null), 2 string prefix (str),
 *   3 number lower bound and 4 number upper bound (each `[number, inclusive bool]`), 5 collection length lower bound
 *   and 6 upper bound (int). Any other extension, or an extension payload of ≤ 1 byte, decodes as a plain unknown.
 * - numbers are an int when the value is an exact int64, a float64 when exactly a double, else a decimal string;
 *   ints of any width (uint64 above 2^63 included), float32/float64 and strings all decode exactly.
 * - lists, sets and tuples are arrays; maps and objects are maps with string keys; an object carries EVERY attribute
 *   (go-cty writes them sorted by name). List/set blocks are arrays too: an absent block is `90`, never null.
 * - a value in a `dynamic` slot is `[typeJSON as msgpack bin, value]` (go-cty `dynamicVal.MarshalMsgpack` writes
 *   `EncodeArrayLen(2)`, `EncodeBytes(typeJSON)`; its decoder reads the type with `DecodeBytes`, which accepts bin
 *   or str). A null or wholly unknown dynamic value is plain `c0` / `d4 00 00`, and refinements are never written
 *   for (or read from) an unknown of dynamic type.
 */
import { CtyNumber } from './number.js'
import { CtyError, type CtyPathStep, attrStep, indexStep, keyStep } from './path.js'
import { MsgpackReader, MsgpackWriter, encodeUtf8, formatName, knownKeys, type KnownKeys, type MsgpackHead } from './msgpack-io.js'
import { type CtyType, attributeOrder, decodeTypeJson, encodeTypeJson, shortTypeName, sortedNames } from './types.js'
import {
  type CtyNumberBound,
  type CtyRefinements,
  type CtyValue,
  CtyValue as V,
  checkObjectAttributes,
  checkRefinements,
  describeValue,
  expectKind,
  ownList,
  ownMap,
  ownObject,
} from './values.js'

/** Extension type of an unknown value without refinements (go-cty writes `d4 00 00`). */
export const UNKNOWN_EXT = 0
/** Extension type of an unknown value with a refinement map. */
export const REFINED_UNKNOWN_EXT = 0x0c

/** Refinement map keys (go-cty `cty/msgpack/unknown.go`, `unknownValRefinementKey`). */
export const RefinementKey = {
  nullness: 1,
  stringPrefix: 2,
  numberMin: 3,
  numberMax: 4,
  lengthMin: 5,
  lengthMax: 6,
} as const

/** Nesting limit while decoding (only reachable through dynamic values whose types nest further). */
const MAX_DEPTH = 512

/** go-cty rejects refinement payloads above 1 KiB as abusive; so do we. */
const MAX_REFINEMENT_PAYLOAD = 1024

const INT64_MIN = -(1n << 63n)
const INT64_MAX = (1n << 63n) - 1n

/**
 * Encodes a value as the msgpack bytes of a `DynamicValue` (planned state, new state, read results…).
 * Throws {@link CtyError} with the path when the value does not conform to the type, e.g.
 * `.settings[0]: object is missing attribute "size" (an object with 2 attributes is required, 1 given)`.
 */
export function encodeMsgpack(value: CtyValue, type: CtyType): Uint8Array {
  const w = new MsgpackWriter()
  const path: CtyPathStep[] = []

  const unknown = (r: CtyRefinements | undefined, t: CtyType): void => {
    if (!r || t.kind === 'dynamic') return w.ext(UNKNOWN_EXT, new Uint8Array(1))
    checkRefinements(r, t, path)
    const body = new MsgpackWriter()
    let count = 0
    const bound = (key: number, b: CtyNumberBound): void => {
      body.int(key)
      body.arrayHeader(2)
      writeNumber(b.value, body)
      body.bool(b.inclusive)
      count++
    }
    // Written in key order, like go-cty.
    if (r.notNull) {
      body.int(RefinementKey.nullness)
      body.bool(false)
      count++
    }
    if (r.stringPrefix) {
      body.int(RefinementKey.stringPrefix)
      try {
        body.str(r.stringPrefix)
      } catch (e) {
        throw new CtyError(path, `string prefix refinement: ${(e as Error).message}`)
      }
      count++
    }
    if (r.numberLowerBound) bound(RefinementKey.numberMin, r.numberLowerBound)
    if (r.numberUpperBound) bound(RefinementKey.numberMax, r.numberUpperBound)
    if (r.lengthLowerBound) {
      body.int(RefinementKey.lengthMin)
      body.int(r.lengthLowerBound)
      count++
    }
    if (r.lengthUpperBound !== undefined) {
      body.int(RefinementKey.lengthMax)
      body.int(r.lengthUpperBound)
      count++
    }
    if (count === 0) return w.ext(UNKNOWN_EXT, new Uint8Array(1))
    const header = new MsgpackWriter()
    header.mapHeader(count)
    const payload = new Uint8Array([...header.bytes(), ...body.bytes()])
    w.ext(REFINED_UNKNOWN_EXT, payload)
  }

  const child = (step: CtyPathStep, v: CtyValue, t: CtyType): void => {
    path.push(step)
    go(v, t)
    path.pop()
  }

  const go = (v: CtyValue, t: CtyType): void => {
    if (v.kind === 'null') return w.nil()
    if (v.kind === 'unknown') return unknown(v.refinements, t)
    if (t.kind === 'dynamic') {
      if (v.kind !== 'dynamic') throw new CtyError(path, `a known value in a dynamic slot must be wrapped with CtyValue.dynamic(type, value), got ${describeValue(v)}`)
      w.arrayHeader(2)
      try {
        w.bin(encodeUtf8(encodeTypeJson(v.type)))
      } catch (e) {
        throw new CtyError(path, (e as Error).message)
      }
      return go(v.value, v.type)
    }
    expectKind(v, t, path)
    switch (v.kind) {
      case 'string':
        return strOrFail(v.value)
      case 'number':
        return writeNumber(v.value, w)
      case 'bool':
        return w.bool(v.value)
      case 'list':
      case 'set': {
        const et = (t as { element: CtyType }).element
        w.arrayHeader(v.elements.length)
        v.elements.forEach((e, i) => child(indexStep(i), e, et))
        return
      }
      case 'tuple': {
        const ts = (t as { elements: readonly CtyType[] }).elements
        if (v.elements.length !== ts.length) throw new CtyError(path, `expected a tuple of ${ts.length} elements, got ${v.elements.length}`)
        w.arrayHeader(ts.length)
        v.elements.forEach((e, i) => child(indexStep(i), e, ts[i] as CtyType))
        return
      }
      case 'map': {
        const et = (t as { element: CtyType }).element
        const keys = sortedNames(v.entries.keys())
        w.mapHeader(keys.length)
        for (const k of keys) {
          path.push(keyStep(k))
          strOrFail(k)
          go(v.entries.get(k) as CtyValue, et)
          path.pop()
        }
        return
      }
      case 'object': {
        const attrs = (t as { attributes: ReadonlyMap<string, CtyType> }).attributes
        checkObjectAttributes(v.attributes, attrs, path)
        const names = attributeOrder(attrs)
        w.mapHeader(names.length)
        for (const name of names) {
          path.push(attrStep(name))
          strOrFail(name)
          go(v.attributes.get(name) as CtyValue, attrs.get(name) as CtyType)
          path.pop()
        }
        return
      }
      default:
        throw new CtyError(path, `unexpected ${describeValue(v)}`)
    }
  }

  const strOrFail = (s: string): void => {
    try {
      w.str(s)
    } catch (e) {
      throw new CtyError(path, (e as Error).message)
    }
  }

  go(value, type)
  return w.bytes()
}

/**
 * Decodes the msgpack bytes of a `DynamicValue` (config, prior state, proposed new state…) against the schema type.
 * Throws {@link CtyError} naming the path, e.g. `.params[0].prompt_field[1].type: expected string, got int`.
 */
export function decodeMsgpack(bytes: Uint8Array, type: CtyType): CtyValue {
  const path: CtyPathStep[] = []
  const fail = (reason: string): never => {
    throw new CtyError(path, reason)
  }
  const r = new MsgpackReader(bytes, fail)

  const expected = (t: CtyType, head: MsgpackHead): never => fail(`expected ${shortTypeName(t)}, got ${formatName(head)}`)

  const readKey = (what: string): string => {
    const h = r.head()
    if (h.format !== 'str') return fail(`${what} keys must be strings, got ${formatName(h)}`)
    return r.ascii(h.length) ?? r.text(h.length)
  }

  const numberFrom = (h: MsgpackHead, t: CtyType): CtyNumber => {
    switch (h.format) {
      case 'int':
        return CtyNumber.fromBigInt(h.value)
      case 'float':
        if (Number.isNaN(h.value)) return fail('NaN is not a valid number')
        return CtyNumber.fromFloat64(h.value)
      case 'str': {
        const text = r.text(h.length)
        try {
          return CtyNumber.parse(text)
        } catch (e) {
          return fail((e as Error).message)
        }
      }
      default:
        return expected(t, h)
    }
  }

  const refinements = (payload: Uint8Array, t: CtyType): CtyValue => {
    if (payload.length > MAX_REFINEMENT_PAYLOAD) return fail('oversize unknown value refinement')
    const rr = new MsgpackReader(payload, (reason) => fail(`invalid unknown value refinement: ${reason}`))
    const m = rr.head()
    if (m.format !== 'map') return fail(`invalid unknown value refinement: expected a map, got ${formatName(m)}`)
    if (t.kind === 'dynamic') return V.unknown() // go-cty ignores refinements on a dynamic unknown
    const out: { -readonly [K in keyof CtyRefinements]: CtyRefinements[K] } = {}
    const bad = (reason: string): never => fail(`invalid unknown value refinement: ${reason}`)
    for (let i = 0; i < m.length; i++) {
      const k = rr.head()
      if (k.format !== 'int') return bad(`non-integer key in map (got ${formatName(k)})`)
      const v = rr.head()
      switch (Number(k.value)) {
        case RefinementKey.nullness:
          if (v.format !== 'bool') return bad('null refinement is not boolean')
          if (v.value) return V.null // "{1: true}" collapses to a known null, as in Terraform
          out.notNull = true
          break
        case RefinementKey.stringPrefix:
          if (t.kind !== 'string') return bad(`string prefix refinement for ${shortTypeName(t)}`)
          if (v.format !== 'str') return bad('string prefix refinement is not a string')
          out.stringPrefix = rr.text(v.length)
          break
        case RefinementKey.numberMin:
        case RefinementKey.numberMax: {
          if (t.kind !== 'number') return bad(`number bound refinement for ${shortTypeName(t)}`)
          if (v.format !== 'array' || v.length !== 2) return bad('number bound refinement must be a [number, bool] array')
          const value = numberFrom(rr.head(), t)
          const inc = rr.head()
          if (inc.format !== 'bool') return bad('number bound refinement must be a [number, bool] array')
          out[Number(k.value) === RefinementKey.numberMin ? 'numberLowerBound' : 'numberUpperBound'] = { value, inclusive: inc.value }
          break
        }
        case RefinementKey.lengthMin:
        case RefinementKey.lengthMax: {
          if (t.kind !== 'list' && t.kind !== 'set' && t.kind !== 'map') return bad(`length bound refinement for ${shortTypeName(t)}`)
          if (v.format !== 'int' || v.value < 0n || v.value > BigInt(Number.MAX_SAFE_INTEGER)) return bad('length bound refinement must be a non-negative integer')
          out[Number(k.value) === RefinementKey.lengthMin ? 'lengthLowerBound' : 'lengthUpperBound'] = Number(v.value)
          break
        }
        default:
          rr.skip(v) // unknown keys are ignored, allowing future refinements
      }
    }
    // Trailing bytes after the map are ignored, as go-cty does.
    return V.unknown(out)
  }

  let depth = 0
  const go = (t: CtyType): CtyValue => {
    if (++depth > MAX_DEPTH) return fail('value nested too deeply')
    // No try/finally: a failure ends the whole decode, so the depth need not be restored then.
    const value = decodeOne(t)
    depth--
    return value
  }
  const decodeOne = (t: CtyType): CtyValue => {
    if (r.peekIsExt()) {
      const h = r.head() as Extract<MsgpackHead, { format: 'ext' }>
      const payload = r.payload(h.length)
      if (h.type === REFINED_UNKNOWN_EXT && h.length > 1) return refinements(payload, t)
      return V.unknown()
    }
    const h = r.head()
    if (h.format === 'nil') return V.null
    switch (t.kind) {
      case 'dynamic': {
        if (h.format !== 'array') return expected(t, h)
        if (h.length !== 2) return fail(`a dynamic value must be a [type, value] array of 2 elements, got ${h.length}`)
        const th = r.head()
        if (th.format !== 'bin' && th.format !== 'str') return fail(`the type of a dynamic value must be JSON bytes, got ${formatName(th)}`)
        const tt = (() => {
          try {
            return decodeTypeJson(r.payload(th.length))
          } catch (e) {
            return fail((e as Error).message)
          }
        })()
        return V.dynamic(tt, go(tt))
      }
      case 'string':
        if (h.format !== 'str') return expected(t, h)
        {
          // ASCII is already in NFC: no normalization needed.
          const ascii = r.ascii(h.length)
          return ascii !== undefined ? { kind: 'string', value: ascii } : V.string(r.text(h.length))
        }
      case 'number':
        return V.number(numberFrom(h, t))
      case 'bool':
        if (h.format !== 'bool') return expected(t, h)
        return V.bool(h.value)
      case 'list':
      case 'set': {
        if (h.format !== 'array') return expected(t, h)
        const elements: CtyValue[] = []
        for (let i = 0; i < h.length; i++) {
          path.push(indexStep(i))
          elements.push(go(t.element))
          path.pop()
        }
        return t.kind === 'list' ? ownList(elements) : V.set(elements)
      }
      case 'tuple': {
        if (h.format !== 'array') return expected(t, h)
        if (h.length !== t.elements.length) return fail(`expected a tuple of ${t.elements.length} elements, got ${h.length}`)
        const elements = t.elements.map((et, i) => {
          path.push(indexStep(i))
          const e = go(et)
          path.pop()
          return e
        })
        return V.tuple(elements)
      }
      case 'map': {
        if (h.format !== 'map') return expected(t, h)
        const entries = new Map<string, CtyValue>()
        for (let i = 0; i < h.length; i++) {
          const k = readKey('map')
          path.push(keyStep(k))
          if (entries.has(k)) fail('duplicate map key')
          entries.set(k, go(t.element))
          path.pop()
        }
        return ownMap(entries)
      }
      case 'object': {
        if (h.format !== 'map') return expected(t, h)
        const attrs = new Map<string, CtyValue>()
        const keys = objectKeys(t.attributes)
        // go-cty writes the attributes in this order: each key is tried against the next name first.
        let next = 0
        for (let i = 0; i < h.length; i++) {
          const kh = r.head()
          if (kh.format !== 'str') return fail(`object keys must be strings, got ${formatName(kh)}`)
          const known = r.knownKey(kh.length, keys, next)
          if (known >= 0) next = known + 1
          const name = known >= 0 ? keys.names[known]! : (r.ascii(kh.length) ?? r.text(kh.length))
          const at = t.attributes.get(name)
          if (!at) fail(`unsupported attribute ${JSON.stringify(name)}`)
          if (attrs.has(name)) fail(`duplicate attribute ${JSON.stringify(name)}`)
          path.push(attrStep(name))
          attrs.set(name, go(at as CtyType))
          path.pop()
        }
        checkObjectAttributes(attrs, t.attributes, path)
        return ownObject(attrs)
      }
    }
  }

  const value = go(type)
  if (r.remaining > 0) fail(`${r.remaining} unexpected bytes after the value at offset ${r.offset}`)
  return value
}

const objectKeysCache = new WeakMap<ReadonlyMap<string, CtyType>, KnownKeys>()

/** An object type's attribute names in go-cty's order, with their bytes (see {@link MsgpackReader.knownKey}). */
function objectKeys(attributes: ReadonlyMap<string, CtyType>): KnownKeys {
  let keys = objectKeysCache.get(attributes)
  if (!keys) objectKeysCache.set(attributes, (keys = knownKeys(attributeOrder(attributes))))
  return keys
}

/** int when an exact int64, float64 when exactly a double, otherwise the decimal string (go-cty `marshal`). */
function writeNumber(n: CtyNumber, w: MsgpackWriter): void {
  if (n.isInfinite()) return w.float64(n.sign() > 0 ? Infinity : -Infinity)
  const i = n.toBigInt()
  if (i !== undefined && i >= INT64_MIN && i <= INT64_MAX) return w.int(i)
  const f = n.toNumberExact()
  if (f !== undefined) return w.float64(f)
  w.str(n.decimal)
}
