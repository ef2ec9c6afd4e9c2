/**
 * The provider driven by the real terraform CLI against the real API: dev_overrides points Terraform at the
 * provider built from source (bin/terraform-provider-sym).
 */
import { execFile } from 'node:child_process'
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { buildApp } from '@opensym/api'
import { createDb, type Db } from '@opensym/db'
import { providerSchemasDocument } from '@opensym/provider-schema'
import { createTestOrg, type TestOrg } from '@opensym/testing'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'

const providerDir = resolve(import.meta.dirname, '../bin')
let app: FastifyInstance
let db: Db
let redis: Redis
let org: TestOrg
let apiUrl: string
let home: string
beforeAll(async () => {
  db = createDb(inject('databaseUrl'), { poolSize: 2 })
  redis = new Redis(inject('redisUrl'), { lazyConnect: true })
  app = await buildApp({ config: { logLevel: 'silent' }, db, redis })
  apiUrl = `${await app.listen({ port: 0, host: '127.0.0.1' })}/api/v1`
  org = await createTestOrg(db, 'tf')
  home = mkdtempSync(join(tmpdir(), 'opensym-tf-'))
  writeFileSync(
    join(home, 'terraform.rc'),
    `provider_installation {\n  dev_overrides {\n    "registry.terraform.io/symopsio/sym" = "${providerDir}"\n  }\n  direct {}\n}\n`,
  )
})
afterAll(async () => {
  await app.close()
  await db.$disconnect()
  redis.disconnect()
  rmSync(home, { recursive: true, force: true })
})

interface Run {
  code: number
  stdout: string
  stderr: string
}

async function terraform(dir: string, ...args: string[]): Promise<Run> {
  const env = {
    ...process.env,
    HOME: home,
    TF_CLI_CONFIG_FILE: join(home, 'terraform.rc'),
    TF_IN_AUTOMATION: '1',
    CHECKPOINT_DISABLE: '1',
    SYM_JWT: org.tokens.bot,
    SYM_API_URL: apiUrl,
  }
  return promisify(execFile)('terraform', [...args, '-no-color'], { cwd: dir, env, timeout: 120_000 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }),
  )
}

function workdir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(home, 'config-'))
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
  return dir
}

const provider = () => `terraform {\n  required_providers {\n    sym = { source = "symopsio/sym" }\n  }\n}\n\nprovider "sym" {\n  org = "${org.slug}"\n}\n`

const config = (label: string) => `${provider()}
resource "sym_integration" "slack" {
  type        = "slack"
  name        = "Main-Slack"
  external_id = "T123ABC"
}

resource "sym_environment" "main" {
  name = "main"
  integrations = {
    slack_id = sym_integration.slack.id
  }
}

resource "sym_target" "deploy" {
  type = "custom"
  name = "deploy"
}

resource "sym_strategy" "web" {
  type    = "http"
  name    = "web"
  targets = [sym_target.deploy.id]
  settings = {
    url = "https://access.example.com/sym"
  }
}

resource "sym_flow" "deploy" {
  name           = "deploy"
  label          = "${label}"
  implementation = "export const getPermissions = () => ({})\\n"
  environment_id = sym_environment.main.id
  vars = {
    channel = "#deploys"
  }

  params {
    strategy_id = sym_strategy.web.id
    prompt_field {
      name = "reason"
      type = "string"
    }
    prompt_field {
      name           = "duration"
      type           = "duration"
      allowed_values = ["30m", "1h"]
    }
  }
}

data "sym_integration" "slack" {
  type       = "slack"
  name       = "main-slack"
  depends_on = [sym_integration.slack]
}

output "slack_external_id" {
  value = data.sym_integration.slack.external_id
}
`

