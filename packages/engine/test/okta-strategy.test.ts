/** The okta strategy against the local Okta fake: discovery, escalate → verify → deescalate → verify, idempotency, failures. */
import { startFakeOkta, type FakeOkta, type FakeOktaGroup, type FakeOktaUser } from '@opensym/testing'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createOktaStrategy, nextLink } from '../src/strategies/index.js'
import { RetryableStrategyError, StrategyError } from '../src/strategy.js'
import { deadUrl, failure, strategyCall, TOKEN_SECRET_ID } from './strategy-fixtures.js'

let okta: FakeOkta
let alice: FakeOktaUser
let group: FakeOktaGroup
const strategy = () => createOktaStrategy({ baseUrl: okta.baseUrl })

const call = (o: { identity?: string; group?: string; email?: string | null; token?: string } = {}) =>
  strategyCall({
    type: 'okta',
    integration: { id: 'i1', type: 'okta', externalId: 'acme.okta.com', settings: { api_token_secret: TOKEN_SECRET_ID } },
    target: { type: 'okta_group', settings: { group_id: o.group ?? group.id } },
    identity: o.identity ?? alice.id,
    email: o.email,
    secrets: { [TOKEN_SECRET_ID]: o.token ?? okta.token },
  })

beforeAll(async () => {
  okta = await startFakeOkta()
})
afterEach(() => okta.reset())
afterAll(async () => okta?.close())

function seed() {
  alice = okta.addUser({ login: 'alice@example.com' })
  group = okta.addGroup('prod-admins')
}

