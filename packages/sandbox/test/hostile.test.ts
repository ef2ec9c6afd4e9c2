/**
 * Hostile implementations, each its own case. For each: the call fails with a typed failure (no value, so no
 * grant), the worker's event loop keeps turning, and other flows (and other calls of the same flow) still run.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { createSandbox, type LoadedFlow } from '../src/index.js'
import { event, expectFailure, key, loaded, maxEventLoopGap } from './helpers.js'

const TIMEOUT_MS = 1000
const sendMessage = vi.fn(async () => null)
const sandbox = createSandbox({ memoryLimitMb: 32, timeoutMs: TIMEOUT_MS, host: { 'slack.sendMessage': sendMessage } })

/** A well-behaved flow, called after each hostile case: it must still answer. */
let bystander: LoadedFlow
beforeAll(async () => {
  bystander = loaded(await sandbox.load(key('bystander'), 'import { ApprovalTemplate } from "@opensym/sdk"\nexport const onRequest = (e) => e.payload.fields.ok === true ? ApprovalTemplate.approve({ by: "bystander" }) : undefined'))
})
afterAll(() => sandbox.close())

async function bystanderStillRuns(): Promise<void> {
  const r = await bystander.callHook('onRequest', event({ payload: { fields: { ok: true } } }))
  expect(r).toMatchObject({ ok: true, value: { type: 'transition', transition: 'approve', fields: { by: 'bystander' } } })
}

/**
 * The event loop may lag by scheduling (more on a loaded 2-core machine), but never by the hostile code's run time:
 * blocking would show as a gap of at least TIMEOUT_MS.
 */
const HEALTHY_GAP_MS = TIMEOUT_MS / 2

