/**
 * Exact cty numbers.
 *
 * cty numbers are arbitrary-precision (Go `big.Float`, 512-bit mantissa). On the wire they arrive as msgpack ints
 * (any width, including uint64 above 2^63), float64/float32, or decimal strings, and in JSON state as number
 * literals of any length. A JS `number` cannot hold most of these exactly, so a known number is a {@link CtyNumber}:
 * a canonical plain decimal string (`"-12.5"`, `"18446744073709551615"`, `"0.1"`) or `"Infinity"` / `"-Infinity"`.
 */

/** Largest decimal exponent magnitude accepted, so `1e999999999` cannot allocate a gigabyte of digits. */
const MAX_EXPONENT = 10_000

const DECIMAL = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/
const INFINITY = /^([+-]?)(?:inf|infinity)$/i

interface Parts {
  /** Signed coefficient without trailing zeros (0n for zero). */
  readonly coefficient: bigint
  /** Power of ten the coefficient is multiplied by. */
  readonly exponent: number
}

/** An exact cty number. Compare with {@link CtyNumber.equals}; two equal numbers always have the same `decimal`. */
export class CtyNumber {
  /** Canonical plain decimal text (no exponent, no trailing fraction zeros, no `-0`), or `Infinity` / `-Infinity`. */
  readonly decimal: string

  private constructor(decimal: string) {
    this.decimal = decimal
  }

  static readonly ZERO = new CtyNumber('0')
  static readonly POSITIVE_INFINITY = new CtyNumber('Infinity')
  static readonly NEGATIVE_INFINITY = new CtyNumber('-Infinity')

  /**
   * Parses decimal text such as `"42"`, `"-0.5"`, `"1e400"`, `"1.25E-3"` (and `"Inf"`/`"-Infinity"`).
   * Used for numbers sent as msgpack strings and for JSON number literals. Throws `RangeError` on anything else.
   */
  static parse(text: string): CtyNumber {
    const inf = INFINITY.exec(text)
    if (inf) return inf[1] === '-' ? CtyNumber.NEGATIVE_INFINITY : CtyNumber.POSITIVE_INFINITY
    const m = DECIMAL.exec(text)
    const intDigits = m?.[2] ?? ''
    const fracDigits = m?.[3] ?? ''
    if (!m || intDigits.length + fracDigits.length === 0) throw new RangeError(`invalid number ${JSON.stringify(text)}`)
    const expText = m[4] ?? '0'
    // Exponent text may be absurdly long; anything past a few digits is out of range either way.
    const exp = expText.replace(/^[+-]?0*/, '').length > 7 ? Infinity * (expText.startsWith('-') ? -1 : 1) : Number(expText)
    return CtyNumber.fromParts(m[1] === '-', intDigits + fracDigits, exp - fracDigits.length, text)
  }

  /** The exact value of a bigint. */
  static fromBigInt(value: bigint): CtyNumber {
    return new CtyNumber(value.toString())
  }

  /**
   * A JS number as a human would read it: integers exactly, other finite values as their shortest round-trip decimal
   * (`0.1` → `"0.1"`). This is what resource code wants when it sets an attribute from a JS number.
   * Use {@link CtyNumber.fromFloat64} for the exact binary value instead. Throws on NaN.
   */
  static fromNumber(value: number): CtyNumber {
    if (Number.isNaN(value)) throw new RangeError('NaN is not a cty number')
    if (value === Infinity) return CtyNumber.POSITIVE_INFINITY
    if (value === -Infinity) return CtyNumber.NEGATIVE_INFINITY
    if (Number.isInteger(value)) return CtyNumber.fromBigInt(BigInt(value))
    return CtyNumber.parse(String(value))
  }

  /**
   * The exact binary value of an IEEE-754 double (`0.1` → `"0.1000000000000000055511151231257827021181583404541015625"`).
   * Used when decoding msgpack floats, so a value Terraform sent as a float is sent back bit-identical.
   */
  static fromFloat64(value: number): CtyNumber {
    if (!Number.isFinite(value) || Number.isInteger(value)) return CtyNumber.fromNumber(value)
    const view = new DataView(new ArrayBuffer(8))
    view.setFloat64(0, value)
    const bits = view.getBigUint64(0)
    const negative = bits >> 63n === 1n
    const biasedExp = Number((bits >> 52n) & 0x7ffn)
    const fraction = bits & 0xfffffffffffffn
    // value = mantissa × 2^exp2, and exp2 < 0 here because the value is not an integer.
    const mantissa = biasedExp === 0 ? fraction : fraction | (1n << 52n)
    const exp2 = (biasedExp === 0 ? 1 : biasedExp) - 1075
    // mantissa × 2^exp2 = mantissa × 5^-exp2 × 10^exp2
    const coefficient = mantissa * 5n ** BigInt(-exp2)
    return CtyNumber.fromParts(negative, coefficient.toString(), exp2, String(value))
  }

