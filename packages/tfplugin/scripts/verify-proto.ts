/**
 * `npm run verify-proto -w @opensym/tfplugin`: checks our hand-written `.proto` files against the protocol
 * definitions compiled into the `terraform` binary on PATH (or `$TERRAFORM_BINARY`), and that the committed
 * generated codecs are up to date with them.
 *
 * Prints every difference (message, field number/name/label/type/type name, oneof, enum value, RPC) and exits 1
 * if there is any; otherwise prints one summary line and exits 0.
 */
import { execFileSync } from 'node:child_process'
import { accessSync, constants, readFileSync, realpathSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { staleGeneratedFiles } from './gen-proto.js'
import { diffModels, decodeFileDescriptor, findEmbeddedDescriptor, modelFromDescriptor, modelFromProtos } from './proto-descriptors.js'
import { loadProtos, PROTO_SOURCES } from './proto-sources.js'

function findTerraform(): string {
  const explicit = process.env.TERRAFORM_BINARY
  if (explicit) return realpathSync(explicit)
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue
    const candidate = join(dir, 'terraform')
    try {
      accessSync(candidate, constants.X_OK)
      return realpathSync(candidate)
    } catch {
      // not here
    }
  }
  throw new Error('terraform not found on PATH (set TERRAFORM_BINARY to point at one)')
}

function terraformVersion(binary: string): string {
  try {
    const out = execFileSync(binary, ['version', '-json'], {
      encoding: 'utf8',
      env: { ...process.env, CHECKPOINT_DISABLE: '1' },
      stdio: ['ignore', 'pipe', 'ignore'],
    })
    return `terraform ${(JSON.parse(out) as { terraform_version: string }).terraform_version}`
  } catch {
    return 'terraform (version unknown)'
  }
}

function describeCounts(c: { messages: number; entries: number; enums: number; rpcs: number }): string {
  const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`
  const entries = c.entries ? ` (+${plural(c.entries, 'map entry', 'map entries')})` : ''
  return `${plural(c.messages, 'message')}${entries}, ${plural(c.enums, 'enum')}, ${plural(c.rpcs, 'RPC')}`
}

function main(): number {
  const binaryPath = findTerraform()
  const binary = readFileSync(binaryPath)
  const loaded = loadProtos()
  const problems: string[] = []
  const summaries: string[] = []
  /** Counts for the summary line: tfplugin6, and go-plugin's three files together. */
  const totals = new Map<string, { messages: number; entries: number; enums: number; rpcs: number }>()

  for (const source of PROTO_SOURCES) {
    const embedded = findEmbeddedDescriptor(binary, source.embeddedName)
    if (!embedded) {
      problems.push(`${source.path}: no descriptor named *${source.embeddedName} found in ${binaryPath}`)
      continue
    }
    const theirs = modelFromDescriptor(decodeFileDescriptor(embedded.bytes))
    const ours = modelFromProtos(loaded, source)
    for (const line of diffModels(theirs, ours)) problems.push(`${source.path}: ${line}`)
    const entries = [...theirs.messages.values()].filter((m) => m.mapEntry).length
    const counts = { messages: theirs.messages.size - entries, entries, enums: theirs.enums.size, rpcs: theirs.methods.size }
    summaries.push(`${embedded.name} (offset ${embedded.offset}, ${embedded.bytes.length} bytes): ${describeCounts(counts)}`)
    const group = theirs.package === 'plugin' ? 'go-plugin' : theirs.package
    const total = totals.get(group) ?? { messages: 0, entries: 0, enums: 0, rpcs: 0 }
    for (const key of ['messages', 'entries', 'enums', 'rpcs'] as const) total[key] += counts[key]
    totals.set(group, total)
  }

  const stale = staleGeneratedFiles(loaded)
  for (const file of stale) problems.push(`${file}: stale generated code (run \`npm run gen:proto -w @opensym/tfplugin\`)`)

  const version = terraformVersion(binaryPath)
  if (problems.length > 0) {
    console.error(`verify-proto: our .proto files differ from ${version} (${binaryPath}):`)
    for (const line of problems) console.error(`  ${line}`)
    console.error(`verify-proto: ${problems.length} difference${problems.length === 1 ? '' : 's'}`)
    return 1
  }
  for (const line of summaries) console.log(`  ${line}`)
  const groups = [...totals].map(([name, counts]) => `${name} ${describeCounts(counts)}`).join('; ')
  console.log(`verify-proto: ${version} (${binaryPath}): ${groups}; 0 differences; generated code up to date`)
  return 0
}

try {
  process.exitCode = main()
} catch (error) {
  console.error(`verify-proto: ${error instanceof Error ? error.message : String(error)}`)
  process.exitCode = 1
}
