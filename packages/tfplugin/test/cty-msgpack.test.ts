import { describe, expect, it } from 'vitest'
import {
  CtyError,
  CtyNumber,
  CtyType as T,
  CtyValue as V,
  ctyEquals,
  decodeMsgpack,
  encodeMsgpack,
  type CtyType,
  type CtyValue,
} from '../src/cty/index.js'

/** Bytes from a fixture written like the protocol reference: hex bytes, "quoted ASCII" or 'quoted ASCII'. */
function hx(fixture: string): Uint8Array {
  const out: number[] = []
  for (const token of fixture.match(/"[^"]*"|'[^']*'|\S+/g) ?? []) {
    if (token.startsWith('"') || token.startsWith("'")) out.push(...new TextEncoder().encode(token.slice(1, -1)))
    else out.push(parseInt(token, 16))
  }
  return new Uint8Array(out)
}
function toHex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(' ')
}
function hexOf(fixture: string): string {
  return toHex(hx(fixture))
}

/** The resource schema of the reference's ValidateResourceConfig example (§6). */
const demoThing = T.object({
  id: T.string,
  kind: T.string,
  name: T.string,
  settings: T.list(T.object({ color: T.string, size: T.number })),
  tags: T.map(T.string),
})

const demoBytes = hx(`85
  a2 "id" c0
  a4 "kind" c0
  a4 "name" a5 "first"
  a8 "settings" 91 82 a5 "color" a4 "blue" a4 "size" 03
  a4 "tags" 81 a3 "env" a3 "dev"`)

const demoValue = V.object({
  id: V.null,
  kind: V.null,
  name: V.string('first'),
  settings: V.list([V.object({ color: V.string('blue'), size: V.number(3) })]),
  tags: V.map({ env: V.string('dev') }),
})

describe('fixtures from the protocol reference', () => {
  it('null is c0 for any type', () => {
    expect(toHex(encodeMsgpack(V.null, demoThing))).toBe('c0')
    expect(decodeMsgpack(hx('c0'), demoThing)).toEqual(V.null)
  })

  it('a plain unknown is d4 00 00 (fixext1, type 0) both ways', () => {
    expect(toHex(encodeMsgpack(V.unknown(), T.string))).toBe('d4 00 00')
    expect(decodeMsgpack(hx('d4 00 00'), T.string)).toEqual(V.unknown())
  })

  it('c7 00 00 (ext8, empty, type 0) decodes as unknown', () => {
    expect(decodeMsgpack(hx('c7 00 00'), T.string)).toEqual({ kind: 'unknown' })
  })

  it('decodes the refined unknown c7 07 0c 82 01 c2 02 a2 6e 2d (not null, prefix "n-")', () => {
    const v = decodeMsgpack(hx('c7 07 0c 82 01 c2 02 a2 6e 2d'), T.string)
    expect(v).toEqual({ kind: 'unknown', refinements: { notNull: true, stringPrefix: 'n-' } })
  })

  it('encodes the same refined unknown byte for byte, with integer keys', () => {
    const bytes = encodeMsgpack(V.unknown({ notNull: true, stringPrefix: 'n-' }), T.string)
    expect(toHex(bytes)).toBe('c7 07 0c 82 01 c2 02 a2 6e 2d')
    // keys 01 and 02 are positive fixints, not strings (a0..bf / d9)
    expect(bytes[4]).toBe(0x01)
    expect(bytes[6]).toBe(0x02)
  })

  it('decodes the 5-attribute ValidateResourceConfig object', () => {
    const v = decodeMsgpack(demoBytes, demoThing)
    expect(v).toEqual(demoValue)
    expect(ctyEquals(v, demoValue)).toBe(true)
  })

  it('encodes the 5-attribute object with every attribute, keys sorted, identical bytes', () => {
    expect(toHex(encodeMsgpack(demoValue, demoThing))).toBe(toHex(demoBytes))
  })

  it('an absent list block is 90, never null', () => {
    const absent = V.object({ ...Object.fromEntries(demoValue.attributes), settings: V.list([]) })
    const bytes = encodeMsgpack(absent, demoThing)
    expect(toHex(bytes)).toContain(hexOf('a8 "settings" 90'))
    expect(decodeMsgpack(hx('90'), T.list(T.object({ color: T.string })))).toEqual(V.list([]))
  })

  it('unknowns inside an object decode in place (data-source id, tags.parent)', () => {
    const ty = T.object({ id: T.string, tags: T.map(T.string) })
    const v = decodeMsgpack(hx('82 a2 "id" d4 00 00 a4 "tags" 81 a6 "parent" d4 00 00'), ty)
    expect(v).toEqual(V.object({ id: V.unknown(), tags: V.map({ parent: V.unknown() }) }))
  })
})

