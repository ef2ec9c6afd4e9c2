import { createHmac } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { startHttpReceiver, type HttpReceiver } from '@opensym/testing'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { buildLogEntry, type EntryInput } from '../src/audit.js'
import type { RunSnapshot } from '../src/snapshot.js'
import { builtinStrategies, createHttpStrategy, httpStrategy, parseRetryAfter, signHttpBody } from '../src/strategies/index.js'
import { RetryableStrategyError, StrategyError, type StrategyCall } from '../src/strategy.js'
import { startResetServer } from './reset-server.js'

const SECRET_ID = '00000000-0000-4000-8000-0000000000aa'
const SECRET = 'shh-very-secret-value'

const snapshot = (url: string, settings: Record<string, string> = {}): RunSnapshot => ({
  orgSlug: 'acme',
  flow: { id: '00000000-0000-4000-8000-000000000001', slug: 'db-access', version: 3, label: null, environmentId: '00000000-0000-4000-8000-000000000002', environmentSlug: 'prod', params: {}, vars: {} },
  strategy: { id: '00000000-0000-4000-8000-000000000003', type: 'http', slug: 'grant', integration: null, settings: { url, ...settings } },
  target: { id: '00000000-0000-4000-8000-000000000004', type: 'custom', slug: 'staging-db', label: 'Staging DB', settings: { identifier: 'staging' } },
})

const requester = { id: '00000000-0000-4000-8000-000000000010', type: 'normal' as const, email: 'ben@example.com', username: 'ben@example.com', firstName: 'Ben', lastName: 'Bitdiddle' }
const approver = { id: '00000000-0000-4000-8000-000000000011', type: 'normal' as const, email: 'alyssa@example.com', username: 'alyssa@example.com', firstName: 'Alyssa', lastName: 'Hacker' }

/** The §7.2 entry of an escalate (or deescalate) event, as the engine builds it. */
function entry(snap: RunSnapshot, step: 'escalate' | 'deescalate', eventId: string) {
  const input: EntryInput = {
    orgSlug: snap.orgSlug,
    run: { id: '00000000-0000-4000-8000-000000000020', flowSlug: 'db-access', flowVersion: 3, fields: { reason: 'incident 42' }, durationSeconds: 3600, snapshot: snap },
    event: { id: eventId, name: step, channel: 'internal', status: 'pending', error: null, fields: step === 'deescalate' ? { deescalate_type: 'scheduled' } : {}, timestamp: new Date('2026-11-28T12:00:00Z'), actor: null },
    actors: [
      { step: 'request', user: requester },
      { step: 'approve', user: approver },
    ],
  }
  return buildLogEntry(input)
}

function call(url: string, options: { settings?: Record<string, string>; step?: 'escalate' | 'deescalate'; eventId?: string; secrets?: (id: string) => Promise<string>; signal?: AbortSignal } = {}): StrategyCall {
  const snap = snapshot(url, options.settings)
  return {
    strategy: snap.strategy!,
    target: snap.target!,
    subject: { userId: requester.id, email: requester.email, username: requester.username },
    identity: requester.email,
    payload: entry(snap, options.step ?? 'escalate', options.eventId ?? '00000000-0000-4000-8000-000000000030') as unknown as Record<string, unknown>,
    secrets:
      options.secrets ??
      (async (id) => {
        if (id === SECRET_ID) return SECRET
        throw new Error(`no secret ${id}`)
      }),
    signal: options.signal ?? new AbortController().signal,
  }
}

/** Runs `fn`, expecting it to throw an error of `type`; returns the error. */
async function failure<E extends Error>(fn: () => Promise<unknown>, type: new (...args: never[]) => E): Promise<E> {
  try {
    await fn()
  } catch (error) {
    expect(error).toBeInstanceOf(type)
    return error as E
  }
  throw new Error('expected a failure')
}

let rx: HttpReceiver
let signedRx: HttpReceiver
beforeAll(async () => {
  rx = await startHttpReceiver()
  signedRx = await startHttpReceiver({ secret: SECRET })
})
afterEach(() => {
  rx.reset()
  signedRx.reset()
})
afterAll(async () => {
  await rx?.close()
  await signedRx?.close()
})

