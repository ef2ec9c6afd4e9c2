/**
 * The packaged provider (`npm run build:provider`): a single executable in a filesystem mirror that the real
 * terraform CLI installs with `terraform init` and no network, then applies and destroys with against the real API.
 * The build keeps the executable when the bundle has not changed since it was made.
 */
import { execFile, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { buildProvider, CLI_CONFIG, LAUNCHER, MIRROR_DIR, pluginEnvironment, providerVersion, REPO_ROOT, terraformPlatform, timeHandshake, type BuildResult } from '../scripts/build.js'
import { buildApp } from '@opensym/api'
import { createDb, type Db } from '@opensym/db'
import { createTestOrg, type TestOrg } from '@opensym/testing'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'

let app: FastifyInstance
let db: Db
let redis: Redis
let org: TestOrg
let apiUrl: string
let home: string
let built: BuildResult
beforeAll(async () => {
  db = createDb(inject('databaseUrl'), { poolSize: 2 })
  redis = new Redis(inject('redisUrl'), { lazyConnect: true })
  app = await buildApp({ config: { logLevel: 'silent' }, db, redis })
  apiUrl = `${await app.listen({ port: 0, host: '127.0.0.1' })}/api/v1`
  org = await createTestOrg(db, 'pkg')
  home = mkdtempSync(join(tmpdir(), 'opensym-pkg-'))
  built = await buildProvider({ handshakeRuns: 1, log: () => undefined })
}, 120_000)
afterAll(async () => {
  await app?.close()
  await db?.$disconnect()
  redis?.disconnect()
  if (home) rmSync(home, { recursive: true, force: true })
})

interface Run {
  code: number
  stdout: string
  stderr: string
}

async function terraform(dir: string, ...args: string[]): Promise<Run> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    TF_CLI_CONFIG_FILE: CLI_CONFIG,
    TF_IN_AUTOMATION: '1',
    CHECKPOINT_DISABLE: '1',
    // Offline: anything Terraform tried to download would go to a proxy that is not there.
    HTTPS_PROXY: 'http://127.0.0.1:9',
    HTTP_PROXY: 'http://127.0.0.1:9',
    SYM_JWT: org.tokens.bot,
    SYM_API_URL: apiUrl,
  }
  for (const name of ['NODE_OPTIONS', 'TF_PLUGIN_CACHE_DIR', 'TF_DATA_DIR', 'NO_PROXY', 'no_proxy']) delete env[name]
  return promisify(execFile)('terraform', [...args, '-no-color'], { cwd: dir, env, timeout: 60_000 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }),
  )
}

