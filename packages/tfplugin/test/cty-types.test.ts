import { describe, expect, it } from 'vitest'
import { CtyType as T, decodeTypeJson, encodeTypeJson, typeEquals, typeFromJson, typeToJson, typeToString, type CtyType } from '../src/cty/index.js'

describe('type JSON', () => {
  const cases: [CtyType, string][] = [
    [T.string, '"string"'],
    [T.number, '"number"'],
    [T.bool, '"bool"'],
    [T.dynamic, '"dynamic"'],
    [T.list(T.string), '["list","string"]'],
    [T.set(T.number), '["set","number"]'],
    [T.map(T.list(T.bool)), '["map",["list","bool"]]'],
    [T.tuple([T.string, T.number]), '["tuple",["string","number"]]'],
    [T.tuple([]), '["tuple",[]]'],
    [T.object({ z: T.string, a: T.number }), '["object",{"a":"number","z":"string"}]'],
    [T.object({ b: T.string, a: T.number }, ['b', 'a']), '["object",{"a":"number","b":"string"},["a","b"]]'],
    [T.object({}), '["object",{}]'],
  ]
  it.each(cases)('%j ⇄ %s', (type, json) => {
    expect(encodeTypeJson(type)).toBe(json)
    expect(typeEquals(decodeTypeJson(json), type)).toBe(true)
    expect(JSON.stringify(typeToJson(type))).toBe(json)
    expect(typeEquals(typeFromJson(JSON.parse(json)), type)).toBe(true)
  })

  it('reads bytes and tolerates whitespace', () => {
    const t = decodeTypeJson(new TextEncoder().encode(' [ "list" , [ "object" , { "x" : "string" } ] ] '))
    expect(typeEquals(t, T.list(T.object({ x: T.string })))).toBe(true)
  })

  it('keeps a __proto__ attribute as an attribute', () => {
    const t = decodeTypeJson('["object",{"__proto__":"string"}]')
    expect(t.kind === 'object' && [...t.attributes.keys()]).toEqual(['__proto__'])
    expect(encodeTypeJson(t)).toBe('["object",{"__proto__":"string"}]')
    expect(Object.getPrototypeOf(typeToJson(t)[1])).toBeNull()
  })

  it.each([
    ['"strin"', 'invalid type JSON: unknown primitive type "strin"'],
    ['["list"]', 'invalid type JSON: "list" type must have 2 elements, got 1'],
    ['["list","string","x"]', 'invalid type JSON: "list" type must have 2 elements, got 3'],
    ['["object",{"a":"string"},["b"]]', 'invalid type JSON: optional attribute "b" is not an attribute'],
    ['["object",["a"]]', 'invalid type JSON: object attribute types must be a JSON object'],
    ['["tuple","string"]', 'invalid type JSON: tuple element types must be an array'],
    ['["thing","string"]', 'invalid type JSON: unknown type kind "thing"'],
    ['42', 'invalid type JSON: expected a string or an array, got a number'],
    ['["object",{"a":"string","a":"number"}]', 'invalid type JSON: duplicate object key "a"'],
    ['"string" x', 'invalid type JSON: unexpected data after the JSON value'],
  ])('rejects %s', (json, message) => {
    expect(() => decodeTypeJson(json)).toThrow(message)
  })

  it('type equality is structural', () => {
    expect(typeEquals(T.object({ a: T.string, b: T.number }), T.object({ b: T.number, a: T.string }))).toBe(true)
    expect(typeEquals(T.object({ a: T.string }), T.object({ a: T.string }, ['a']))).toBe(false)
    expect(typeEquals(T.list(T.string), T.set(T.string))).toBe(false)
    expect(typeEquals(T.tuple([T.string]), T.tuple([T.string, T.string]))).toBe(false)
  })

  it('renders HCL type constraints for messages', () => {
    expect(typeToString(T.list(T.object({ name: T.string, size: T.number }, ['size'])))).toBe('list(object({ name = string, size = optional(number) }))')
    expect(typeToString(T.tuple([T.dynamic, T.bool]))).toBe('tuple([any, bool])')
  })

  it('rejects an optional attribute that is not an attribute', () => {
    expect(() => T.object({ a: T.string }, ['b'])).toThrow('optional attribute "b" is not an attribute of the object type')
  })
})
