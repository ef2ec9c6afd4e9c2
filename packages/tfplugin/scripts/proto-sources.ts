/**
 * Our hand-written `.proto` files and how to load them, shared by `gen-proto.ts` (code generation),
 * `verify-proto.ts` (comparison with the terraform binary) and the tests. Uses protobufjs's parser, a build-time
 * dependency only: the provider never parses `.proto` at run time.
 */
import { readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import protobuf from 'protobufjs'

/** The package root (`packages/tfplugin`). */
export const PACKAGE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..')
export const PROTO_DIR = join(PACKAGE_DIR, 'src', 'proto')
export const GENERATED_DIR = join(PROTO_DIR, 'generated')

/** One `.proto` file of ours, and the name under which terraform embeds its descriptor. */
export interface ProtoSource {
  /** Path relative to `src/proto/`, e.g. `plugin/grpc_stdio.proto`. */
  readonly path: string
  /** The file's name in the embedded descriptor ends with this (`internal/plugin/grpc_stdio.proto`). */
  readonly embeddedName: string
  /** The generated module, relative to `src/proto/generated/`. */
  readonly module: string
}

export const PROTO_SOURCES: readonly ProtoSource[] = [
  { path: 'tfplugin6.proto', embeddedName: 'tfplugin6.proto', module: 'tfplugin6.ts' },
  { path: 'plugin/grpc_controller.proto', embeddedName: 'grpc_controller.proto', module: 'grpc_controller.ts' },
  { path: 'plugin/grpc_stdio.proto', embeddedName: 'grpc_stdio.proto', module: 'grpc_stdio.ts' },
  { path: 'plugin/grpc_broker.proto', embeddedName: 'grpc_broker.proto', module: 'grpc_broker.ts' },
]

/** The header of a `.proto` file, which protobufjs's `Root` does not keep per file. */
export interface ProtoHeader {
  readonly package: string
  readonly syntax: string
  readonly imports: readonly string[]
}

export interface LoadedProtos {
  readonly root: protobuf.Root
  /** Keyed by {@link ProtoSource.path}. */
  readonly headers: ReadonlyMap<string, ProtoHeader>
  /** The `filename` protobufjs records on reflection objects, for each source path. */
  readonly filenames: ReadonlyMap<string, string>
}

/**
 * Parses all our `.proto` files into one resolved protobufjs root, with field names kept exactly as written
 * (`keepCase`: protobufjs camel-cases them otherwise). `google/protobuf/*.proto` come from protobufjs's copies.
 */
export function loadProtos(protoDir = PROTO_DIR): LoadedProtos {
  const root = new protobuf.Root()
  const files = PROTO_SOURCES.map((s) => join(protoDir, s.path))
  root.loadSync(files, { keepCase: true, alternateCommentMode: true })
  root.resolveAll()
  const headers = new Map<string, ProtoHeader>()
  const filenames = new Map<string, string>()
  for (const source of PROTO_SOURCES) {
    const file = join(protoDir, source.path)
    const text = readFileSync(file, 'utf8')
    const parsed = protobuf.parse(text, { keepCase: true })
    headers.set(source.path, {
      package: parsed.package ?? '',
      // protobufjs 7 no longer reports the syntax statement; it is one line to read.
      syntax: /^\s*syntax\s*=\s*"(proto[23])"\s*;/m.exec(text)?.[1] ?? 'proto2',
      imports: [...(parsed.imports ?? []), ...(parsed.weakImports ?? [])],
    })
    // protobufjs records the path as it was given to loadSync.
    filenames.set(source.path, file)
  }
  return { root, headers, filenames }
}

/** The key type of a map field (`string` for `map<string, Schema>`). */
export function mapKeyType(field: protobuf.Field): string {
  if (field instanceof protobuf.MapField) return field.keyType
  throw new Error(`${field.fullName} is not a map field`)
}

/** `relative()` for messages: paths in output are shown relative to the package. */
export function displayPath(file: string): string {
  return relative(PACKAGE_DIR, file)
}