describe('http strategy: requests', () => {
  it('POSTs the §7.2 entry as JSON with an idempotency key, for escalate and again for deescalate', async () => {
    rx.enqueue({ body: { body: { granted: true, ticket: 'T-1' }, errors: [] } }, { body: { body: { removed: true }, errors: [] } })
    const up = call(`${rx.url}/grant?tenant=a`, { eventId: '00000000-0000-4000-8000-0000000000e1' })
    const down = call(`${rx.url}/grant?tenant=a`, { step: 'deescalate', eventId: '00000000-0000-4000-8000-0000000000e2' })
    expect(await httpStrategy.escalate(up)).toEqual({ body: { granted: true, ticket: 'T-1' }, errors: [] })
    expect(await httpStrategy.deescalate(down)).toEqual({ body: { removed: true }, errors: [] })

    expect(rx.requests).toHaveLength(2)
    const [first, second] = rx.requests
    expect(first).toMatchObject({ method: 'POST', path: '/grant?tenant=a', signature: 'unchecked' })
    expect(first!.json).toEqual(up.payload)
    expect(first!.rawBody).toBe(JSON.stringify(up.payload))
    expect(first!.headers).toMatchObject({
      'content-type': 'application/json',
      'user-agent': 'OpenSym-HTTP-Strategy/1',
      'idempotency-key': '00000000-0000-4000-8000-0000000000e1',
      'x-sym-event': 'escalate',
    })
    expect(first!.headers['x-sym-signature']).toBeUndefined()
    expect(first!.headers['x-sym-timestamp']).toBeUndefined()
    // The entry the receiver got is the §7.2 shape, with the run's actors and the target.
    expect(first!.json).toMatchObject({
      id: '00000000-0000-4000-8000-0000000000e1',
      type: 'event',
      meta: { schema_version: 6 },
      event: { type: 'escalate', srn: 'sym:event-spec:approval:1.0.0:escalate' },
      run: { actors: { request: { username: 'ben@example.com' }, approve: { username: 'alyssa@example.com' } } },
      fields: { reason: 'incident 42', duration: 3600, target: { name: 'staging-db', type: 'custom', settings: { identifier: 'staging' } } },
    })
    expect(second!.json).toEqual(down.payload)
    expect(second!.headers).toMatchObject({ 'idempotency-key': '00000000-0000-4000-8000-0000000000e2', 'x-sym-event': 'deescalate' })
    expect(rx.received('escalate')).toHaveLength(1)
    expect(rx.received('deescalate')).toHaveLength(1)
  })

  it('signs the body and a timestamp with the configured secret, verifiable by the documented scheme', async () => {
    const now = Date.parse('2026-11-28T12:00:00Z')
    const strategy = createHttpStrategy({ now: () => now })
    const c = call(`${signedRx.url}/hook`, { settings: { hmac_secret_id: SECRET_ID } })
    // The receiver's clock is real; this request is "from the past" and must be refused as a replay.
    await strategy.escalate(c)
    const [old] = signedRx.requests
    expect(old!.headers['x-sym-timestamp']).toBe(String(now / 1000))
    expect(old!.signature).toBe('invalid')
    const hmac = createHmac('sha256', SECRET).update(`${now / 1000}.${old!.rawBody}`).digest('hex')
    expect(old!.headers['x-sym-signature']).toBe(`sha256=${hmac}`)
    expect(signHttpBody(SECRET, String(now / 1000), old!.rawBody)).toBe(`sha256=${hmac}`)

    await httpStrategy.escalate(c)
    expect(signedRx.requests[1]!.signature).toBe('valid')
    // No header, message or output carries the secret itself.
    expect(JSON.stringify(signedRx.requests)).not.toContain(SECRET)
  })

  it('a body altered after signing, or signed with another secret, does not verify', async () => {
    const c = call(`${signedRx.url}/hook`, { settings: { hmac_secret_id: SECRET_ID }, secrets: async () => 'another-secret' })
    await httpStrategy.escalate(c)
    expect(signedRx.requests[0]!.signature).toBe('invalid')
    const unsigned = call(`${signedRx.url}/hook`)
    await httpStrategy.escalate(unsigned)
    expect(signedRx.requests[1]!.signature).toBe('missing')
  })

  it('a signing secret that cannot be read fails the step without calling the endpoint or quoting the secret', async () => {
    const c = call(`${rx.url}/hook`, { settings: { hmac_secret_id: '00000000-0000-4000-8000-0000000000bb' } })
    const error = await failure(() => httpStrategy.escalate(c), StrategyError)
    expect(error.message).toContain('cannot read the signing secret (settings.hmac_secret_id): no secret 00000000-0000-4000-8000-0000000000bb')
    expect(rx.requests).toHaveLength(0)
  })

  it('identity is the email, else the username; there is no read-back', async () => {
    const c = call(rx.url)
    expect(await httpStrategy.identity(c)).toBe('ben@example.com')
    expect(await httpStrategy.identity({ ...c, subject: { userId: 'u', email: null, username: 'ben' } })).toBe('ben')
    expect('isGranted' in httpStrategy).toBe(false)
    expect(httpStrategy.type).toBe('http')
    expect(builtinStrategies().get('http')?.type).toBe('http')
  })
})

