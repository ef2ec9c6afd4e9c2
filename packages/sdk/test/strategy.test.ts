/** How an author tests a custom strategy: plain vitest, fake users and events, a fetch handler for its API. */
import { RetryableError, type StrategyImplementation } from '@opensym/sdk'
import { fakeEvent, fakeUser, runDeescalate, runEscalate, runFetchRemoteIdentity, type StrategyRunOptions } from '@opensym/sdk/testing'
import { describe, expect, it, vi } from 'vitest'
import * as strategy from './fixtures/strategy.js'

strategy satisfies StrategyImplementation

const roles = new Map<string, Set<string>>()
const backOffice = vi.fn(async (req: Request): Promise<Response> => {
  if (req.headers.get('authorization') !== 'Bearer key-1') return new Response('unauthorized', { status: 401 })
  const url = new URL(req.url)
  if (req.method === 'GET' && url.pathname === '/users') return url.searchParams.get('email') === 'dev@example.com' ? Response.json({ id: 'u-7' }) : new Response(null, { status: 404 })
  const m = /^\/users\/([^/]+)\/roles\/([^/]+)$/.exec(url.pathname)
  if (!m) return new Response(null, { status: 404 })
  const held = roles.get(m[1]!) ?? new Set<string>()
  roles.set(m[1]!, held)
  if (req.method === 'PUT') return held.add(m[2]!), new Response(null, { status: 204 })
  return held.delete(m[2]!) ? new Response(null, { status: 204 }) : new Response(null, { status: 404 })
})

const options: StrategyRunOptions = {
  strategy: { integration: { externalId: 'bo-1', settings: { api_url: 'https://backoffice.test', secrets: [{ $secret: 'secret-1' }] } } },
  host: { 'secrets.retrieve': async ({ secretId }) => (secretId === 'secret-1' ? 'key-1' : 'nope') },
  fetch: backOffice,
}
const target = { name: 'refunds', type: 'custom', settings: { role: 'refunds' } }

describe('a custom strategy, tested by its author', () => {
  it('finds the user by email, or nobody', async () => {
    expect(await runFetchRemoteIdentity(strategy, fakeUser({ email: 'dev@example.com' }), options)).toBe('u-7')
    expect(await runFetchRemoteIdentity(strategy, fakeUser({ email: 'other@example.com' }), options)).toBeNull()
    expect(await runFetchRemoteIdentity(strategy, fakeUser({ email: null }), options)).toBeNull()
  })

  it('grants and removes the role; removing twice is fine', async () => {
    const event = fakeEvent({ name: 'escalate', payload: { fields: { target, target_id: 't-1', reason: 'ticket 42' } } })
    expect(await runEscalate(strategy, event, { ...options, identity: 'u-7' })).toEqual({ user_id: 'u-7', role: 'refunds', target_id: 't-1', reason: 'ticket 42' })
    expect(roles.get('u-7')).toEqual(new Set(['refunds']))
    const removal = fakeEvent({ name: 'deescalate', payload: { fields: { target, target_id: 't-1' } } })
    expect(await runDeescalate(strategy, removal, { ...options, identity: 'u-7' })).toEqual({ user_id: 'u-7', role: 'refunds', already_removed: false })
    expect(await runDeescalate(strategy, removal, { ...options, identity: 'u-7' })).toMatchObject({ already_removed: true })
  })

  it('asks for a retry when the back-office is down, and fails on a target without a role', async () => {
    const down: StrategyRunOptions = { ...options, fetch: async () => new Response('busy', { status: 503, headers: { 'retry-after': '7' } }) }
    const event = fakeEvent({ name: 'escalate', payload: { fields: { target } } })
    const error = await runEscalate(strategy, event, down).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(RetryableError)
    expect(error).toMatchObject({ message: 'the back-office answered 503', retryAfterSeconds: 7 })
    await expect(runEscalate(strategy, fakeEvent({ name: 'escalate', payload: { fields: { target: { ...target, settings: {} } } } }), options)).rejects.toThrow('the target has no role setting')
  })

  it('has no requester identity in fetchRemoteIdentity, and no network without a fetch answer', async () => {
    const peek: StrategyImplementation = { fetchRemoteIdentity: (_user, s) => s.getRequesterIdentity(fakeEvent()), escalate: () => undefined, deescalate: () => undefined }
    await expect(runFetchRemoteIdentity(peek, fakeUser(), options)).rejects.toThrow(/getRequesterIdentity is available in escalate and deescalate only/)
    await expect(runFetchRemoteIdentity(strategy, fakeUser({ email: 'dev@example.com' }), { ...options, fetch: undefined })).rejects.toThrow(/http\.fetch has no answer in this test/)
    expect(await runEscalate(peek, fakeEvent({ name: 'escalate' }))).toEqual({})
  })
})
