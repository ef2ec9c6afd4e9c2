/**
 * A CDKTF app written with the bindings: synthesized with cdktf, then `terraform init`, `apply`, `plan` and `destroy`
 * with the real terraform CLI and the sym provider from source against the real API.
 *
 * CDKTF always declares a backend, and a backend needs `terraform init`, which must install the provider from
 * somewhere: a filesystem mirror in the test's home holds a script that runs `apps/provider/bin/terraform-provider-sym`
 * (the provider from its TypeScript sources), so init works with no network and without `npm run build:provider`.
 */
import { execFile, execFileSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { buildApp } from '@opensym/api'
import { createDb, type Db } from '@opensym/db'
import { PROVIDER_ADDRESS } from '@opensym/provider-schema'
import { createTestOrg, type TestOrg } from '@opensym/testing'
import { App, LocalBackend, TerraformOutput, TerraformStack } from 'cdktf'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { DataSymIntegration, Environment, Flow, Integration, Runtime, Strategy, SymProvider, Target } from '../src/index.js'

const REPO_ROOT = resolve(import.meta.dirname, '../../..')
const PROVIDER_FROM_SOURCE = join(REPO_ROOT, 'apps/provider/bin/terraform-provider-sym')
const IMPLEMENTATION = 'export const getPermissions = () => ({})\n'

let app: FastifyInstance
let db: Db
let redis: Redis
let org: TestOrg
let apiUrl: string
let home: string
let providerVersion: string
beforeAll(async () => {
  db = createDb(inject('databaseUrl'), { poolSize: 2 })
  redis = new Redis(inject('redisUrl'), { lazyConnect: true })
  app = await buildApp({ config: { logLevel: 'silent' }, db, redis })
  apiUrl = `${await app.listen({ port: 0, host: '127.0.0.1' })}/api/v1`
  org = await createTestOrg(db, 'cdktf')
  home = mkdtempSync(join(tmpdir(), 'opensym-cdktf-'))

  // Terraform's unpacked mirror layout: <mirror>/<host>/<namespace>/<type>/<version>/<os>_<arch>/terraform-provider-<type>_v<version>.
  providerVersion = (JSON.parse(readFileSync(join(REPO_ROOT, 'apps/provider/package.json'), 'utf8')) as { version: string }).version
  const { platform } = JSON.parse(execFileSync('terraform', ['version', '-json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CHECKPOINT_DISABLE: '1' } })) as { platform: string }
  const mirror = join(home, 'mirror')
  const packageDir = join(mirror, PROVIDER_ADDRESS, providerVersion, platform)
  mkdirSync(packageDir, { recursive: true })
  const executable = join(packageDir, `terraform-provider-sym_v${providerVersion}`)
  // exec, so that Terraform's signals reach the provider's node process directly.
  writeFileSync(executable, `#!/bin/sh\nexec '${PROVIDER_FROM_SOURCE}' "$@"\n`)
  chmodSync(executable, 0o755)
  writeFileSync(
    join(home, 'terraform.rc'),
    `provider_installation {\n  filesystem_mirror {\n    path    = "${mirror}"\n    include = ["${PROVIDER_ADDRESS}"]\n  }\n  direct {\n    exclude = ["${PROVIDER_ADDRESS}"]\n  }\n}\n`,
  )
})
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
    TF_CLI_CONFIG_FILE: join(home, 'terraform.rc'),
    TF_IN_AUTOMATION: '1',
    CHECKPOINT_DISABLE: '1',
    // Offline: anything Terraform tried to download would go to a proxy that is not there.
    HTTPS_PROXY: 'http://127.0.0.1:9',
    HTTP_PROXY: 'http://127.0.0.1:9',
    SYM_JWT: org.tokens.bot,
    SYM_API_URL: apiUrl,
  }
  // vitest's NODE_OPTIONS would be inherited by the provider's node process.
  for (const name of ['NODE_OPTIONS', 'TF_PLUGIN_CACHE_DIR', 'TF_DATA_DIR', 'NO_PROXY', 'no_proxy']) delete env[name]
  return promisify(execFile)('terraform', [...args, '-no-color'], { cwd: dir, env, timeout: 120_000 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }),
  )
}

/** Synthesizes the app into `outdir` and returns the stack's directory (where cdk.tf.json is). */
function synth(outdir: string, flowLabel: string): string {
  const cdktfApp = new App({ outdir })
  const stack = new TerraformStack(cdktfApp, 'access')
  // Relative to the stack's directory; CDKTF's default is an absolute path under the current directory.
  new LocalBackend(stack, { path: 'terraform.tfstate' })
  new SymProvider(stack, 'sym', { org: org.slug })

  const slack = new Integration(stack, 'slack', { type: 'slack', name: 'Main-Slack', externalId: 'T123ABC' })
  const runtime = new Runtime(stack, 'runtime', { name: 'main' })
  const environment = new Environment(stack, 'main', { name: 'main', runtimeId: runtime.id, integrations: { slack_id: slack.id } })
  const target = new Target(stack, 'deploy_target', { type: 'custom', name: 'deploy' })
  const strategy = new Strategy(stack, 'web', { type: 'http', name: 'web', targets: [target.id], settings: { url: 'https://access.example.com/sym' } })
  const flow = new Flow(stack, 'deploy', {
    name: 'deploy',
    label: flowLabel,
    implementation: IMPLEMENTATION,
    environmentId: environment.id,
    vars: { channel: '#deploys' },
    params: {
      strategyId: strategy.id,
      promptField: [
        { name: 'reason', type: 'string', required: true },
        { name: 'duration', type: 'duration', allowedValues: ['30m', '1h'] },
      ],
    },
  })
  const lookup = new DataSymIntegration(stack, 'slack_lookup', { type: 'slack', name: 'main-slack', dependsOn: [slack] })
  new TerraformOutput(stack, 'slack_external_id', { value: lookup.externalId })
  new TerraformOutput(stack, 'flow_id', { value: flow.id })

  cdktfApp.synth()
  return join(outdir, 'stacks', 'access')
}

describe('a CDKTF app with the sym bindings', () => {
  it('synthesizes, and terraform inits, applies, plans no change, updates and destroys it', async () => {
    const outdir = mkdtempSync(join(home, 'app-'))
    const dir = synth(outdir, 'Deploy')
    const config = JSON.parse(readFileSync(join(dir, 'cdk.tf.json'), 'utf8'))
    expect(config.terraform.required_providers.sym).toEqual({ source: PROVIDER_ADDRESS })
    expect(config.provider.sym).toEqual([{ org: org.slug }])
    expect(config.resource.sym_environment.main.integrations).toEqual({ slack_id: '${sym_integration.slack.id}' })
    expect(config.resource.sym_flow.deploy.params.strategy_id).toBe('${sym_strategy.web.id}')
    expect(config.resource.sym_flow.deploy.params.prompt_field[1]).toEqual({ name: 'duration', type: 'duration', allowed_values: ['30m', '1h'] })

    const init = await terraform(dir, 'init')
    expect(init.stderr).toBe('')
    expect(init.code).toBe(0)
    expect(init.stdout).toContain(`- Installed symopsio/sym v${providerVersion} (unauthenticated)`)

    const apply = await terraform(dir, 'apply', '-auto-approve')
    expect(apply.stderr).toBe('')
    expect(apply.stdout).toContain('Apply complete! Resources: 6 added, 0 changed, 0 destroyed.')
    const outputs = JSON.parse((await terraform(dir, 'output', '-json')).stdout)
    expect(outputs.slack_external_id.value).toBe('T123ABC')
    const flow = await db.flow.findFirstOrThrow({ where: { orgId: org.id, slug: 'deploy' }, include: { environment: true, strategy: true } })
    expect(flow.id).toBe(outputs.flow_id.value)
    expect(flow.label).toBe('Deploy')
    expect(flow.implementation).toBe(IMPLEMENTATION)
    expect(flow.environment.slug).toBe('main')
    expect(flow.strategy?.slug).toBe('web')
    expect(flow.strategy?.settings).toEqual({ url: 'https://access.example.com/sym' })
    expect(flow.vars).toEqual({ channel: '#deploys' })
    expect(flow.params).toMatchObject({
      prompt_fields: [
        { name: 'reason', type: 'string', required: true },
        { name: 'duration', type: 'duration', allowed_values: ['30m', '1h'] },
      ],
    })

    const plan = await terraform(dir, 'plan', '-detailed-exitcode')
    expect(plan.stderr).toBe('')
    expect(plan.code).toBe(0)

    // A changed app, synthesized again into the same directory, is an update in place.
    synth(outdir, 'Deploy to prod')
    const update = await terraform(dir, 'apply', '-auto-approve')
    expect(update.stderr).toBe('')
    expect(update.stdout).toContain('Apply complete! Resources: 0 added, 1 changed, 0 destroyed.')
    expect((await db.flow.findFirstOrThrow({ where: { orgId: org.id, slug: 'deploy' } })).label).toBe('Deploy to prod')

    const destroy = await terraform(dir, 'destroy', '-auto-approve')
    expect(destroy.stderr).toBe('')
    expect(destroy.stdout).toContain('Destroy complete! Resources: 6 destroyed.')
    expect(await db.flow.count({ where: { orgId: org.id } })).toBe(0)
    expect(await db.environment.count({ where: { orgId: org.id } })).toBe(0)
    expect(await db.integration.count({ where: { orgId: org.id } })).toBe(0)
  }, 300_000)
})
