/**
 * Every complete configuration under examples/terraform (a folder with a main.tf), used the way its README tells a
 * newcomer to: `terraform init` with the CLI configuration of `npm run build:provider` (a filesystem mirror, no
 * network), `terraform apply`; then `plan -detailed-exitcode` must find nothing to do, and `terraform destroy` must
 * leave nothing behind in the API. Also: the examples are `terraform fmt`-clean, their TypeScript compiles under
 * strict settings, and they can be applied side by side in one organization, as examples/terraform/README.md says.
 *
 * The mirror holds the provider's esbuild bundle (what the packaged executable runs) behind a small wrapper rather
 * than the single executable itself: packaging has its own test, and building it here would race that test for
 * dist/. The bundle rather than the sources through tsx, since Terraform starts the provider 3–5 times a command and
 * tsx takes about a second to start where the bundle takes a tenth of that.
 */
import { execFile } from 'node:child_process'
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative, resolve } from 'node:path'
import { promisify } from 'node:util'
import { buildApp } from '@opensym/api'
import { createDb, type Db } from '@opensym/db'
import { createTestOrg, type TestOrg } from '@opensym/testing'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import ts from 'typescript'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { bundle, cliConfig, providerVersion, terraformPlatform } from '../scripts/build.js'

const EXAMPLES_DIR = resolve(import.meta.dirname, '../../../examples/terraform')

/** The complete configurations: top-level folders with a main.tf (resources/ and data-sources/ hold snippets). */
const examples = readdirSync(EXAMPLES_DIR, { withFileTypes: true })
  .filter((e) => e.isDirectory() && existsSync(join(EXAMPLES_DIR, e.name, 'main.tf')))
  .map((e) => e.name)
  .sort()

/**
 * Variables an example has no default for. Everything else must apply with its defaults; only `sym_org` is set for
 * every example, since each runs in an org of its own here.
 */
const REQUIRED_VARIABLES: Record<string, Record<string, string>> = {
  quickstart: { slack_workspace_id: 'T0QUICK' },
}

/** The entity tables, each counted per org: what "nothing left behind" means. */
const TABLES = ['integration', 'runtime', 'secretSource', 'secret', 'errorLogger', 'logDestination', 'environment', 'target', 'strategy', 'flow', 'flowsFilter'] as const

type Counter = { count(args: { where: { orgId: string } }): Promise<number> }
type Lister = { findMany(args: { where: { orgId: string }; select: Record<string, true> }): Promise<{ slug: string; type?: string }[]> }

