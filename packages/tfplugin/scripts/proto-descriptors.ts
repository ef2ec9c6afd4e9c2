/**
 * The protocol definitions embedded in the terraform binary, and their comparison with ours.
 *
 * Go's protobuf runtime keeps every compiled `.proto` file as a serialized `google.protobuf.FileDescriptorProto` in
 * the binary. Such a descriptor starts with field 1 (`name`): the key byte 0x0a, the name's length, then the name
 * (`tfplugin6.proto`, `internal/plugin/grpc_stdio.proto`). We find that prefix, walk the descriptor's top-level
 * fields to learn where it ends, decode it, and reduce both it and our parsed `.proto` to one neutral model
 * ({@link FileModel}) that is compared field by field.
 */
import descriptorRoot from 'protobufjs/ext/descriptor/index.js'
import protobuf from 'protobufjs'
import { mapKeyType, type LoadedProtos, type ProtoSource } from './proto-sources.js'

// ---------------------------------------------------------------------------------------------------------------
// The neutral model

export interface FieldModel {
  readonly name: string
  readonly number: number
  /** `LABEL_OPTIONAL` / `LABEL_REPEATED` / `LABEL_REQUIRED`. */
  readonly label: string
  /** `TYPE_STRING`, `TYPE_MESSAGE`, … */
  readonly type: string
  /** Fully qualified with a leading dot for messages and enums, else empty. */
  readonly typeName: string
  /** The containing oneof (a synthetic `_name` one for proto3 `optional`), else empty. */
  readonly oneof: string
  readonly proto3Optional: boolean
  readonly deprecated: boolean
}

export interface MessageModel {
  readonly fields: ReadonlyMap<number, FieldModel>
  readonly mapEntry: boolean
}

export interface MethodModel {
  readonly input: string
  readonly output: string
  readonly clientStreaming: boolean
  readonly serverStreaming: boolean
}

export interface FileModel {
  readonly package: string
  readonly syntax: string
  readonly dependencies: readonly string[]
  /** Keyed by full name without the leading dot, nested messages and map entries included. */
  readonly messages: ReadonlyMap<string, MessageModel>
  readonly enums: ReadonlyMap<string, ReadonlyMap<string, number>>
  /** Keyed by `Service/Method`. */
  readonly methods: ReadonlyMap<string, MethodModel>
}

// ---------------------------------------------------------------------------------------------------------------
// Finding descriptors in a binary

export interface EmbeddedDescriptor {
  /** The file name recorded in the descriptor. */
  readonly name: string
  /** Byte offset of the descriptor in the binary. */
  readonly offset: number
  readonly bytes: Uint8Array
}

/** FileDescriptorProto's fields: number → wire type (2 = length-delimited, 0 = varint). */
const FILE_DESCRIPTOR_FIELDS = new Map<number, number>([
  [1, 2], [2, 2], [3, 2], [4, 2], [5, 2], [6, 2], [7, 2], [8, 2], [9, 2], [10, 0], [11, 0], [12, 2], [13, 2], [14, 0],
])

function readVarint(buf: Uint8Array, pos: number): [value: number, next: number] | undefined {
  let value = 0
  for (let shift = 0; shift < 64 && pos < buf.length; shift += 7) {
    const byte = buf[pos++]!
    value += (byte & 0x7f) * 2 ** shift
    if (byte < 0x80) return [value, pos]
  }
  return undefined
}

/**
 * The length of the FileDescriptorProto starting at `start`: its top-level fields are walked while they are
 * FileDescriptorProto fields in ascending order (Go writes them in field-number order), which stops at the first
 * byte that does not continue the descriptor — typically the `0x0a` that starts the next one.
 */
function descriptorLength(buf: Uint8Array, start: number): number {
  let pos = start
  let last = 0
  while (pos < buf.length) {
    const key = readVarint(buf, pos)
    if (!key) break
    const field = Math.floor(key[0] / 8)
    const wireType = key[0] % 8
    if (FILE_DESCRIPTOR_FIELDS.get(field) !== wireType || field < last || (field === 1 && last === 1)) break
    let next: number
    if (wireType === 2) {
      const length = readVarint(buf, key[1])
      if (!length || length[1] + length[0] > buf.length) break
      next = length[1] + length[0]
    } else {
      const value = readVarint(buf, key[1])
      if (!value) break
      next = value[1]
    }
    last = field
    pos = next
  }
  return pos - start
}

type DescriptorObject = Record<string, unknown>
// protobufjs's descriptor extension is a reflected Root with the descriptor.proto types as members.
const FileDescriptorProto = (descriptorRoot as unknown as { FileDescriptorProto: protobuf.Type }).FileDescriptorProto

