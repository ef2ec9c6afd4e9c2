/**
 * `npm run gen:proto -w @opensym/tfplugin`: generates static TypeScript codecs for our `.proto` files into
 * `src/proto/generated/` (committed). `--check` writes nothing and exits 1 when the committed files are stale.
 *
 * For every message the output has an interface with the field names exactly as in the `.proto` (snake_case, as
 * the wire and Terraform's docs name them) and a same-named {@link MessageCodec} constant whose `encode`/`decode`
 * are straight-line code over `../wire.ts` — no reflection and no `.proto` parsing when a provider starts. Every
 * service becomes a table of {@link MethodDefinition}s.
 *
 * Mapping (proto3): string → string, bool → boolean, bytes → Uint8Array, every integer and float type → number
 * (64-bit values outside ±2^53 are rejected), enums → a const object plus a union type of its numbers, a
 * singular message → `T | undefined`, repeated → `T[]`, map<string, V> → `{ [key: string]: V }` (decoded into
 * null-prototype objects), proto3 `optional` and oneof members → optional properties set only when present.
 * Decoded messages carry every other field with its default; encoders take a {@link MessageInit} (all optional).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import protobuf from 'protobufjs'
import { GENERATED_DIR, loadProtos, mapKeyType, PROTO_SOURCES, type LoadedProtos } from './proto-sources.js'

const WELL_KNOWN_MODULE = 'google_protobuf.ts'

type Item = protobuf.Type | protobuf.Enum | protobuf.Service

/** A scalar protobuf type: its TS type, writer/reader method, wire type, default and "is default" test. */
interface Scalar {
  readonly ts: string
  readonly method: string
  readonly wireType: number
  readonly zero: string
  readonly isSet: (expr: string) => string
}

const numberScalar = (method: string, wireType: number): Scalar => ({ ts: 'number', method, wireType, zero: '0', isSet: (e) => `${e} !== 0` })
const SCALARS: Record<string, Scalar> = {
  double: numberScalar('double', 1),
  float: numberScalar('float', 5),
  int32: numberScalar('int32', 0),
  int64: numberScalar('int64', 0),
  uint32: numberScalar('uint32', 0),
  uint64: numberScalar('uint64', 0),
  sint32: numberScalar('sint32', 0),
  sint64: numberScalar('sint64', 0),
  fixed32: numberScalar('fixed32', 5),
  fixed64: numberScalar('fixed64', 1),
  sfixed32: numberScalar('sfixed32', 5),
  sfixed64: numberScalar('sfixed64', 1),
  bool: { ts: 'boolean', method: 'bool', wireType: 0, zero: 'false', isSet: (e) => e },
  string: { ts: 'string', method: 'string', wireType: 2, zero: "''", isSet: (e) => `${e} !== ''` },
  bytes: { ts: 'Uint8Array', method: 'bytes', wireType: 2, zero: 'EMPTY_BYTES', isSet: (e) => `${e}.length > 0` },
}
const ENUM_SCALAR = (ts: string): Scalar => ({ ts, method: 'int32', wireType: 0, zero: '0', isSet: (e) => `${e} !== 0` })

const key = (id: number, wireType: number): number => id * 8 + wireType

/** `tfplugin6.Schema.Block` → `Schema_Block`; `google.protobuf.Timestamp` → `Timestamp`. */
function tsName(item: protobuf.ReflectionObject): string {
  const parts: string[] = []
  for (let at: protobuf.ReflectionObject | null = item; at && !(at instanceof protobuf.Root); at = at.parent) {
    if (at instanceof protobuf.Type || at instanceof protobuf.Enum || at instanceof protobuf.Service) parts.unshift(at.name)
    else break // a package namespace
  }
  return parts.join('_')
}

function fullName(item: protobuf.ReflectionObject): string {
  return item.fullName.replace(/^\./, '')
}

/** A `/** … *\/` comment from a `.proto` comment, if there is one. */
function docComment(comment: string | null | undefined, fallback: string, indent: string): string[] {
  const lines = (comment ?? '').split('\n').map((l) => l.trimEnd())
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop()
  const text = lines.length > 0 && lines.some(Boolean) ? lines : []
  const all = text.length > 0 ? [...text, '', fallback] : [fallback]
  if (all.length === 1) return [`${indent}/** ${all[0]!.replace(/\*\//g, '*\\/')} */`]
  return [`${indent}/**`, ...all.map((l) => (l ? `${indent} * ${l.replace(/\*\//g, '*\\/')}` : `${indent} *`)), `${indent} */`]
}

