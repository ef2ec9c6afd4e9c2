/**
 * `npm run build:provider`: the sym provider as one executable in a Terraform filesystem mirror.
 *
 * 1. esbuild bundles `src/snapshot.ts` and everything it imports (workspace packages from their TypeScript sources
 *    via the `@opensym/source` condition, yaml, typebox…) into one CommonJS file: Node 20's single executables run
 *    exactly one CommonJS script whose `require` only knows the built-in modules. (`src/main.ts`, the same provider
 *    without the snapshot, is bundled too: the plain bundle `node` can run, timed for comparison.)
 * 2. `node --experimental-sea-config` runs it under `--build-snapshot` and turns the result into a blob with a V8
 *    startup snapshot (`useSnapshot`): every module loaded and the provider's schemas and handlers built, so each
 *    start only restores the heap and serves (Terraform starts the provider 3–5 times per command). postject puts
 *    the blob into a copy of this node binary (`process.execPath`) behind the SEA fuse. `--code-cache` makes the
 *    previous kind instead: `src/main.ts` with V8's code cache (`useCodeCache`), which loads everything at start.
 * 3. The executable goes to `dist/terraform-mirror/<host>/<namespace>/<type>/<version>/<os>_<arch>/` (Terraform's
 *    unpacked mirror layout) with, except on Windows, the launcher Terraform runs (see {@link LAUNCHER}), and
 *    `dist/terraform.rc` points Terraform at the mirror for `symopsio/sym` only, so that
 *    `TF_CLI_CONFIG_FILE=dist/terraform.rc terraform init` installs it with no network.
 * 4. It launches the executable (and the plain bundle, for comparison) the way Terraform does and prints the time
 *    from spawn to the handshake line.
 *
 * The executable is kept when the new bundle is byte-identical to the one it was made from (and node is the same):
 * esbuild's output is reproducible but the SEA blob is not (V8's snapshot and code cache differ from run to run), and every new
 * executable has a new `h1:` checksum, which `.terraform.lock.hcl` files made with the old one reject. `--force`
 * makes a new one anyway.
 */
