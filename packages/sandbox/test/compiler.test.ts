/**
 * Compiling implementations: errors with the compiler's message and line, imports limited to the SDK, Python
 * recognised. This is what the API runs at apply time.
 */
import { describe, expect, it } from 'vitest'
import { checkImplementation, compileFlow, createSandbox, looksLikePython } from '../src/index.js'
import { expectFailure, key } from './helpers.js'

describe('compileFlow', () => {
  it('compiles TypeScript with SDK imports, types and all', async () => {
    const r = await compileFlow('import { ApprovalTemplate, type Event } from "@opensym/sdk"\nimport { slack } from "@opensym/sdk/flow"\nexport const onRequest = (e: Event) => e.user && ApprovalTemplate.approve()\nexport const x = slack')
    expect(r).toMatchObject({ ok: true, language: 'typescript' })
  })

  it('reports a syntax error with its line and column', async () => {
    const r = await compileFlow('export function getPermissions() {\n  return { webappView: "member" approveDeny: "member" }\n}\n')
    expect(r).toMatchObject({ ok: false, language: 'typescript', diagnostics: [{ line: 2, column: 33, message: 'Expected "}" but found "approveDeny"' }] })
    if (!r.ok) expect(r.message).toBe('impl.ts:2:33: Expected "}" but found "approveDeny"')
  })

  it('refuses any import but the SDK, naming it', async () => {
    const r = await compileFlow('import { readFileSync } from "node:fs"\nexport const a = readFileSync')
    expect(r.ok).toBe(false)
    if (!r.ok) expect(r.message).toMatch(/^impl\.ts:1:30: Import "node:fs" is not allowed: a flow implementation may import only @opensym\/sdk/)
    const req = await compileFlow('export function onRequest() { return require("child_process") }')
    if (!req.ok) expect(req.message).toMatch(/Import "child_process" is not allowed/)
    expect(req.ok).toBe(false)
    const dynamic = await compileFlow('export async function onRequest() { await import("https://evil.example/x.js") }')
    expect(dynamic.ok).toBe(false)
  })

  it('refuses a name the SDK does not export', async () => {
    const r = await compileFlow('import { createClient } from "@opensym/sdk"\nexport const a = createClient')
    expect(r.ok).toBe(false)
    if (!r.ok) expect(r.message).toMatch(/^impl\.ts:1:10: No matching export in "@opensym\/sdk" for import "createClient"/)
  })

  it('refuses top-level await, which a script cannot have', async () => {
    expect((await compileFlow('await Promise.resolve(1)\nexport {}')).ok).toBe(false)
  })

  it('recognises Python (Sym impl.py) and says it cannot run yet', async () => {
    const py = 'from sym.sdk.annotations import reducer, hook\nfrom sym.sdk.integrations import slack\n\n@reducer\ndef get_approvers(event):\n    return slack.channel("#access", allow_self=True)\n'
    expect(looksLikePython(py)).toBe(true)
    expect(await compileFlow(py)).toMatchObject({ ok: false, language: 'python', message: expect.stringContaining('Python implementations cannot run yet') })
    expect(await checkImplementation(py)).toMatchObject({ ok: true, language: 'python' })
    // A TypeScript file that mentions Python in a comment is still TypeScript.
    expect(await checkImplementation('// def get_permissions(event):\nexport {}')).toEqual({ ok: true, language: 'typescript' })
  })

  it('fails a Python flow when it runs, with that message', async () => {
    const sandbox = createSandbox()
    const r = await sandbox.load(key('py'), 'from sym.sdk.annotations import hook\n\n@hook\ndef on_request(event):\n    pass\n')
    expectFailure(r, 'unsupported_language', /Sym's impl\.py/)
    await sandbox.close()
  })

  it('fails a flow that does not compile when it loads, with the message and line', async () => {
    const sandbox = createSandbox()
    const r = await sandbox.load(key('broken'), 'export const getPermissions = () => ({ webappView: "member", })\nexport const oops = ;\n')
    expectFailure(r, 'compile', /^the implementation does not compile: impl\.ts:2:21: Unexpected ";"/)
    await sandbox.close()
  })
})