let app: FastifyInstance
let db: Db
let redis: Redis
let apiUrl: string
let home: string
let cliConfigFile: string
beforeAll(async () => {
  db = createDb(inject('databaseUrl'), { poolSize: 2 })
  redis = new Redis(inject('redisUrl'), { lazyConnect: true })
  app = await buildApp({ config: { logLevel: 'silent' }, db, redis })
  apiUrl = `${await app.listen({ port: 0, host: '127.0.0.1' })}/api/v1`
  home = mkdtempSync(join(tmpdir(), 'opensym-examples-'))

  // A filesystem mirror laid out like dist/terraform-mirror, and the CLI configuration build:provider writes for it.
  const version = providerVersion()
  const mirror = join(home, 'mirror')
  const platformDir = join(mirror, 'registry.terraform.io/symopsio/sym', version, terraformPlatform())
  mkdirSync(platformDir, { recursive: true })
  const { path: bundled } = await bundle(join(home, 'terraform-provider-sym.cjs'))
  const wrapper = join(platformDir, `terraform-provider-sym_v${version}`)
  // exec, so that Terraform's process is the provider itself (it kills that process when a handshake fails).
  writeFileSync(wrapper, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(bundled)} "$@"\n`)
  chmodSync(wrapper, 0o755)
  cliConfigFile = join(home, 'terraform.rc')
  writeFileSync(cliConfigFile, cliConfig(mirror))
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

async function terraform(dir: string, org: TestOrg, vars: Record<string, string>, ...args: string[]): Promise<Run> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    TF_CLI_CONFIG_FILE: cliConfigFile,
    TF_IN_AUTOMATION: '1',
    CHECKPOINT_DISABLE: '1',
    // Offline, as the README promises: anything Terraform tried to download would go to a proxy that is not there.
    HTTPS_PROXY: 'http://127.0.0.1:9',
    HTTP_PROXY: 'http://127.0.0.1:9',
    SYM_JWT: org.tokens.bot,
    SYM_API_URL: apiUrl,
    ...Object.fromEntries(Object.entries(vars).map(([k, v]) => [`TF_VAR_${k}`, v])),
  }
  for (const name of ['NODE_OPTIONS', 'TF_PLUGIN_CACHE_DIR', 'TF_DATA_DIR', 'NO_PROXY', 'no_proxy']) delete env[name]
  return promisify(execFile)('terraform', [...args, '-no-color'], { cwd: dir, env, timeout: 180_000 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }),
  )
}

/** Fails with Terraform's own output, which says what went wrong far better than "expected 1 to be 0". */
function assertSuccess(run: Run, what: string): void {
  if (run.code !== 0 || run.stderr !== '') throw new Error(`${what} exited ${run.code}:\n${run.stderr || run.stdout}`)
}

const countAll = async (orgId: string) =>
  Object.fromEntries(await Promise.all(TABLES.map(async (t) => [t, await (db[t] as unknown as Counter).count({ where: { orgId } })] as const)))

/**
 * What may exist once per org (mirroring the unique constraints in prisma/schema.prisma): two examples that both
 * created one of these could not be applied in the same org.
 */
async function uniqueKeys(orgId: string): Promise<string[]> {
  const keyed = async (table: 'environment' | 'flow' | 'runtime', kind: string) =>
    (await (db[table] as unknown as Lister).findMany({ where: { orgId }, select: { slug: true } })).map((r) => `${kind} ${r.slug}`)
  const typed = async (table: 'integration' | 'target' | 'strategy' | 'secretSource', kind: string) =>
    (await (db[table] as unknown as Lister).findMany({ where: { orgId }, select: { slug: true, type: true } })).map((r) => `${kind} ${r.type ?? ''}:${r.slug}`)
  const singletons = (await db.flowsFilter.count({ where: { orgId } })) > 0 ? ['sym_flows_filter'] : []
  return [
    ...(await keyed('environment', 'sym_environment')),
    ...(await keyed('flow', 'sym_flow')),
    ...(await keyed('runtime', 'sym_runtime')),
    ...(await typed('integration', 'sym_integration')),
    ...(await typed('target', 'sym_target')),
    ...(await typed('strategy', 'sym_strategy')),
    ...(await typed('secretSource', 'sym_secrets')),
    ...singletons,
  ]
}

/** Each applied example's unique keys, for the side-by-side check. */
const appliedKeys = new Map<string, string[]>()

describe('examples/terraform', () => {
  it('finds the complete examples', () => {
    // Guards the discovery itself: a typo there would otherwise test nothing and pass.
    expect(examples).toEqual(expect.arrayContaining(['quickstart', 'approval-only', 'okta-access', 'aws-sso-access', 'custom-strategy']))
    expect(examples).not.toContain('resources')
    expect(examples).not.toContain('data-sources')
  })

  it('is formatted: terraform fmt -check', async () => {
    const env = { ...process.env, HOME: home, TF_CLI_CONFIG_FILE: cliConfigFile }
    const run = await promisify(execFile)('terraform', ['fmt', '-check', '-recursive', '-diff', '-no-color', EXAMPLES_DIR], { env }).then(
      () => ({ code: 0, out: '' }),
      (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` }),
    )
    expect(run.out).toBe('')
    expect(run.code).toBe(0)
  })

  it('has TypeScript (flow implementations, strategies) that compiles with strict settings and no Node or DOM globals', () => {
    const files: string[] = []
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory() && !e.name.startsWith('.')) walk(join(dir, e.name))
        else if (e.isFile() && e.name.endsWith('.ts')) files.push(join(dir, e.name))
      }
    }
    walk(EXAMPLES_DIR)
    expect(files.length).toBeGreaterThanOrEqual(examples.length)
    // The sandbox that will run these has the language and nothing else: `lib` without DOM, no @types at all.
    const program = ts.createProgram(files, {
      strict: true,
      noEmit: true,
      noUnusedLocals: true,
      noUnusedParameters: true,
      noUncheckedIndexedAccess: true,
      isolatedModules: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      lib: ['lib.es2022.d.ts'],
      types: [],
    })
    const problems = ts.getPreEmitDiagnostics(program).map((d) => {
      const where = d.file ? `${relative(EXAMPLES_DIR, d.file.fileName)}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}: ` : ''
      return where + ts.flattenDiagnosticMessageText(d.messageText, '\n')
    })
    expect(problems).toEqual([])
  })

  describe.concurrent('apply, empty plan, destroy', () => {
    for (const name of examples) {
      // The context's expect: the global one cannot tell concurrent tests apart.
      it(name, async ({ expect }) => {
        const org = await createTestOrg(db, 'ex')
        const vars = { sym_org: org.slug, ...REQUIRED_VARIABLES[name] }
        const dir = mkdtempSync(join(home, `${name}-`))
        // A clean copy, as a newcomer's checkout would be: no state or lock file from someone's earlier run.
        cpSync(join(EXAMPLES_DIR, name), dir, { recursive: true, filter: (src) => !/(^|\/)(\.terraform|\.terraform\.lock\.hcl|terraform\.tfstate)/.test(relative(EXAMPLES_DIR, src)) })

        const init = await terraform(dir, org, vars, 'init', '-input=false')
        assertSuccess(init, `${name}: terraform init`)
        expect(init.stdout).toContain(`- Installed symopsio/sym v${providerVersion()} (unauthenticated)`)

        const apply = await terraform(dir, org, vars, 'apply', '-auto-approve', '-input=false')
        assertSuccess(apply, `${name}: terraform apply`)
        // Warnings (such as a var that looks like a number) would be the first thing a newcomer sees: none allowed.
        expect(apply.stdout).not.toContain('Warning:')
        const added = Number(/Apply complete! Resources: (\d+) added, 0 changed, 0 destroyed\./.exec(apply.stdout)?.[1])
        expect(added).toBeGreaterThan(0)
        // Every resource Terraform created is one entity in the API, and nothing else was created.
        const counts = await countAll(org.id)
        expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(added)
        appliedKeys.set(name, await uniqueKeys(org.id))

        const plan = await terraform(dir, org, vars, 'plan', '-detailed-exitcode', '-input=false')
        if (plan.code !== 0) throw new Error(`${name}: plan after apply exited ${plan.code} (2 means changes):\n${plan.stdout}${plan.stderr}`)

        const destroy = await terraform(dir, org, vars, 'destroy', '-auto-approve', '-input=false')
        assertSuccess(destroy, `${name}: terraform destroy`)
        expect(destroy.stdout).toContain(`Destroy complete! Resources: ${added} destroyed.`)
        expect(await countAll(org.id)).toEqual(Object.fromEntries(TABLES.map((t) => [t, 0])))
      }, 600_000)
    }
  })

  it('can be applied side by side in one organization: no two examples create the same unique name', () => {
    // Only meaningful once every example applied; their own tests report why one did not.
    expect([...appliedKeys.keys()].sort()).toEqual(examples)
    const owners = new Map<string, string[]>()
    for (const [name, keys] of appliedKeys) for (const key of keys) owners.set(key, [...(owners.get(key) ?? []), name])
    const shared = [...owners].filter(([, names]) => names.length > 1).map(([key, names]) => `${key}: ${names.join(', ')}`)
    expect(shared).toEqual([])
  })
})