import { spawn, spawnSync, execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { basename, dirname, join, relative, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { build, type Metafile } from 'esbuild'
import { inject } from 'postject'
import { PROVIDER_ADDRESS } from '@opensym/provider-schema'
import { generateServerCertificate, MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE } from '@opensym/tfplugin/transport'

export const PROVIDER_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..')
export const REPO_ROOT = resolve(PROVIDER_DIR, '../..')
export const DIST_DIR = join(REPO_ROOT, 'dist')
/** The filesystem mirror and the CLI configuration that uses it. */
export const MIRROR_DIR = join(DIST_DIR, 'terraform-mirror')
export const CLI_CONFIG = join(DIST_DIR, 'terraform.rc')
/** Intermediate files: the bundle, the SEA configuration and blob, the build stamp. */
export const BUILD_DIR = join(DIST_DIR, 'provider-build')

const ENTRY = join(PROVIDER_DIR, 'src/main.ts')
/** The entry of the executable with a startup snapshot: main.ts split at the snapshot (see that file). */
const SNAPSHOT_ENTRY = join(PROVIDER_DIR, 'src/snapshot.ts')
/** The fuse Node's single executables look for (`:0` in a plain node, `:1` once a blob is injected). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'
/** esbuild warnings that mean the bundle would fail at run time rather than at build time. */
const FATAL_WARNINGS = new Set(['empty-import-meta', 'unsupported-require-call', 'unsupported-dynamic-import'])

/** The provider's version: `apps/provider/package.json`. */
export function providerVersion(): string {
  const { version } = JSON.parse(readFileSync(join(PROVIDER_DIR, 'package.json'), 'utf8')) as { version: string }
  return version
}

const GOOS: Record<string, string> = { linux: 'linux', darwin: 'darwin', win32: 'windows', freebsd: 'freebsd', openbsd: 'openbsd' }
const GOARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', ia32: '386', arm: 'arm' }

/** Terraform's platform name (Go's GOOS_GOARCH) for a Node platform and architecture: `linux_amd64`, `darwin_arm64`. */
export function terraformPlatform(platform: string = process.platform, arch: string = process.arch): string {
  const os = GOOS[platform]
  const cpu = GOARCH[arch]
  if (!os || !cpu) throw new Error(`Terraform has no provider platform for Node's ${platform}/${arch}`)
  return `${os}_${cpu}`
}

/**
 * What Terraform runs, in the mirror: `<host>/<namespace>/<type>/<version>/<os>_<arch>/terraform-provider-<type>_v<version>`.
 * On Windows the single executable itself; elsewhere the launcher ({@link LAUNCHER}) that starts it.
 */
export function mirrorExecutable(version: string = providerVersion(), platform: string = terraformPlatform()): string {
  const type = PROVIDER_ADDRESS.split('/').at(-1)!
  const suffix = platform.startsWith('windows_') ? '.exe' : ''
  return join(MIRROR_DIR, PROVIDER_ADDRESS, version, platform, `terraform-provider-${type}_v${version}${suffix}`)
}

/** The single executable: {@link mirrorExecutable} on Windows, else the file beside the launcher that it starts. */
export function mirrorBinary(version: string = providerVersion(), platform: string = terraformPlatform()): string {
  const executable = mirrorExecutable(version, platform)
  return usesLauncher(platform) ? join(dirname(executable), LAUNCHED_BINARY) : executable
}

/** No /bin/sh on Windows: there Terraform runs the single executable itself (and NODE_OPTIONS reaches it). */
const usesLauncher = (platform: string): boolean => !platform.startsWith('windows_')

/** The single executable's name beside the launcher: Terraform runs the one file named `terraform-provider-<type>…`. */
const LAUNCHED_BINARY = 'sym-provider.bin'

/**
 * The launcher Terraform runs (a POSIX shell script; `exec` keeps the process Terraform started). Node reads two
 * variables before any JavaScript, and the provider must not inherit them from the user's shell:
 * - NODE_OPTIONS: a startup snapshot loads only under the V8 flags it was made with (none), so a user's
 *   `--max-old-space-size=…` would stop every provider process ("Invalid snapshot data in single executable").
 * - NODE_EXTRA_CA_CERTS: Node parses that file and its own ~140 root certificates at every start, 40–50 ms of each
 *   of the 3–5 provider processes of a command. It is passed on as SYM_PROVIDER_EXTRA_CA_CERTS instead, and the
 *   provider adds those certificates when it first connects to an HTTPS API (src/connection.ts); most of its
 *   processes never do.
 * It also sets glibc's `malloc.hugetlb` tunable (ahead of any the user set, which win): at every start Node copies
 * the ~6 MB startup snapshot out of the executable into malloc'd memory, and with transparent huge pages in
 * `madvise` mode (the usual default) that memory is otherwise faulted in 4 KB at a time, ~10 ms of each start.
 */
export const LAUNCHER = `#!/bin/sh
# Written by \`npm run build:provider\`: starts ${LAUNCHED_BINARY}, the sym provider, with neither the user's NODE_OPTIONS
# (its V8 startup snapshot loads only under the flags it was built with) nor NODE_EXTRA_CA_CERTS (which Node would
# parse at every start; the provider reads SYM_PROVIDER_EXTRA_CA_CERTS when it first connects to an HTTPS API), and
# with malloc on transparent huge pages (Node copies its startup snapshot into malloc'd memory at every start).
unset NODE_OPTIONS
GLIBC_TUNABLES=glibc.malloc.hugetlb=1\${GLIBC_TUNABLES:+:$GLIBC_TUNABLES}
export GLIBC_TUNABLES
if [ -n "\${NODE_EXTRA_CA_CERTS-}" ]; then
  SYM_PROVIDER_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS
  export SYM_PROVIDER_EXTRA_CA_CERTS
  unset NODE_EXTRA_CA_CERTS
fi
self=$0
case $self in */*) ;; *) self=$(command -v "$self") ;; esac
# A symlink to this launcher (a dev_overrides folder, say) starts the binary beside the launcher itself.
while [ -L "$self" ]; do
  link=$(readlink "$self")
  case $link in /*) self=$link ;; *) self=\${self%/*}/$link ;; esac
done
exec "\${self%/*}/${LAUNCHED_BINARY}" "$@"
`

/** Writes the launcher unless it is there already with that content (its checksum is part of the package's). */
function writeLauncher(path: string): void {
  if (existsSync(path) && readFileSync(path, 'utf8') === LAUNCHER) return
  writeFileSync(path, LAUNCHER, { mode: 0o755 })
  chmodSync(path, 0o755)
}

/** The CLI configuration: this provider from the mirror, every other provider from its registry as usual. */
export function cliConfig(mirrorDir: string = MIRROR_DIR): string {
  const address = JSON.stringify(PROVIDER_ADDRESS)
  return `# Written by \`npm run build:provider\`: use it with TF_CLI_CONFIG_FILE=${CLI_CONFIG}
provider_installation {
  filesystem_mirror {
    path    = ${JSON.stringify(mirrorDir)}
    include = [${address}]
  }
  direct {
    exclude = [${address}]
  }
}
`
}

// --- the bundle ---------------------------------------------------------------------------------------------------

export interface Bundle {
  readonly path: string
  readonly bytes: number
  readonly sha256: string
  /** The biggest contributors: package (or workspace folder) → bytes in the output. */
  readonly largest: ReadonlyArray<readonly [string, number]>
}

function largestInputs(metafile: Metafile): Array<[string, number]> {
  const sizes = new Map<string, number>()
  for (const output of Object.values(metafile.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      const inModules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input)
      const key = inModules ? inModules[1]! : input.split('/').slice(0, input.startsWith('packages/') || input.startsWith('apps/') ? 2 : 1).join('/')
      sizes.set(key, (sizes.get(key) ?? 0) + bytesInOutput)
    }
  }
  return [...sizes].sort((a, b) => b[1] - a[1]).slice(0, 6)
}

export async function bundle(outfile: string, entry: string = ENTRY): Promise<Bundle> {
  const result = await build({
    absWorkingDir: REPO_ROOT,
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    target: `node${process.versions.node.split('.')[0]}`,
    format: 'cjs',
    // A single executable cannot `import()`, not even a built-in module (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING):
    // esbuild turns the lazy `await import('node:http2')`s of the sources into `require`s in a promise.
    supported: { 'dynamic-import': false },
    conditions: ['@opensym/source'],
    // Readable names in stack traces; whitespace and syntax minification take most of the size off.
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none',
    metafile: true,
    logLevel: 'silent',
  })
  const fatal = result.warnings.filter((w) => FATAL_WARNINGS.has(w.id))
  for (const warning of result.warnings) {
    const where = warning.location ? `${warning.location.file}:${warning.location.line}: ` : ''
    console.warn(`esbuild ${FATAL_WARNINGS.has(warning.id) ? 'error' : 'warning'}: ${where}${warning.text} [${warning.id}]`)
  }
  if (fatal.length > 0) throw new Error(`the bundle would fail at run time (${fatal.map((w) => w.id).join(', ')}); see above`)
  const contents = readFileSync(outfile)
  return { path: outfile, bytes: contents.length, sha256: createHash('sha256').update(contents).digest('hex'), largest: largestInputs(result.metafile) }
}

// --- the single executable ----------------------------------------------------------------------------------------

/** The environment for child node processes: no NODE_OPTIONS from whatever started the build (tsx, vitest). */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra }
  delete env.NODE_OPTIONS
  return env
}