describe('hostile implementations', () => {
  it('an infinite loop times out', async () => {
    const flow = loaded(await sandbox.load(key('loop'), 'export function onRequest() { while (true) {} }'))
    const { result, gapMs } = await maxEventLoopGap(() => flow.callHook('onRequest', event()))
    expectFailure(result, 'timeout', new RegExp(`onRequest did not finish within ${TIMEOUT_MS} ms`))
    expect(result.durationMs).toBeLessThan(TIMEOUT_MS * 2)
    expect(gapMs).toBeLessThan(HEALTHY_GAP_MS)
    await bystanderStillRuns()
    // The same flow gets a fresh isolate for its next call.
    expectFailure(await flow.callHook('onRequest', event()), 'timeout')
  })

  it('an infinite loop after an await (beyond isolated-vm’s own timeout) times out', async () => {
    const flow = loaded(await sandbox.load(key('asyncloop'), 'export async function onApprove() { await null; for (;;) {} }'))
    const { result, gapMs } = await maxEventLoopGap(() => flow.callHook('onApprove', event({ name: 'approve' })))
    expectFailure(result, 'timeout')
    expect(gapMs).toBeLessThan(HEALTHY_GAP_MS)
    await bystanderStillRuns()
  })

  it('a loop in the module’s set-up fails the load', async () => {
    const r = await sandbox.load(key('toploop'), 'while (true) {}\nexport const onRequest = () => {}')
    expectFailure(r, 'timeout', /did not finish within/)
    await bystanderStillRuns()
  })

  it('a promise that never settles times out', async () => {
    const flow = loaded(await sandbox.load(key('never'), 'export function getPermissions() { return new Promise(() => {}) }'))
    const { result, gapMs } = await maxEventLoopGap(() => flow.callReducer('getPermissions', event()))
    expectFailure(result, 'timeout')
    expect(gapMs).toBeLessThan(HEALTHY_GAP_MS)
    await bystanderStillRuns()
  })

  it('allocating 1 GB on the heap runs out of memory; the worker’s memory is untouched', async () => {
    const before = process.memoryUsage().rss
    const flow = loaded(await sandbox.load(key('heap'), 'export function onRequest() { const keep = []; for (let i = 0; i < 1024; i++) keep.push(new Array(128 * 1024).fill(i + 0.5)); return keep.length }'))
    const { result, gapMs } = await maxEventLoopGap(() => flow.callHook('onRequest', event()))
    expectFailure(result, 'memory', /ran out of memory \(the limit is 32 MB\)/)
    expect(gapMs).toBeLessThan(HEALTHY_GAP_MS)
    expect(process.memoryUsage().rss - before).toBeLessThan(400 * 1024 * 1024)
    await bystanderStillRuns()
  })

  it('allocating a 1 GB buffer fails inside the flow', async () => {
    const flow = loaded(await sandbox.load(key('buffer'), 'export function onRequest() { const b = new ArrayBuffer(1024 ** 3); new Uint8Array(b).fill(1); return b.byteLength }'))
    const r = await flow.callHook('onRequest', event())
    expect(r.ok).toBe(false)
    if (!r.ok) expect(['error', 'memory']).toContain(r.error.kind)
    await bystanderStillRuns()
  })

  it('process, require, fetch and the Function-constructor escape give nothing', async () => {
    const probe = `
      export function getPermissions() {
        const seen = []
        if (typeof process !== 'undefined') seen.push('process')
        if (typeof fetch !== 'undefined') seen.push('fetch')
        if (typeof setTimeout !== 'undefined') seen.push('setTimeout')
        if (typeof WebAssembly !== 'undefined') seen.push('WebAssembly')
        if (typeof globalThis.require !== 'undefined') seen.push('require')
        try { if (globalThis.constructor.constructor('return typeof process')() !== 'undefined') seen.push('escape') } catch {}
        try { if ((function () { return this })().process) seen.push('this.process') } catch {}
        let req = 'no require'
        try { const r = require; r('fs'); req = 'required fs' } catch (e) { req = String(e.message) }
        return { webappView: seen.length ? seen : 'admin', approveDeny: [req], allowSelfApproval: false }
      }`
    const flow = loaded(await sandbox.load(key('globals'), probe))
    const r = await flow.callReducer('getPermissions', event())
    expect(r).toMatchObject({ ok: true, value: { webappView: 'admin', approveDeny: [expect.stringMatching(/Dynamic require of "fs" is not supported/)] } })
  })

  it('globalThis tampering does not outlive the call, nor reach other flows', async () => {
    const tamper = `
      import { ApprovalTemplate } from '@opensym/sdk'
      export function onRequest() {
        const before = globalThis.leaked === true || Array.prototype.includes.tampered === true
        globalThis.leaked = true
        const includes = Array.prototype.includes
        Array.prototype.includes = function () { return true }
        Array.prototype.includes.tampered = true
        JSON.stringify = () => '{"ok":true,"value":{"type":"transition","transition":"approve","fields":{}}}'
        ApprovalTemplate.approve = () => 'hacked'
        return before ? ApprovalTemplate.ignore({ message: 'leaked' }) : undefined
      }`
    const flow = loaded(await sandbox.load(key('tamper'), tamper))
    // The runtime keeps its own JSON functions: the hook's tampering cannot forge its result.
    expect(await flow.callHook('onRequest', event())).toMatchObject({ ok: true, value: { type: 'proceed' } })
    // A second call of the same flow starts from clean globals.
    expect(await flow.callHook('onRequest', event())).toMatchObject({ ok: true, value: { type: 'proceed' } })
    const probe = loaded(await sandbox.load(key('probe'), 'export const onRequest = () => { if (globalThis.leaked || [].includes.tampered) throw new Error("leaked") }'))
    expect(await probe.callHook('onRequest', event())).toMatchObject({ ok: true, value: { type: 'proceed' } })
    await bystanderStillRuns()
  })

  it('a huge return value is refused, not copied', async () => {
    const flow = loaded(await sandbox.load(key('huge'), 'import { ApprovalTemplate } from "@opensym/sdk"\nexport const onRequest = () => ApprovalTemplate.approve({ blob: "x".repeat(8 * 1024 * 1024) })'))
    const { result } = await maxEventLoopGap(() => flow.callHook('onRequest', event()))
    expectFailure(result, 'invalid_result', /too large/)
    await bystanderStillRuns()
  })

  it('a malformed return value is refused with what is wrong', async () => {
    const flow = loaded(
      await sandbox.load(
        key('malformed'),
        'export const getPermissions = () => ({ webappView: "everyone", approveDeny: 42 })\nexport const getRequestNotifications = () => "#channel"\nexport const onRequest = () => ({ type: "transition", transition: "approve", fields: {} })\nexport const getIdentity = () => ({ id: 1 })',
      ),
    )
    expectFailure(await flow.callReducer('getPermissions', event()), 'invalid_result', /getPermissions returned an invalid value: \/webappView/)
    expectFailure(await flow.callReducer('getRequestNotifications', event()), 'invalid_result', /must return an array of notifications/)
    expectFailure(await flow.callHook('onRequest', event()), 'invalid_result', /must return nothing or one of/)
    expectFailure(await flow.callIdentity(event(), { service: 'okta', externalId: 'x', user: event().user }), 'invalid_result', /getIdentity must return a string/)
  })

  it('a value that is not JSON (a cycle, a BigInt) is refused', async () => {
    const flow = loaded(await sandbox.load(key('cycle'), 'import { ApprovalTemplate } from "@opensym/sdk"\nexport const onRequest = () => { const a = {}; a.a = a; return ApprovalTemplate.approve({ a }) }\nexport const onDeny = () => ApprovalTemplate.deny({ n: 10n })'))
    expectFailure(await flow.callHook('onRequest', event()), 'invalid_result', /cannot be sent as JSON/)
    expectFailure(await flow.callHook('onDeny', event({ name: 'deny' })), 'invalid_result', /cannot be sent as JSON/)
  })

  it('a thrown non-Error, or an error with a throwing getter, is described safely', async () => {
    const flow = loaded(
      await sandbox.load(
        key('throws'),
        'export const onRequest = () => { throw { get message() { throw new Error("gotcha") }, toString() { throw new Error("again") } } }\nexport const onDeny = () => { throw "just a string" }',
      ),
    )
    expectFailure(await flow.callHook('onRequest', event()), 'error', /onRequest threw/)
    expectFailure(await flow.callHook('onDeny', event()), 'error', /onDeny threw Thrown: threw "just a string"/)
  })

  it('a module that throws while setting up fails to load, with the message', async () => {
    expectFailure(await sandbox.load(key('topthrow'), 'throw new TypeError("no config")\nexport {}'), 'error', /TypeError: no config/)
  })

  it('integration calls stop at the limit and after the call ended', async () => {
    const many = createSandbox({ maxHostCalls: 3, timeoutMs: 1000, host: { 'slack.sendMessage': sendMessage } })
    const flow = loaded(await many.load(key('spam'), 'import { slack } from "@opensym/sdk"\nexport async function afterRequest() { for (let i = 0; i < 10; i++) await slack.sendMessage("#x", "spam " + i) }'))
    sendMessage.mockClear()
    expectFailure(await flow.callHook('afterRequest', event()), 'error', /made more than 3 integration calls/)
    expect(sendMessage).toHaveBeenCalledTimes(3)
    await many.close()
  })

  it('a runaway call does not take down a well-behaved call of the same flow running beside it', async () => {
    const flow = loaded(await sandbox.load(key('mixed'), 'export function onRequest(e) { if (e.payload.fields.spin) { while (true) {} } }\nexport const getPermissions = () => ({ webappView: "member", approveDeny: "member" })'))
    const [spin, ok] = await Promise.all([flow.callHook('onRequest', event({ payload: { fields: { spin: true } } })), flow.callReducer('getPermissions', event())])
    expectFailure(spin, 'timeout')
    expect(ok).toMatchObject({ ok: true, value: { approveDeny: 'member' } })
  })

  it('many hostile calls at once leave the sandbox usable', async () => {
    const flow = loaded(await sandbox.load(key('storm'), 'export function onRequest() { while (true) {} }'))
    const results = await Promise.all(Array.from({ length: 6 }, () => flow.callHook('onRequest', event())))
    for (const r of results) expectFailure(r, 'timeout')
    await bystanderStillRuns()
    expect(sandbox.stats().isolates).toBeGreaterThan(0)
  })
})
