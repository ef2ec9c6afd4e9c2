/**
 * A minimal strict MessagePack reader and writer: exactly what the cty codec needs, nothing generic.
 *
 * Why not a library: `@msgpack/msgpack` encodes a JS `Map` as an empty map, rejects `__proto__` keys and loses int64
 * exactness. Here ints are bigint-exact, map keys are whatever the caller reads them into, and extension values are
 * exposed raw (cty uses them for unknowns).
 */
import { isAscii } from 'node:buffer'

const utf8 = new TextEncoder()
/**
 * From this length on, strings are checked for ASCII natively (`isAscii`, `Buffer.byteLength`): a provider process
 * lives for a few hundred RPCs, too short for V8 to optimise a byte loop over an `implementation` of kilobytes,
 * while a native call costs more than the loop on the short keys and names that make most strings.
 */
const NATIVE_ASCII_CHECK = 64
const utf8Strict = new TextDecoder('utf-8', { fatal: true })

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/** Encodes a string as UTF-8, refusing lone surrogates (they have no UTF-8 form and would be silently replaced). */
export function encodeUtf8(s: string): Uint8Array {
  if (LONE_SURROGATE.test(s)) throw new RangeError('string contains a lone UTF-16 surrogate, which is not valid Unicode')
  return utf8.encode(s)
}

const INT64_MIN = -(1n << 63n)
const UINT64_MAX = (1n << 64n) - 1n

/** Names and their UTF-8 bytes, for {@link MsgpackReader.knownKey}. */
export interface KnownKeys {
  readonly names: readonly string[]
  readonly bytes: readonly Uint8Array[]
}

export function knownKeys(names: readonly string[]): KnownKeys {
  return { names, bytes: names.map((n) => utf8.encode(n)) }
}