describe('okta strategy', () => {
  it('discovers the user by email, then by login, sending SSWS auth', async () => {
    seed()
    okta.addUser({ login: 'old-alice@example.com', email: 'alice@example.com', status: 'DEPROVISIONED' })
    const bob = okta.addUser({ login: 'bob@example.com', email: 'robert@example.com' })
    expect(await strategy().identity(call())).toBe(alice.id)
    const [search] = okta.calls('okta', 'GET /api/v1/users')
    expect(search!.query.get('search')).toBe('profile.email eq "alice@example.com"')
    expect(search!.headers.authorization).toBe(`SSWS ${okta.token}`)
    expect(search!.headers.accept).toBe('application/json')

    okta.clearRequests()
    expect(await strategy().identity(call({ email: 'bob@example.com' }))).toBe(bob.id)
    expect(okta.calls().map((r) => r.query.get('search'))).toEqual(['profile.email eq "bob@example.com"', 'profile.login eq "bob@example.com"'])
    expect(await strategy().identity(call({ email: 'nobody@example.com' }))).toBeUndefined()
    expect(await strategy().identity(call({ email: null }))).toBeUndefined()
  })

  it('refuses an email two Okta users share', async () => {
    seed()
    okta.addUser({ login: 'alice2@example.com', email: 'alice@example.com' })
    const error = await failure(() => strategy().identity(call()), StrategyError)
    expect(error.message).toMatch(/^okta: 2 Okta users have profile.email alice@example.com/)
  })

  it('escalates, reads back, de-escalates, reads back; repeats are idempotent', async () => {
    seed()
    const s = strategy()
    expect(await s.isGranted!(call())).toBe(false)
    expect(await s.escalate(call())).toEqual({ body: { group_id: group.id, user_id: alice.id }, errors: [] })
    expect(okta.isMember(group.id, alice.id)).toBe(true)
    expect(await s.isGranted!(call())).toBe(true)
    expect(await s.escalate(call())).toEqual({ body: { group_id: group.id, user_id: alice.id }, errors: [] })
    expect(await s.deescalate(call())).toEqual({ body: { group_id: group.id, user_id: alice.id }, errors: [] })
    expect(okta.isMember(group.id, alice.id)).toBe(false)
    expect(await s.isGranted!(call())).toBe(false)
    expect(await s.deescalate(call())).toMatchObject({ errors: [] })
    expect(okta.operations()).toEqual([
      'GET /api/v1/groups/{groupId}/users',
      'PUT /api/v1/groups/{groupId}/users/{userId}',
      'GET /api/v1/groups/{groupId}/users',
      'PUT /api/v1/groups/{groupId}/users/{userId}',
      'DELETE /api/v1/groups/{groupId}/users/{userId}',
      'GET /api/v1/groups/{groupId}/users',
      'DELETE /api/v1/groups/{groupId}/users/{userId}',
    ])
    expect(okta.calls('okta', 'PUT /api/v1/groups/{groupId}/users/{userId}')[0]!.pathname).toBe(`/api/v1/groups/${group.id}/users/${alice.id}`)
    expect(okta.requests.every((r) => r.status !== 401)).toBe(true)
  })

  it('reads back across pages of members, following Link rel="next"', async () => {
    seed()
    for (let i = 0; i < 250; i++) group.members.add(okta.addUser({ login: `u${i}@example.com` }).id)
    group.members.add(alice.id)
    expect(await strategy().isGranted!(call())).toBe(true)
    const pages = okta.calls('okta', 'GET /api/v1/groups/{groupId}/users')
    expect(pages).toHaveLength(2)
    expect(pages[0]!.query.get('limit')).toBe('200')
    expect(pages[1]!.query.get('after')).toEqual(expect.any(String))
    expect(nextLink(`<${okta.baseUrl}/x?after=1>; rel="next", <${okta.baseUrl}/x>; rel="self"`)).toBe(`${okta.baseUrl}/x?after=1`)
  })

  it('a 429 is retryable with the wait until X-Rate-Limit-Reset; the next attempt succeeds', async () => {
    seed()
    okta.rateLimit({ resetInSeconds: 3 })
    const error = await failure(() => strategy().escalate(call()), RetryableStrategyError)
    expect(error.message).toMatch(/^okta add user to group .*: HTTP 429 E0000047 API call exceeded rate limit/)
    expect(error.retryAfterMs).toBeGreaterThan(1000)
    expect(error.retryAfterMs).toBeLessThanOrEqual(3000)
    expect(await strategy().escalate(call())).toMatchObject({ errors: [] })
    expect(okta.isMember(group.id, alice.id)).toBe(true)
  })

  it('5xx, timeouts and a service that is down are retryable', async () => {
    seed()
    okta.fail({ match: { method: 'PUT' }, respond: { status: 503, body: '' } })
    expect((await failure(() => strategy().escalate(call()), RetryableStrategyError)).message).toMatch(/HTTP 503/)
    okta.fail({ match: { method: 'PUT' }, delayMs: 500 })
    const slow = createOktaStrategy({ baseUrl: okta.baseUrl, requestTimeoutMs: 100 })
    expect((await failure(() => slow.escalate(call()), RetryableStrategyError)).message).toMatch(/no reply within 0.1 s/)
    const down = createOktaStrategy({ baseUrl: await deadUrl() })
    expect((await failure(() => down.escalate(call()), RetryableStrategyError)).message).toMatch(/ECONNREFUSED/)
  })

  it('refusals fail without retry and never show the token', async () => {
    seed()
    const bad = await failure(() => strategy().escalate(call({ token: 'not-the-token' })), StrategyError)
    expect(bad.message).toBe(`okta add user to group ${group.id}: HTTP 401 E0000011 Invalid token provided`)
    expect(bad.message).not.toContain('not-the-token')
    const missing = await failure(() => strategy().escalate(call({ group: '00gmissing' })), StrategyError)
    expect(missing.message).toMatch(/HTTP 404: the Okta user .* or group 00gmissing does not exist/)
    const appGroup = okta.addGroup('ad-synced', 'APP_GROUP')
    expect((await failure(() => strategy().escalate(call({ group: appGroup.id })), StrategyError)).message).toMatch(/HTTP 403 E0000006/)
    // Removing from a group that is gone is done.
    expect(await strategy().deescalate(call({ group: '00gmissing' }))).toMatchObject({ errors: [], warnings: [expect.stringMatching(/HTTP 404/)] })
  })
})