  /** Accepts the forms resource code naturally has at hand. */
  static from(value: CtyNumber | number | bigint | string): CtyNumber {
    if (value instanceof CtyNumber) return value
    if (typeof value === 'number') return CtyNumber.fromNumber(value)
    if (typeof value === 'bigint') return CtyNumber.fromBigInt(value)
    return CtyNumber.parse(value)
  }

  private static fromParts(negative: boolean, digits: string, exponent: number, source: string): CtyNumber {
    let start = 0
    while (start < digits.length && digits.charCodeAt(start) === 48) start++
    let end = digits.length
    while (end > start && digits.charCodeAt(end - 1) === 48) end--
    if (start === end) return CtyNumber.ZERO
    const significant = digits.slice(start, end)
    const exp = exponent + (digits.length - end)
    // Reject before building the text: both the lowest digit and the highest digit must stay in range.
    if (!(exp >= -MAX_EXPONENT && exp + significant.length <= MAX_EXPONENT)) {
      throw new RangeError(`number ${source.length > 40 ? source.slice(0, 40) + '…' : source} is out of the supported range (|exponent| ≤ ${MAX_EXPONENT})`)
    }
    let text: string
    if (exp >= 0) text = significant + '0'.repeat(exp)
    else if (significant.length > -exp) text = `${significant.slice(0, exp)}.${significant.slice(exp)}`
    else text = `0.${'0'.repeat(-exp - significant.length)}${significant}`
    return new CtyNumber(negative ? `-${text}` : text)
  }

  /** True for ±Infinity. */
  isInfinite(): boolean {
    return this.decimal.endsWith('Infinity')
  }

  /** True when the value is a (finite) integer. */
  isInteger(): boolean {
    return !this.isInfinite() && !this.decimal.includes('.')
  }

  /** -1, 0 or 1. */
  sign(): -1 | 0 | 1 {
    if (this.decimal === '0') return 0
    return this.decimal.startsWith('-') ? -1 : 1
  }

  /** The integer value, or `undefined` when the number is not an integer. */
  toBigInt(): bigint | undefined {
    return this.isInteger() ? BigInt(this.decimal) : undefined
  }

  /** The nearest JS number (rounded like `Number(text)`). Lossy for large or very precise values. */
  toNumber(): number {
    return Number(this.decimal)
  }

  /** The JS number holding exactly this value, or `undefined` when no double equals it. */
  toNumberExact(): number | undefined {
    const n = this.toNumber()
    if (Number.isNaN(n)) return undefined
    return CtyNumber.fromFloat64(n).decimal === this.decimal ? n : undefined
  }

  /** Value equality (the canonical text is unique per value). */
  equals(other: CtyNumber): boolean {
    return this.decimal === other.decimal
  }

  /** Total order: negative when `this < other`, 0 when equal, positive when greater. */
  compare(other: CtyNumber): number {
    if (this.decimal === other.decimal) return 0
    if (this.decimal === '-Infinity' || other.decimal === 'Infinity') return -1
    if (this.decimal === 'Infinity' || other.decimal === '-Infinity') return 1
    const a = parts(this.decimal)
    const b = parts(other.decimal)
    const exp = Math.min(a.exponent, b.exponent)
    const ac = a.coefficient * 10n ** BigInt(a.exponent - exp)
    const bc = b.coefficient * 10n ** BigInt(b.exponent - exp)
    return ac < bc ? -1 : ac > bc ? 1 : 0
  }

  toString(): string {
    return this.decimal
  }

  /** `JSON.stringify` gives the decimal text (as a string, since JS JSON cannot carry exact numbers). */
  toJSON(): string {
    return this.decimal
  }
}

function parts(decimal: string): Parts {
  const dot = decimal.indexOf('.')
  if (dot < 0) return { coefficient: BigInt(decimal), exponent: 0 }
  return { coefficient: BigInt(decimal.slice(0, dot) + decimal.slice(dot + 1)), exponent: dot + 1 - decimal.length }
}