describe('refinements', () => {
  it('writes number bounds as [number, inclusive] under keys 3 and 4', () => {
    const v = V.unknown({
      numberLowerBound: { value: CtyNumber.from(0), inclusive: true },
      numberUpperBound: { value: CtyNumber.from(10), inclusive: false },
    })
    const bytes = encodeMsgpack(v, T.number)
    expect(toHex(bytes)).toBe('c7 09 0c 82 03 92 00 c3 04 92 0a c2')
    expect(decodeMsgpack(bytes, T.number)).toEqual(v)
  })

  it('writes collection length bounds under keys 5 and 6 (lower bound 0 is omitted)', () => {
    const v = V.unknown({ notNull: true, lengthLowerBound: 1, lengthUpperBound: 3 })
    const bytes = encodeMsgpack(v, T.list(T.string))
    expect(toHex(bytes)).toBe('c7 07 0c 83 01 c2 05 01 06 03')
    expect(decodeMsgpack(bytes, T.list(T.string))).toEqual(v)
    expect(V.unknown({ lengthLowerBound: 0 })).toEqual(V.unknown())
  })

  it('uses fixext when the payload is 1, 2, 4, 8 or 16 bytes long, as go-cty does', () => {
    // {1: false} is a 3-byte payload → ext8
    expect(toHex(encodeMsgpack(V.unknown({ notNull: true }), T.string))).toBe('c7 03 0c 81 01 c2')
    // {2: "a"} is a 4-byte payload (81 02 a1 61) → fixext4
    expect(toHex(encodeMsgpack(V.unknown({ stringPrefix: 'a' }), T.string))).toBe('d6 0c 81 02 a1 61')
    expect(decodeMsgpack(hx('d6 0c 81 02 a1 61'), T.string)).toEqual(V.unknown({ stringPrefix: 'a' }))
  })

  it('{1: true} collapses to a known null, as Terraform treats it', () => {
    expect(decodeMsgpack(hx('c7 03 0c 81 01 c3'), T.string)).toEqual(V.null)
  })

  it('rejects string keys in the refinement map, like go-cty', () => {
    expect(() => decodeMsgpack(hx('c7 04 0c 81 a1 31 c2'), T.string)).toThrow(/non-integer key/)
  })

  it('ignores refinement keys it does not know', () => {
    expect(decodeMsgpack(hx('c7 06 0c 82 01 c2 09 a1 78'), T.string)).toEqual(V.unknown({ notNull: true }))
  })

  it('rejects a refinement that does not fit the type, with the path', () => {
    const ty = T.object({ count: T.number })
    expect(() => decodeMsgpack(hx('81 a5 "count" c7 04 0c 81 02 a1 78'), ty)).toThrow('.count: invalid unknown value refinement: string prefix refinement for number')
    expect(() => encodeMsgpack(V.object({ count: V.unknown({ stringPrefix: 'x' }) }), ty)).toThrow(
      '.count: a string prefix refinement is only valid for string, not number',
    )
  })

  it('treats any other extension as a plain unknown', () => {
    expect(decodeMsgpack(hx('d4 05 00'), T.number)).toEqual(V.unknown())
    expect(decodeMsgpack(hx('c7 03 07 aa bb cc'), T.bool)).toEqual(V.unknown())
    expect(decodeMsgpack(hx('d4 0c 00'), T.string)).toEqual(V.unknown())
  })

  it('never writes refinements for a dynamic-typed unknown and ignores them when reading', () => {
    expect(toHex(encodeMsgpack(V.unknown({ notNull: true }), T.dynamic))).toBe('d4 00 00')
    expect(decodeMsgpack(hx('c7 03 0c 81 01 c2'), T.dynamic)).toEqual(V.unknown())
  })

  it('rejects oversize refinement payloads', () => {
    const payload = new Uint8Array(1025)
    payload[0] = 0x80
    const bytes = new Uint8Array([0xc8, 0x04, 0x01, 0x0c, ...payload])
    expect(() => decodeMsgpack(bytes, T.string)).toThrow('oversize unknown value refinement')
  })
})