describe('http strategy: replies', () => {
  it('a non-empty errors list fails the step with the messages, not retried', async () => {
    rx.enqueue({ body: { body: { partial: true }, errors: ['user not found in LDAP', 'quota exceeded'] } })
    const error = await failure(() => httpStrategy.escalate(call(rx.url)), StrategyError)
    expect(error).not.toBeInstanceOf(RetryableStrategyError)
    expect(error.errors).toEqual(['user not found in LDAP', 'quota exceeded'])
    expect(error.message).toBe('the escalate endpoint reported 2 errors: user not found in LDAP; quota exceeded')
    expect(error.output).toEqual({ body: { partial: true }, errors: ['user not found in LDAP', 'quota exceeded'] })
  })

  it('2xx replies that are not {body, errors} are success with a warning', async () => {
    rx.enqueue({ status: 204 }, { status: 200, body: 'OK' }, { status: 200, body: { ok: true } }, { status: 202, body: [1, 2] }, { status: 200, body: undefined })
    const outputs = []
    for (let i = 0; i < 5; i++) outputs.push(await httpStrategy.escalate(call(rx.url)))
    for (const output of outputs) {
      expect(output.body).toEqual({})
      expect(output.errors).toEqual([])
      expect(output.warnings).toHaveLength(1)
    }
    expect(outputs.map((o) => o.warnings![0])).toEqual([
      'the escalate reply was empty; expected {"body": {...}, "errors": []} (treated as success)',
      'the escalate reply was not JSON: OK; expected {"body": {...}, "errors": []} (treated as success)',
      'the escalate reply was not {body, errors}: {"ok":true}; expected {"body": {...}, "errors": []} (treated as success)',
      'the escalate reply was not a JSON object: [1,2]; expected {"body": {...}, "errors": []} (treated as success)',
      'the escalate reply was empty; expected {"body": {...}, "errors": []} (treated as success)',
    ])
  })

  it('500 and 503 are retryable, with Retry-After in seconds or as an HTTP date', async () => {
    rx.enqueue({ status: 500, body: 'database is down' }, { status: 503, retryAfter: 7, body: '' })
    const e500 = await failure(() => httpStrategy.escalate(call(`${rx.url}/grant`)), RetryableStrategyError)
    expect(e500.message).toBe(`escalate POST ${rx.url}/grant: HTTP 500: database is down`)
    expect(e500.retryAfterMs).toBeUndefined()
    const e503 = await failure(() => httpStrategy.deescalate(call(`${rx.url}/grant`, { step: 'deescalate' })), RetryableStrategyError)
    expect(e503.message).toBe(`deescalate POST ${rx.url}/grant: HTTP 503`)
    expect(e503.retryAfterMs).toBe(7000)

    const now = Date.parse('2026-11-28T12:00:00Z')
    rx.enqueue({ status: 429, retryAfter: new Date(now + 90_000), body: { message: 'slow down' } })
    const e429 = await failure(() => createHttpStrategy({ now: () => now }).escalate(call(rx.url)), RetryableStrategyError)
    expect(e429.retryAfterMs).toBe(90_000)
    expect(e429.message).toContain('HTTP 429: {"message":"slow down"}')
  })

  it('408 is retryable; other 4xx fail at once, naming the status and an excerpt of the body', async () => {
    rx.enqueue({ status: 408 }, { status: 403, body: { error: 'forbidden', detail: 'x'.repeat(1000) } }, { status: 404, body: '' })
    await failure(() => httpStrategy.escalate(call(rx.url)), RetryableStrategyError)
    const e403 = await failure(() => httpStrategy.escalate(call(`${rx.url}/grant?token=abc`)), StrategyError)
    expect(e403).not.toBeInstanceOf(RetryableStrategyError)
    // The URL is shown without its query string, which may carry a token.
    expect(e403.message).toMatch(new RegExp(`^escalate POST ${rx.url}/grant: HTTP 403: \\{"error":"forbidden","detail":"x+…$`))
    expect(e403.message.length).toBeLessThan(400)
    const e404 = await failure(() => httpStrategy.escalate(call(rx.url)), StrategyError)
    expect(e404.message).toBe(`escalate POST ${rx.url}/: HTTP 404`)
  })

  it('redirects are not followed', async () => {
    rx.enqueue({ status: 307, headers: { location: 'https://elsewhere.example.com/grant' } })
    const error = await failure(() => httpStrategy.escalate(call(rx.url)), StrategyError)
    expect(error.message).toContain('HTTP 307 redirect to https://elsewhere.example.com/grant; redirects are not followed')
    expect(rx.requests).toHaveLength(1)
  })

  it('a reply slower than the timeout is retryable', async () => {
    rx.enqueue({ delayMs: 2000 })
    const started = Date.now()
    const error = await failure(() => createHttpStrategy({ defaultTimeoutMs: 200 }).escalate(call(rx.url)), RetryableStrategyError)
    expect(error.message).toBe(`escalate POST ${rx.url}/: no reply within 0.2 s`)
    expect(Date.now() - started).toBeLessThan(1500)
  })

  it('settings.timeout_seconds sets the timeout', async () => {
    rx.enqueue({ delayMs: 3000 })
    const started = Date.now()
    const error = await failure(() => httpStrategy.escalate(call(rx.url, { settings: { timeout_seconds: '1' } })), RetryableStrategyError)
    expect(error.message).toContain('no reply within 1 s')
    expect(Date.now() - started).toBeGreaterThanOrEqual(900)
    expect(Date.now() - started).toBeLessThan(2500)
  })

  it('a dropped connection and a refused connection are retryable', async () => {
    rx.enqueue({ destroy: true })
    // A strategy of its own: its first request opens a new connection (a pooled one that drops is sent again, below).
    const dropped = await failure(() => createHttpStrategy().escalate(call(rx.url)), RetryableStrategyError)
    expect(dropped.message).toMatch(/^escalate POST http:\/\/127\.0\.0\.1:\d+\/: /)

    const closed = createServer()
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const { port } = closed.address() as AddressInfo
    await new Promise<void>((resolve) => closed.close(() => resolve()))
    const refused = await failure(() => httpStrategy.escalate(call(`http://127.0.0.1:${port}/grant`)), RetryableStrategyError)
    expect(refused.message).toContain('ECONNREFUSED')
  })

  it('a pooled connection the receiver closed meanwhile is not a failure: the request goes again on a new one, once', async () => {
    const server = await startResetServer(JSON.stringify({ body: { ok: true }, errors: [] }))
    try {
      const url = `${server.base}/grant`
      const strategy = createHttpStrategy()
      await strategy.escalate(call(url, { eventId: '00000000-0000-4000-8000-000000000041' }))
      const second = await strategy.escalate(call(url, { eventId: '00000000-0000-4000-8000-000000000042' }))
      expect(second).toEqual({ body: { ok: true }, errors: [] })
      expect(server.resets()).toBe(1)
      expect(server.requests.map((r) => ({ connection: r.connection, eventId: (JSON.parse(r.body) as { id?: string }).id }))).toEqual([
        { connection: 1, eventId: '00000000-0000-4000-8000-000000000041' },
        { connection: 2, eventId: '00000000-0000-4000-8000-000000000042' },
      ])
      // Once: a new connection that fails too is the step's failure (retried with backoff).
      server.resetEverything()
      const third = await failure(() => strategy.escalate(call(url, { eventId: '00000000-0000-4000-8000-000000000043' })), RetryableStrategyError)
      expect(third.message).toContain('ECONNRESET')
      expect([server.resets(), server.connections()]).toEqual([3, 3])
    } finally {
      await server.close()
    }
  })

  it('an abort by the engine (shutdown) is retryable', async () => {
    rx.enqueue({ delayMs: 2000 })
    const controller = new AbortController()
    setTimeout(() => controller.abort(new Error('worker shutting down')), 100)
    const error = await failure(() => httpStrategy.escalate(call(rx.url, { signal: controller.signal })), RetryableStrategyError)
    expect(error.message).toContain('aborted before the reply')
  })

  it('bad settings fail without a request', async () => {
    const strategyCall = (settings: Record<string, unknown>) => ({ ...call(rx.url), strategy: { ...call(rx.url).strategy, settings } })
    for (const [settings, message] of [
      [{}, 'settings.url is not set'],
      [{ url: 'not a url' }, 'settings.url is not an absolute http:// or https:// URL'],
      [{ url: 'ftp://example.com/x' }, 'settings.url is not an http:// or https:// URL'],
      [{ url: 'https://user:pw@example.com/x' }, 'settings.url must not contain credentials'],
      [{ url: rx.url, timeout_seconds: '600' }, 'settings.timeout_seconds must be a number of seconds from 1 to 60'],
    ] as const) {
      const error = await failure(() => httpStrategy.escalate(strategyCall(settings)), StrategyError)
      expect(error.message).toContain(`http strategy "grant": ${message}`)
    }
    expect(rx.requests).toHaveLength(0)
  })

  it('a url at a link-local (cloud metadata) or reserved address fails without a request, and is not retried', async () => {
    for (const url of ['http://169.254.169.254/latest/meta-data/', 'http://[fe80::1]/grant', 'http://0.0.0.0:9/grant']) {
      const error = await failure(() => httpStrategy.escalate(call(url)), StrategyError)
      expect(error).not.toBeInstanceOf(RetryableStrategyError)
      expect(error.message).toMatch(/is a link-local, metadata or reserved address$/)
    }
    // A name is checked on what it resolves to (localhost, under a policy that refuses loopback, stands in for one).
    const strict = createHttpStrategy({ network: { allowPrivateNetworks: false } })
    const named = await failure(() => strict.escalate(call(rx.url.replace('127.0.0.1', 'localhost'))), StrategyError)
    expect(named).not.toBeInstanceOf(RetryableStrategyError)
    expect(named.message).toMatch(/localhost resolves to .*, a loopback or private address/)
    expect(rx.requests).toHaveLength(0)
  })
})

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates, never negative', () => {
    const now = Date.parse('2026-11-28T12:00:00Z')
    expect(parseRetryAfter('120', now)).toBe(120_000)
    expect(parseRetryAfter(' 0 ', now)).toBe(0)
    expect(parseRetryAfter('Sat, 28 Nov 2026 12:00:30 GMT', now)).toBe(30_000)
    expect(parseRetryAfter('Sat, 28 Nov 2026 11:00:00 GMT', now)).toBe(0)
    expect(parseRetryAfter('-5', now)).toBeUndefined()
    expect(parseRetryAfter('soon', now)).toBeUndefined()
    expect(parseRetryAfter(null, now)).toBeUndefined()
  })
})
