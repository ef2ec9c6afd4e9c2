import { describe, expect, it } from 'vitest'
import { CtyNumber } from '../src/cty/index.js'

describe('CtyNumber', () => {
  it.each([
    ['0', '0'],
    ['-0', '0'],
    ['007', '7'],
    ['1.500', '1.5'],
    ['+2', '2'],
    ['.5', '0.5'],
    ['5.', '5'],
    ['1e3', '1000'],
    ['1.25E-3', '0.00125'],
    ['-12.5e1', '-125'],
    ['0.000e99', '0'],
    ['123456789012345678901234567890', '123456789012345678901234567890'],
    ['Inf', 'Infinity'],
    ['-infinity', '-Infinity'],
  ])('parses %s canonically as %s', (text, decimal) => {
    expect(CtyNumber.parse(text).decimal).toBe(decimal)
  })

  it.each(['', '-', '.', 'abc', '1e', '1..2', '0x10', ' 1', 'NaN', '1e99999999999'])('rejects %j', (text) => {
    expect(() => CtyNumber.parse(text)).toThrow(RangeError)
  })

  it('builds from JS numbers as a human reads them, and from doubles exactly on request', () => {
    expect(CtyNumber.fromNumber(0.1).decimal).toBe('0.1')
    expect(CtyNumber.fromNumber(2 ** 70).decimal).toBe('1180591620717411303424')
    expect(CtyNumber.fromNumber(-0).decimal).toBe('0')
    expect(CtyNumber.fromNumber(1e-7).decimal).toBe('0.0000001')
    expect(CtyNumber.fromFloat64(0.1).decimal).toBe('0.1000000000000000055511151231257827021181583404541015625')
    expect(CtyNumber.fromFloat64(5e-324).decimal).toMatch(/^0\.0{323}49406564584124654417656879286822137236505/)
    expect(() => CtyNumber.fromNumber(NaN)).toThrow('NaN is not a cty number')
  })

  it('converts back to JS exactly only when exact', () => {
    expect(CtyNumber.parse('9007199254740993').toNumberExact()).toBeUndefined()
    expect(CtyNumber.parse('9007199254740992').toNumberExact()).toBe(2 ** 53)
    expect(CtyNumber.parse('0.1').toNumberExact()).toBeUndefined()
    expect(CtyNumber.parse('0.1').toNumber()).toBe(0.1)
    expect(CtyNumber.parse('1.5').toNumberExact()).toBe(1.5)
    expect(CtyNumber.parse('9007199254740993').toBigInt()).toBe(9007199254740993n)
    expect(CtyNumber.parse('1.5').toBigInt()).toBeUndefined()
    expect(CtyNumber.from(12n).isInteger()).toBe(true)
    expect(CtyNumber.POSITIVE_INFINITY.isInteger()).toBe(false)
  })

  it('compares by value', () => {
    const n = (s: string): CtyNumber => CtyNumber.parse(s)
    expect(n('1.0').equals(n('1'))).toBe(true)
    expect(n('0.1').compare(n('0.10000000000000000001'))).toBeLessThan(0)
    expect(n('-2').compare(n('-10'))).toBeGreaterThan(0)
    expect(n('100').compare(n('1e2'))).toBe(0)
    expect(n('-Infinity').compare(n('-1e300'))).toBeLessThan(0)
    expect(n('Infinity').compare(n('1e300'))).toBeGreaterThan(0)
    expect(n('0').sign()).toBe(0)
    expect(n('-0.5').sign()).toBe(-1)
  })

  it('serializes to its decimal text in JSON.stringify', () => {
    expect(JSON.stringify({ n: CtyNumber.parse('12345678901234567890') })).toBe('{"n":"12345678901234567890"}')
  })
})
