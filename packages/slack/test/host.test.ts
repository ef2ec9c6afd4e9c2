/**
 * SlackHost's lookups that the shared Slack fake does not serve (users.list, conversations.list/members,
 * usergroups.users.list), against a small stub of those Web API methods: paging, who counts as a platform user of the
 * org (stored Slack identity, else the email Slack has), and the workspace being the environment's installation.
 * Messages, threads, users.info and errors are covered end to end in apps/api/test/slack-flows.test.ts.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createDb, type Db } from '@opensym/db'
import type { HostContext } from '@opensym/engine'
import { fakeEventData } from '@opensym/sdk/testing'
import { createTestOrg } from '@opensym/testing'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { createSlackHost, Installations, SlackClients, TokenCipher, type SlackHostDeps } from '../src/index.js'

const TEAM = `T${randomBytes(4).toString('hex').toUpperCase()}`
const TOKEN = 'xoxb-stub-token'

type Answer = Record<string, unknown>
const calls: Array<{ method: string; args: Record<string, string>; token: string | undefined }> = []

/** The Web API methods the host uses, with the data below; `cursor` pages users.list in two. */
function answer(method: string, args: Record<string, string>): Answer {
  const users: Record<string, Answer> = {
    U1: { id: 'U1', profile: { email: 'alice@example.com' } },
    U2: { id: 'U2', profile: { email: 'bob@elsewhere.io' } },
    U3: { id: 'U3', deleted: true, profile: { email: 'carol@example.com' } },
    U4: { id: 'U4', is_bot: true, profile: {} },
    U5: { id: 'U5', profile: { email: 'dave@example.com' } },
  }
  switch (method) {
    case 'users.list':
      return args.cursor === 'page2'
        ? { ok: true, members: [users.U3, users.U4], response_metadata: { next_cursor: '' } }
        : { ok: true, members: [users.U1, users.U2], response_metadata: { next_cursor: 'page2' } }
    case 'users.info':
      return users[args.user!] ? { ok: true, user: users[args.user!] } : { ok: false, error: 'user_not_found' }
    case 'users.lookupByEmail': {
      const u = Object.values(users).find((x) => (x.profile as { email?: string }).email === args.email)
      return u ? { ok: true, user: u } : { ok: false, error: 'users_not_found' }
    }
    case 'conversations.list':
      return { ok: true, channels: [{ id: 'C0000OPS', name: 'ops' }], response_metadata: { next_cursor: '' } }
    case 'conversations.members':
      return args.channel === 'C0000OPS' ? { ok: true, members: ['U1', 'U5', 'UBOT'], response_metadata: { next_cursor: '' } } : { ok: false, error: 'channel_not_found' }
    case 'usergroups.users.list':
      return args.usergroup === 'S0000ONCALL' ? { ok: true, users: ['U1'] } : { ok: false, error: 'no_such_subteam' }
    default:
      return { ok: false, error: 'unknown_method' }
  }
}

let server: Server
let db: Db
let deps: SlackHostDeps
let context: HostContext
const people = {} as Record<'alice' | 'carol' | 'dave', { id: string; email: string }>

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => (body += c.toString('utf8')))
    req.on('end', () => {
      const method = (req.url ?? '').replace(/^\/api\//, '').split('?')[0]!
      const args = Object.fromEntries(new URLSearchParams(body))
      calls.push({ method, args, token: /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1] })
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify(answer(method, args)))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/`

  db = createDb(inject('databaseUrl'), { poolSize: 2 })
  const org = await createTestOrg(db, 'slackhost')
  for (const name of ['alice', 'carol', 'dave'] as const) people[name] = await db.user.create({ data: { orgId: org.id, email: `${name}@example.com`, username: `${name}@example.com` }, select: { id: true, email: true } }) as { id: string; email: string }
  await db.userIdentity.create({ data: { orgId: org.id, userId: people.alice.id, service: 'slack', serviceId: TEAM, externalUserId: 'U1' } })
  const integration = await db.integration.create({ data: { orgId: org.id, type: 'slack', slug: 'ws', externalId: TEAM } })
  const env = await db.environment.create({ data: { orgId: org.id, slug: 'prod' } })
  await db.environmentIntegration.create({ data: { environmentId: env.id, key: 'slack_id', integrationId: integration.id } })
  const installations = new Installations(db, TokenCipher.fromConfig(randomBytes(32).toString('base64')))
  await installations.save({ orgId: org.id, integrationId: integration.id, teamId: TEAM, botUserId: 'UBOT', token: TOKEN, scopes: 'users:read' })
  deps = { db, installations, clients: new SlackClients({ apiUrl, retryConfig: { retries: 0 } }) }
  context = { orgId: org.id, flowId: randomUUID(), environmentId: env.id, runId: null, eventId: null }
})

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve))
  await db?.$disconnect()
})

const ctx = () => ({ flowKey: 'f@1', handler: 'getPermissions', event: fakeEventData(), signal: new AbortController().signal, context })
const emails = (users: ReadonlyArray<{ email: string | null }>) => users.map((u) => u.email)

describe('SlackHost lookups', () => {
  it('listUsers: every page, active ones by default, only people of the org (by identity or email)', async () => {
    const host = createSlackHost(deps)
    expect(emails(await host['slack.listUsers']!({ activeOnly: true }, ctx()))).toEqual(['alice@example.com'])
    expect(emails(await host['slack.listUsers']!({ activeOnly: false }, ctx()))).toEqual(['alice@example.com', 'carol@example.com'])
    expect(calls.filter((c) => c.method === 'users.list').map((c) => c.args.cursor ?? '')).toEqual(['', 'page2', '', 'page2'])
    expect(new Set(calls.map((c) => c.token))).toEqual(new Set([TOKEN]))
  })

  it('usersInChannel: a #name resolved to its ID, members known by identity or looked up, the bot left out', async () => {
    const host = createSlackHost(deps)
    calls.length = 0
    const users = await host['slack.usersInChannel']!({ channel: '#ops' }, ctx())
    expect(emails(users)).toEqual(['alice@example.com', 'dave@example.com'])
    expect(users[0]).toMatchObject({ id: people.alice.id, identities: [{ service: 'slack', serviceId: TEAM, userId: 'U1' }] })
    expect(calls.map((c) => c.method)).toEqual(['conversations.list', 'conversations.members', 'users.info'])
    expect(calls[2]!.args.user).toBe('U5')
  })

  it('isUserInGroup and mention, by platform user, email or Slack ID', async () => {
    const host = createSlackHost(deps)
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