/** Decodes a serialized FileDescriptorProto into a plain object (camelCase keys, enums as names). */
export function decodeFileDescriptor(bytes: Uint8Array): DescriptorObject {
  return FileDescriptorProto.toObject(FileDescriptorProto.decode(bytes), { enums: String, defaults: false })
}

/**
 * Finds the FileDescriptorProto whose file name is `fileName` or ends with `/fileName`. Returns the first
 * occurrence that decodes as a descriptor with that name, or undefined.
 */
export function findEmbeddedDescriptor(binary: Uint8Array, fileName: string): EmbeddedDescriptor | undefined {
  const buf = Buffer.from(binary.buffer, binary.byteOffset, binary.byteLength)
  const needle = Buffer.from(fileName, 'utf8')
  for (let at = buf.indexOf(needle); at !== -1; at = buf.indexOf(needle, at + 1)) {
    const nameEnd = at + needle.length
    // The full name is `fileName` or `<dirs>/fileName`; its length byte sits right before it, after 0x0a.
    for (let length = needle.length; length < 128; length++) {
      const start = nameEnd - length - 2
      if (start < 0) break
      if (buf[start] !== 0x0a || buf[start + 1] !== length) continue
      const name = buf.toString('latin1', start + 2, nameEnd)
      if (!/^[\w./-]+$/.test(name) || !(name === fileName || name.endsWith(`/${fileName}`))) continue
      const bytes = buf.subarray(start, start + descriptorLength(buf, start))
      try {
        const decoded = decodeFileDescriptor(bytes)
        if (decoded.name === name && typeof decoded.package === 'string') return { name, offset: start, bytes }
      } catch {
        // not a descriptor after all; keep looking
      }
    }
  }
  return undefined
}

// ---------------------------------------------------------------------------------------------------------------
// Model from a decoded descriptor

interface FieldDescriptor {
  name: string
  number: number
  label?: string
  type?: string
  typeName?: string
  oneofIndex?: number
  proto3Optional?: boolean
  options?: { deprecated?: boolean }
}
interface MessageDescriptor {
  name: string
  field?: FieldDescriptor[]
  nestedType?: MessageDescriptor[]
  enumType?: EnumDescriptor[]
  oneofDecl?: { name: string }[]
  options?: { mapEntry?: boolean }
}
interface EnumDescriptor {
  name: string
  value?: { name: string; number?: number }[]
}
interface ServiceDescriptor {
  name: string
  method?: { name: string; inputType: string; outputType: string; clientStreaming?: boolean; serverStreaming?: boolean }[]
}