/** What the SEA blob holds besides the script: a startup snapshot of it, or V8's code cache for it. */
export type StartupKind = 'snapshot' | 'code cache'

async function singleExecutable(
  bundlePath: string,
  target: string,
  kind: StartupKind,
): Promise<{ blobBytes: number; blobMs: number; injectMs: number; stripped: boolean; notes: string[] }> {
  const seaConfig = join(BUILD_DIR, 'sea-config.json')
  const blob = join(BUILD_DIR, 'sea-prep.blob')
  const startup = kind === 'snapshot' ? { useSnapshot: true } : { useCodeCache: true }
  writeFileSync(seaConfig, JSON.stringify({ main: bundlePath, output: blob, disableExperimentalSEAWarning: true, ...startup }, null, 2) + '\n')
  let start = performance.now()
  // It says "Wrote single executable preparation blob to …"; failures throw with its output. With a snapshot it runs
  // the script under --build-snapshot, where Node warns about built-in modules it cannot snapshot reliably (http,
  // https, tls, http2: they must be loaded when serving, see src/snapshot.ts): such a warning fails the build.
  const made = spawnSync(process.execPath, ['--experimental-sea-config', seaConfig], { cwd: BUILD_DIR, env: cleanEnv(), encoding: 'utf8' })
  const output = `${made.stdout}${made.stderr}`.trim()
  if (made.status !== 0 || made.error) throw new Error(`node --experimental-sea-config failed (${made.error?.message ?? made.signal ?? `exit ${made.status}`}):\n${output}`)
  if (/not yet fully verified whether built-in module/.test(output)) throw new Error(`the startup snapshot loads a built-in module Node cannot snapshot:\n${output}`)
  // Anything else it says (a failed warm-up in src/snapshot.ts…) is shown with the build's output.
  const notes = output.split('\n').filter((line) => line.trim() && !/^Wrote single executable|ExperimentalWarning|--trace-warnings/.test(line))
  const blobMs = performance.now() - start
  const blobData = readFileSync(blob)

  start = performance.now()
  const staging = join(BUILD_DIR, 'executable.tmp')
  rmSync(staging, { force: true })
  copyFileSync(process.execPath, staging)
  chmodSync(staging, 0o755)
  const stripped = stripSymbols(staging)
  const nodeBytes = statSync(staging).size
  const macOS = process.platform === 'darwin'
  if (macOS) execFileSync('codesign', ['--remove-signature', staging])
  // postject's wasm warns "Can't find string offset for section name '.note.100'" for node's ELF notes: harmless.
  const warn = console.warn
  console.warn = (...args: unknown[]) => void (/Can't find string offset for section name/.test(String(args[0])) || warn(...args))
  try {
    await inject(staging, 'NODE_SEA_BLOB', blobData, { sentinelFuse: SEA_FUSE, ...(macOS ? { machoSegmentName: 'NODE_SEA' } : {}) })
  } finally {
    console.warn = warn
  }
  if (macOS) execFileSync('codesign', ['--sign', '-', staging])
  // A failed injection leaves a plain node, which would sit in its REPL when Terraform starts it.
  if (statSync(staging).size <= nodeBytes || !readFileSync(staging).includes(`${SEA_FUSE}:1`)) {
    throw new Error('postject left the executable without the SEA blob')
  }
  // Only this provider's folder: old versions go, nothing else in the mirror is touched.
  rmSync(join(MIRROR_DIR, PROVIDER_ADDRESS), { recursive: true, force: true })
  mkdirSync(dirname(target), { recursive: true })
  renameSync(staging, target)
  return { blobBytes: blobData.length, blobMs, injectMs: performance.now() - start, stripped, notes }
}

/**
 * Removes the symbol tables (and debug information) from the copy of node on Linux, when binutils' `strip` is
 * there: Terraform hashes the whole provider package at every command to check it against .terraform.lock.hcl
 * (about 0.7 ms per MB), and Debian's node carries about 12 MB of them. Native addons, which would need symbols,
 * cannot be loaded by this executable anyway; the dynamic symbols stay. Returns whether it stripped.
 */
function stripSymbols(path: string): boolean {
  if (process.platform !== 'linux') return false
  const result = spawnSync('strip', ['--strip-all', path], { encoding: 'utf8' })
  return !result.error && result.status === 0
}

// --- the handshake timing -----------------------------------------------------------------------------------------

/** The variables go-plugin sets when Terraform starts a provider (PLUGIN_CLIENT_CERT: a certificate of our own). */
export function pluginEnvironment(): Record<string, string> {
  return {
    [MAGIC_COOKIE_KEY]: MAGIC_COOKIE_VALUE,
    PLUGIN_PROTOCOL_VERSIONS: '6',
    PLUGIN_MIN_PORT: '10000',
    PLUGIN_MAX_PORT: '25000',
    PLUGIN_CLIENT_CERT: generateServerCertificate({ organization: 'HashiCorp' }).certPem,
  }
}

const HANDSHAKE = /^1\|6\|tcp\|127\.0\.0\.1:\d+\|grpc\|[A-Za-z0-9+/]+$/

/** Starts the provider, waits for its handshake line, kills it; resolves with the milliseconds to the line. */
export function timeHandshake(command: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<{ ms: number; line: string }> {
  return new Promise((resolvePromise, reject) => {
    const start = performance.now()
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let result: { ms: number; line: string } | undefined
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
      const end = stdout.indexOf('\n')
      if (end < 0 || result) return
      result = { ms: performance.now() - start, line: stdout.slice(0, end) }
      // SIGINT is ignored by the provider (Terraform sends StopProvider instead).
      child.kill('SIGKILL')
    })
    child.on('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      if (!result) return reject(new Error(`${command} ended (${signal ?? `exit ${code}`}) without a handshake line. stderr:\n${stderr}`))
      if (!HANDSHAKE.test(result.line)) return reject(new Error(`${command} printed an unexpected handshake line: ${result.line.slice(0, 200)}`))
      resolvePromise(result)
    })
  })
}