describe('numbers', () => {
  const cases: [string, string, string][] = [
    ['0', '00', 'positive fixint'],
    ['127', '7f', 'largest positive fixint'],
    ['128', 'cc 80', 'uint8'],
    ['65535', 'cd ff ff', 'uint16'],
    ['4294967296', 'cf 00 00 00 01 00 00 00 00', 'uint64'],
    ['-1', 'ff', 'negative fixint'],
    ['-33', 'd0 df', 'int8'],
    ['-32769', 'd2 ff ff 7f ff', 'int32'],
    ['9007199254740993', 'cf 00 20 00 00 00 00 00 01', '2^53+1 as an exact int'],
    ['9223372036854775807', 'cf 7f ff ff ff ff ff ff ff', 'int64 max'],
    ['-9223372036854775808', 'd3 80 00 00 00 00 00 00 00', 'int64 min'],
    ['9223372036854775808', 'cb 43 e0 00 00 00 00 00 00', '2^63 is not int64 but is an exact float64'],
    ['18446744073709551615', 'b4 "18446744073709551615"', 'uint64 max: neither int64 nor float64, so a string'],
    ['1.5', 'cb 3f f8 00 00 00 00 00 00', 'an exact double'],
    ['0.1', 'a3 "0.1"', 'decimal 0.1 is not a double, so a string (as go-cty does with its 512-bit numbers)'],
    ['-123456789012345678901234567890.5', 'd9 21 "-123456789012345678901234567890.5"', 'a big decimal'],
  ]
  it.each(cases)('%s encodes as %s (%s) and decodes back exactly', (decimal, fixture) => {
    const v = V.number(CtyNumber.parse(decimal))
    const bytes = encodeMsgpack(v, T.number)
    expect(toHex(bytes)).toBe(hexOf(fixture))
    const back = decodeMsgpack(bytes, T.number)
    expect(back).toEqual(v)
    expect(back.kind === 'number' && back.value.decimal).toBe(decimal)
  })

  it('decodes every integer width exactly, including uint64 above 2^63', () => {
    const read = (fixture: string): string => {
      const v = decodeMsgpack(hx(fixture), T.number)
      return v.kind === 'number' ? v.value.decimal : v.kind
    }
    expect(read('cf ff ff ff ff ff ff ff ff')).toBe('18446744073709551615')
    expect(read('cf 80 00 00 00 00 00 00 01')).toBe('9223372036854775809')
    expect(read('d3 ff ff ff ff ff ff ff ff')).toBe('-1')
    expect(read('d1 80 00')).toBe('-32768')
    expect(read('ce ff ff ff ff')).toBe('4294967295')
    expect(read('d0 80')).toBe('-128')
  })

  it('decodes float32 and float64 to their exact values and re-encodes them bit-identically', () => {
    const f32 = decodeMsgpack(hx('ca 3f c0 00 00'), T.number)
    expect(f32).toEqual(V.number('1.5'))
    const tenth = hx('cb 3f b9 99 99 99 99 99 9a')
    const v = decodeMsgpack(tenth, T.number)
    expect(v.kind === 'number' && v.value.decimal).toBe('0.1000000000000000055511151231257827021181583404541015625')
    expect(toHex(encodeMsgpack(v, T.number))).toBe(toHex(tenth))
  })

  it('decodes decimal strings, including ones far beyond float64', () => {
    const v = decodeMsgpack(hx('a5 "1e400"'), T.number)
    expect(v.kind === 'number' && v.value.decimal).toBe('1' + '0'.repeat(400))
    expect(decodeMsgpack(hx('a4 "-0.0"'), T.number)).toEqual(V.number(0))
  })

  it('encodes infinities as float64 and rejects NaN', () => {
    expect(toHex(encodeMsgpack(V.number(Infinity), T.number))).toBe('cb 7f f0 00 00 00 00 00 00')
    expect(decodeMsgpack(hx('cb ff f0 00 00 00 00 00 00'), T.number)).toEqual(V.number(-Infinity))
    expect(() => decodeMsgpack(hx('cb 7f f8 00 00 00 00 00 00'), T.number)).toThrow('NaN is not a valid number')
  })

  it('rejects a string that is not a number, with the path', () => {
    expect(() => decodeMsgpack(hx('81 a1 "n" a3 "abc"'), T.object({ n: T.number }))).toThrow('.n: invalid number "abc"')
  })
})