/** Declaration order, depth first: a message's nested types follow it. */
function collect(ns: protobuf.NamespaceBase, belongs: (item: Item) => boolean, out: Item[]): void {
  for (const item of ns.nestedArray) {
    if (item instanceof protobuf.Type || item instanceof protobuf.Enum || item instanceof protobuf.Service) {
      if (belongs(item)) out.push(item)
    }
    if (item instanceof protobuf.Namespace) collect(item, belongs, out)
  }
}

class ModuleWriter {
  private readonly lines: string[] = []
  /** Imported names by module, each `name` or `name as alias`. */
  private readonly imports = new Map<string, Set<string>>()
  private readonly wireImports = new Set<string>()
  private readonly localNames: Set<string>

  constructor(
    private readonly moduleOf: (item: protobuf.ReflectionObject) => string,
    private readonly module: string,
    items: readonly Item[],
  ) {
    this.localNames = new Set(items.map(tsName))
  }

  wire(name: string): string {
    this.wireImports.add(name)
    return name
  }

  /** The TS identifier for a message or enum, importing it from its module when it lives elsewhere. */
  ref(item: protobuf.Type | protobuf.Enum): string {
    const name = tsName(item)
    const module = this.moduleOf(item)
    if (module === this.module) return name
    const alias = this.localNames.has(name) ? `${fullName(item).split('.')[0]}_${name}` : name
    const set = this.imports.get(module) ?? new Set<string>()
    set.add(alias === name ? name : `${name} as ${alias}`)
    this.imports.set(module, set)
    return alias
  }

  push(...lines: string[]): void {
    this.lines.push(...lines)
  }

  render(header: string[]): string {
    const importLines: string[] = []
    const wire = [...this.wireImports].sort((a, b) => a.localeCompare(b))
    const TYPE_ONLY = new Set(['MessageCodec'])
    if (wire.length > 0) importLines.push(`import { ${wire.map((n) => (TYPE_ONLY.has(n) ? `type ${n}` : n)).join(', ')} } from '../wire.js'`)
    for (const [module, names] of [...this.imports].sort(([a], [b]) => a.localeCompare(b))) {
      importLines.push(`import { ${[...names].sort((a, b) => a.localeCompare(b)).join(', ')} } from './${module.replace(/\.ts$/, '.js')}'`)
    }
    return [...header, ...importLines, '', ...this.lines].join('\n').replace(/\n{3,}/g, '\n\n').trimEnd() + '\n'
  }
}

interface FieldInfo {
  readonly field: protobuf.Field
  readonly name: string
  /** A real oneof member or a proto3 `optional` field: explicit presence, set only when on the wire. */
  readonly presence: boolean
  readonly scalar: Scalar | undefined
  readonly message: protobuf.Type | undefined
}

function fieldInfo(field: protobuf.Field, w: ModuleWriter): FieldInfo {
  field.resolve()
  const resolved = field.resolvedType
  let scalar: Scalar | undefined = SCALARS[field.type]
  let message: protobuf.Type | undefined
  if (!scalar) {
    if (resolved instanceof protobuf.Enum) scalar = ENUM_SCALAR(w.ref(resolved))
    else if (resolved instanceof protobuf.Type) message = resolved
    else throw new Error(`${field.fullName}: unresolved type ${field.type}`)
  }
  return { field, name: field.name, presence: field.partOf !== null, scalar, message }
}

function propertyName(name: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(name) ? name : `'${name}'`
}

function access(name: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(name) ? `.${name}` : `['${name}']`
}

function emitEnum(e: protobuf.Enum, w: ModuleWriter): void {
  const name = tsName(e)
  w.push(...docComment(e.comment, fullName(e), ''))
  w.push(`export const ${name} = {`)
  for (const [valueName, value] of Object.entries(e.values)) w.push(`  ${propertyName(valueName)}: ${value},`)
  w.push('} as const', ...docComment(null, `A value of ${fullName(e)} (open: a decoder passes unknown numbers through).`, ''))
  w.push(`export type ${name} = (typeof ${name})[keyof typeof ${name}]`, '')
}

