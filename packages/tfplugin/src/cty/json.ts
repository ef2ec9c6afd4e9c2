/**
 * The cty JSON codec: resource state (`UpgradeResourceState.raw_state.json`) and the `json` form of a
 * `DynamicValue`, which Terraform accepts from providers when the value has no unknowns.
 *
 * Rules follow zclconf/go-cty `cty/json/{marshal,unmarshal}.go`:
 * - numbers are plain decimal literals and stay exact in both directions (no `JSON.parse` in between);
 * - a `dynamic` slot holds `{"value": …, "type": <type JSON>}`; null is `null`;
 * - JSON cannot hold unknowns, so encoding one throws;
 * - when decoding an object, attributes absent from the JSON become null (state written by an older schema), and
 *   unknown attributes are an error unless `unknownAttributes: 'ignore'` (state upgrades drop removed attributes);
 * - like go-cty, a string slot accepts a JSON number or bool (kept as text), a number slot accepts a numeric string,
 *   and a bool slot accepts `"true"`/`"false"`.
 */
import { CtyNumber } from './number.js'
import { CtyError, type CtyPathStep, attrStep, indexStep, keyStep } from './path.js'
import { JsonNumberLiteral, parseJsonText, type JsonNode } from './json-text.js'
import { type CtyType, encodeTypeJson, fromPlain, shortTypeName, sortedNames, typeFromJson } from './types.js'
import { type CtyValue, CtyValue as V, checkObjectAttributes, describeValue, expectKind } from './values.js'
import { encodeUtf8 } from './msgpack-io.js'

export interface DecodeJsonOptions {
  /** What to do with an object attribute the type does not have: `'error'` (default, as go-cty) or `'ignore'`. */
  readonly unknownAttributes?: 'error' | 'ignore'
}

/**
 * Encodes a wholly-known value as compact JSON text (object attributes and map keys sorted, numbers exact).
 * Throws {@link CtyError} with the path on an unknown value, an infinite number, or a value that does not conform.
 */
export function encodeJson(value: CtyValue, type: CtyType): string {
  const path: CtyPathStep[] = []
  const out: string[] = []
  const str = (s: string): void => {
    try {
      encodeUtf8(s)
    } catch (e) {
      throw new CtyError(path, (e as Error).message)
    }
    out.push(JSON.stringify(s))
  }
  const go = (v: CtyValue, t: CtyType): void => {
    if (v.kind === 'unknown') throw new CtyError(path, 'value is not known: JSON cannot represent unknown values (use msgpack)')
    if (v.kind === 'null') return void out.push('null')
    if (t.kind === 'dynamic') {
      if (v.kind !== 'dynamic') throw new CtyError(path, `a known value in a dynamic slot must be wrapped with CtyValue.dynamic(type, value), got ${describeValue(v)}`)
      out.push('{"value":')
      go(v.value, v.type)
      out.push(`,"type":${encodeTypeJson(v.type)}}`)
      return
    }
    expectKind(v, t, path)
    switch (v.kind) {
      case 'string':
        return str(v.value)
      case 'number':
        if (v.value.isInfinite()) throw new CtyError(path, `${v.value.decimal} cannot be represented in JSON`)
        return void out.push(v.value.decimal)
      case 'bool':
        return void out.push(v.value ? 'true' : 'false')
      case 'list':
      case 'set':
      case 'tuple': {
        const types = t.kind === 'tuple' ? t.elements : undefined
        if (types && types.length !== v.elements.length) throw new CtyError(path, `expected a tuple of ${types.length} elements, got ${v.elements.length}`)
        out.push('[')
        v.elements.forEach((e, i) => {
          if (i > 0) out.push(',')
          path.push(indexStep(i))
          go(e, types ? (types[i] as CtyType) : (t as { element: CtyType }).element)
          path.pop()
        })
        out.push(']')
        return
      }
      case 'map':
      case 'object': {
        let entries: ReadonlyMap<string, CtyValue>
        let typeOf: (k: string) => CtyType
        if (v.kind === 'object') {
          const attrs = (t as { attributes: ReadonlyMap<string, CtyType> }).attributes
          checkObjectAttributes(v.attributes, attrs, path)
          entries = v.attributes
          typeOf = (k) => attrs.get(k) as CtyType
        } else {
          entries = v.entries
          typeOf = () => (t as { element: CtyType }).element
        }
        out.push('{')
        sortedNames(entries.keys()).forEach((k, i) => {
          if (i > 0) out.push(',')
          path.push(v.kind === 'object' ? attrStep(k) : keyStep(k))
          str(k)
          out.push(':')
          go(entries.get(k) as CtyValue, typeOf(k))
          path.pop()
        })
        out.push('}')
        return
      }
      default:
        throw new CtyError(path, `unexpected ${describeValue(v)}`)
    }
  }
  go(value, type)
  return out.join('')
}