describe('objects and errors', () => {
  it('fails when an object is missing an attribute, naming it', () => {
    const bytes = hx(`84 a2 "id" c0 a4 "kind" c0 a4 "name" a5 "first" a4 "tags" 80`)
    expect(() => decodeMsgpack(bytes, demoThing)).toThrow(
      'object is missing attribute "settings" (an object with 5 attributes is required, 4 given)',
    )
  })

  it('reports a nested missing attribute with its path', () => {
    const bytes = hx(`85 a2 "id" c0 a4 "kind" c0 a4 "name" c0 a8 "settings" 91 81 a5 "color" a4 "blue" a4 "tags" c0`)
    let error: unknown
    try {
      decodeMsgpack(bytes, demoThing)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(CtyError)
    expect((error as CtyError).message).toBe('.settings[0]: object is missing attribute "size" (an object with 2 attributes is required, 1 given)')
    expect((error as CtyError).path).toEqual([{ kind: 'attr', name: 'settings' }, { kind: 'index', index: 0 }])
  })

  it('refuses to encode an object missing an attribute', () => {
    const partial = V.object({ name: V.string('first') })
    expect(() => encodeMsgpack(partial, demoThing)).toThrow('object is missing attributes "id", "kind", "settings", "tags"')
  })

  it('rejects attributes the type does not have', () => {
    expect(() => decodeMsgpack(hx('82 a1 "a" c0 a1 "b" c0'), T.object({ a: T.string }))).toThrow('unsupported attribute "b"')
    expect(() => encodeMsgpack(V.object({ a: V.null, b: V.null }), T.object({ a: T.string }))).toThrow('unsupported attribute "b"')
  })

  it('reports a wrong wire type deep inside with the full path', () => {
    const ty = T.object({ params: T.list(T.object({ prompt_field: T.list(T.object({ type: T.string })) })) })
    const bytes = hx(`81 a6 "params" 91 81 ac "prompt_field" 92 81 a4 "type" a3 "str" 81 a4 "type" 07`)
    expect(() => decodeMsgpack(bytes, ty)).toThrow('.params[0].prompt_field[1].type: expected string, got int')
  })

  it('reports map keys in paths and wrong kinds when encoding', () => {
    const ty = T.map(T.number)
    expect(() => decodeMsgpack(hx('81 a3 "a.b" a1 "x"'), ty)).toThrow('["a.b"]: invalid number "x"')
    expect(() => encodeMsgpack(V.map({ k: V.string('x') }), ty)).toThrow('["k"]: expected number, got string value')
  })

  it('rejects truncated data, trailing bytes and reserved bytes', () => {
    expect(() => decodeMsgpack(hx('a5 "fir"'), T.string)).toThrow(/truncated/)
    expect(() => decodeMsgpack(hx('92 01'), T.list(T.number))).toThrow(/truncated/)
    expect(() => decodeMsgpack(hx('01 02'), T.number)).toThrow('1 unexpected bytes after the value at offset 1')
    expect(() => decodeMsgpack(hx('c1'), T.number)).toThrow('invalid msgpack byte 0xc1 at offset 0')
    expect(() => decodeMsgpack(new Uint8Array(), T.number)).toThrow(/truncated/)
  })

  it('rejects invalid UTF-8 and lone surrogates', () => {
    expect(() => decodeMsgpack(hx('a2 c3 28'), T.string)).toThrow(/invalid UTF-8/)
    expect(() => encodeMsgpack(V.object({ s: V.string('\ud800') }), T.object({ s: T.string }))).toThrow('.s: string contains a lone UTF-16 surrogate')
  })

  // Strings longer than 64 chars or bytes are checked for ASCII natively, shorter ones in a loop: both sides agree.
  it.each([63, 64, 65, 1000])('encodes and decodes strings of %i chars as UTF-8, ASCII or not', (n) => {
    const utf8 = (s: string) => toHex(new TextEncoder().encode(s))
    const header = (bytes: number) => (bytes <= 31 ? toHex(Uint8Array.of(0xa0 | bytes)) : bytes <= 0xff ? toHex(Uint8Array.of(0xd9, bytes)) : toHex(Uint8Array.of(0xda, bytes >> 8, bytes & 0xff)))
    for (const s of ['x'.repeat(n), `${'x'.repeat(n - 1)}é`, `é${'x'.repeat(n - 1)}`, `${'x'.repeat(n - 2)}𝄞`]) {
      const bytes = encodeMsgpack(V.string(s), T.string)
      const length = new TextEncoder().encode(s).length
      expect(toHex(bytes)).toBe(`${header(length)} ${utf8(s)}`)
      expect(decodeMsgpack(bytes, T.string)).toEqual(V.string(s))
    }
    expect(() => encodeMsgpack(V.object({ s: V.string(`${'x'.repeat(n)}\udc00`) }), T.object({ s: T.string }))).toThrow('.s: string contains a lone UTF-16 surrogate')
    expect(() => decodeMsgpack(hx(`${header(n)} ${'78 '.repeat(n - 1)} ff`), T.string)).toThrow(/invalid UTF-8/)
  })

  it('rejects duplicate map keys', () => {
    expect(() => decodeMsgpack(hx('82 a1 "a" 01 a1 "a" 02'), T.map(T.number))).toThrow('["a"]: duplicate map key')
  })
})

describe('__proto__ keys are data', () => {
  it('a map with key __proto__ decodes as an entry and does not touch Object.prototype', () => {
    const before = Object.getOwnPropertyNames(Object.prototype).sort()
    const bytes = hx('82 a9 "__proto__" a1 "x" a3 "env" a3 "dev"')
    const v = decodeMsgpack(bytes, T.map(T.string))
    expect(v.kind).toBe('map')
    if (v.kind !== 'map') return
    expect(v.entries.get('__proto__')).toEqual(V.string('x'))
    expect([...v.entries.keys()]).toEqual(['__proto__', 'env'])
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(before)
    expect(Object.getPrototypeOf({})).toBe(Object.prototype)
    expect(({} as Record<string, unknown>).x).toBeUndefined()
    expect(toHex(encodeMsgpack(v, T.map(T.string)))).toBe(toHex(bytes))
  })

  it('an object attribute named __proto__ or constructor round-trips', () => {
    const ty = T.object(new Map<string, CtyType>([['__proto__', T.string], ['constructor', T.number]]))
    const v = V.object(new Map<string, CtyValue>([['__proto__', V.string('p')], ['constructor', V.number(1)]]))
    const back = decodeMsgpack(encodeMsgpack(v, ty), ty)
    expect(ctyEquals(back, v)).toBe(true)
    expect(back.kind === 'object' && back.attributes.get('__proto__')).toEqual(V.string('p'))
  })
})

describe('dynamic values', () => {
  it('are [type JSON as bin, value]', () => {
    const bytes = encodeMsgpack(V.dynamic(T.string, V.string('hi')), T.dynamic)
    expect(toHex(bytes)).toBe(hexOf(`92 c4 08 '"string"' a2 "hi"`))
    expect(toHex(bytes)).toBe('92 c4 08 22 73 74 72 69 6e 67 22 a2 68 69')
    expect(decodeMsgpack(bytes, T.dynamic)).toEqual(V.dynamic(T.string, V.string('hi')))
  })

  it('carry complex types and accept the type as str too', () => {
    const v = V.dynamic(T.list(T.number), V.list([V.number(1), V.number(2)]))
    const bytes = encodeMsgpack(v, T.dynamic)
    expect(toHex(bytes)).toBe(hexOf(`92 c4 11 '["list","number"]' 92 01 02`))
    expect(decodeMsgpack(hx(`92 b1 '["list","number"]' 92 01 02`), T.dynamic)).toEqual(v)
  })

  it('null and unknown of dynamic type are plain c0 and d4 00 00; a typed unknown keeps its type', () => {
    expect(toHex(encodeMsgpack(V.null, T.dynamic))).toBe('c0')
    expect(decodeMsgpack(hx('d4 00 00'), T.dynamic)).toEqual(V.unknown())
    const typedUnknown = V.dynamic(T.string, V.unknown())
    expect(toHex(encodeMsgpack(typedUnknown, T.dynamic))).toBe('92 c4 08 22 73 74 72 69 6e 67 22 d4 00 00')
    expect(decodeMsgpack(encodeMsgpack(typedUnknown, T.dynamic), T.dynamic)).toEqual(typedUnknown)
  })

  it('bound nesting of dynamic-in-dynamic input instead of overflowing the stack', () => {
    const level = hx(`92 c4 09 '"dynamic"'`)
    const bytes = new Uint8Array(level.length * 2000 + 1)
    for (let i = 0; i < 2000; i++) bytes.set(level, i * level.length)
    bytes[bytes.length - 1] = 0xc0
    expect(() => decodeMsgpack(bytes, T.dynamic)).toThrow('value nested too deeply')
  })

  it('require a wrapped value and a well-formed wrapper', () => {
    const ty = T.object({ value: T.dynamic })
    expect(() => encodeMsgpack(V.object({ value: V.string('x') }), ty)).toThrow('.value: a known value in a dynamic slot must be wrapped')
    expect(() => decodeMsgpack(hx('81 a5 "value" 91 01'), ty)).toThrow('.value: a dynamic value must be a [type, value] array of 2 elements, got 1')
    expect(() => decodeMsgpack(hx(`81 a5 "value" 92 c4 05 '"foo"' 01`), ty)).toThrow(
      '.value: invalid type JSON: unknown primitive type "foo"',
    )
  })
})

describe('round trips for every type', () => {
  const obj = T.object({ a: T.string, b: T.list(T.number) }, ['b'])
  const cases: [string, CtyType, CtyValue][] = [
    ['string', T.string, V.string('héllo wörld — ✓ 𝄞')],
    ['long string', T.string, V.string('x'.repeat(70_000))],
    ['number', T.number, V.number('-0.000125')],
    ['bool', T.bool, V.bool(false)],
    ['list', T.list(T.string), V.list([V.string('a'), V.null, V.unknown(), V.string('a')])],
    ['long list', T.list(T.number), V.list(Array.from({ length: 20 }, (_, i) => V.number(i * 1000)))],
    ['set', T.set(T.number), V.set([V.number(3), V.number(1), V.number(2)])],
    ['map', T.map(T.bool), V.map({ yes: V.bool(true), no: V.bool(false), maybe: V.unknown({ notNull: true }) })],
    ['object', obj, V.object({ a: V.string('x'), b: V.list([V.number(1.25)]) })],
    ['tuple', T.tuple([T.string, T.number, T.bool]), V.tuple([V.string('x'), V.number(7), V.null])],
    ['empty tuple', T.tuple([]), V.tuple([])],
    ['empty object', T.object({}), V.object({})],
    ['nested', T.map(T.list(T.set(obj))), V.map({ k: V.list([V.set([V.object({ a: V.null, b: V.unknown() })])]) })],
    ['dynamic object', T.dynamic, V.dynamic(obj, V.object({ a: V.string('x'), b: V.null }))],
    ['dynamic in list', T.list(T.dynamic), V.list([V.dynamic(T.bool, V.bool(true)), V.null, V.unknown()])],
    ['refined map', T.map(T.string), V.unknown({ lengthUpperBound: 5 })],
  ]
  it.each(cases)('%s', (_name, ty, value) => {
    const bytes = encodeMsgpack(value, ty)
    const back = decodeMsgpack(bytes, ty)
    expect(ctyEquals(back, value)).toBe(true)
    expect(back).toEqual(value)
    expect(toHex(encodeMsgpack(back, ty))).toBe(toHex(bytes))
  })

  it('sets compare by value and drop duplicate elements when decoding', () => {
    const v = decodeMsgpack(hx('93 a1 "b" a1 "a" a1 "b"'), T.set(T.string))
    expect(v).toEqual(V.set([V.string('b'), V.string('a')]))
    expect(ctyEquals(v, V.set([V.string('a'), V.string('b')]))).toBe(true)
  })

  it('rejects a tuple of the wrong length', () => {
    expect(() => decodeMsgpack(hx('92 01 02'), T.tuple([T.number]))).toThrow('expected a tuple of 1 elements, got 2')
  })
})
