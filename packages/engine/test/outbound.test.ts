/**
 * Outbound requests whose destination comes from org data: the address policy (link-local/metadata never,
 * loopback/private only when the operator allows), enforced after DNS by the default fetch of custom strategies
 * and of host calls to an okta integration's `external_id`; okta pagination never takes the token to another origin;
 * a request that meets a stale pooled connection goes again only when it may be repeated.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Db } from '@opensym/db'
import type { HostCallContext, LoadedStrategy, StrategyHostHandlers } from '@opensym/sandbox'
import type { EventData, IntegrationData } from '@opensym/sdk/flow'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createHostHandlers, HostCallError } from '../src/host.js'
import { addressRefusal, guardedFetch, OutboundBlockedError } from '../src/outbound.js'
import type { HostContext } from '../src/runtime.js'
import { createCustomStrategy, type StrategySandbox } from '../src/strategies/custom.js'
import type { StrategyCall } from '../src/strategy.js'
import { startResetServer } from './reset-server.js'

interface Seen {
  readonly url: string
  readonly headers: IncomingHttpHeaders
}

/** A server on 127.0.0.1 recording what reaches it; `answer` decides the reply. */
async function recorder(answer: (url: string, base: string) => { status: number; body: string; headers?: Record<string, string> }) {
  const seen: Seen[] = []
  let base = ''
  const server: Server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers })
    const a = answer(req.url ?? '', base)
    res.writeHead(a.status, { 'content-type': 'application/json', ...a.headers }).end(a.body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  base = `http://127.0.0.1:${port}`
  return { seen, base, port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) }
}

let target: Awaited<ReturnType<typeof recorder>>
beforeAll(async () => {
  target = await recorder(() => ({ status: 200, body: '{"ok":true}' }))
})
afterAll(async () => {
  await target?.close()
})

const closed = { allowPrivateNetworks: false }
const open = { allowPrivateNetworks: true }

describe('address policy', () => {
  it('refuses link-local and metadata addresses whatever the setting, private ones unless allowed', () => {
    for (const a of ['169.254.169.254', '::ffff:169.254.169.254', 'fd00:ec2::254', 'fe80::1', '0.0.0.0', '::']) {
      expect(addressRefusal(a, open), a).toMatch(/link-local|metadata|reserved/)
    }
    for (const a of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '100.100.100.200', '::1', 'fd12::1', '::ffff:127.0.0.1']) {
      expect(addressRefusal(a, closed), a).toMatch(/private/)
      expect(addressRefusal(a, open), a).toBeUndefined()
    }
    expect(addressRefusal('93.184.216.34', closed)).toBeUndefined()
    expect(addressRefusal('2606:2800:220:1::1', closed)).toBeUndefined()
  })

  it('guardedFetch refuses IP literals and names that resolve to refused addresses, before connecting', async () => {
    const before = target.seen.length
    await expect(guardedFetch(closed)(`${target.base}/x`)).rejects.toBeInstanceOf(OutboundBlockedError)
    // `localhost` is a name: refused by the check made after DNS, where the connection is made.
    await expect(guardedFetch(closed)(`http://localhost:${target.port}/x`)).rejects.toThrow(/resolves to .*private/)
    await expect(guardedFetch(open)('http://169.254.169.254/latest/meta-data/')).rejects.toBeInstanceOf(OutboundBlockedError)
    await expect(guardedFetch(open)('http://[::ffff:a9fe:a9fe]/latest/meta-data/')).rejects.toBeInstanceOf(OutboundBlockedError)
    expect(target.seen.length).toBe(before)
  })

  it('guardedFetch reaches allowed addresses and returns the answer as is (no redirects followed)', async () => {
    const res = await guardedFetch(open)(`http://localhost:${target.port}/y`, { method: 'POST', headers: { 'x-a': '1' }, body: 'hi' })
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ ok: true })
    expect(target.seen.at(-1)).toMatchObject({ url: '/y', headers: { 'x-a': '1' } })
    const redirecting = await recorder(() => ({ status: 302, body: '', headers: { location: 'http://169.254.169.254/' } }))
    try {
      const r = await guardedFetch(open)(`${redirecting.base}/`)
      expect(r.status).toBe(302)
      expect(r.headers.get('location')).toBe('http://169.254.169.254/')
    } finally {
      await redirecting.close()
    }
  })
})

