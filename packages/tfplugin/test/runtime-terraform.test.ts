/**
 * The resource runtime driven by the real terraform CLI: a provider written on it (test/fixtures/runtime-provider.ts)
 * through `dev_overrides`. Checks what only Terraform can: that its plans are accepted as valid, that
 * `requires_replace` paths give a `-/+` replacement whose new object is planned as a create, that use-state-for-unknown
 * keeps the id on update, that a vanished object is re-created, and that a thrown diagnostic lands on its line.
 */
import { execFile } from 'node:child_process'
import { accessSync, chmodSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

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
const TSX_LOADER = createRequire(import.meta.url).resolve('tsx')
const PROVIDER = fileURLToPath(new URL('./fixtures/runtime-provider.ts', import.meta.url))
const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`

const config = (attrs: string, parts = ['blue']) =>
  [
    'terraform {',
    '  required_providers {',
    '    demo = { source = "registry.terraform.io/opensym/demo" }',
    '  }',
    '}',
    '',
    'resource "demo_item" "example" {',
    attrs,
    ...parts.map((c) => `  part {\n    color = "${c}"\n  }`),
    '}',
    '',
    'output "id" {',
    '  value = demo_item.example.id',
    '}',
    '',
  ].join('\n')

describe.skipIf(!terraform)('terraform CLI with a provider on the resource runtime', () => {
  let dir = ''
  let env: Record<string, string> = {}

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tfplugin-runtime-'))
    for (const sub of ['bin', 'work', 'home', 'data']) mkdirSync(join(dir, sub))
    const wrapper = join(dir, 'bin', 'terraform-provider-demo')
    writeFileSync(wrapper, `#!/bin/sh\nexec ${q(process.execPath)} --import ${q(TSX_LOADER)} ${q(PROVIDER)} "$@"\n`)
    chmodSync(wrapper, 0o755)
    writeFileSync(join(dir, 'cli.tfrc'), `provider_installation {\n  dev_overrides {\n    "registry.terraform.io/opensym/demo" = ${JSON.stringify(join(dir, 'bin'))}\n  }\n  direct {}\n}\n`)
    env = {
      PATH: process.env.PATH ?? '',
      HOME: join(dir, 'home'),
      TF_CLI_CONFIG_FILE: join(dir, 'cli.tfrc'),
      TF_DATA_DIR: join(dir, 'data'),
      TF_IN_AUTOMATION: '1',
      CHECKPOINT_DISABLE: '1',
      DEMO_STORE: join(dir, 'store.json'),
    }
  })

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  function tf(main: string | undefined, ...args: string[]): Promise<{ code: number; output: string }> {
    if (main !== undefined) writeFileSync(join(dir, 'work', 'main.tf'), main)
    return new Promise((resolve) => {
      execFile(terraform!, [...args, '-no-color'], { cwd: join(dir, 'work'), env, timeout: 60_000 }, (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, output: `${stdout}${stderr}` })
      })
    })
  }
  const store = () => JSON.parse(readFileSync(join(dir, 'store.json'), 'utf8')) as Record<string, { kind: string | null; size: number; name: string }>
  /** The `id` output after an apply. */
  const idIn = (output: string) => /Outputs:\s+id = "(item-[0-9a-f]{8})"/.exec(output)?.[1]

  it('creates, keeps the id on update, replaces on a requires-replace change, re-creates, and destroys', async () => {
    const created = await tf(config('  name = "first"'), 'apply', '-auto-approve')
    expect(created.output).toContain('Apply complete! Resources: 1 added, 0 changed, 0 destroyed.')
    const id = idIn(created.output)
    expect(store()[id!]).toMatchObject({ name: 'first', size: 3, kind: null })

    expect((await tf(undefined, 'plan', '-detailed-exitcode')).code).toBe(0)

    // Update in place: the id stays known (use-state-for-unknown), the revision is known after apply.
    const planUpdate = await tf(config('  name = "second"'), 'plan')
    expect(planUpdate.output).toMatch(/~ name\s+= "first" -> "second"/)
    expect(planUpdate.output).toMatch(/~ revision\s+= "[0-9a-f]{6}" -> \(known after apply\)/)
    expect(planUpdate.output).not.toMatch(/~ id\s/)
    const updated = await tf(undefined, 'apply', '-auto-approve')
    expect(updated.output).toContain('Resources: 0 added, 1 changed, 0 destroyed.')
    expect(idIn(updated.output)).toBe(id)

    // `kind` requires replacement: -/+, and the new object is planned as a create.
    const planReplace = await tf(config('  name = "second"\n  kind = "gadget"'), 'plan')
    expect(planReplace.output).toContain('must be replaced')
    expect(planReplace.output).toMatch(/\+ kind\s+= "gadget" # forces replacement/)
    expect(planReplace.output).toMatch(/~ id\s+= "item-[0-9a-f]{8}" -> \(known after apply\)/)
    const replaced = await tf(undefined, 'apply', '-auto-approve')
    expect(replaced.output).toContain('Resources: 1 added, 0 changed, 1 destroyed.')
    const newId = idIn(replaced.output)
    expect(newId).not.toBe(id)
    expect(Object.keys(store())).toEqual([newId])

    // Removing `size` from the configuration plans its default again.
    await tf(config('  name = "second"\n  kind = "gadget"\n  size = 5'), 'apply', '-auto-approve')
    expect(store()[newId!]!.size).toBe(5)
    const unset = await tf(config('  name = "second"\n  kind = "gadget"'), 'apply', '-auto-approve')
    expect(unset.output).toContain('0 added, 1 changed, 0 destroyed.')
    expect(store()[newId!]!.size).toBe(3)

    // Gone behind Terraform's back: read answers null, Terraform plans a create.
    writeFileSync(join(dir, 'store.json'), '{}')
    const recreated = await tf(undefined, 'apply', '-auto-approve')
    expect(recreated.output).toContain('Resources: 1 added, 0 changed, 0 destroyed.')

    const destroyed = await tf(undefined, 'destroy', '-auto-approve')
    expect(destroyed.output).toContain('Destroy complete! Resources: 1 destroyed.')
    expect(store()).toEqual({})
  }, 180_000)

  it('shows a diagnostic thrown by the resource on its configuration line', async () => {
    const failed = await tf(config('  name = "bad"'), 'apply', '-auto-approve')
    expect(failed.code).not.toBe(0)
    expect(failed.output).toContain('Error: Name refused')
    expect(failed.output).toMatch(/on main\.tf line 8, in resource "demo_item" "example":/)
  }, 60_000)
})
