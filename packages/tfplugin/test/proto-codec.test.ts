/**
 * The generated codecs and the wire runtime, checked against protobufjs (reflection over the same `.proto`
 * files) as an independent implementation: bytes written by one must decode to the same message in the other.
 */
import protobuf from 'protobufjs'
import { describe, expect, it } from 'vitest'
import {
  AttributePath_Step,
  Diagnostic_Severity,
  GetProviderSchema_Response,
  OpenEphemeralResource_Response,
  RawState,
  Schema_NestedBlock_NestingMode,
  StringKind,
  UpgradeResourceState_Request,
} from '../src/proto/generated/tfplugin6.js'
import { ProtoDecodeError, ProtoReader, ProtoWriter, type MessageInit } from '../src/proto/wire.js'
import { loadProtos } from '../scripts/proto-sources.js'

const { root } = loadProtos()
const reflected = (name: string): protobuf.Type => root.lookupType(name)
const plain = (type: protobuf.Type, bytes: Uint8Array): Record<string, unknown> =>
  type.toObject(type.decode(bytes), { longs: Number, bytes: Array, defaults: true, oneofs: false })

const stringType = Buffer.from('"string"')
const schemaResponse: MessageInit<GetProviderSchema_Response> = {
  provider: { version: 0, block: { attributes: [{ name: 'org', type: stringType, optional: true, description: 'ü ✓ 𝄞' }] } },
  resource_schemas: {
    sym_flow: {
      version: 3,
      block: {
        version: 3,
        description: 'A flow. '.repeat(40), // nested lengths above 127 and 16383 bytes below
        description_kind: StringKind.MARKDOWN,
        attributes: [
          { name: 'id', type: stringType, computed: true },
          { name: 'name', type: stringType, required: true, sensitive: true, write_only: false },
          {
            name: 'params',
            nested_type: { nesting: 2, attributes: [{ name: 'k', type: stringType, optional: true }] },
            optional: true,
          },
        ],
        block_types: [
          {
            type_name: 'rule',
            nesting: Schema_NestedBlock_NestingMode.LIST,
            min_items: 0,
            max_items: 9_007_199_254_740_991,
            block: { attributes: Array.from({ length: 300 }, (_, i) => ({ name: `a${i}`, type: stringType, optional: true })) },
          },
        ],
      },
    },
    ['__proto__']: { version: 1 },
  },
  diagnostics: [{ severity: Diagnostic_Severity.WARNING, summary: 's', detail: 'd', attribute: { steps: [{ attribute_name: 'a' }, { element_key_int: -1 }, { element_key_string: '' }] } }],
  server_capabilities: { plan_destroy: true, get_provider_schema_optional: true },
  functions: { f: { parameters: [{ name: 'x', type: stringType, allow_null_value: true }], return: { type: stringType }, summary: 'f' } },
}

describe('generated codecs', () => {
  it('encode what protobufjs decodes, and decode what protobufjs encodes', () => {
    const ours = GetProviderSchema_Response.encode(schemaResponse).finish()
    const type = reflected('tfplugin6.GetProviderSchema.Response')
    const theirs = type.encode(type.fromObject(schemaResponse)).finish()
    expect(plain(type, ours)).toEqual(plain(type, theirs))

    const decoded = GetProviderSchema_Response.decode(theirs)
    expect(GetProviderSchema_Response.decode(ours)).toEqual(decoded)
    const flow = decoded.resource_schemas.sym_flow!
    expect(flow.version).toBe(3)
    expect(flow.block?.block_types[0]?.max_items).toBe(9_007_199_254_740_991)
    expect(flow.block?.block_types[0]?.block?.attributes).toHaveLength(300)
    expect(decoded.provider?.block?.attributes[0]?.description).toBe('ü ✓ 𝄞')
    expect(decoded.diagnostics[0]?.attribute?.steps).toEqual([{ attribute_name: 'a' }, { element_key_int: -1 }, { element_key_string: '' }])
  })

  it('decodes maps into null-prototype objects (a "__proto__" key is just a key)', () => {
    const decoded = GetProviderSchema_Response.decode(GetProviderSchema_Response.encode(schemaResponse).finish())
    expect(Object.getPrototypeOf(decoded.resource_schemas)).toBeNull()
    expect(Object.keys(decoded.resource_schemas).sort()).toEqual(['__proto__', 'sym_flow'])
    expect(decoded.resource_schemas['__proto__']?.version).toBe(1)
  })

  it('gives absent fields their proto3 defaults, and leaves optional/oneof fields unset', () => {
    expect(UpgradeResourceState_Request.decode(new Uint8Array(0))).toEqual({ type_name: '', version: 0, raw_state: undefined })
    expect(RawState.decode(new Uint8Array(0)).json).toHaveLength(0)
    const open = OpenEphemeralResource_Response.decode(new Uint8Array(0))
    expect('renew_at' in open).toBe(false)
    expect('private' in open).toBe(false)
    expect(AttributePath_Step.decode(new Uint8Array(0))).toEqual({})
  })

  it('writes proto3 optional fields when set, even to their default', () => {
    const bytes = OpenEphemeralResource_Response.encode({ renew_at: { seconds: 0, nanos: 0 }, private: new Uint8Array(0) }).finish()
    expect(Buffer.from(bytes).toString('hex')).toBe('12002200')
    const decoded = OpenEphemeralResource_Response.decode(bytes)
    expect(decoded.renew_at).toEqual({ seconds: 0, nanos: 0 })
    expect(decoded.private).toHaveLength(0)
  })

  it('keeps the last oneof member on the wire', () => {
    const bytes = Buffer.concat([AttributePath_Step.encode({ attribute_name: 'a' }).finish(), AttributePath_Step.encode({ element_key_int: 7 }).finish()])
    expect(AttributePath_Step.decode(bytes)).toEqual({ element_key_int: 7 })
  })

  it('skips unknown fields of every wire type', () => {
    const w = new ProtoWriter()
    w.uint32((99 << 3) | 0).int64(-5)
    w.uint32((98 << 3) | 1).fixed64(1)
    w.uint32((97 << 3) | 2).string('later field')
    w.uint32((96 << 3) | 5).fixed32(1)
    w.uint32((1 << 3) | 2).string('demo_thing')
    expect(UpgradeResourceState_Request.decode(w.finish()).type_name).toBe('demo_thing')
  })

  it('rejects truncated data and lengths past the end', () => {
    const bytes = UpgradeResourceState_Request.encode({ type_name: 'demo_thing', raw_state: { json: Buffer.from('{}') } }).finish()
    expect(() => UpgradeResourceState_Request.decode(bytes.subarray(0, bytes.length - 1))).toThrow(ProtoDecodeError)
    expect(() => UpgradeResourceState_Request.decode(Uint8Array.of(0x0a, 0x05, 0x61))).toThrow(ProtoDecodeError)
    // a nested message whose field runs past the nested length
    expect(() => UpgradeResourceState_Request.decode(Uint8Array.of(0x1a, 0x02, 0x0a, 0x05, 0x61, 0x62, 0x63, 0x64, 0x65))).toThrow(ProtoDecodeError)
  })
})