function emitMessage(type: protobuf.Type, w: ModuleWriter): void {
  const name = tsName(type)
  const fields = type.fieldsArray.slice().sort((a, b) => a.id - b.id).map((f) => fieldInfo(f, w))
  const declared = type.fieldsArray.map((f) => fields.find((i) => i.field === f)!)
  const msgRef = (t: protobuf.Type): string => w.ref(t)

  // --- the interface
  w.push(...docComment(type.comment, fullName(type), ''))
  if (declared.length === 0) {
    w.push(`// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- an empty protobuf message`)
    w.push(`export interface ${name} {}`, '')
  } else {
    w.push(`export interface ${name} {`)
    for (const f of declared) {
      const base = f.message ? msgRef(f.message) : f.scalar!.ts
      let tsType: string
      if (f.field.map) {
        const keyType = mapKeyType(f.field)
        if (keyType !== 'string') throw new Error(`${f.field.fullName}: only string map keys are supported`)
        tsType = `{ [key: string]: ${base} }`
      } else if (f.field.repeated) tsType = `${base}[]`
      else tsType = base
      const optional = f.presence ? '?' : ''
      const orUndefined = f.message && !f.field.repeated && !f.field.map && !f.presence ? ' | undefined' : ''
      const int64 = /^(s?fixed|u?int|sint)64$/.test(f.field.type) ? ' (a safe-integer number)' : ''
      const label = f.field.map ? `map<${mapKeyType(f.field)}, ${f.field.type}>` : `${f.field.repeated ? 'repeated ' : f.field.options?.proto3_optional === true ? 'optional ' : f.field.partOf ? `oneof ${f.field.partOf.name}: ` : ''}${f.field.type}`
      w.push(...docComment(f.field.comment, `${label} ${f.name} = ${f.field.id}${int64}`, '  '))
      w.push(`  ${propertyName(f.name)}${optional}: ${tsType}${orUndefined}`)
    }
    w.push('}', '')
  }

  // --- the codec
  const m = 'm'
  w.push(`export const ${name}: ${w.wire('MessageCodec')}<${name}> = {`)
  w.push(`  typeName: '${fullName(type)}',`)
  const encodeBody: string[] = []
  for (const f of fields) encodeBody.push(...encodeField(f, `${m}${access(f.name)}`, w))
  w.push(`  encode(${encodeBody.length > 0 ? m : '_m'}, w = new ${w.wire('ProtoWriter')}()) {`)
  w.push(...encodeBody.map((l) => `    ${l}`))
  w.push('    return w', '  },')

  const defaults = declared
    .filter((f) => !f.presence)
    .map((f) => {
      const value = f.field.map
        ? `Object.create(null) as ${name}['${f.name}']`
        : f.field.repeated
          ? '[]'
          : f.message
            ? 'undefined'
            : f.scalar!.zero === 'EMPTY_BYTES'
              ? w.wire('EMPTY_BYTES')
              : f.scalar!.zero
      return `${propertyName(f.name)}: ${value}`
    })
  w.push(`  decode(input, length) {`)
  w.push(`    const r = ${w.wire('readerOf')}(input)`)
  w.push(`    const end = ${w.wire('messageEnd')}(r, length)`)
  const init = `    const ${declared.length > 0 ? m : '_m'}: ${name} = {${defaults.length > 0 ? ` ${defaults.join(', ')} ` : ''}}`
  if (init.length <= 120) w.push(init)
  else w.push(`    const ${m}: ${name} = {`, ...defaults.map((d) => `      ${d},`), '    }')
  w.push('    while (r.pos < end) {', '      const key = r.uint32()', '      switch (key) {')
  for (const f of fields) w.push(...decodeField(f, `${m}${access(f.name)}`, fields, w).map((l) => `        ${l}`))
  w.push('        default:', '          r.skip(key & 7)', '      }', '    }')
  w.push(`    ${w.wire('checkMessageEnd')}(r, end, '${fullName(type)}')`)
  w.push(`    return ${declared.length > 0 ? m : '_m'}`, '  },', '}', '')
}

function encodeField(f: FieldInfo, expr: string, w: ModuleWriter): string[] {
  const id = f.field.id
  if (f.field.map) {
    const keyScalar = SCALARS[mapKeyType(f.field)]!
    const value = f.message
      ? [`const vk = w.uint32(${key(2, 2)}).fork()`, `${w.ref(f.message)}.encode(v, w)`, 'w.join(vk)']
      : [`w.uint32(${key(2, f.scalar!.wireType)}).${f.scalar!.method}(v)`]
    return [
      `if (${expr} != null) {`,
      `  for (const [k, v] of Object.entries(${expr})) {`,
      '    if (v == null) continue',
      `    const ek = w.uint32(${key(id, 2)}).fork()`,
      `    w.uint32(${key(1, keyScalar.wireType)}).${keyScalar.method}(k)`,
      ...value.map((l) => `    ${l}`),
      '    w.join(ek)',
      '  }',
      '}',
    ]
  }
  if (f.message) {
    const codec = w.ref(f.message)
    if (f.field.repeated) {
      return [`if (${expr} != null) {`, `  for (const v of ${expr}) {`, `    const k = w.uint32(${key(id, 2)}).fork()`, `    ${codec}.encode(v, w)`, '    w.join(k)', '  }', '}']
    }
    return [`if (${expr} != null) {`, `  const k = w.uint32(${key(id, 2)}).fork()`, `  ${codec}.encode(${expr}, w)`, '  w.join(k)', '}']
  }
  const s = f.scalar!
  if (f.field.repeated) {
    if (s.wireType !== 2) {
      // packed, as proto3 writes repeated numbers
      return [`if (${expr} != null && ${expr}.length > 0) {`, `  const k = w.uint32(${key(id, 2)}).fork()`, `  for (const v of ${expr}) w.${s.method}(v)`, '  w.join(k)', '}']
    }
    return [`if (${expr} != null) for (const v of ${expr}) w.uint32(${key(id, s.wireType)}).${s.method}(v)`]
  }
  const write = `w.uint32(${key(id, s.wireType)}).${s.method}(${expr})`
  if (f.presence) return [`if (${expr} != null) ${write}`]
  return [`if (${expr} != null && ${s.isSet(expr)}) ${write}`]
}