export class MsgpackWriter {
  private buf = new Uint8Array(1024)
  private view = new DataView(this.buf.buffer)
  private len = 0

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < this.len + n) size *= 2
    const next = new Uint8Array(size)
    next.set(this.buf.subarray(0, this.len))
    this.buf = next
    this.view = new DataView(next.buffer)
  }

  private u8(b: number): void {
    this.ensure(1)
    this.buf[this.len++] = b
  }
  private u16(v: number): void {
    this.ensure(2)
    this.view.setUint16(this.len, v)
    this.len += 2
  }
  private u32(v: number): void {
    this.ensure(4)
    this.view.setUint32(this.len, v)
    this.len += 4
  }

  raw(bytes: Uint8Array): void {
    this.ensure(bytes.length)
    this.buf.set(bytes, this.len)
    this.len += bytes.length
  }

  nil(): void {
    this.u8(0xc0)
  }

  bool(v: boolean): void {
    this.u8(v ? 0xc3 : 0xc2)
  }

  /** The smallest encoding of an int64 or uint64 (non-negative values use the uint formats, as Go's encoder does). */
  int(value: bigint | number): void {
    const v = BigInt(value)
    if (v < INT64_MIN || v > UINT64_MAX) throw new RangeError(`${v} does not fit a msgpack integer`)
    if (v >= 0n) {
      if (v <= 0x7fn) this.u8(Number(v))
      else if (v <= 0xffn) {
        this.u8(0xcc)
        this.u8(Number(v))
      } else if (v <= 0xffffn) {
        this.u8(0xcd)
        this.u16(Number(v))
      } else if (v <= 0xffffffffn) {
        this.u8(0xce)
        this.u32(Number(v))
      } else {
        this.u8(0xcf)
        this.ensure(8)
        this.view.setBigUint64(this.len, v)
        this.len += 8
      }
      return
    }
    if (v >= -32n) this.u8(Number(v) & 0xff)
    else if (v >= -0x80n) {
      this.u8(0xd0)
      this.u8(Number(v) & 0xff)
    } else if (v >= -0x8000n) {
      this.u8(0xd1)
      this.u16(Number(v) & 0xffff)
    } else if (v >= -0x80000000n) {
      this.u8(0xd2)
      this.u32(Number(v) >>> 0)
    } else {
      this.u8(0xd3)
      this.ensure(8)
      this.view.setBigInt64(this.len, v)
      this.len += 8
    }
  }

  float64(v: number): void {
    this.u8(0xcb)
    this.ensure(8)
    this.view.setFloat64(this.len, v)
    this.len += 8
  }

  str(s: string): void {
    // Most strings (names, ids, keys) are ASCII: their bytes are their char codes, written without a TextEncoder
    // round trip and an intermediate array.
    const chars = s.length
    if (chars > NATIVE_ASCII_CHECK) {
      // Long text (an implementation): natively. As many UTF-8 bytes as chars means ASCII (a lone surrogate
      // counts 3 bytes), which encodeInto writes byte for byte.
      if (Buffer.byteLength(s, 'utf8') !== chars) return this.utf8Str(s)
      this.strHeader(chars)
      this.ensure(chars)
      utf8.encodeInto(s, this.buf.subarray(this.len, this.len + chars))
      this.len += chars
      return
    }
    let ascii = true
    for (let i = 0; i < chars; i++) {
      if (s.charCodeAt(i) > 0x7f) {
        ascii = false
        break
      }
    }
    if (ascii) {
      this.strHeader(chars)
      this.ensure(chars)
      const buf = this.buf
      let at = this.len
      for (let i = 0; i < chars; i++) buf[at++] = s.charCodeAt(i)
      this.len = at
      return
    }
    this.utf8Str(s)
  }

  private utf8Str(s: string): void {
    const bytes = encodeUtf8(s)
    this.strHeader(bytes.length)
    this.raw(bytes)
  }

  private strHeader(n: number): void {
    if (n <= 31) this.u8(0xa0 | n)
    else if (n <= 0xff) {
      this.u8(0xd9)
      this.u8(n)
    } else if (n <= 0xffff) {
      this.u8(0xda)
      this.u16(n)
    } else {
      this.u8(0xdb)
      this.u32(n)
    }
  }

  bin(bytes: Uint8Array): void {
    const n = bytes.length
    if (n <= 0xff) {
      this.u8(0xc4)
      this.u8(n)
    } else if (n <= 0xffff) {
      this.u8(0xc5)
      this.u16(n)
    } else {
      this.u8(0xc6)
      this.u32(n)
    }
    this.raw(bytes)
  }

  arrayHeader(n: number): void {
    if (n <= 15) this.u8(0x90 | n)
    else if (n <= 0xffff) {
      this.u8(0xdc)
      this.u16(n)
    } else {
      this.u8(0xdd)
      this.u32(n)
    }
  }

  mapHeader(n: number): void {
    if (n <= 15) this.u8(0x80 | n)
    else if (n <= 0xffff) {
      this.u8(0xde)
      this.u16(n)
    } else {
      this.u8(0xdf)
      this.u32(n)
    }
  }

  /** An extension value; fixext forms for payloads of 1, 2, 4, 8 or 16 bytes, as Go's encoder writes them. */
  ext(type: number, payload: Uint8Array): void {
    const n = payload.length
    const fixed = [1, 2, 4, 8, 16].indexOf(n)
    if (fixed >= 0) this.u8(0xd4 + fixed)
    else if (n <= 0xff) {
      this.u8(0xc7)
      this.u8(n)
    } else if (n <= 0xffff) {
      this.u8(0xc8)
      this.u16(n)
    } else {
      this.u8(0xc9)
      this.u32(n)
    }
    this.u8(type & 0xff)
    this.raw(payload)
  }

  /** The bytes written: a view of the writer's buffer (no copy), so nothing may be written after. */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.len)
  }
}

/** A decoded msgpack header. For str/bin/ext the payload follows; for array/map the elements follow. */
export type MsgpackHead =
  | { readonly format: 'nil' }
  | { readonly format: 'bool'; readonly value: boolean }
  | { readonly format: 'int'; readonly value: bigint }
  | { readonly format: 'float'; readonly value: number }
  | { readonly format: 'str'; readonly length: number }
  | { readonly format: 'bin'; readonly length: number }
  | { readonly format: 'array'; readonly length: number }
  | { readonly format: 'map'; readonly length: number }
  | { readonly format: 'ext'; readonly type: number; readonly length: number }

