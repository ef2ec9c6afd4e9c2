/** What the Slack API tests share: reading answers as loose JSON, calling the entities API, delivering Slack's requests. */
import type { FakeSlackUser, SlackInbound } from '@opensym/testing'
import type { FastifyInstance } from 'fastify'
import type { Json } from './run-harness.js'

export type { Json } from './run-harness.js'

/** A Slack user as the driver signs requests for them. */
export const ref = (u: FakeSlackUser) => ({ id: u.id, teamId: u.teamId, name: u.name })

/** An entities/Events API call with the org's bot token; anything but 2xx throws with the body. */
export async function callApi(app: FastifyInstance, token: string, method: 'GET' | 'POST', url: string, body?: unknown): Promise<Json> {
  const res = await app.inject({ method, url: `/api/v1/${url}`, headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, payload: JSON.stringify(body ?? null) })
  if (res.statusCode >= 300) throw new Error(`${method} ${url} → ${res.statusCode}: ${res.body}`)
  return res.json<Json>()
}

/** Delivers a signed request as Slack would; a JSON answer comes back parsed. */
export async function sendSlack(app: FastifyInstance, inbound: SlackInbound): Promise<{ status: number; body: Json | string }> {
  const res = await app.inject({ method: 'POST', url: inbound.path, headers: inbound.headers, payload: inbound.body })
  const text = res.body
  return { status: res.statusCode, body: res.headers['content-type']?.toString().includes('json') && text ? (JSON.parse(text) as Json) : text }
}

/** Polls `check` until it gives a value (not undefined/false); the work behind Slack's 200 is asynchronous. */
export async function eventually<T>(check: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 15_000): Promise<T> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v !== undefined && v !== false) return v
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}
