import { describe, expect, it } from 'vitest'
import { CtyType as T, CtyValue as V, ctyEquals, decodeJson, decodeJsonValue, encodeJson, type CtyType, type CtyValue } from '../src/cty/index.js'

const state = T.object({
  id: T.string,
  count: T.number,
  enabled: T.bool,
  tags: T.map(T.string),
  rules: T.list(T.object({ port: T.number, cidrs: T.set(T.string) })),
  extra: T.dynamic,
})

const value = V.object({
  id: V.string('abc'),
  count: V.number('123456789012345678901234567890.000001'),
  enabled: V.bool(true),
  tags: V.map({ b: V.string('2'), a: V.string('1') }),
  rules: V.list([V.object({ port: V.number(443), cidrs: V.set([V.string('10.0.0.0/8')]) })]),
  extra: V.dynamic(T.tuple([T.string, T.number]), V.tuple([V.string('x'), V.number(1)])),
})

const text =
  '{"count":123456789012345678901234567890.000001,"enabled":true,"extra":{"value":["x",1],"type":["tuple",["string","number"]]},' +
  '"id":"abc","rules":[{"cidrs":["10.0.0.0/8"],"port":443}],"tags":{"a":"1","b":"2"}}'

describe('JSON state codec', () => {
  it('encodes compactly with sorted keys, exact numbers and {value,type} for dynamic', () => {
    expect(encodeJson(value, state)).toBe(text)
  })

  it('decodes text back exactly', () => {
    const back = decodeJson(text, state)
    expect(ctyEquals(back, value)).toBe(true)
    expect(back).toEqual(value)
  })

  it('decodes bytes and already-parsed values', () => {
    expect(ctyEquals(decodeJson(new TextEncoder().encode(text), state), value)).toBe(true)
    const parsed = decodeJson({ id: 'abc', count: 5, enabled: false, tags: null, rules: [], extra: null }, state)
    expect(parsed).toEqual(
      V.object({ id: V.string('abc'), count: V.number(5), enabled: V.bool(false), tags: V.null, rules: V.list([]), extra: V.null }),
    )
    expect(decodeJsonValue('hello', T.string)).toEqual(V.string('hello'))
    expect(decodeJsonValue(12345678901234567890n, T.number)).toEqual(V.number('12345678901234567890'))
  })

  it('keeps integers beyond 2^53 exact from text', () => {
    const v = decodeJson('{"n":9007199254740993}', T.object({ n: T.number }))
    expect(v).toEqual(V.object({ n: V.number('9007199254740993') }))
    expect(encodeJson(v, T.object({ n: T.number }))).toBe('{"n":9007199254740993}')
  })

  it('refuses unknown values with a clear error and the path', () => {
    const v = V.object({ ...Object.fromEntries(value.attributes), id: V.unknown() })
    expect(() => encodeJson(v, state)).toThrow('.id: value is not known: JSON cannot represent unknown values (use msgpack)')
  })

  it('refuses infinities', () => {
    expect(() => encodeJson(V.number(Infinity), T.number)).toThrow('Infinity cannot be represented in JSON')
  })

  it('fills attributes missing from older state with null, as go-cty does', () => {
    const v = decodeJson('{"id":"abc"}', state)
    expect(v.kind === 'object' && v.attributes.get('count')).toEqual(V.null)
    expect(v.kind === 'object' && v.attributes.size).toBe(6)
  })

  it('rejects attributes the schema does not have unless told to ignore them', () => {
    expect(() => decodeJson('{"id":"abc","gone":1}', state)).toThrow('unsupported attribute "gone"')
    const v = decodeJson('{"id":"abc","gone":1}', state, { unknownAttributes: 'ignore' })
    expect(v.kind === 'object' && v.attributes.has('gone')).toBe(false)
  })

  it('keeps __proto__ map keys as data', () => {
    const before = Object.getOwnPropertyNames(Object.prototype).sort()
    const v = decodeJson('{"__proto__":"x","polluted":"y"}', T.map(T.string))
    expect(v.kind === 'map' && v.entries.get('__proto__')).toEqual(V.string('x'))
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(before)
    expect(encodeJson(v, T.map(T.string))).toBe('{"__proto__":"x","polluted":"y"}')
    const fromParsed = decodeJsonValue(JSON.parse('{"__proto__":"z"}'), T.map(T.string))
    expect(fromParsed.kind === 'map' && fromParsed.entries.get('__proto__')).toEqual(V.string('z'))
  })

  it('applies go-cty primitive conversions', () => {
    expect(decodeJson('12.50', T.string)).toEqual(V.string('12.50'))
    expect(decodeJson('true', T.string)).toEqual(V.string('true'))
    expect(decodeJson('"42"', T.number)).toEqual(V.number(42))
    expect(decodeJson('"false"', T.bool)).toEqual(V.bool(false))
  })

  it.each([
    ['{"id":5,"tags":{"k":[1]}}', '.tags["k"]: expected string, got array'],
    ['{"rules":[{"port":"eighty"}]}', '.rules[0].port: invalid number "eighty"'],
    ['{"extra":{"value":1}}', '.extra: missing type in dynamically-typed value'],
    ['{"extra":{"type":"number","value":1,"x":2}}', '.extra: invalid key "x" in dynamically-typed value'],
    ['{"id":"a",}', 'invalid JSON: expected object key at offset 10'],
    ['[1]', 'expected object, got array'],
  ])('reports %s precisely', (json, message) => {
    expect(() => decodeJson(json, state)).toThrow(message)
  })

  const roundTrips: [string, CtyType, CtyValue][] = [
    ['string with escapes', T.string, V.string('quote " backslash \\ newline \n tab \t ☃ 𝄞')],
    ['negative decimal', T.number, V.number('-0.000001')],
    ['tuple', T.tuple([T.bool, T.list(T.number)]), V.tuple([V.null, V.list([V.number(1), V.number(2)])])],
    ['set of objects', T.set(T.object({ a: T.string })), V.set([V.object({ a: V.string('x') }), V.object({ a: V.null })])],
    ['dynamic map', T.dynamic, V.dynamic(T.map(T.number), V.map({ x: V.number(1) }))],
    ['null dynamic', T.dynamic, V.null],
  ]
  it.each(roundTrips)('round-trips %s', (_name, type, v) => {
    const back = decodeJson(encodeJson(v, type), type)
    expect(ctyEquals(back, v)).toBe(true)
    expect(back).toEqual(v)
  })
})