/** Names of msgpack formats in error messages ("expected string, got int"). */
export function formatName(head: MsgpackHead): string {
  return head.format === 'str' ? 'string' : head.format === 'bin' ? 'binary' : head.format === 'ext' ? `extension type ${head.type}` : head.format
}

export class MsgpackReader {
  private readonly view: DataView
  private pos = 0

  /** The same bytes as a Buffer (no copy), for slicing ASCII text out without intermediate views. */
  private readonly buffer: Buffer

  /** `fail` turns a format problem into the caller's error (with its current path). */
  constructor(
    private readonly bytes: Uint8Array,
    private readonly fail: (reason: string) => never,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    this.buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  }

  get offset(): number {
    return this.pos
  }

  get remaining(): number {
    return this.bytes.length - this.pos
  }

  private need(n: number): void {
    if (this.pos + n > this.bytes.length) this.fail(`msgpack data is truncated at offset ${this.pos} (need ${n} more bytes)`)
  }
  private u8(): number {
    this.need(1)
    return this.bytes[this.pos++] as number
  }
  private u16(): number {
    this.need(2)
    const v = this.view.getUint16(this.pos)
    this.pos += 2
    return v
  }
  private u32(): number {
    this.need(4)
    const v = this.view.getUint32(this.pos)
    this.pos += 4
    return v
  }

  /** The next byte without consuming it. */
  peek(): number {
    this.need(1)
    return this.bytes[this.pos] as number
  }

  /** True when the next value is an extension (any extension type). */
  peekIsExt(): boolean {
    const b = this.peek()
    return (b >= 0xd4 && b <= 0xd8) || (b >= 0xc7 && b <= 0xc9)
  }

  /** Reads the next header; array and map lengths are checked against the bytes left (each element ≥ 1 byte). */
  head(): MsgpackHead {
    const at = this.pos
    const b = this.u8()
    if (b <= 0x7f) return { format: 'int', value: BigInt(b) }
    if (b >= 0xe0) return { format: 'int', value: BigInt(b - 0x100) }
    if (b >= 0xa0 && b <= 0xbf) return { format: 'str', length: b & 0x1f }
    if (b >= 0x90 && b <= 0x9f) return this.container('array', b & 0x0f)
    if (b >= 0x80 && b <= 0x8f) return this.container('map', b & 0x0f)
    switch (b) {
      case 0xc0:
        return { format: 'nil' }
      case 0xc2:
        return { format: 'bool', value: false }
      case 0xc3:
        return { format: 'bool', value: true }
      case 0xc4:
        return { format: 'bin', length: this.u8() }
      case 0xc5:
        return { format: 'bin', length: this.u16() }
      case 0xc6:
        return { format: 'bin', length: this.u32() }
      case 0xc7: {
        const length = this.u8()
        return { format: 'ext', length, type: this.u8() }
      }
      case 0xc8: {
        const length = this.u16()
        return { format: 'ext', length, type: this.u8() }
      }
      case 0xc9: {
        const length = this.u32()
        return { format: 'ext', length, type: this.u8() }
      }
      case 0xca: {
        this.need(4)
        const value = this.view.getFloat32(this.pos)
        this.pos += 4
        return { format: 'float', value }
      }
      case 0xcb: {
        this.need(8)
        const value = this.view.getFloat64(this.pos)
        this.pos += 8
        return { format: 'float', value }
      }
      case 0xcc:
        return { format: 'int', value: BigInt(this.u8()) }
      case 0xcd:
        return { format: 'int', value: BigInt(this.u16()) }
      case 0xce:
        return { format: 'int', value: BigInt(this.u32()) }
      case 0xcf: {
        this.need(8)
        const value = this.view.getBigUint64(this.pos)
        this.pos += 8
        return { format: 'int', value }
      }
      case 0xd0: {
        this.need(1)
        const value = this.view.getInt8(this.pos)
        this.pos += 1
        return { format: 'int', value: BigInt(value) }
      }
      case 0xd1: {
        this.need(2)
        const value = this.view.getInt16(this.pos)
        this.pos += 2
        return { format: 'int', value: BigInt(value) }
      }
      case 0xd2: {
        this.need(4)
        const value = this.view.getInt32(this.pos)
        this.pos += 4
        return { format: 'int', value: BigInt(value) }
      }
      case 0xd3: {
        this.need(8)
        const value = this.view.getBigInt64(this.pos)
        this.pos += 8
        return { format: 'int', value }
      }
      case 0xd4:
      case 0xd5:
      case 0xd6:
      case 0xd7:
      case 0xd8:
        return { format: 'ext', type: this.u8(), length: 1 << (b - 0xd4) }
      case 0xd9:
        return { format: 'str', length: this.u8() }
      case 0xda:
        return { format: 'str', length: this.u16() }
      case 0xdb:
        return { format: 'str', length: this.u32() }
      case 0xdc:
        return this.container('array', this.u16())
      case 0xdd:
        return this.container('array', this.u32())
      case 0xde:
        return this.container('map', this.u16())
      case 0xdf:
        return this.container('map', this.u32())
      default:
        this.pos = at
        return this.fail(`invalid msgpack byte 0x${b.toString(16)} at offset ${at}`)
    }
  }