function decodeField(f: FieldInfo, expr: string, all: readonly FieldInfo[], w: ModuleWriter): string[] {
  const id = f.field.id
  // A oneof member clears the other members: the last one on the wire wins.
  const clear =
    f.presence && f.field.partOf && f.field.partOf.oneof.length > 1
      ? all.filter((o) => o !== f && o.field.partOf === f.field.partOf).map((o) => `delete m${access(o.name)}`)
      : []
  if (f.field.map) {
    const keyScalar = SCALARS[mapKeyType(f.field)]!
    const valueType = f.message ? `${w.ref(f.message)} | undefined` : f.scalar!.ts
    const valueInit = f.message ? 'undefined' : f.scalar!.zero === 'EMPTY_BYTES' ? w.wire('EMPTY_BYTES') : f.scalar!.zero
    const readValue = f.message ? `${w.ref(f.message)}.decode(r, r.uint32())` : `r.${f.scalar!.method}()`
    const store = f.message ? `v ?? ${w.ref(f.message)}.decode(${w.wire('EMPTY_BYTES')})` : 'v'
    return [
      `case ${key(id, 2)}: {`,
      '  const entryEnd = r.limit()',
      `  let k: ${keyScalar.ts} = ${keyScalar.zero}`,
      `  let v: ${valueType} = ${valueInit}`,
      '  while (r.pos < entryEnd) {',
      '    const entryKey = r.uint32()',
      `    if (entryKey === ${key(1, keyScalar.wireType)}) k = r.${keyScalar.method}()`,
      `    else if (entryKey === ${key(2, f.message ? 2 : f.scalar!.wireType)}) v = ${readValue}`,
      '    else r.skip(entryKey & 7)',
      '  }',
      `  ${w.wire('checkMessageEnd')}(r, entryEnd, '${fullName(f.field.parent!)}.${f.name} entry')`,
      `  ${expr}[k] = ${store}`,
      '  break',
      '}',
    ]
  }
  if (f.message) {
    const read = `${w.ref(f.message)}.decode(r, r.uint32())`
    return [`case ${key(id, 2)}:`, ...clear.map((l) => `  ${l}`), `  ${f.field.repeated ? `${expr}.push(${read})` : `${expr} = ${read}`}`, '  break']
  }
  const s = f.scalar!
  const read = s.ts !== 'number' && s.ts !== 'boolean' && s.ts !== 'string' && s.ts !== 'Uint8Array' ? `r.int32() as ${s.ts}` : `r.${s.method}()`
  if (f.field.repeated) {
    if (s.wireType !== 2) {
      return [
        `case ${key(id, s.wireType)}:`,
        `  ${expr}.push(${read})`,
        '  break',
        `case ${key(id, 2)}: {`,
        '  const packedEnd = r.limit()',
        `  while (r.pos < packedEnd) ${expr}.push(${read})`,
        '  break',
        '}',
      ]
    }
    return [`case ${key(id, s.wireType)}:`, `  ${expr}.push(${read})`, '  break']
  }
  return [`case ${key(id, s.wireType)}:`, ...clear.map((l) => `  ${l}`), `  ${expr} = ${read}`, '  break']
}

function emitService(service: protobuf.Service, w: ModuleWriter): void {
  const name = tsName(service)
  w.push(...docComment(service.comment, `The RPCs of ${fullName(service)}, with their gRPC paths and codecs.`, ''))
  w.push(`export const ${name} = {`)
  for (const method of service.methodsArray) {
    method.resolve()
    const req = method.resolvedRequestType
    const res = method.resolvedResponseType
    if (!req || !res) throw new Error(`${method.fullName}: unresolved request or response type`)
    const path = `/${fullName(service)}/${method.name}`
    w.push(`  ${method.name}: ${w.wire('defineMethod')}('${path}', ${method.requestStream === true}, ${method.responseStream === true}, ${w.ref(req)}, ${w.ref(res)}),`)
  }
  w.push('} as const', '')
}

