import { describe, expect, it } from 'vitest'
import {
  CtyError,
  CtyNumber,
  CtyType as T,
  CtyValue as V,
  assertConforms,
  attrStep,
  ctyEquals,
  ctyState,
  formatPath,
  getAtPath,
  indexStep,
  isKnown,
  isNull,
  isUnknown,
  isWhollyKnown,
  keyStep,
  pathEquals,
  setAtPath,
  walkValue,
  type CtyPath,
} from '../src/cty/index.js'

const type = T.object({
  id: T.string,
  params: T.list(T.object({ name: T.string, labels: T.map(T.string) })),
  ports: T.set(T.number),
  pair: T.tuple([T.string, T.bool]),
  any: T.dynamic,
})

const value = V.object({
  id: V.unknown({ notNull: true }),
  params: V.list([
    V.object({ name: V.string('a'), labels: V.map({ env: V.string('dev') }) }),
    V.object({ name: V.null, labels: V.unknown() }),
  ]),
  ports: V.set([V.number(80), V.number(443)]),
  pair: V.tuple([V.string('x'), V.bool(true)]),
  any: V.dynamic(T.object({ deep: T.number }), V.object({ deep: V.number(1) })),
})

describe('value states', () => {
  it('distinguishes null, unknown and known, looking through dynamic wrappers', () => {
    expect(ctyState(V.null)).toBe('null')
    expect(ctyState(V.unknown({ notNull: true }))).toBe('unknown')
    expect(ctyState(V.string(''))).toBe('known')
    expect(isNull(V.dynamic(T.string, V.null))).toBe(true)
    expect(isUnknown(V.dynamic(T.string, V.unknown()))).toBe(true)
    expect(isKnown(V.list([V.unknown()]))).toBe(true)
    expect(isWhollyKnown(V.list([V.unknown()]))).toBe(false)
    expect(isWhollyKnown(V.list([V.null]))).toBe(true)
  })

  it('normalizes strings to NFC, as cty does', () => {
    expect(ctyEquals(V.string('e\u0301'), V.string('\u00e9'))).toBe(true)
  })
})

describe('ctyEquals', () => {
  it('compares sets and maps regardless of order and numbers by value', () => {
    expect(ctyEquals(V.set([V.number(1), V.number(2)]), V.set([V.number('2.0'), V.number(1)]))).toBe(true)
    expect(ctyEquals(V.map({ a: V.bool(true), b: V.null }), V.map([['b', V.null], ['a', V.bool(true)]]))).toBe(true)
    expect(ctyEquals(V.list([V.number(1), V.number(2)]), V.list([V.number(2), V.number(1)]))).toBe(false)
    expect(ctyEquals(V.set([V.number(1)]), V.set([V.number(1), V.number(2)]))).toBe(false)
  })

  it('distinguishes states, kinds and refinements', () => {
    expect(ctyEquals(V.null, V.unknown())).toBe(false)
    expect(ctyEquals(V.list([]), V.tuple([]))).toBe(false)
    expect(ctyEquals(V.unknown({ notNull: true }), V.unknown())).toBe(false)
    expect(ctyEquals(V.unknown({ stringPrefix: 'x-' }), V.unknown({ stringPrefix: 'x-' }))).toBe(true)
    expect(ctyEquals(V.dynamic(T.string, V.null), V.dynamic(T.number, V.null))).toBe(false)
  })

  it('drops wholly-known duplicates from sets but keeps unknown elements', () => {
    expect(V.set([V.string('a'), V.string('a')]).elements).toHaveLength(1)
    expect(V.set([V.unknown(), V.unknown()]).elements).toHaveLength(2)
    expect(V.set([V.object({ a: V.number(1) }), V.object({ a: V.number('1.0') })]).elements).toHaveLength(1)
  })
})