/**
 * Decodes JSON state against a type. A `string` or `Uint8Array` is JSON text (numbers stay exact); anything else is
 * an already-parsed value (from `JSON.parse`, so large numbers may already be rounded; a `Map` or `bigint` is fine).
 * To decode a parsed value that is itself a string, use {@link decodeJsonValue}.
 * Throws {@link CtyError} with the path, e.g. `.tags["env"]: expected string, got array`.
 */
export function decodeJson(input: string | Uint8Array | object, type: CtyType, options: DecodeJsonOptions = {}): CtyValue {
  if (typeof input === 'string' || input instanceof Uint8Array) {
    let node: JsonNode
    try {
      node = parseJsonText(input)
    } catch (e) {
      throw new CtyError([], `invalid JSON: ${(e as Error).message}`)
    }
    return decodeNode(node, type, options)
  }
  return decodeJsonValue(input, type, options)
}

/** Decodes an already-parsed JSON value (any JS value JSON can produce, plus `Map` and `bigint`) against a type. */
export function decodeJsonValue(value: unknown, type: CtyType, options: DecodeJsonOptions = {}): CtyValue {
  return decodeNode(fromPlain(value, 0), type, options)
}

function nodeName(n: JsonNode): string {
  if (n === null) return 'null'
  if (n instanceof JsonNumberLiteral) return 'number'
  if (n instanceof Map) return 'object'
  if (Array.isArray(n)) return 'array'
  return typeof n
}

function decodeNode(root: JsonNode, rootType: CtyType, options: DecodeJsonOptions): CtyValue {
  const path: CtyPathStep[] = []
  const fail = (reason: string): never => {
    throw new CtyError(path, reason)
  }
  const expected = (t: CtyType, n: JsonNode): never => fail(`expected ${shortTypeName(t)}, got ${nodeName(n)}`)
  const parseNumber = (text: string): CtyNumber => {
    try {
      return CtyNumber.parse(text)
    } catch (e) {
      return fail((e as Error).message)
    }
  }

  const go = (n: JsonNode, t: CtyType): CtyValue => {
    if (n === null) return V.null
    switch (t.kind) {
      case 'dynamic': {
        if (!(n instanceof Map)) return fail(`a dynamic value must be a {"value", "type"} object, got ${nodeName(n)}`)
        for (const k of n.keys()) if (k !== 'value' && k !== 'type') fail(`invalid key ${JSON.stringify(k)} in dynamically-typed value`)
        const tn = n.get('type')
        const vn = n.get('value')
        if (tn === undefined) return fail('missing type in dynamically-typed value')
        if (vn === undefined) return fail('missing value in dynamically-typed value')
        let tt: CtyType
        try {
          tt = typeFromJson(tn)
        } catch (e) {
          return fail((e as Error).message)
        }
        return V.dynamic(tt, go(vn, tt))
      }
      case 'string':
        if (typeof n === 'string') return V.string(n)
        if (n instanceof JsonNumberLiteral) return V.string(n.text)
        if (typeof n === 'boolean') return V.string(n ? 'true' : 'false')
        return expected(t, n)
      case 'number':
        if (n instanceof JsonNumberLiteral) return V.number(parseNumber(n.text))
        if (typeof n === 'string') return V.number(parseNumber(n))
        return expected(t, n)
      case 'bool':
        if (typeof n === 'boolean') return V.bool(n)
        if (n === 'true' || n === 'false') return V.bool(n === 'true')
        return expected(t, n)
      case 'list':
      case 'set': {
        if (!Array.isArray(n)) return expected(t, n)
        const elements = (n as readonly JsonNode[]).map((e, i) => {
          path.push(indexStep(i))
          const v = go(e, t.element)
          path.pop()
          return v
        })
        return t.kind === 'list' ? V.list(elements) : V.set(elements)
      }
      case 'tuple': {
        if (!Array.isArray(n)) return expected(t, n)
        const items = n as readonly JsonNode[]
        if (items.length !== t.elements.length) return fail(`expected a tuple of ${t.elements.length} elements, got ${items.length}`)
        return V.tuple(
          items.map((e, i) => {
            path.push(indexStep(i))
            const v = go(e, t.elements[i] as CtyType)
            path.pop()
            return v
          }),
        )
      }
      case 'map': {
        if (!(n instanceof Map)) return expected(t, n)
        const entries = new Map<string, CtyValue>()
        for (const [k, e] of n) {
          path.push(keyStep(k))
          entries.set(k, go(e, t.element))
          path.pop()
        }
        return V.map(entries)
      }
      case 'object': {
        if (!(n instanceof Map)) return expected(t, n)
        const attrs = new Map<string, CtyValue>()
        for (const [k, e] of n) {
          const at = t.attributes.get(k)
          if (!at) {
            if (options.unknownAttributes === 'ignore') continue
            return fail(`unsupported attribute ${JSON.stringify(k)}`)
          }
          path.push(attrStep(k))
          attrs.set(k, go(e, at))
          path.pop()
        }
        for (const k of t.attributes.keys()) if (!attrs.has(k)) attrs.set(k, V.null)
        checkObjectAttributes(attrs, t.attributes, path)
        return V.object(attrs)
      }
    }
  }
  return go(root, rootType)
}
