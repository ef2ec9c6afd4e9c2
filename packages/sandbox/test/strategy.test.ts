/**
 * Custom strategies in the sandbox: the SDK's sample strategy (the one its author tests with @opensym/sdk/testing)
 * gives the same answers here, through the call's own host handlers; what it throws comes back typed (a
 * RetryableError with its wait); a module without escalate/deescalate does not load; time limits are per call.
 */
import { readFileSync } from 'node:fs'
import type { StrategyData } from '@opensym/sdk/flow'
import { fakeUser } from '@opensym/sdk/testing'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { createSandbox, type LoadStrategyResult, type StrategyHostHandlers } from '../src/index.js'
import { event, expectFailure, key } from './helpers.js'

const SAMPLE = readFileSync(new URL('../../sdk/test/fixtures/strategy.ts', import.meta.url), 'utf8')

const sendMessage = vi.fn(async () => null)
const sandbox = createSandbox({ memoryLimitMb: 32, timeoutMs: 2000, host: { 'slack.sendMessage': sendMessage } })
afterAll(() => sandbox.close())

function ready<C>(r: LoadStrategyResult<C>) {
  if (!r.ok) throw new Error(`load failed: ${r.error.kind}: ${r.error.message}`)
  return r.strategy
}

const data = (identity: string | null): StrategyData => ({
  name: 'backoffice',
  settings: {},
  integration: { type: 'custom', externalId: 'bo-1', settings: { api_url: 'https://backoffice.test', secrets: [{ $secret: 'secret-1' }] } },
  identity,
})

function backOffice(status = 204) {
  const seen: string[] = []
  const host: StrategyHostHandlers = {
    'secrets.retrieve': async ({ secretId }) => (secretId === 'secret-1' ? 'key-1' : 'nope'),
    'http.fetch': async ({ url, method, headers }): Promise<{ status: number; url: string; headers: Record<string, string>; body: string }> => {
      seen.push(`${method} ${url} ${headers.authorization ?? ''}`)
      if (method === 'GET') return { status: 200, url, headers: { 'content-type': 'application/json' }, body: '{"id":"u-7"}' }
      return { status, url, headers: { 'retry-after': '3' }, body: '' }
    },
  }
  return { seen, host }
}

const target = { name: 'refunds', type: 'custom', settings: { role: 'refunds' } }

describe('custom strategies in the sandbox', () => {
  it('loads the sample once per version and runs its three functions with the call’s host handlers', async () => {
    const k = key('strategy')
    const strategy = ready(await sandbox.loadStrategy(k, SAMPLE))
    expect(ready(await sandbox.loadStrategy(k, SAMPLE)).key).toBe(strategy.key)
    expect(strategy.exports.handlers).toEqual(['deescalate', 'escalate', 'fetchRemoteIdentity'])
    const bo = backOffice()
    const found = await strategy.fetchRemoteIdentity(fakeUser({ email: 'dev@example.com' }).toJSON(), data(null), { host: bo.host })
    expect(found).toMatchObject({ ok: true, value: 'u-7', hostCalls: 2 })
    const up = await strategy.escalate('t-1', event({ name: 'escalate', payload: { fields: { target, reason: 'ticket 42' } } }), data('u-7'), { host: bo.host })
    expect(up).toMatchObject({ ok: true, value: { user_id: 'u-7', role: 'refunds', target_id: 't-1', reason: 'ticket 42' } })
    const down = await strategy.deescalate('t-1', event({ name: 'deescalate', payload: { fields: { target } } }), data('u-7'), { host: bo.host })
    expect(down).toMatchObject({ ok: true, value: { user_id: 'u-7', role: 'refunds', already_removed: false } })
    expect(bo.seen).toEqual([
      'GET https://backoffice.test/users?email=dev%40example.com Bearer key-1',
      'PUT https://backoffice.test/users/u-7/roles/refunds Bearer key-1',
      'DELETE https://backoffice.test/users/u-7/roles/refunds Bearer key-1',
    ])
    expect(sandbox.stats().flows).toBeGreaterThanOrEqual(1)
  })

  it('returns what the module threw: a RetryableError with its wait, another error as it is', async () => {
    const strategy = ready(await sandbox.loadStrategy(key('strategy'), SAMPLE))
    const busy = await strategy.escalate('t-1', event({ name: 'escalate', payload: { fields: { target } } }), data('u-7'), { host: backOffice(503).host })
    expectFailure(busy, 'error', /^escalate threw RetryableError: the back-office answered 503$/)
    expect(!busy.ok && busy.error.thrown).toMatchObject({ name: 'RetryableError', retryAfterSeconds: 3 })
    const noRole = await strategy.escalate('t-1', event({ name: 'escalate', payload: { fields: { target: { ...target, settings: {} } } } }), data('u-7'), { host: backOffice().host })
    expectFailure(noRole, 'error', /^escalate threw Error: the target has no role setting$/)
  })

  it('gives fetchRemoteIdentity no sandbox-wide handlers (it has no event), and escalate both', async () => {
    const source = `import { slack } from '@opensym/sdk'
export async function fetchRemoteIdentity() { await slack.sendMessage('#x', 'hi'); return 'x' }
export async function escalate() { await slack.sendMessage('#x', 'granted'); return { told: true } }
export async function deescalate() { return [1] }`
    const strategy = ready(await sandbox.loadStrategy(key('strategy'), source))
    expectFailure(await strategy.fetchRemoteIdentity(fakeUser().toJSON(), data(null)), 'error', /slack\.sendMessage is not available in fetchRemoteIdentity/)
    expect(await strategy.escalate('t', event({ name: 'escalate' }), data('u'))).toMatchObject({ ok: true, value: { told: true } })
    expect(sendMessage).toHaveBeenCalledTimes(1)
    expectFailure(await strategy.deescalate('t', event({ name: 'deescalate' }), data('u')), 'invalid_result', /deescalate must return an object \(the step's output\) or nothing; it returned an array \[1\]/)
  })

  it('refuses a module without escalate or deescalate, and one that does not compile', async () => {
    expectFailure(await sandbox.loadStrategy(key('strategy'), 'export async function escalate() {}'), 'not_defined', /does not export deescalate/)
    expectFailure(await sandbox.loadStrategy(key('strategy'), 'export async function escalate( {}'), 'compile', /impl\.ts:1:/)
  })

  it('limits each call to its own time', async () => {
    const source = `export async function escalate(_t: string, _e: unknown, s: { fetch(u: string): Promise<unknown> }) { await s.fetch('https://slow.test/'); return {} }
export async function deescalate() {}`
    const strategy = ready(await sandbox.loadStrategy(key('strategy'), source))
    const never: StrategyHostHandlers = { 'http.fetch': (_args, { signal }) => new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')))) }
    const r = await strategy.escalate('t', event({ name: 'escalate' }), data('u'), { host: never, timeoutMs: 150 })
    expectFailure(r, 'timeout', /^escalate did not finish within 150 ms$/)
  })
})
