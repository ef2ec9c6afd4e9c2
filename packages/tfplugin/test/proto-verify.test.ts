/**
 * The proto checks: the committed generated code matches the generator's output for our `.proto` files, and our
 * `.proto` files match the descriptors compiled into the terraform binary on PATH (what `npm run verify-proto`
 * runs in CI), with a readable difference when they do not.
 */
import { accessSync, constants, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { staleGeneratedFiles } from '../scripts/gen-proto.js'
import { decodeFileDescriptor, diffModels, findEmbeddedDescriptor, mapEntryName, modelFromDescriptor, modelFromProtos } from '../scripts/proto-descriptors.js'
import { loadProtos, PROTO_DIR, PROTO_SOURCES } from '../scripts/proto-sources.js'

function terraformBinary(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    try {
      accessSync(join(dir, 'terraform'), constants.X_OK)
      return join(dir, 'terraform')
    } catch {
      // keep looking
    }
  }
  return undefined
}

const scratch: string[] = []
afterAll(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true })
})

/** A copy of our .proto files with one edit applied to tfplugin6.proto. */
function editedProtoDir(edit: (text: string) => string): string {
  const dir = mkdtempSync(join(tmpdir(), 'tfplugin-proto-'))
  scratch.push(dir)
  cpSync(PROTO_DIR, dir, { recursive: true })
  const file = join(dir, 'tfplugin6.proto')
  const before = readFileSync(file, 'utf8')
  const after = edit(before)
  expect(after).not.toBe(before)
  writeFileSync(file, after)
  return dir
}

describe('generated code', () => {
  it('is up to date with the .proto files', () => {
    expect(staleGeneratedFiles()).toEqual([])
  })

  it('is reported stale after a .proto change', () => {
    const dir = editedProtoDir((t) => t.replace('bool write_only = 11;', 'bool write_only = 11;\n    bool extra = 12;'))
    expect(staleGeneratedFiles(loadProtos(dir))).toEqual(['src/proto/generated/tfplugin6.ts'])
  })
})

describe('mapEntryName', () => {
  it("follows protoc's naming", () => {
    expect(mapEntryName('resource_schemas')).toBe('ResourceSchemasEntry')
    expect(mapEntryName('flatmap')).toBe('FlatmapEntry')
  })
})

const terraform = terraformBinary()
describe.skipIf(!terraform)('our .proto files against the terraform binary', () => {
  const binary = terraform ? readFileSync(terraform) : Buffer.alloc(0)
  const embedded = new Map(PROTO_SOURCES.map((s) => [s.path, findEmbeddedDescriptor(binary, s.embeddedName)]))

  it('finds all four descriptors', () => {
    expect([...embedded.values()].map((d) => d?.name)).toEqual([
      'tfplugin6.proto',
      'internal/plugin/grpc_controller.proto',
      'internal/plugin/grpc_stdio.proto',
      'internal/plugin/grpc_broker.proto',
    ])
  })

  it('has no differences: every message, field, enum and RPC matches', () => {
    const loaded = loadProtos()
    for (const source of PROTO_SOURCES) {
      const theirs = modelFromDescriptor(decodeFileDescriptor(embedded.get(source.path)!.bytes))
      expect(diffModels(theirs, modelFromProtos(loaded, source)), source.path).toEqual([])
    }
    const tf = modelFromDescriptor(decodeFileDescriptor(embedded.get('tfplugin6.proto')!.bytes))
    expect([...tf.messages.values()].filter((m) => !m.mapEntry)).toHaveLength(82)
    expect(tf.methods.size).toBe(20)
    expect(tf.methods.has('tfplugin6.Provider/GetResourceIdentitySchemas')).toBe(false)
  })

  it('reports a wrong type, a renamed message and a missing RPC readably', () => {
    const dir = editedProtoDir((t) =>
      t
        .replace('optional google.protobuf.Timestamp renew_at = 2;\n    DynamicValue result = 3;', 'optional int64 renew_at = 2;\n    DynamicValue result = 3;')
        .replace(/message EphemeralMetadata \{/, 'message EphemeralResourceMetadata {')
        .replace(/repeated EphemeralMetadata ephemeral_resources/, 'repeated EphemeralResourceMetadata ephemeral_resources')
        .replace(/ {2}rpc StopProvider\(.*\n/, ''),
    )
    const source = PROTO_SOURCES[0]!
    const theirs = modelFromDescriptor(decodeFileDescriptor(embedded.get(source.path)!.bytes))
    const diff = diffModels(theirs, modelFromProtos(loadProtos(dir), source))
    expect(diff).toEqual(
      expect.arrayContaining([
        'field tfplugin6.OpenEphemeralResource.Response.renew_at (2): type: terraform "TYPE_MESSAGE", ours "TYPE_INT64"',
        'field tfplugin6.OpenEphemeralResource.Response.renew_at (2): typeName: terraform ".google.protobuf.Timestamp", ours ""',
        'message tfplugin6.GetMetadata.EphemeralMetadata: missing in ours (terraform: optional string type_name = 1)',
        'message tfplugin6.GetMetadata.EphemeralResourceMetadata: not in terraform',
        'rpc tfplugin6.Provider/StopProvider: missing in ours (terraform: (.tfplugin6.StopProvider.Request) returns (.tfplugin6.StopProvider.Response))',
      ]),
    )
  })
})
