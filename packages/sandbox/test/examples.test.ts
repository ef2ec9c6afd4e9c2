/**
 * Every flow implementation under examples/terraform (each `impl.ts`) compiles in the sandbox, and its reducers
 * give answers the platform accepts for a plain request. New examples are picked up by name.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { checkImplementation, createSandbox } from '../src/index.js'
import { event, loaded } from './helpers.js'

const EXAMPLES = resolve(import.meta.dirname, '../../../examples/terraform')

function implementations(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() && !e.name.startsWith('.') ? implementations(join(dir, e.name)) : e.isFile() && e.name === 'impl.ts' ? [join(dir, e.name)] : [],
  )
}

const files = implementations(EXAMPLES)
const sandbox = createSandbox({ timeoutMs: 2000 })
afterAll(() => sandbox.close())

describe('examples/terraform flow implementations', () => {
  it('are found', () => {
    expect(files.map((f) => relative(EXAMPLES, f))).toEqual(expect.arrayContaining(['quickstart/impl.ts', 'approval-only/impl.ts', 'okta-access/impl.ts']))
  })

  for (const file of files) {
    it(`${relative(EXAMPLES, file)} compiles and routes a request`, async () => {
      const source = readFileSync(file, 'utf8')
      expect(await checkImplementation(source)).toEqual({ ok: true, language: 'typescript' })
      const flow = loaded(await sandbox.load(relative(EXAMPLES, file), source))
      const request = event({ flow: { vars: { request_channel: '#requests' } }, payload: { fields: { reason: 'testing', target: { name: 'dev', type: 'custom', settings: {} } } } })
      if (flow.has('getPermissions')) expect(await flow.callReducer('getPermissions', request)).toMatchObject({ ok: true })
      if (flow.has('getRequestNotifications')) expect(await flow.callReducer('getRequestNotifications', request)).toMatchObject({ ok: true })
      for (const hook of flow.exports.handlers.filter((h) => h.startsWith('on'))) {
        const r = await flow.callHook(hook as 'onRequest', request)
        expect(r.ok || r.error.kind !== 'invalid_result').toBe(true)
      }
    })
  }
})