describe('guardedFetch on a stale pooled connection', () => {
  it('sends an idempotent request, or one with an Idempotency-Key, again on a new connection; never another POST', async () => {
    const server = await startResetServer('{"ok":true}')
    const requests = server.requests
    try {
      const base = server.base
      // Two requests one after the other through a fetch of their own (its own pool): the second reuses the first's connection.
      const twice = async (init: RequestInit) => {
        const f = guardedFetch(open)
        const first = await f(`${base}/a`, init)
        // Read to the end: only then does the connection go back to the pool.
        expect(await first.json()).toEqual({ ok: true })
        return f(`${base}/b`, init)
      }
      for (const init of [{ method: 'GET' }, { method: 'PUT', body: '{}' }, { method: 'POST', body: '{}', headers: { 'Idempotency-Key': 'k-1' } }]) {
        const before = server.resets()
        const res = await twice(init)
        expect(res.status).toBe(200)
        expect(await res.json()).toEqual({ ok: true })
        expect(server.resets()).toBe(before + 1)
        // The second request was answered on a connection of its own.
        expect(requests.at(-1)!.line).toBe(`${init.method} /b HTTP/1.1`)
        expect(requests.at(-1)!.connection).not.toBe(requests.at(-2)!.connection)
      }
      // A POST without a key may have been acted on: it fails rather than go twice.
      const served = requests.length
      await expect(twice({ method: 'POST', body: '{}' })).rejects.toMatchObject({ code: 'ECONNRESET' })
      expect(requests.length).toBe(served + 1)
    } finally {
      await server.close()
    }
  })
})

// ---------------------------------------------------------------------------------------------------------------

/** A sandbox whose strategy module only calls `strategy.fetch(url)` from fetchRemoteIdentity. */
function fetchingSandbox(url: string, headers: Record<string, string> = {}): StrategySandbox {
  const strategy = {
    key: 'strategy:test',
    exports: { handlers: ['fetchRemoteIdentity', 'escalate', 'deescalate'], prefetch: [] },
    has: () => true,
    fetchRemoteIdentity: async (_user: unknown, _s: unknown, options?: { host?: StrategyHostHandlers }) => {
      const f = options?.host?.['http.fetch']
      if (!f) throw new Error('no http.fetch')
      try {
        const r = await f({ url, method: 'GET', headers }, { strategyKey: 'strategy:test', handler: 'fetchRemoteIdentity', signal: new AbortController().signal })
        return { ok: true as const, value: `status ${r.status}`, defined: true, logs: [], durationMs: 0, hostCalls: 1 }
      } catch (e) {
        const code = (e as { code?: unknown }).code
        return { ok: true as const, value: `refused ${String(code)}: ${(e as Error).message}`, defined: true, logs: [], durationMs: 0, hostCalls: 1 }
      }
    },
  } as unknown as LoadedStrategy
  return { loadStrategy: async () => ({ ok: true, strategy }) }
}

const customCall = (): StrategyCall => ({
  strategy: { id: '00000000-0000-4000-8000-000000000001', type: 'custom', slug: 'bo', integration: { id: 'i', type: 'custom', externalId: 'bo', settings: {} }, settings: {}, implementation: 'export {}' },
  target: { id: 't', type: 'custom', slug: 't', label: null, settings: {} },
  subject: { userId: 'u', email: 'u@example.com', username: 'u@example.com' },
  identity: '',
  payload: {},
  secrets: async () => 'secret',
  signal: new AbortController().signal,
})

describe('custom strategy strategy.fetch', () => {
  it('refuses the metadata address even when private networks are allowed', async () => {
    const s = createCustomStrategy({ sandbox: fetchingSandbox('http://169.254.169.254/latest/meta-data/iam/security-credentials/'), network: open })
    expect(await s.identity(customCall())).toMatch(/^refused refused: .*link-local/)
  })

  it('refuses loopback by default, also behind a name, and reaches it when the operator allows private networks', async () => {
    const before = target.seen.length
    const byIp = createCustomStrategy({ sandbox: fetchingSandbox(`${target.base}/users`), network: closed })
    expect(await byIp.identity(customCall())).toMatch(/^refused refused: .*private/)
    const byName = createCustomStrategy({ sandbox: fetchingSandbox(`http://localhost:${target.port}/users`), network: closed })
    expect(await byName.identity(customCall())).toMatch(/^refused refused: .*private/)
    expect(target.seen.length).toBe(before)
    const allowed = createCustomStrategy({ sandbox: fetchingSandbox(`http://localhost:${target.port}/users`), network: open })
    expect(await allowed.identity(customCall())).toBe('status 200')
  })

  it('names a header whose value cannot be sent without quoting the value (a secret)', async () => {
    const s = createCustomStrategy({ sandbox: fetchingSandbox(`${target.base}/users`, { authorization: 'Bearer s3cr3t\nvalue' }), network: open })
    const out = await s.identity(customCall())
    expect(out).toMatch(/^refused invalid_arguments: header "authorization"/)
    expect(out).not.toContain('s3cr3t')
  })
})