/** The generated modules: path relative to `src/proto/generated/` → content. */
export function generateProtoModules(loaded: LoadedProtos): Map<string, string> {
  const byFilename = new Map<string, string>()
  for (const source of PROTO_SOURCES) byFilename.set(loaded.filenames.get(source.path)!, source.module)
  const moduleOf = (item: protobuf.ReflectionObject): string => {
    for (let at: protobuf.ReflectionObject | null = item; at; at = at.parent) {
      if (at.filename) {
        const module = byFilename.get(at.filename)
        if (module) return module
      }
    }
    if (item.fullName.startsWith('.google.protobuf.')) return WELL_KNOWN_MODULE
    throw new Error(`${item.fullName}: not in any of our .proto files`)
  }

  const out = new Map<string, string>()
  const wellKnown = new Set<Item>()
  const render = (module: string, items: readonly Item[], from: string): string => {
    const w = new ModuleWriter(moduleOf, module, items)
    // Service tables refer to the codecs when the module loads, so they come after every message.
    const ordered = [...items.filter((i) => !(i instanceof protobuf.Service)), ...items.filter((i) => i instanceof protobuf.Service)]
    for (const item of ordered) {
      if (item instanceof protobuf.Enum) emitEnum(item, w)
      else if (item instanceof protobuf.Type) emitMessage(item, w)
      else emitService(item, w)
    }
    return w.render([
      `// Code generated by scripts/gen-proto.ts from ${from}. DO NOT EDIT.`,
      '// Regenerate with `npm run gen:proto -w @opensym/tfplugin`; `npm run verify-proto` fails when this is stale.',
      '',
    ])
  }

  for (const source of PROTO_SOURCES) {
    const filename = loaded.filenames.get(source.path)!
    const items: Item[] = []
    collect(loaded.root, (item) => item.filename === filename, items)
    // Record the well-known types this file uses.
    for (const item of items) {
      if (item instanceof protobuf.Type) {
        for (const f of item.fieldsArray) {
          f.resolve()
          const t = f.resolvedType
          if (t && moduleOf(t) === WELL_KNOWN_MODULE) wellKnown.add(t)
        }
      } else if (item instanceof protobuf.Service) {
        for (const m of item.methodsArray) {
          m.resolve()
          for (const t of [m.resolvedRequestType, m.resolvedResponseType]) if (t && moduleOf(t) === WELL_KNOWN_MODULE) wellKnown.add(t)
        }
      }
    }
    out.set(source.module, render(source.module, items, `src/proto/${source.path}`))
  }
  if (wellKnown.size > 0) {
    const items = [...wellKnown].sort((a, b) => a.fullName.localeCompare(b.fullName))
    out.set(WELL_KNOWN_MODULE, render(WELL_KNOWN_MODULE, items, "protobufjs's copy of google/protobuf/*.proto (the well-known types used above)"))
  }
  return new Map([...out].sort(([a], [b]) => a.localeCompare(b)))
}

/** Generated files whose committed content differs from what the generator produces now (missing ones too). */
export function staleGeneratedFiles(loaded: LoadedProtos = loadProtos(), dir = GENERATED_DIR): string[] {
  const stale: string[] = []
  for (const [file, content] of generateProtoModules(loaded)) {
    let current: string | undefined
    try {
      current = readFileSync(join(dir, file), 'utf8')
    } catch {
      current = undefined
    }
    if (current !== content) stale.push(`src/proto/generated/${file}`)
  }
  return stale
}

function main(argv: readonly string[]): number {
  const loaded = loadProtos()
  if (argv.includes('--check')) {
    const stale = staleGeneratedFiles(loaded)
    if (stale.length === 0) {
      console.log('gen:proto: generated code is up to date')
      return 0
    }
    console.error(`gen:proto: stale generated code (run \`npm run gen:proto -w @opensym/tfplugin\`): ${stale.join(', ')}`)
    return 1
  }
  for (const [file, content] of generateProtoModules(loaded)) {
    const path = join(GENERATED_DIR, file)
    mkdirSync(dirname(path), { recursive: true })
    writeFileSync(path, content)
    console.log(`gen:proto: wrote src/proto/generated/${file}`)
  }
  return 0
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = main(process.argv.slice(2))