  private container(format: 'array' | 'map', length: number): MsgpackHead {
    const min = format === 'array' ? length : length * 2
    if (min > this.remaining) this.fail(`msgpack ${format} of ${length} elements is truncated at offset ${this.pos}`)
    return { format, length }
  }

  /** The payload bytes of a str/bin/ext head (a copy-free view). */
  payload(length: number): Uint8Array {
    this.need(length)
    const out = this.bytes.subarray(this.pos, this.pos + length)
    this.pos += length
    return out
  }

  /**
   * The text of a str head's payload when it is ASCII (consumed), else undefined (nothing consumed: read it with
   * {@link text}). Most of what Terraform sends is ASCII, which needs no UTF-8 validation and no view to decode.
   */
  ascii(length: number): string | undefined {
    this.need(length)
    const bytes = this.bytes
    const start = this.pos
    const end = start + length
    if (length > NATIVE_ASCII_CHECK) {
      if (!isAscii(bytes.subarray(start, end))) return undefined
    } else {
      for (let i = start; i < end; i++) if ((bytes[i] as number) > 0x7f) return undefined
    }
    this.pos = end
    return this.buffer.toString('latin1', start, end)
  }

  /**
   * The index in `keys` of the name whose bytes are the str head's payload of `length` bytes (consumed), trying
   * `hint` first; -1 when none is (nothing consumed). Object keys are schema names: matching them against names
   * made once per type spares a string per key, and its hashing when it is looked up.
   */
  knownKey(length: number, keys: KnownKeys, hint: number): number {
    this.need(length)
    const { bytes: candidates } = keys
    if (hint < candidates.length && this.payloadIs(candidates[hint]!, length)) return hint
    for (let i = 0; i < candidates.length; i++) if (i !== hint && this.payloadIs(candidates[i]!, length)) return i
    return -1
  }

  private payloadIs(candidate: Uint8Array, length: number): boolean {
    if (candidate.length !== length) return false
    const bytes = this.bytes
    const start = this.pos
    for (let i = 0; i < length; i++) if (bytes[start + i] !== candidate[i]) return false
    this.pos = start + length
    return true
  }

  /** The UTF-8 text of a str head's payload; invalid UTF-8 fails. */
  text(length: number): string {
    const at = this.pos
    const bytes = this.payload(length)
    try {
      return utf8Strict.decode(bytes)
    } catch {
      return this.fail(`invalid UTF-8 in msgpack string at offset ${at}`)
    }
  }

  /** Skips the value whose head was just read. */
  skip(head: MsgpackHead, depth = 0): void {
    if (depth > 512) this.fail('msgpack value nested too deeply')
    switch (head.format) {
      case 'str':
      case 'bin':
      case 'ext':
        this.payload(head.length)
        return
      case 'array':
        for (let i = 0; i < head.length; i++) this.skip(this.head(), depth + 1)
        return
      case 'map':
        for (let i = 0; i < head.length * 2; i++) this.skip(this.head(), depth + 1)
        return
      default:
        return
    }
  }
}
