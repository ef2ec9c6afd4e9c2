/**
 * The protobuf wire format, as far as the generated codecs in `./generated/` need it: a growable writer and a
 * bounds-checked reader over one buffer. No reflection and no `.proto` parsing at run time, so loading the codecs
 * costs almost nothing at provider start.
 *
 * 64-bit integers are JavaScript numbers: every int64 in tfplugin6 is a schema version, an index or a count. The
 * reader throws a {@link ProtoDecodeError} for a value outside ±2^53 instead of rounding it, and the writer throws
 * a `RangeError` for a number that is not a safe integer.
 */

/** Wire types of the protobuf encoding. */
export const WireType = { VARINT: 0, I64: 1, LEN: 2, SGROUP: 3, EGROUP: 4, I32: 5 } as const

const TWO_32 = 4294967296

/** Thrown by a decoder for bytes that are not a valid encoding of the expected message. */
export class ProtoDecodeError extends Error {
  override readonly name = 'ProtoDecodeError'
}

/** Appends protobuf fields to one growing buffer; {@link finish} returns the bytes written. */
export class ProtoWriter {
  private buf: Buffer
  private pos = 0

  constructor(initialSize = 256) {
    this.buf = Buffer.allocUnsafe(initialSize)
  }

  private ensure(extra: number): void {
    const need = this.pos + extra
    if (need <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < need) size *= 2
    const next = Buffer.allocUnsafe(size)
    this.buf.copy(next, 0, 0, this.pos)
    this.buf = next
  }

  /** A field key: `(fieldNumber << 3) | wireType`, precomputed by the generator. */
  tag(key: number): this {
    return this.uint32(key)
  }

  uint32(value: number): this {
    this.ensure(5)
    let v = value >>> 0
    while (v > 0x7f) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80
      v >>>= 7
    }
    this.buf[this.pos++] = v
    return this
  }

  /** int32 and enums: negative values take 10 bytes (sign-extended to 64 bits), as in every protobuf runtime. */
  int32(value: number): this {
    return value < 0 ? this.varint64(value >>> 0, 0xffffffff) : this.uint32(value)
  }

  sint32(value: number): this {
    return this.uint32((value << 1) ^ (value >> 31))
  }

  int64(value: number): this {
    const [lo, hi] = split64(value)
    return this.varint64(lo, hi)
  }

  uint64(value: number): this {
    if (value < 0) throw new RangeError(`uint64 field: ${value} is negative`)
    return this.int64(value)
  }

  sint64(value: number): this {
    const [lo, hi] = split64(value)
    // zigzag over the 64-bit two's complement: (n << 1) ^ (n >> 63)
    const sign = hi >> 31
    const zlo = ((lo << 1) ^ sign) >>> 0
    const zhi = (((hi << 1) | (lo >>> 31)) ^ sign) >>> 0
    return this.varint64(zlo, zhi)
  }

  bool(value: boolean): this {
    this.ensure(1)
    this.buf[this.pos++] = value ? 1 : 0
    return this
  }

  fixed32(value: number): this {
    this.ensure(4)
    this.buf.writeUInt32LE(value >>> 0, this.pos)
    this.pos += 4
    return this
  }

  sfixed32(value: number): this {
    this.ensure(4)
    this.buf.writeInt32LE(value | 0, this.pos)
    this.pos += 4
    return this
  }

  fixed64(value: number): this {
    const [lo, hi] = split64(value)
    this.ensure(8)
    this.buf.writeUInt32LE(lo, this.pos)
    this.buf.writeUInt32LE(hi, this.pos + 4)
    this.pos += 8
    return this
  }

  sfixed64(value: number): this {
    return this.fixed64(value)
  }

  float(value: number): this {
    this.ensure(4)
    this.buf.writeFloatLE(value, this.pos)
    this.pos += 4
    return this
  }

  double(value: number): this {
    this.ensure(8)
    this.buf.writeDoubleLE(value, this.pos)
    this.pos += 8
    return this
  }

  /** A length-prefixed UTF-8 string. */
  string(value: string): this {
    const length = Buffer.byteLength(value)
    this.uint32(length)
    this.ensure(length)
    this.pos += this.buf.write(value, this.pos, length, 'utf8')
    return this
  }

  /** Length-prefixed bytes. */
  bytes(value: Uint8Array): this {
    this.uint32(value.length)
    this.ensure(value.length)
    this.buf.set(value, this.pos)
    this.pos += value.length
    return this
  }

  /**
   * Starts a length-delimited section (a nested message, a map entry, a packed array). Reserves one byte for the
   * length; {@link join} writes the real length and moves the content if it needs more bytes.
   */
  fork(): number {
    this.ensure(1)
    return this.pos++
  }

  /** Ends the section started by the {@link fork} that returned `mark`. */
  join(mark: number): this {
    const length = this.pos - mark - 1
    const size = varintSize(length)
    if (size > 1) {
      this.ensure(size - 1)
      this.buf.copy(this.buf, mark + size, mark + 1, this.pos)
      this.pos += size - 1
    }
    let v = length
    let at = mark
    while (v > 0x7f) {
      this.buf[at++] = (v & 0x7f) | 0x80
      v >>>= 7
    }
    this.buf[at] = v
    return this
  }

  /** The bytes written so far (a view, not a copy; the writer must not be used afterwards). */
  finish(): Buffer {
    return this.buf.subarray(0, this.pos)
  }

  private varint64(lo: number, hi: number): this {
    this.ensure(10)
    while (hi !== 0 || lo > 0x7f) {
      this.buf[this.pos++] = (lo & 0x7f) | 0x80
      lo = ((lo >>> 7) | (hi << 25)) >>> 0
      hi >>>= 7
    }
    this.buf[this.pos++] = lo
    return this
  }
}

