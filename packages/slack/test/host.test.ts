/**
 * SlackHost's directory lookups (users.list, conversations.list/members, usergroups.users.list) against the shared
 * Slack fake: paging, who counts as a platform user of the org (stored Slack identity, else the email Slack has), and
 * the workspace being the environment's installation. Messages, threads, users.info and errors are covered end to end
 * in apps/api/test/slack-flows.test.ts.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { createDb, type Db } from '@opensym/db'
import type { HostContext } from '@opensym/engine'
import { fakeEventData } from '@opensym/sdk/testing'
import { createTestOrg, startFakeSlack, type FakeSlack } from '@opensym/testing'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { BOT_SCOPES, createSlackHost, Installations, SlackClients, TokenCipher, type SlackHostDeps } from '../src/index.js'

const TEAM = `T${randomBytes(4).toString('hex').toUpperCase()}`

let fake: FakeSlack
let token: string
let db: Db
let deps: SlackHostDeps
let context: HostContext
const people = {} as Record<'alice' | 'carol' | 'dave', { id: string; email: string }>

/** Dave joins the workspace after the users.list test has listed it (alice and carol only). */
const daveJoins = () => fake.users.get('U5') ?? fake.addUser({ teamId: TEAM, id: 'U5', email: 'dave@example.com' })

beforeAll(async () => {
  // Three to a page: users.list (the bot, U1 to U4) takes two.
  fake = await startFakeSlack({ maxPageSize: 3 })
  const team = fake.addTeam({ id: TEAM })
  fake.addUser({ teamId: TEAM, id: 'U1', email: 'alice@example.com' })
  fake.addUser({ teamId: TEAM, id: 'U2', email: 'bob@elsewhere.io' })
  fake.addUser({ teamId: TEAM, id: 'U3', email: 'carol@example.com' }).deleted = true
  fake.addUser({ teamId: TEAM, id: 'U4', isBot: true })
  fake.addChannel({ teamId: TEAM, id: 'C0000OPS', name: 'ops', members: ['U1', 'U5', team.botUserId] })
  fake.addUsergroup({ teamId: TEAM, id: 'S0000ONCALL', handle: 'oncall', users: ['U1'] })
  // The scopes the app asks for at install: a lookup needing another one fails missing_scope.
  token = fake.botToken(TEAM, { scopes: BOT_SCOPES })

  db = createDb(inject('databaseUrl'), { poolSize: 2 })
  const org = await createTestOrg(db, 'slackhost')
  for (const name of ['alice', 'carol', 'dave'] as const) people[name] = await db.user.create({ data: { orgId: org.id, email: `${name}@example.com`, username: `${name}@example.com` }, select: { id: true, email: true } }) as { id: string; email: string }
  await db.userIdentity.create({ data: { orgId: org.id, userId: people.alice.id, service: 'slack', serviceId: TEAM, externalUserId: 'U1' } })
  const integration = await db.integration.create({ data: { orgId: org.id, type: 'slack', slug: 'ws', externalId: TEAM } })
  const env = await db.environment.create({ data: { orgId: org.id, slug: 'prod' } })
  await db.environmentIntegration.create({ data: { environmentId: env.id, key: 'slack_id', integrationId: integration.id } })
  const installations = new Installations(db, TokenCipher.fromConfig(randomBytes(32).toString('base64')))
  await installations.save({ orgId: org.id, integrationId: integration.id, teamId: TEAM, botUserId: team.botUserId, token, scopes: BOT_SCOPES.join(',') })
  deps = { db, installations, clients: new SlackClients({ apiUrl: fake.apiUrl, retryConfig: { retries: 0 } }) }
  context = { orgId: org.id, flowId: randomUUID(), environmentId: env.id, runId: null, eventId: null }
})

afterAll(async () => {
  await fake?.close()
  await db?.$disconnect()
})

const ctx = () => ({ flowKey: 'f@1', handler: 'getPermissions', event: fakeEventData(), signal: new AbortController().signal, context })
const emails = (users: ReadonlyArray<{ email: string | null }>) => users.map((u) => u.email)

describe('SlackHost lookups', () => {
  it('listUsers: every page, active ones by default, only people of the org (by identity or email)', async () => {
    const host = createSlackHost(deps)
    expect(emails(await host['slack.listUsers']!({ activeOnly: true }, ctx()))).toEqual(['alice@example.com'])
    expect(emails(await host['slack.listUsers']!({ activeOnly: false }, ctx()))).toEqual(['alice@example.com', 'carol@example.com'])
    const cursors = fake.callsOf('users.list').map((c) => c.args.cursor ?? '')
    expect(cursors[1]).toMatch(/.+/)
    expect(cursors).toEqual(['', cursors[1], '', cursors[1]])
    expect(new Set(fake.requests.map((r) => /^Bearer (\S+)$/.exec(r.headers.authorization ?? '')?.[1]))).toEqual(new Set([token]))
  })

  it('usersInChannel: a #name resolved to its ID, members known by identity or looked up, the bot left out', async () => {
    const host = createSlackHost(deps)
    daveJoins()
    fake.clearRequests()
    const users = await host['slack.usersInChannel']!({ channel: '#ops' }, ctx())
    expect(emails(users)).toEqual(['alice@example.com', 'dave@example.com'])
    expect(users[0]).toMatchObject({ id: people.alice.id, identities: [{ service: 'slack', serviceId: TEAM, userId: 'U1' }] })
    expect(fake.operations('slack')).toEqual(['conversations.list', 'conversations.members', 'users.info'])
    expect(fake.callsOf('users.info')[0]!.args.user).toBe('U5')
    await expect(host['slack.usersInChannel']!({ channel: 'C0000NOPE' }, ctx())).rejects.toMatchObject({ code: 'not_found', message: 'slack conversations.members: channel_not_found' })
  })

  it('isUserInGroup and mention, by platform user, email or Slack ID', async () => {
    const host = createSlackHost(deps)
    daveJoins()
    expect(await host['slack.isUserInGroup']!({ user: people.alice, groupId: 'S0000ONCALL' }, ctx())).toBe(true)
    expect(await host['slack.isUserInGroup']!({ user: 'dave@example.com', groupId: 'S0000ONCALL' }, ctx())).toBe(false)
    expect(await host['slack.isUserInGroup']!({ user: 'nobody@example.com', groupId: 'S0000ONCALL' }, ctx())).toBe(false)
    await expect(host['slack.isUserInGroup']!({ user: people.alice, groupId: 'S0000NOPE' }, ctx())).rejects.toMatchObject({ code: 'failed', message: 'slack usergroups.users.list: no_such_subteam' })
    expect(await host['slack.mention']!({ to: { channel: '#ops' } }, ctx())).toBe('<#C0000OPS>')
    expect(await host['slack.mention']!({ to: { user: { id: people.dave.id, email: people.dave.email } } }, ctx())).toBe('<@U5>')
    // Found by email once, the Slack identity is remembered.
    expect(await db.userIdentity.findFirst({ where: { userId: people.dave.id, service: 'slack', serviceId: TEAM } })).toMatchObject({ externalUserId: 'U5' })
  })

  it('without an installed workspace for the environment, calls fail not_configured', async () => {
    const host = createSlackHost(deps)
    const other = { ...ctx(), context: { ...context, environmentId: randomUUID() } }
    await expect(host['slack.listUsers']!({ activeOnly: true }, other)).rejects.toMatchObject({ name: 'HostCallError', code: 'not_configured' })
  })
})