describe('terraform CLI with the sym provider', () => {
  it('applies, plans no change, updates in place, re-creates what vanished, and destroys', async () => {
    const dir = workdir({ 'main.tf': config('Deploy') })
    const apply = await terraform(dir, 'apply', '-auto-approve')
    expect(apply.stderr).toBe('')
    expect(apply.code).toBe(0)
    expect(apply.stdout).toContain('Apply complete! Resources: 5 added, 0 changed, 0 destroyed.')
    expect(apply.stdout).toContain('slack_external_id = "T123ABC"')

    expect((await terraform(dir, 'plan', '-detailed-exitcode')).code).toBe(0)

    writeFileSync(join(dir, 'main.tf'), config('Deploy to prod'))
    const update = await terraform(dir, 'apply', '-auto-approve')
    expect(update.stdout).toContain('1 changed')
    expect((await db.flow.findFirstOrThrow({ where: { orgId: org.id, slug: 'deploy' } })).label).toBe('Deploy to prod')

    await db.flow.deleteMany({ where: { orgId: org.id, slug: 'deploy' } })
    const drift = await terraform(dir, 'apply', '-auto-approve')
    expect(drift.stdout).toContain('1 added')

    const destroy = await terraform(dir, 'destroy', '-auto-approve')
    expect(destroy.code).toBe(0)
    expect(await db.flow.count({ where: { orgId: org.id } })).toBe(0)
    expect(await db.integration.count({ where: { orgId: org.id } })).toBe(0)
  }, 300_000)

  it('puts configuration errors on the right attribute', async () => {
    const dir = workdir({
      'main.tf': `${provider()}
resource "sym_flow" "bad" {
  name           = "bad"
  implementation = "impl.py"
  environment_id = "60c49c8c-f181-41e4-8696-99cc0b0ffc4f"
  params {
    prompt_field {
      name = "reason"
      type = "text"
    }
  }
}
`,
    })
    const plan = await terraform(dir, 'plan')
    expect(plan.code).not.toBe(0)
    expect(plan.stderr.replace(/\s+/g, ' ')).toContain('Implementation values must be file contents, not file paths')
    expect(plan.stderr).toMatch(/on main\.tf line 13, in resource "sym_flow" "bad":/)
    expect(plan.stderr.replace(/\s+/g, ' ')).toContain('"text" is not a valid type')
  }, 120_000)

  it('imports with the CLI and reports a wrong import id', async () => {
    const dir = workdir({
      'main.tf': `${provider()}
resource "sym_runtime" "main" {
  name = "Imported"
}
`,
    })
    await fetch(`${apiUrl}/entities/runtimes`, { method: 'POST', headers: { authorization: `Bearer ${org.tokens.bot}`, 'content-type': 'application/json' }, body: JSON.stringify({ slug: 'imported' }) })
    const imported = await terraform(dir, 'import', 'sym_runtime.main', 'imported')
    expect(imported.code).toBe(0)
    expect((await terraform(dir, 'plan', '-detailed-exitcode')).code).toBe(0)
    expect((await terraform(dir, 'destroy', '-auto-approve')).code).toBe(0)
    expect(await db.runtime.count({ where: { orgId: org.id } })).toBe(0)
    const wrong = await terraform(workdir({ 'main.tf': `${provider()}\nresource "sym_runtime" "x" {\n  name = "x"\n}\n` }), 'import', 'sym_runtime.x', '60c49c8c-f181-41e4-8696-99cc0b0ffc4f')
    expect(wrong.code).not.toBe(0)
    expect(wrong.stderr.replace(/\s+/g, ' ')).toContain('only supports importing by `SLUG`')
  }, 120_000)

  it('covers every resource type and data source: apply, empty plan, then import blocks into empty state and an empty plan again', async () => {
    const everything = `${provider()}
resource "sym_integration" "context" {
  type        = "permission_context"
  name        = "runtime-context"
  external_id = "123456789012"
  settings = {
    cloud    = "aws"
    region   = "us-east-1"
    role_arn = "arn:aws:iam::123456789012:role/sym/SymRuntimeMain"
  }
}

resource "sym_integration" "slack" {
  type        = "slack"
  name        = "Slack"
  external_id = "T123ABC"
}

resource "sym_runtime" "main" {
  name       = "main"
  context_id = sym_integration.context.id
}

resource "sym_secrets" "aws" {
  type = "aws_secrets_manager"
  name = "main-secrets"
  settings = {
    context_id = sym_integration.context.id
  }
}

resource "sym_secret" "okta" {
  path      = "sym/main/okta-api-key"
  source_id = sym_secrets.aws.id
  settings = {
    json_key = "token"
  }
}

resource "sym_integration" "okta" {
  type        = "okta"
  name        = "okta"
  external_id = "dev-123.okta.com"
  settings = {
    api_token_secret = sym_secret.okta.id
  }
}

resource "sym_error_logger" "slack" {
  integration_id = sym_integration.slack.id
  destination    = "#sym-errors"
}

resource "sym_log_destination" "http" {
  type = "http"
  settings = {
    url = "https://logs.example.com/sym"
  }
}

resource "sym_log_destination" "firehose" {
  type           = "kinesis_firehose"
  integration_id = sym_integration.context.id
  settings = {
    stream_name = "SymReportingMain"
  }
}

resource "sym_environment" "main" {
  name                = "main"
  runtime_id          = sym_runtime.main.id
  error_logger_id     = sym_error_logger.slack.id
  log_destination_ids = [sym_log_destination.http.id, sym_log_destination.firehose.id]
  integrations = {
    slack_id = sym_integration.slack.id
    okta_id  = sym_integration.okta.id
  }
}

resource "sym_target" "admins" {
  type  = "okta_group"
  name  = "okta-admins"
  label = "Okta Admins"
  settings = {
    group_id = "00g1abcd2EFGHijkl3m4"
  }
}

resource "sym_strategy" "okta" {
  type           = "okta"
  name           = "okta"
  integration_id = sym_integration.okta.id
  targets        = [sym_target.admins.id]
}

resource "sym_flow" "okta" {
  name           = "okta-access"
  implementation = "export {}\\n"
  environment_id = sym_environment.main.id
  params {
    strategy_id           = sym_strategy.okta.id
    allowed_sources       = ["slack"]
    schedule_deescalation = true
    prompt_field {
      name = "reason"
      type = "string"
    }
  }
}

resource "sym_flows_filter" "this" {
  implementation = "export const getFlows = (user, flows) => flows\\n"
  vars = {
    team = "platform"
  }
  integrations = {
    slack_id = sym_integration.slack.id
  }
}

data "sym_runtime" "main" {
  name       = "main"
  depends_on = [sym_runtime.main]
}

data "sym_environment" "main" {
  name       = "main"
  depends_on = [sym_environment.main]
}

data "sym_secrets" "aws" {
  type       = "aws_secrets_manager"
  name       = "main-secrets"
  depends_on = [sym_secrets.aws]
}

output "checks" {
  value = [data.sym_runtime.main.context_id == sym_integration.context.id, data.sym_environment.main.runtime_id == sym_runtime.main.id, data.sym_secrets.aws.settings["context_id"] == sym_integration.context.id]
}
`
    const dir = workdir({ 'main.tf': everything })
    const apply = await terraform(dir, 'apply', '-auto-approve')
    expect(apply.stderr).toBe('')
    expect(apply.stdout).toContain('Resources: 14 added, 0 changed, 0 destroyed.')
    expect(apply.stdout.replace(/\s+/g, ' ')).toContain('checks = [ true, true, true, ]')
    expect((await terraform(dir, 'plan', '-detailed-exitcode')).code).toBe(0)

    // Forget everything, then import it all back with import blocks.
    const addresses = (await terraform(dir, 'state', 'list')).stdout.split('\n').filter((a) => a.startsWith('sym_'))
    expect(addresses).toHaveLength(14)
    expect((await terraform(dir, 'state', 'rm', ...addresses)).code).toBe(0)
    const ids: Record<string, string> = {
      'sym_integration.context': 'permission_context:runtime-context',
      'sym_integration.slack': 'slack:slack',
      'sym_integration.okta': 'okta:okta',
      'sym_runtime.main': 'main',
      'sym_secrets.aws': 'aws_secrets_manager:main-secrets',
      'sym_secret.okta': 'sym-main-okta-api-key',
      'sym_error_logger.slack': 'sym-errors',
      'sym_log_destination.http': 'http:logs-example-com-sym',
      'sym_log_destination.firehose': 'kinesis_firehose:symreportingmain',
      'sym_environment.main': 'main',
      'sym_target.admins': 'okta_group:okta-admins',
      'sym_strategy.okta': 'okta:okta',
      'sym_flow.okta': 'okta-access',
      'sym_flows_filter.this': 'sym_flows_filter',
    }
    appendFileSync(join(dir, 'main.tf'), Object.entries(ids).map(([to, id]) => `\nimport {\n  to = ${to}\n  id = "${id}"\n}\n`).join(''))
    const imported = await terraform(dir, 'apply', '-auto-approve')
    expect(imported.stderr).toBe('')
    expect(imported.stdout).toContain('Apply complete! Resources: 14 imported, 0 added, 0 changed, 0 destroyed.')
    expect((await terraform(dir, 'plan', '-detailed-exitcode')).code).toBe(0)

    const destroy = await terraform(dir, 'destroy', '-auto-approve')
    expect(destroy.code).toBe(0)
    for (const table of ['integration', 'runtime', 'secretSource', 'secret', 'errorLogger', 'logDestination', 'environment', 'target', 'strategy', 'flow', 'flowsFilter'] as const) {
      expect(await (db[table] as unknown as { count(a: object): Promise<number> }).count({ where: { orgId: org.id } }), table).toBe(0)
    }
  }, 300_000)

  it('terraform providers schema -json shows the schema package\'s document', async () => {
    const dir = workdir({ 'main.tf': provider() })
    const res = await terraform(dir, 'providers', 'schema', '-json')
    expect(res.code).toBe(0)
    const shown = JSON.parse(res.stdout) as ReturnType<typeof providerSchemasDocument>
    expect(shown.provider_schemas).toEqual(providerSchemasDocument().provider_schemas)
  }, 120_000)
})