export interface HandshakeTimes {
  /** Every run, in order (the first one starts with colder caches). */
  readonly runs: readonly number[]
  readonly median: number
  readonly min: number
}

async function handshakeTimes(command: string, args: readonly string[], runs: number): Promise<HandshakeTimes> {
  const env = cleanEnv(pluginEnvironment())
  const times: number[] = []
  for (let i = 0; i < runs; i++) times.push((await timeHandshake(command, args, env)).ms)
  const sorted = [...times].sort((a, b) => a - b)
  return { runs: times, median: sorted[Math.floor(sorted.length / 2)]!, min: sorted[0]! }
}

// --- the build ----------------------------------------------------------------------------------------------------

export interface BuildOptions {
  /** Make a new executable even when the bundle and node are the ones the current one was made from. */
  readonly force?: boolean
  /** Handshake timing runs per variant (0: none). Default 7. */
  readonly handshakeRuns?: number
  /** Progress lines; default console.log. */
  readonly log?: (line: string) => void
  /** `snapshot` (default): a V8 startup snapshot in the executable; `code cache`: V8's code cache only. */
  readonly startup?: StartupKind
}

export interface BuildResult {
  readonly version: string
  readonly platform: string
  /** What Terraform runs: the launcher, or on Windows the single executable. */
  readonly executable: string
  /** The single executable. */
  readonly binary: string
  readonly cliConfig: string
  readonly mirrorDir: string
  /** The plain bundle of src/main.ts (what `node` can run). */
  readonly bundle: Bundle
  /** What the executable runs: the snapshot entry's bundle, or the plain one with `startup: 'code cache'`. */
  readonly executableBundle: Bundle
  readonly startup: StartupKind
  readonly executableBytes: number
  /** True when the previous executable was kept (same bundle, same node). */
  readonly reused: boolean
  readonly timings: { readonly bundleMs: number; readonly blobMs?: number; readonly injectMs?: number; readonly totalMs: number }
  readonly handshake?: { readonly executable: HandshakeTimes; readonly bundle: HandshakeTimes }
}

