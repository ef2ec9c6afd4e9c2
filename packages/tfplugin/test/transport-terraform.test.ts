/**
 * Smoke test with the real terraform CLI: the demo provider (test/fixtures/demo-provider.ts, run by a shell
 * wrapper that execs `node --import tsx`) installed through `dev_overrides`, then apply → plan (no changes) →
 * destroy in a temporary directory with its own HOME and TF_DATA_DIR. No network: dev_overrides need no init.
 */
import { execFile } from 'node:child_process'
import { accessSync, chmodSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEMO_PROVIDER, TSX_LOADER } from './fixtures/transport-helpers.js'

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue
    try {
      accessSync(join(dir, name), constants.X_OK)
      return join(dir, name)
    } catch {
      // keep looking
    }
  }
  return undefined
}

const terraform = findOnPath('terraform')
const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`

interface Run {
  code: number
  output: string
  ms: number
}

describe.skipIf(!terraform)('terraform CLI with the demo provider (dev_overrides)', () => {
  let dir = ''
  let env: Record<string, string> = {}
  const logs: string[] = []

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tfplugin-smoke-'))
    for (const sub of ['bin', 'work', 'home', 'data']) mkdirSync(join(dir, sub))
    const wrapper = join(dir, 'bin', 'terraform-provider-demo')
    writeFileSync(wrapper, `#!/bin/sh\nexec ${shellQuote(process.execPath)} --import ${shellQuote(TSX_LOADER)} ${shellQuote(DEMO_PROVIDER)} "$@"\n`)
    chmodSync(wrapper, 0o755)
    writeFileSync(
      join(dir, 'cli.tfrc'),
      `provider_installation {\n  dev_overrides {\n    "registry.terraform.io/opensym/demo" = ${JSON.stringify(join(dir, 'bin'))}\n  }\n  direct {}\n}\n`,
    )
    writeFileSync(
      join(dir, 'work', 'main.tf'),
      [
        'terraform {',
        '  required_providers {',
        '    demo = { source = "registry.terraform.io/opensym/demo" }',
        '  }',
        '}',
        '',
        'resource "demo_thing" "example" {',
        '  name = "first"',
        '}',
        '',
        'output "thing_id" {',
        '  value = demo_thing.example.id',
        '}',
        '',
      ].join('\n'),
    )
    env = {
      PATH: process.env.PATH ?? '',
      HOME: join(dir, 'home'),
      TF_CLI_CONFIG_FILE: join(dir, 'cli.tfrc'),
      TF_DATA_DIR: join(dir, 'data'),
      TF_IN_AUTOMATION: '1',
      CHECKPOINT_DISABLE: '1',
      TF_LOG: 'debug',
    }
  })

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  function tf(...args: string[]): Promise<Run> {
    const logPath = join(dir, `tf-${logs.length}.log`)
    const started = performance.now()
    return new Promise((resolve) => {
      execFile(
        terraform!,
        [...args, '-no-color'],
        { cwd: join(dir, 'work'), env: { ...env, TF_LOG_PATH: logPath }, timeout: 60_000 },
        (error, stdout, stderr) => {
          logs.push(readFileSync(logPath, 'utf8'))
          const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0
          resolve({ code, output: `${stdout}${stderr}`, ms: Math.round(performance.now() - started) })
        },
      )
    })
  }

  it('applies, plans no changes (exit 0) and destroys', async () => {
    const apply = await tf('apply', '-auto-approve')
    expect(apply.output).toContain('Apply complete! Resources: 1 added, 0 changed, 0 destroyed.')
    expect(apply.code).toBe(0)
    const id = /thing_id = "(demo-[0-9a-f]{8})"/.exec(apply.output)?.[1]
    expect(id).toBeDefined()

    const plan = await tf('plan', '-detailed-exitcode')
    expect(plan.output).toContain('No changes.')
    expect(plan.code).toBe(0)

    const destroy = await tf('destroy', '-auto-approve')
    expect(destroy.output).toContain('Destroy complete! Resources: 1 destroyed.')
    expect(destroy.code).toBe(0)

    const all = logs.join('\n')
    // Shutdown answered and the process exited: no 2 s wait and SIGKILL.
    expect(all).not.toContain('plugin failed to exit gracefully')
    // Our hclog JSON was parsed by go-plugin (shown at its level under the provider's logger, not as raw text).
    expect(all).toMatch(/\[INFO\] {2}provider\.terraform-provider-demo: Provider started: .*tls=true/)

    // Spawn → handshake per provider process, from terraform's own log timestamps.
    const spawnToHandshake: number[] = []
    for (const log of logs) {
      let startedAt: number | undefined
      for (const line of log.split('\n')) {
        const at = Date.parse(line.split(' ', 1)[0] ?? '')
        if (line.includes('provider: plugin started:')) startedAt = at
        else if (line.includes('provider: using plugin:') && startedAt !== undefined) {
          spawnToHandshake.push(at - startedAt)
          startedAt = undefined
        }
      }
    }
    spawnToHandshake.sort((a, b) => a - b)
    console.info(
      `terraform smoke: apply ${apply.ms} ms, plan ${plan.ms} ms, destroy ${destroy.ms} ms; ` +
        `${spawnToHandshake.length} provider processes, spawn→handshake median ${spawnToHandshake[spawnToHandshake.length >> 1]} ms ` +
        `(min ${spawnToHandshake[0]}, max ${spawnToHandshake[spawnToHandshake.length - 1]})`,
    )
    expect(spawnToHandshake.length).toBeGreaterThanOrEqual(10)
  }, 90_000)
})