describe('build:provider', () => {
  it('names platforms the way Terraform does', () => {
    expect(terraformPlatform('linux', 'x64')).toBe('linux_amd64')
    expect(terraformPlatform('darwin', 'arm64')).toBe('darwin_arm64')
    expect(terraformPlatform('win32', 'x64')).toBe('windows_amd64')
    expect(() => terraformPlatform('aix', 'ppc64')).toThrow('Terraform has no provider platform')
  })

  it('lays the executable out as a filesystem mirror, writes the CLI config, and the executable is the provider', () => {
    const version = providerVersion()
    const executable = join(REPO_ROOT, 'dist/terraform-mirror/registry.terraform.io/symopsio/sym', version, terraformPlatform(), `terraform-provider-sym_v${version}`)
    expect(built.executable).toBe(executable)
    expect(statSync(executable).mode & 0o111).toBe(0o111)
    expect(built.executableBytes).toBeGreaterThan(built.bundle.bytes)
    // The default: a V8 startup snapshot of src/snapshot.ts (the apply below runs it).
    expect(built.startup).toBe('snapshot')
    expect(built.executableBundle.path).toMatch(/terraform-provider-sym\.snapshot\.cjs$/)
    const config = readFileSync(CLI_CONFIG, 'utf8').replace(/\s+/g, ' ')
    expect(config).toContain(`filesystem_mirror { path = "${MIRROR_DIR}" include = ["registry.terraform.io/symopsio/sym"] }`)
    expect(config).toContain('direct { exclude = ["registry.terraform.io/symopsio/sym"] }')
    // The handshake the build timed, and go-plugin's refusal without the magic cookie (a plain node would start a REPL).
    expect(built.handshake?.executable.runs).toHaveLength(1)
    expect(built.handshake?.executable.median).toBeGreaterThan(0)
    const env = { ...process.env }
    delete env.TF_PLUGIN_MAGIC_COOKIE
    delete env.NODE_OPTIONS
    const bare = spawnSync(executable, [], { env, encoding: 'utf8', timeout: 10_000 })
    expect(bare.status).toBe(1)
    expect(bare.stderr).toContain('This binary is a plugin')
  })

  it("starts whatever the user's NODE_OPTIONS and NODE_EXTRA_CA_CERTS are (the launcher keeps them from Node)", async () => {
    if (process.platform === 'win32') return // no launcher there
    expect(readFileSync(built.executable, 'utf8')).toBe(LAUNCHER)
    expect(built.binary).toBe(join(dirname(built.executable), 'sym-provider.bin'))
    // A V8 flag in NODE_OPTIONS would make the startup snapshot unloadable; a missing CA file would make Node warn.
    const env = { ...process.env, ...pluginEnvironment(), NODE_OPTIONS: '--max-old-space-size=512', NODE_EXTRA_CA_CERTS: join(home, 'no-such-ca.pem') }
    const { line } = await timeHandshake(built.executable, [], env)
    expect(line).toMatch(/^1\|6\|tcp\|127\.0\.0\.1:\d+\|grpc\|/)
    // Run as the single executable itself, the same variables stop it before its handshake.
    await expect(timeHandshake(built.binary, [], env)).rejects.toThrow(/snapshot/i)
  })

  it('starts through a symlink to the launcher (a dev_overrides folder), relative or absolute', async () => {
    if (process.platform === 'win32') return
    const dir = mkdtempSync(join(home, 'overrides-'))
    symlinkSync(built.executable, join(dir, 'terraform-provider-sym'))
    symlinkSync('terraform-provider-sym', join(dir, 'again'))
    for (const name of ['terraform-provider-sym', 'again']) {
      const { line } = await timeHandshake(join(dir, name), [], { ...process.env, ...pluginEnvironment() })
      expect(line).toMatch(/^1\|6\|tcp\|127\.0\.0\.1:\d+\|grpc\|/)
    }
  })

  it('terraform init installs it from the mirror with no network, then applies and destroys with it', async () => {
    const dir = mkdtempSync(join(home, 'config-'))
    writeFileSync(
      join(dir, 'main.tf'),
      `terraform {\n  required_providers {\n    sym = { source = "symopsio/sym" }\n  }\n}\n\nprovider "sym" {\n  org = "${org.slug}"\n}\n\nresource "sym_runtime" "main" {\n  name = "packaged"\n}\n`,
    )
    const version = providerVersion()
    const init = await terraform(dir, 'init')
    expect(init.stderr).toBe('')
    expect(init.code).toBe(0)
    expect(init.stdout).toContain(`- Installed symopsio/sym v${version} (unauthenticated)`)
    expect(init.stdout).toContain('Terraform has been successfully initialized!')
    const installed = join(dir, '.terraform/providers/registry.terraform.io/symopsio/sym', version, terraformPlatform(), `terraform-provider-sym_v${version}`)
    expect(readFileSync(installed, 'utf8')).toBe(readFileSync(built.executable, 'utf8'))
    expect(statSync(join(dirname(installed), basename(built.binary))).size).toBe(built.executableBytes)
    expect(readFileSync(join(dir, '.terraform.lock.hcl'), 'utf8')).toMatch(new RegExp(`provider "registry.terraform.io/symopsio/sym" \\{\\n  version = "${version.replace(/\./g, '\\.')}"`))
    expect((await terraform(dir, 'version')).stdout).toContain(`+ provider registry.terraform.io/symopsio/sym v${version}`)

    const apply = await terraform(dir, 'apply', '-auto-approve')
    expect(apply.stderr).toBe('')
    expect(apply.stdout).toContain('Apply complete! Resources: 1 added, 0 changed, 0 destroyed.')
    expect(await db.runtime.count({ where: { orgId: org.id, slug: 'packaged' } })).toBe(1)

    const destroy = await terraform(dir, 'destroy', '-auto-approve')
    expect(destroy.stderr).toBe('')
    expect(destroy.stdout).toContain('Destroy complete! Resources: 1 destroyed.')
    expect(await db.runtime.count({ where: { orgId: org.id } })).toBe(0)
  }, 120_000)
})