function varintSize(value: number): number {
  return value < 0x80 ? 1 : value < 0x4000 ? 2 : value < 0x200000 ? 3 : value < 0x10000000 ? 4 : 5
}

/** A safe integer as the low and high 32 bits of its 64-bit two's complement. */
function split64(value: number): [number, number] {
  if (!Number.isSafeInteger(value)) throw new RangeError(`64-bit integer field: ${value} is not a safe integer`)
  const hi = Math.floor(value / TWO_32)
  const lo = value - hi * TWO_32
  return [lo >>> 0, hi >>> 0]
}

/** Reads protobuf fields from one buffer; nested messages are read in place (`bytes` are views into it). */
export class ProtoReader {
  readonly buf: Uint8Array
  pos: number
  readonly end: number
  private readonly view: DataView
  private static readonly utf8 = new TextDecoder('utf-8', { fatal: true })

  constructor(buf: Uint8Array, pos = 0, end = buf.length) {
    this.buf = buf
    this.pos = pos
    this.end = end
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  }

  /** The end offset of a length-delimited section starting at the current position (after its length). */
  limit(): number {
    const length = this.uint32()
    const end = this.pos + length
    if (end > this.end) throw new ProtoDecodeError(`length ${length} at offset ${this.pos} runs past the end of the data`)
    return end
  }

  uint32(): number {
    let result = 0
    let shift = 0
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtoDecodeError('truncated varint')
      const byte = this.buf[this.pos++]!
      if (shift < 32) result |= (byte & 0x7f) << shift
      shift += 7
      if (byte < 0x80) return result >>> 0
    }
    throw new ProtoDecodeError('varint longer than 10 bytes')
  }

  int32(): number {
    return this.uint32() | 0
  }

  sint32(): number {
    const v = this.uint32()
    return (v >>> 1) ^ -(v & 1)
  }

  int64(): number {
    const [lo, hi] = this.varint64()
    return join64(lo, hi | 0)
  }

  uint64(): number {
    const [lo, hi] = this.varint64()
    return join64(lo, hi)
  }

  sint64(): number {
    const [lo, hi] = this.varint64()
    const sign = -(lo & 1)
    const zlo = ((lo >>> 1) | (hi << 31)) ^ sign
    const zhi = (hi >>> 1) ^ sign
    return join64(zlo >>> 0, zhi | 0)
  }

  bool(): boolean {
    return this.uint32() !== 0
  }

  fixed32(): number {
    return this.view.getUint32(this.advance(4), true)
  }

  sfixed32(): number {
    return this.view.getInt32(this.advance(4), true)
  }

  fixed64(): number {
    const at = this.advance(8)
    return join64(this.view.getUint32(at, true), this.view.getUint32(at + 4, true))
  }

  sfixed64(): number {
    const at = this.advance(8)
    return join64(this.view.getUint32(at, true), this.view.getInt32(at + 4, true))
  }

  float(): number {
    return this.view.getFloat32(this.advance(4), true)
  }

  double(): number {
    return this.view.getFloat64(this.advance(8), true)
  }

  string(): string {
    const end = this.limit()
    const start = this.pos
    this.pos = end
    try {
      return ProtoReader.utf8.decode(this.buf.subarray(start, end))
    } catch {
      throw new ProtoDecodeError(`invalid UTF-8 in a string field at offset ${start}`)
    }
  }

  bytes(): Uint8Array {
    const end = this.limit()
    const start = this.pos
    this.pos = end
    return this.buf.subarray(start, end)
  }

  /** Skips a field of the given wire type (the key has been read). */
  skip(wireType: number): void {
    switch (wireType) {
      case WireType.VARINT:
        this.varint64()
        return
      case WireType.I64:
        this.advance(8)
        return
      case WireType.LEN:
        this.pos = this.limit()
        return
      case WireType.SGROUP:
        for (;;) {
          const key = this.uint32()
          if ((key & 7) === WireType.EGROUP) return
          this.skip(key & 7)
        }
      case WireType.I32:
        this.advance(4)
        return
      default:
        throw new ProtoDecodeError(`invalid wire type ${wireType} at offset ${this.pos}`)
    }
  }

  private advance(n: number): number {
    const at = this.pos
    if (at + n > this.end) throw new ProtoDecodeError('truncated fixed-width field')
    this.pos = at + n
    return at
  }

  private varint64(): [number, number] {
    let lo = 0
    let hi = 0
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtoDecodeError('truncated varint')
      const byte = this.buf[this.pos++]!
      if (i < 4) lo |= (byte & 0x7f) << (i * 7)
      else if (i === 4) {
        lo |= (byte & 0x0f) << 28
        hi |= (byte & 0x7f) >> 4
      } else hi |= (byte & 0x7f) << (i * 7 - 32)
      if (byte < 0x80) return [lo >>> 0, hi >>> 0]
    }
    throw new ProtoDecodeError('varint longer than 10 bytes')
  }
}