export function modelFromDescriptor(d: DescriptorObject): FileModel {
  const pkg = typeof d.package === 'string' ? d.package : ''
  const messages = new Map<string, MessageModel>()
  const enums = new Map<string, ReadonlyMap<string, number>>()
  const methods = new Map<string, MethodModel>()
  const prefix = pkg ? `${pkg}.` : ''

  const addEnum = (scope: string, e: EnumDescriptor): void => {
    enums.set(`${scope}${e.name}`, new Map((e.value ?? []).map((v) => [v.name, v.number ?? 0])))
  }
  const addMessage = (scope: string, m: MessageDescriptor): void => {
    const fullName = `${scope}${m.name}`
    const oneofs = (m.oneofDecl ?? []).map((o) => o.name)
    const fields = new Map<number, FieldModel>()
    for (const f of m.field ?? []) {
      fields.set(f.number, {
        name: f.name,
        number: f.number,
        label: f.label ?? 'LABEL_OPTIONAL',
        type: f.type ?? '',
        typeName: f.typeName ?? '',
        oneof: f.oneofIndex === undefined ? '' : (oneofs[f.oneofIndex] ?? `#${f.oneofIndex}`),
        proto3Optional: f.proto3Optional === true,
        deprecated: f.options?.deprecated === true,
      })
    }
    messages.set(fullName, { fields, mapEntry: m.options?.mapEntry === true })
    for (const nested of m.nestedType ?? []) addMessage(`${fullName}.`, nested)
    for (const e of m.enumType ?? []) addEnum(`${fullName}.`, e)
  }

  for (const m of (d.messageType ?? []) as MessageDescriptor[]) addMessage(prefix, m)
  for (const e of (d.enumType ?? []) as EnumDescriptor[]) addEnum(prefix, e)
  for (const s of (d.service ?? []) as ServiceDescriptor[]) {
    for (const m of s.method ?? []) {
      methods.set(`${prefix}${s.name}/${m.name}`, {
        input: m.inputType,
        output: m.outputType,
        clientStreaming: m.clientStreaming === true,
        serverStreaming: m.serverStreaming === true,
      })
    }
  }
  return {
    package: pkg,
    syntax: typeof d.syntax === 'string' ? d.syntax : 'proto2',
    dependencies: (d.dependency ?? []) as string[],
    messages,
    enums,
    methods,
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Model from our parsed .proto

/** protoc's name for the entry message of a map field: `resource_schemas` → `ResourceSchemasEntry`. */
export function mapEntryName(fieldName: string): string {
  const camel = fieldName.replace(/_+([a-zA-Z0-9])/g, (_, c: string) => c.toUpperCase())
  return `${camel.charAt(0).toUpperCase()}${camel.slice(1)}Entry`
}

const SCALAR_TYPES = new Set([
  'double', 'float', 'int64', 'uint64', 'int32', 'fixed64', 'fixed32', 'bool', 'string', 'bytes', 'uint32',
  'sfixed32', 'sfixed64', 'sint32', 'sint64',
])

function typeOf(field: protobuf.Field): { type: string; typeName: string } {
  if (SCALAR_TYPES.has(field.type)) return { type: `TYPE_${field.type.toUpperCase()}`, typeName: '' }
  const resolved = field.resolvedType
  if (resolved instanceof protobuf.Enum) return { type: 'TYPE_ENUM', typeName: resolved.fullName }
  if (resolved instanceof protobuf.Type) return { type: 'TYPE_MESSAGE', typeName: resolved.fullName }
  throw new Error(`field ${field.fullName}: unresolved type ${field.type}`)
}

function scalarField(name: string, number: number, type: string): FieldModel {
  const t = SCALAR_TYPES.has(type) ? { type: `TYPE_${type.toUpperCase()}`, typeName: '' } : undefined
  if (!t) throw new Error(`map key type ${type} is not a scalar`)
  return { name, number, label: 'LABEL_OPTIONAL', ...t, oneof: '', proto3Optional: false, deprecated: false }
}

export function modelFromProtos(loaded: LoadedProtos, source: ProtoSource): FileModel {
  const filename = loaded.filenames.get(source.path)
  const header = loaded.headers.get(source.path)
  if (filename === undefined || header === undefined) throw new Error(`${source.path} was not loaded`)
  const messages = new Map<string, MessageModel>()
  const enums = new Map<string, ReadonlyMap<string, number>>()
  const methods = new Map<string, MethodModel>()
  const strip = (fullName: string): string => fullName.replace(/^\./, '')

  const visit = (ns: protobuf.NamespaceBase): void => {
    for (const item of ns.nestedArray) {
      if (item instanceof protobuf.Type) {
        if (item.filename === filename) addType(item)
        else visit(item)
      } else if (item instanceof protobuf.Enum) {
        if (item.filename === filename) enums.set(strip(item.fullName), new Map(Object.entries(item.values)))
      } else if (item instanceof protobuf.Service) {
        if (item.filename === filename) {
          for (const m of item.methodsArray) {
            m.resolve()
            methods.set(`${strip(item.fullName)}/${m.name}`, {
              input: m.resolvedRequestType?.fullName ?? m.requestType,
              output: m.resolvedResponseType?.fullName ?? m.responseType,
              clientStreaming: m.requestStream === true,
              serverStreaming: m.responseStream === true,
            })
          }
        }
      } else if (item instanceof protobuf.Namespace) {
        visit(item)
      }
    }
  }

  const addType = (type: protobuf.Type): void => {
    const fullName = strip(type.fullName)
    const fields = new Map<number, FieldModel>()
    for (const field of type.fieldsArray) {
      const common = { name: field.name, number: field.id, deprecated: field.options?.deprecated === true }
      if (field.map) {
        const entry = mapEntryName(field.name)
        const value = typeOf(field)
        const keyType = mapKeyType(field)
        messages.set(`${fullName}.${entry}`, {
          mapEntry: true,
          fields: new Map([
            [1, scalarField('key', 1, keyType)],
            [2, { name: 'value', number: 2, label: 'LABEL_OPTIONAL', ...value, oneof: '', proto3Optional: false, deprecated: false }],
          ]),
        })
        fields.set(field.id, { ...common, label: 'LABEL_REPEATED', type: 'TYPE_MESSAGE', typeName: `.${fullName}.${entry}`, oneof: '', proto3Optional: false })
        continue
      }
      fields.set(field.id, {
        ...common,
        label: field.repeated ? 'LABEL_REPEATED' : field.required ? 'LABEL_REQUIRED' : 'LABEL_OPTIONAL',
        ...typeOf(field),
        oneof: field.partOf?.name ?? '',
        proto3Optional: field.options?.proto3_optional === true,
      })
    }
    messages.set(fullName, { fields, mapEntry: false })
    visit(type)
  }

  visit(loaded.root)
  return { package: header.package, syntax: header.syntax, dependencies: header.imports, messages, enums, methods }
}

// ---------------------------------------------------------------------------------------------------------------
// Comparison

function describeField(f: FieldModel): string {
  const label = f.label.replace('LABEL_', '').toLowerCase()
  const type = f.typeName || f.type.replace('TYPE_', '').toLowerCase()
  const extras = [f.oneof && !f.proto3Optional ? `oneof ${f.oneof}` : '', f.proto3Optional ? 'proto3 optional' : '', f.deprecated ? 'deprecated' : '']
  return [`${label} ${type} ${f.name} = ${f.number}`, ...extras.filter(Boolean)].join(', ')
}

/**
 * Every difference between terraform's definition (`expected`) and ours (`actual`), one readable line each;
 * empty when they agree on every message, field (name, number, label, type, type name, oneof, proto3
 * `optional`, `deprecated`), enum value and RPC.
 */
export function diffModels(expected: FileModel, actual: FileModel): string[] {
  const out: string[] = []
  if (expected.package !== actual.package) out.push(`package: terraform has "${expected.package}", ours "${actual.package}"`)
  if (expected.syntax !== actual.syntax) out.push(`syntax: terraform has "${expected.syntax}", ours "${actual.syntax}"`)
  const deps = (d: readonly string[]): string => [...d].sort().join(', ')
  if (deps(expected.dependencies) !== deps(actual.dependencies)) out.push(`imports: terraform has [${deps(expected.dependencies)}], ours [${deps(actual.dependencies)}]`)

  for (const [name, msg] of expected.messages) {
    const ours = actual.messages.get(name)
    if (!ours) {
      out.push(`message ${name}: missing in ours (terraform: ${[...msg.fields.values()].map(describeField).join('; ') || 'no fields'})`)
      continue
    }
    if (msg.mapEntry !== ours.mapEntry) out.push(`message ${name}: map entry in ${msg.mapEntry ? 'terraform' : 'ours'} only`)
    for (const [number, field] of msg.fields) {
      const mine = ours.fields.get(number)
      if (!mine) {
        out.push(`field ${name}.${field.name} (${number}): missing in ours (terraform: ${describeField(field)})`)
        continue
      }
      const keys = ['name', 'label', 'type', 'typeName', 'oneof', 'proto3Optional', 'deprecated'] as const
      for (const key of keys) {
        if (field[key] !== mine[key]) {
          out.push(`field ${name}.${field.name} (${number}): ${key}: terraform ${JSON.stringify(field[key])}, ours ${JSON.stringify(mine[key])}`)
        }
      }
    }
    for (const [number, field] of ours.fields) {
      if (!msg.fields.has(number)) out.push(`field ${name}.${field.name} (${number}): not in terraform (ours: ${describeField(field)})`)
    }
  }
  for (const name of actual.messages.keys()) {
    if (!expected.messages.has(name)) out.push(`message ${name}: not in terraform`)
  }

  for (const [name, values] of expected.enums) {
    const ours = actual.enums.get(name)
    if (!ours) {
      out.push(`enum ${name}: missing in ours (terraform: ${[...values].map(([k, v]) => `${k} = ${v}`).join(', ')})`)
      continue
    }
    for (const [value, number] of values) {
      if (ours.get(value) !== number) out.push(`enum ${name}.${value}: terraform ${number}, ours ${ours.get(value) ?? 'missing'}`)
    }
    for (const value of ours.keys()) if (!values.has(value)) out.push(`enum ${name}.${value}: not in terraform`)
  }
  for (const name of actual.enums.keys()) if (!expected.enums.has(name)) out.push(`enum ${name}: not in terraform`)

  const describeMethod = (m: MethodModel): string =>
    `(${m.clientStreaming ? 'stream ' : ''}${m.input}) returns (${m.serverStreaming ? 'stream ' : ''}${m.output})`
  for (const [name, method] of expected.methods) {
    const ours = actual.methods.get(name)
    if (!ours) out.push(`rpc ${name}: missing in ours (terraform: ${describeMethod(method)})`)
    else if (describeMethod(ours) !== describeMethod(method)) out.push(`rpc ${name}: terraform ${describeMethod(method)}, ours ${describeMethod(ours)}`)
  }
  for (const name of actual.methods.keys()) if (!expected.methods.has(name)) out.push(`rpc ${name}: not in terraform`)
  return out
}