describe('wire runtime', () => {
  const cases: [method: 'int64' | 'uint64' | 'sint64' | 'int32' | 'sint32' | 'uint32' | 'fixed64' | 'sfixed64', values: number[]][] = [
    ['int64', [0, 1, 127, 128, 300, 2 ** 31, 2 ** 32 + 5, -1, -300, -(2 ** 40), Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER]],
    ['uint64', [0, 1, 2 ** 35, Number.MAX_SAFE_INTEGER]],
    ['sint64', [0, -1, 1, -(2 ** 33), 2 ** 33, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER]],
    ['int32', [0, 1, -1, 2 ** 31 - 1, -(2 ** 31)]],
    ['sint32', [0, -1, 1, 2 ** 31 - 1, -(2 ** 31)]],
    ['uint32', [0, 1, 2 ** 32 - 1]],
    ['fixed64', [0, 1, 2 ** 40 + 3, Number.MAX_SAFE_INTEGER]],
    ['sfixed64', [0, -1, -(2 ** 40), Number.MIN_SAFE_INTEGER]],
  ]

  it.each(cases)('%s matches protobufjs byte for byte and reads back', (method, values) => {
    for (const value of values) {
      const ours = new ProtoWriter()[method](value).finish()
      const theirs = protobuf.Writer.create()
      ;(theirs[method]).call(theirs, value)
      expect(Buffer.from(ours).toString('hex'), `${method}(${value})`).toBe(Buffer.from(theirs.finish()).toString('hex'))
      expect(new ProtoReader(ours)[method](), `${method}(${value})`).toBe(value)
    }
  })

  it('refuses 64-bit values a JavaScript number cannot hold', () => {
    expect(() => new ProtoWriter().int64(2 ** 53)).toThrow(RangeError)
    expect(() => new ProtoWriter().int64(1.5)).toThrow(RangeError)
    const big = protobuf.Writer.create().uint64(protobuf.util.LongBits.fromNumber(2 ** 60).toLong(true)).finish()
    expect(() => new ProtoReader(big).uint64()).toThrow(ProtoDecodeError)
  })

  it('moves a forked section when its length needs more than one byte', () => {
    for (const size of [0, 127, 128, 16_383, 16_384, 2_097_152]) {
      const w = new ProtoWriter(8)
      const mark = w.uint32(10).fork()
      w.bytes(new Uint8Array(size).fill(7))
      w.join(mark)
      const r = new ProtoReader(w.finish())
      expect(r.uint32()).toBe(10)
      const end = r.limit()
      expect(r.bytes()).toHaveLength(size)
      expect(r.pos).toBe(end)
    }
  })

  it('reads floats, doubles and bools as protobufjs writes them', () => {
    const bytes = protobuf.Writer.create().double(Math.PI).float(1.5).bool(true).sfixed32(-7).finish()
    const r = new ProtoReader(bytes)
    expect([r.double(), r.float(), r.bool(), r.sfixed32()]).toEqual([Math.PI, 1.5, true, -7])
  })

  it('rejects invalid UTF-8 in strings', () => {
    expect(() => new ProtoReader(Uint8Array.of(0x02, 0xc3, 0x28)).string()).toThrow(ProtoDecodeError)
  })
})