/** `hi` is signed for the signed types and unsigned otherwise. */
function join64(lo: number, hi: number): number {
  const value = hi * TWO_32 + lo
  if (!Number.isSafeInteger(value)) throw new ProtoDecodeError(`64-bit integer ${hi < 0 ? '<' : '>'} 2^53 does not fit a JavaScript number`)
  return value
}

/** Encoder and decoder of one message type; generated for every message. */
export interface MessageCodec<T> {
  /** Full protobuf name, e.g. `tfplugin6.DynamicValue`. */
  readonly typeName: string
  /** Appends the message's fields to `writer` (a new one when omitted) and returns it. */
  encode(message: MessageInit<T>, writer?: ProtoWriter): ProtoWriter
  /** Decodes a whole buffer, or `length` bytes of a reader (a nested message). Absent fields get their defaults. */
  decode(input: ProtoReader | Uint8Array, length?: number): T
}

/**
 * What an encoder accepts for a message of type `T`: every field may be left out (or null) and is then not
 * written, which for proto3 scalars is the same as the default value.
 */
export type MessageInit<T> = { [K in keyof T]?: InitValue<T[K]> | null }

type InitValue<V> = V extends Uint8Array
  ? V
  : V extends readonly (infer E)[]
    ? readonly InitValue<E>[]
    : V extends object
      ? MessageInit<V>
      : V

/** Encodes a message to bytes. */
export function encodeMessage<T>(codec: MessageCodec<T>, message: MessageInit<T>): Buffer {
  return codec.encode(message).finish()
}

/** Decodes a whole buffer as one message. */
export function decodeMessage<T>(codec: MessageCodec<T>, bytes: Uint8Array): T {
  return codec.decode(bytes)
}

/** One RPC of a generated service table. */
export interface MethodDefinition<Req, Res> {
  /** The gRPC path, e.g. `/tfplugin6.Provider/GetProviderSchema`. */
  readonly path: string
  readonly requestStream: boolean
  readonly responseStream: boolean
  readonly request: MessageCodec<Req>
  readonly response: MessageCodec<Res>
}

/** The request type of a method definition. */
export type RequestOf<M> = M extends MethodDefinition<infer Req, unknown> ? Req : never
/** The response type of a method definition. */
export type ResponseOf<M> = M extends MethodDefinition<unknown, infer Res> ? Res : never

/** The default of a `bytes` field (shared: a zero-length array cannot be changed). */
export const EMPTY_BYTES: Uint8Array = new Uint8Array(0)

/** A reader for a decoder's input: a whole buffer, or a reader positioned at a nested message. */
export function readerOf(input: ProtoReader | Uint8Array): ProtoReader {
  return input instanceof ProtoReader ? input : new ProtoReader(input)
}

/** Where a message that starts at the reader's position ends: `length` bytes on, or the end of the data. */
export function messageEnd(reader: ProtoReader, length: number | undefined): number {
  if (length === undefined) return reader.end
  const end = reader.pos + length
  if (end > reader.end) throw new ProtoDecodeError(`length ${length} at offset ${reader.pos} runs past the end of the data`)
  return end
}

/** Checks that a decoder stopped exactly at the end of its message (a field ran past it otherwise). */
export function checkMessageEnd(reader: ProtoReader, end: number, typeName: string): void {
  if (reader.pos !== end) throw new ProtoDecodeError(`${typeName}: a field runs past the end of the message`)
}

/** Builds a {@link MethodDefinition}; the generated service tables use it so the types follow from the codecs. */
export function defineMethod<Req, Res>(
  path: string,
  requestStream: boolean,
  responseStream: boolean,
  request: MessageCodec<Req>,
  response: MessageCodec<Res>,
): MethodDefinition<Req, Res> {
  return { path, requestStream, responseStream, request, response }
}