interface Stamp {
  readonly bundleSha256: string
  readonly startup: StartupKind
  readonly node: string
  readonly nodeBytes: number
  readonly executable: string
  readonly executableBytes: number
  readonly executableMtimeMs: number
}

function readStamp(path: string): Stamp | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Stamp
  } catch {
    return undefined
  }
}

const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`
const kb = (bytes: number): string => `${Math.round(bytes / 1024)} KB`
const ms = (n: number): string => `${Math.round(n)} ms`

export async function buildProvider(options: BuildOptions = {}): Promise<BuildResult> {
  const log = options.log ?? ((line: string) => console.log(line))
  const started = performance.now()
  const version = providerVersion()
  const platform = terraformPlatform()
  const executable = mirrorExecutable(version, platform)
  const binary = mirrorBinary(version, platform)
  const show = (path: string) => relative(REPO_ROOT, path)
  mkdirSync(BUILD_DIR, { recursive: true })

  const startup = options.startup ?? 'snapshot'
  const start = performance.now()
  const bundled = await bundle(join(BUILD_DIR, 'terraform-provider-sym.cjs'))
  const executableBundle = startup === 'snapshot' ? await bundle(join(BUILD_DIR, 'terraform-provider-sym.snapshot.cjs'), SNAPSHOT_ENTRY) : bundled
  const bundleMs = performance.now() - start
  log(`bundle      ${show(bundled.path)}: ${kb(bundled.bytes)} in ${ms(bundleMs)}${startup === 'snapshot' ? ` (and ${basename(executableBundle.path)} for the snapshot)` : ''}`)
  log(`            largest: ${bundled.largest.map(([name, bytes]) => `${name} ${kb(bytes)}`).join(', ')}`)

  const stampPath = join(BUILD_DIR, 'build.json')
  const stamp = readStamp(stampPath)
  const current = existsSync(binary) ? statSync(binary) : undefined
  const reused =
    options.force !== true &&
    current !== undefined &&
    stamp?.bundleSha256 === executableBundle.sha256 &&
    stamp.startup === startup &&
    stamp.node === process.version &&
    stamp.nodeBytes === statSync(process.execPath).size &&
    stamp.executable === binary &&
    stamp.executableBytes === current.size &&
    stamp.executableMtimeMs === current.mtimeMs

  let blobMs: number | undefined
  let injectMs: number | undefined
  if (reused) {
    log(`executable  ${show(binary)}: ${mb(current.size)}, kept: same bundle and node as it was made from (--force to remake)`)
  } else {
    rmSync(stampPath, { force: true })
    const made = await singleExecutable(executableBundle.path, binary, startup)
    blobMs = made.blobMs
    injectMs = made.injectMs
    const file = statSync(binary)
    writeFileSync(
      stampPath,
      JSON.stringify(
        {
          bundleSha256: executableBundle.sha256,
          startup,
          node: process.version,
          nodeBytes: statSync(process.execPath).size,
          executable: binary,
          executableBytes: file.size,
          executableMtimeMs: file.mtimeMs,
        } satisfies Stamp,
        null,
        2,
      ) + '\n',
    )
    log(`SEA blob    ${kb(made.blobBytes)} with ${startup === 'snapshot' ? 'startup snapshot' : 'code cache'} in ${ms(blobMs)} (node ${process.version}, ${process.execPath})`)
    for (const note of made.notes) log(`            ${note}`)
    log(`executable  ${show(binary)}: ${mb(file.size)}, injected in ${ms(injectMs)}${made.stripped ? ' (node without its symbol tables)' : ''}`)
  }
  if (binary !== executable) {
    writeLauncher(executable)
    log(`launcher    ${show(executable)}: what Terraform runs (starts ${basename(binary)} without NODE_OPTIONS and NODE_EXTRA_CA_CERTS)`)
  }
  writeFileSync(CLI_CONFIG, cliConfig())
  log(`CLI config  ${show(CLI_CONFIG)} (filesystem mirror ${show(MIRROR_DIR)} for ${PROVIDER_ADDRESS})`)

  const runs = options.handshakeRuns ?? 7
  let handshake: BuildResult['handshake']
  if (runs > 0) {
    handshake = {
      executable: await handshakeTimes(executable, [], runs),
      bundle: await handshakeTimes(process.execPath, [bundled.path], runs),
    }
    const line = (name: string, t: HandshakeTimes) =>
      `${name} median ${ms(t.median)}, min ${ms(t.min)} (runs: ${t.runs.map((n) => Math.round(n)).join(', ')})`
    log(`handshake   spawn → handshake line, ${runs} runs each:`)
    log(line(`            executable (SEA, ${startup}):`.padEnd(42), handshake.executable))
    log(line('            node + bundle:'.padEnd(42), handshake.bundle))
  }
  const totalMs = performance.now() - started
  log(`done in ${(totalMs / 1000).toFixed(1)} s. Use it: export TF_CLI_CONFIG_FILE=${CLI_CONFIG}; terraform init`)
  return {
    version,
    platform,
    executable,
    cliConfig: CLI_CONFIG,
    mirrorDir: MIRROR_DIR,
    bundle: bundled,
    executableBundle,
    startup,
    binary,
    executableBytes: statSync(binary).size,
    reused,
    timings: { bundleMs, ...(blobMs === undefined ? {} : { blobMs }), ...(injectMs === undefined ? {} : { injectMs }), totalMs },
    ...(handshake ? { handshake } : {}),
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      force: { type: 'boolean', default: false },
      runs: { type: 'string', default: '7' },
      json: { type: 'boolean', default: false },
      'code-cache': { type: 'boolean', default: false },
    },
  })
  // --json (for `npm run bench`): progress on stderr, the BuildResult as one JSON document on stdout.
  const log = values.json ? (line: string) => console.error(line) : undefined
  const startup: StartupKind = values['code-cache'] ? 'code cache' : 'snapshot'
  buildProvider({ force: values.force, handshakeRuns: Number(values.runs), startup, ...(log ? { log } : {}) }).then(
    (result) => {
      if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`)
    },
    (error: unknown) => {
      console.error(`build:provider failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
      process.exit(1)
    },
  )
}