// ---------------------------------------------------------------------------------------------------------------

function oktaEvent(externalId: string): EventData {
  const okta: IntegrationData = { type: 'okta', externalId, settings: { api_token_secret: { $secret: 'okta-token' } } }
  const user = { id: 'u', email: 'u@example.com', username: 'u@example.com', type: 'normal' as const, role: 'member' as const, identities: [] }
  return {
    name: 'request',
    timestamp: new Date(0).toISOString(),
    user,
    channel: { type: 'internal', identifier: null },
    payload: { fields: {} },
    flow: { name: 'f', srn: 'o:flow:f:latest', vars: {}, environment: { name: 'main', integrations: { okta } } },
    run: { id: 'r', srn: 'o:run:r', actors: { request: user }, contexts: {}, stepOutputs: {} },
  }
}

const hostCtx = (event: EventData): HostCallContext<HostContext> => ({
  flowKey: 'f@1',
  handler: 'onRequest',
  event,
  signal: new AbortController().signal,
  context: { orgId: 'o', flowId: 'f', environmentId: null, runId: null, eventId: null },
})

// Only identityOrEmail touches the database, and only for user objects: these calls pass emails.
const noDb = {} as unknown as Db
const TOKEN = 'okta-api-token-value'

describe('okta host calls to the integration external_id', () => {
  it('do not reach loopback or metadata addresses by default', async () => {
    const host = createHostHandlers({ db: noDb, secrets: () => async () => TOKEN, network: closed })
    const before = target.seen.length
    for (const externalId of [target.base, 'http://169.254.169.254/latest/meta-data/iam/security-credentials/role#']) {
      const call = host['okta.getUserInfo']!({ user: 'u@example.com' }, hostCtx(oktaEvent(externalId)))
      await expect(call).rejects.toMatchObject({ code: 'forbidden' })
    }
    expect(target.seen.length).toBe(before)
  })

  it('do not quote a token fetch cannot send in their error', async () => {
    const host = createHostHandlers({ db: noDb, secrets: () => async () => 'tok\u0000en-secret', network: open })
    const call = host['okta.getUserInfo']!({ user: 'u@example.com' }, hostCtx(oktaEvent(target.base)))
    await expect(call).rejects.toThrow(/authorization header/)
    await expect(call).rejects.not.toThrow(/en-secret/)
  })

  it('never follow a Link: rel="next" to another origin with the API token', async () => {
    const elsewhere = await recorder(() => ({ status: 200, body: '[]' }))
    const okta = await recorder((url) =>
      url.startsWith('/api/v1/users')
        ? { status: 200, body: JSON.stringify([{ id: 'okta-u' }]) }
        : { status: 200, body: JSON.stringify([{ id: 'someone' }]), headers: { link: `<${elsewhere.base.replace('127.0.0.1', 'localhost')}/steal?limit=200>; rel="next"` } },
    )
    try {
      const host = createHostHandlers({ db: noDb, secrets: () => async () => TOKEN, network: open })
      const call = host['okta.isUserInGroup']!({ user: 'u@example.com', groupId: 'g1' }, hostCtx(oktaEvent(okta.base)))
      await expect(call).rejects.toBeInstanceOf(HostCallError)
      await expect(call).rejects.toThrow(/another origin/)
      expect(okta.seen.map((s) => s.headers.authorization)).toEqual([`SSWS ${TOKEN}`, `SSWS ${TOKEN}`])
      expect(elsewhere.seen).toEqual([])
    } finally {
      await Promise.all([okta.close(), elsewhere.close()])
    }
  })
})
