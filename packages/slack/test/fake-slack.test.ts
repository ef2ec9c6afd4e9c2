/** The local Slack fake behaves as Slack does for the client the app uses (@slack/web-api through SlackClients). */
import { startFakeSlack, type FakeSlack } from '@opensym/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SlackClients, slackError } from '../src/index.js'

let fake: FakeSlack
let now = Date.UTC(2026, 11, 6, 12)
beforeAll(async () => {
  fake = await startFakeSlack({ now: () => now })
})
afterAll(async () => fake?.close())

const clientFor = (token: string, retries = 0) => new SlackClients({ apiUrl: fake.apiUrl, retryConfig: { retries, factor: 1, minTimeout: 5, maxTimeout: 10 } }).forToken(token)
const failure = async (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => ({ code: slackError(e), data: (e as { data?: unknown }).data }))

describe('fake Slack Web API', () => {
  it('authenticates bearer tokens per team and reports revoked ones', async () => {
    const team = fake.addTeam()
    const token = fake.botToken(team.id)
    expect(await clientFor(token).auth.test()).toMatchObject({ ok: true, team_id: team.id, user_id: team.botUserId })
    expect((await failure(clientFor('xoxb-nope').auth.test()))?.code).toBe('invalid_auth')
    fake.revokeTeam(team.id)
    expect((await failure(clientFor(token).auth.test()))?.code).toBe('token_revoked')
  })

  it('enforces Block Kit limits with Slack’s invalid_blocks shape, and knows channels', async () => {
    const team = fake.addTeam()
    const client = clientFor(fake.botToken(team.id))
    const c = fake.addChannel({ teamId: team.id, name: 'general' })
    const long = await failure(client.chat.postMessage({ channel: c.id, text: 'x', blocks: [{ type: 'section', text: { type: 'mrkdwn', text: 'a'.repeat(3001) } }] }))
    expect(long).toEqual({
      code: 'invalid_blocks',
      data: expect.objectContaining({ errors: ['must be less than 3001 characters [json-pointer:/blocks/0/text/text]'] }),
    })
    const dup = { type: 'button', action_id: 'a', text: { type: 'plain_text', text: 'x' } }
    expect((await failure(client.chat.postMessage({ channel: c.id, text: 'x', blocks: [{ type: 'actions', elements: [dup, dup] }] as never })))?.code).toBe('invalid_blocks')
    expect((await failure(client.chat.postMessage({ channel: '#nowhere', text: 'x' })))?.code).toBe('channel_not_found')
    const posted = await client.chat.postMessage({ channel: '#general', text: 'hello' })
    expect(posted.channel).toBe(c.id)
    expect((await failure(client.chat.update({ channel: c.id, ts: '1.000001', text: 'x' })))?.code).toBe('message_not_found')
    expect((await failure(client.users.lookupByEmail({ email: 'nobody@example.com' })))?.code).toBe('users_not_found')
  })

  it('trigger ids are single-use and expire after 3 s; modal titles are limited to 24 characters', async () => {
    const team = fake.addTeam()
    const client = clientFor(fake.botToken(team.id))
    const view = { type: 'modal', title: { type: 'plain_text', text: 'Request' }, blocks: [] }
    const trigger = fake.triggerId()
    expect((await client.views.open({ trigger_id: trigger, view: view as never })).ok).toBe(true)
    expect((await failure(client.views.open({ trigger_id: trigger, view: view as never })))?.code).toBe('exchanged_trigger_id')
    const late = fake.triggerId()
    now += 3001
    expect((await failure(client.views.open({ trigger_id: late, view: view as never })))?.code).toBe('expired_trigger_id')
    const long = { ...view, title: { type: 'plain_text', text: 'x'.repeat(25) } }
    expect((await failure(client.views.open({ trigger_id: fake.triggerId(), view: long as never })))?.code).toBe('invalid_blocks')
  })

  it('answers 429 with Retry-After, which the client waits out; records every call', async () => {
    const team = fake.addTeam()
    const client = clientFor(fake.botToken(team.id), 1)
    fake.rateLimit({ method: 'auth.test', retryAfter: 1 })
    expect((await client.auth.test()).ok).toBe(true)
    expect(fake.callsOf('auth.test').slice(-2).map((c) => c.status)).toEqual([429, 200])
  })
})
