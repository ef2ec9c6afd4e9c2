import { createHmac } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { expectedSignature, startHttpReceiver, type HttpReceiver } from '../src/http-receiver.js'

let receivers: HttpReceiver[] = []
async function receiver(...args: Parameters<typeof startHttpReceiver>) {
  const r = await startHttpReceiver(...args)
  receivers.push(r)
  return r
}
afterEach(async () => {
  await Promise.all(receivers.map((r) => r.close()))
  receivers = []
})

const post = (url: string, body: string, headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } })

describe('startHttpReceiver', () => {
  it('records method, path, headers, raw body and JSON, and answers {body, errors} by default', async () => {
    const rx = await receiver()
    expect(rx.url).toBe(`http://127.0.0.1:${rx.port}`)
    const res = await post(`${rx.url}/grant?x=1`, '{"event":{"type":"escalate"}}', { 'X-Custom': 'yes' })
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ body: {}, errors: [] })
    await post(`${rx.url}/grant`, 'not json')
    expect(rx.requests).toHaveLength(2)
    expect(rx.requests[0]).toMatchObject({ method: 'POST', path: '/grant?x=1', rawBody: '{"event":{"type":"escalate"}}', json: { event: { type: 'escalate' } }, signature: 'unchecked' })
    expect(rx.requests[0]!.headers['x-custom']).toBe('yes')
    expect(rx.requests[1]!.json).toBeUndefined()
    expect(rx.received('escalate')).toHaveLength(1)
    expect(rx.received('deescalate')).toHaveLength(0)
  })

  it('answers as scripted: queue first, then the responder, then the default', async () => {
    const rx = await receiver()
    rx.enqueue({ status: 503, retryAfter: 3, body: 'busy' }, { status: 429, retryAfter: new Date('2030-01-01T00:00:00Z') })
    rx.respondWith((req) => (req.path === '/special' ? { status: 201, body: { body: { special: true }, errors: [] } } : undefined))
    const a = await post(rx.url, '{}')
    expect([a.status, a.headers.get('retry-after'), await a.text()]).toEqual([503, '3', 'busy'])
    const b = await post(rx.url, '{}')
    expect([b.status, b.headers.get('retry-after')]).toEqual([429, 'Tue, 01 Jan 2030 00:00:00 GMT'])
    const c = await post(`${rx.url}/special`, '{}')
    expect([c.status, await c.json()]).toEqual([201, { body: { special: true }, errors: [] }])
    const d = await post(`${rx.url}/other`, '{}')
    expect(await d.json()).toEqual({ body: {}, errors: [] })
    rx.reset()
    expect(rx.requests).toHaveLength(0)
  })

  it('delays replies and drops connections', async () => {
    const rx = await receiver()
    rx.enqueue({ delayMs: 300 }, { destroy: true })
    const started = Date.now()
    expect((await post(rx.url, '{}')).status).toBe(200)
    expect(Date.now() - started).toBeGreaterThanOrEqual(250)
    await expect(post(rx.url, '{}')).rejects.toThrow()
    // A client that gives up before a delayed reply does not break the receiver.
    rx.enqueue({ delayMs: 1000 })
    await expect(fetch(rx.url, { method: 'POST', body: '{}', signal: AbortSignal.timeout(50) })).rejects.toThrow()
    expect((await post(rx.url, '{}')).status).toBe(200)
    expect(rx.requests).toHaveLength(4)
  })

  it('verifies signatures over "<timestamp>.<body>", refusing stale timestamps', async () => {
    const rx = await receiver({ secret: 'k', rejectBadSignatures: true })
    const body = '{"id":"e1"}'
    const ts = String(Math.floor(Date.now() / 1000))
    const sig = `sha256=${createHmac('sha256', 'k').update(`${ts}.${body}`).digest('hex')}`
    expect(expectedSignature('k', ts, body)).toBe(sig)
    expect((await post(rx.url, body, { 'x-sym-timestamp': ts, 'x-sym-signature': sig })).status).toBe(200)
    expect((await post(rx.url, `${body} `, { 'x-sym-timestamp': ts, 'x-sym-signature': sig })).status).toBe(401)
    const old = String(Number(ts) - 600)
    expect((await post(rx.url, body, { 'x-sym-timestamp': old, 'x-sym-signature': expectedSignature('k', old, body) })).status).toBe(401)
    expect((await post(rx.url, body)).status).toBe(401)
    expect(rx.requests.map((r) => r.signature)).toEqual(['valid', 'invalid', 'invalid', 'missing'])
  })

  it('waits for requests', async () => {
    const rx = await receiver()
    const waiting = rx.waitForRequests(2, 2000)
    await post(rx.url, '{}')
    await post(rx.url, '{}')
    expect(await waiting).toHaveLength(2)
    await expect(rx.waitForRequests(3, 50)).rejects.toThrow('waitForRequests: 2 of 3 requests after 50 ms')
  })
})