describe('paths', () => {
  it('formats like Terraform', () => {
    expect(formatPath([attrStep('params'), indexStep(0), attrStep('labels'), keyStep('a"b')])).toBe('.params[0].labels["a\\"b"]')
    expect(formatPath([])).toBe('')
    expect(pathEquals([attrStep('a'), indexStep(1)], [attrStep('a'), indexStep(1)])).toBe(true)
    expect(pathEquals([attrStep('a')], [keyStep('a')])).toBe(false)
    expect(() => indexStep(-1)).toThrow('invalid element index -1')
  })

  it('getAtPath reads nested values with their types', () => {
    const at = getAtPath(value, type, [attrStep('params'), indexStep(0), attrStep('labels'), keyStep('env')])
    expect(at).toEqual({ value: V.string('dev'), type: T.string })
    expect(getAtPath(value, type, [attrStep('pair'), indexStep(1)])).toEqual({ value: V.bool(true), type: T.bool })
    expect(getAtPath(value, type, [attrStep('any'), attrStep('deep')])).toEqual({ value: V.number(1), type: T.number })
    expect(getAtPath(value, type, [])?.value).toBe(value)
  })

  it('getAtPath propagates null and unknown parents and reports absent elements', () => {
    expect(getAtPath(value, type, [attrStep('params'), indexStep(1), attrStep('labels'), keyStep('x')])).toEqual({ value: V.unknown(), type: T.string })
    expect(getAtPath(V.null, type, [attrStep('id')])).toEqual({ value: V.null, type: T.string })
    expect(getAtPath(value, type, [attrStep('params'), indexStep(5)])).toBeUndefined()
    expect(getAtPath(value, type, [attrStep('params'), indexStep(0), attrStep('labels'), keyStep('nope')])).toBeUndefined()
  })

  it('getAtPath rejects steps that do not fit the type', () => {
    expect(() => getAtPath(value, type, [attrStep('params'), attrStep('name')])).toThrow('.params: cannot take attribute "name" of list(object)')
    expect(() => getAtPath(value, type, [attrStep('nope')])).toThrow(CtyError)
  })

  it('setAtPath replaces one value and shares the rest', () => {
    const path: CtyPath = [attrStep('params'), indexStep(0), attrStep('name')]
    const next = setAtPath(value, type, path, V.unknown())
    expect(getAtPath(next, type, path)?.value).toEqual(V.unknown())
    expect(getAtPath(value, type, path)?.value).toEqual(V.string('a'))
    expect(next.kind === 'object' && next.attributes.get('ports')).toBe(value.attributes.get('ports'))
    const added = setAtPath(value, type, [attrStep('params'), indexStep(0), attrStep('labels'), keyStep('team')], V.string('x'))
    expect(getAtPath(added, type, [attrStep('params'), indexStep(0), attrStep('labels'), keyStep('team')])?.value).toEqual(V.string('x'))
    const deep = setAtPath(value, type, [attrStep('any'), attrStep('deep')], V.number(2))
    expect(getAtPath(deep, type, [attrStep('any'), attrStep('deep')])?.value).toEqual(V.number(2))
    expect(() => setAtPath(value, type, [attrStep('params'), indexStep(1), attrStep('labels'), keyStep('k')], V.null)).toThrow(
      'cannot set .params[1].labels["k"]: the value here is unknown',
    )
  })

  it('walkValue visits every value with its path, so unknowns can be found', () => {
    const unknownPaths: string[] = []
    walkValue(value, type, (v, _t, path) => {
      if (v.kind === 'unknown') unknownPaths.push(formatPath(path))
    })
    expect(unknownPaths).toEqual(['.id', '.params[1].labels'])
    const visited: string[] = []
    walkValue(value, type, (_v, t, path) => {
      visited.push(`${formatPath(path)}:${t.kind}`)
      return path.length === 0 || path[0]?.kind !== 'attr' || path[0].name !== 'params'
    })
    // children of .params are skipped because the visitor returned false there
    expect(visited).toEqual([
      ':object',
      '.id:string',
      '.params:list',
      '.ports:set',
      '.ports[0]:number',
      '.ports[1]:number',
      '.pair:tuple',
      '.pair[0]:string',
      '.pair[1]:bool',
      '.any:dynamic',
      '.any.deep:number',
    ])
  })
})

describe('assertConforms', () => {
  it('accepts a conforming value', () => {
    expect(() => assertConforms(value, type)).not.toThrow()
  })

  it('names the first problem with its path', () => {
    const wrong = setAtPath(value, type, [attrStep('params'), indexStep(0), attrStep('name')], V.number(1))
    expect(() => assertConforms(wrong, type)).toThrow('.params[0].name: expected string, got number value')
    const badTuple = setAtPath(value, type, [attrStep('pair')], V.tuple([V.string('x')]))
    expect(() => assertConforms(badTuple, type)).toThrow('.pair: expected a tuple of 2 elements, got 1')
    const refined = setAtPath(value, type, [attrStep('ports')], V.unknown({ numberLowerBound: { value: CtyNumber.ZERO, inclusive: true } }))
    expect(() => assertConforms(refined, type)).toThrow('.ports: number bound refinements are only valid for number, not set(number)')
    expect(() => V.unknown({ lengthUpperBound: -1 })).toThrow('lengthUpperBound must be a non-negative integer, got -1')
  })
})
