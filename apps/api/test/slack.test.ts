/**
 * The Slack app end to end, driven exactly as Slack would: signed HTTP requests into the real API (app.inject), Web
 * API calls out to the local Slack fake, which records them. Configuration goes through the entities API, the
 * workspace is installed through the OAuth flow, runs are processed by the real engine worker (RecordingStrategy in
 * place of `http`) and refusals by the `slack` queue's worker. The notifier is called as the engine's notify queue
 * calls it: after each event completes.
 */
import { randomBytes } from 'node:crypto'
import { createDb, type Db } from '@opensym/db'
import { EngineQueues, NotificationUndeliverable, startEngineWorker, type EngineWorker } from '@opensym/engine'
import { RecordingStrategy } from '@opensym/engine/testing'
import { ACTION_APPROVE, ACTION_DENY, ACTION_REVOKE, Installations, resolveSlackActor, SlackClients, SlackNotifier, slackErrorReporter, startSlackWorker, TokenCipher } from '@opensym/slack'
import { createTestOrg, startFakeSlack, type FakeSlack, type FakeSlackTeam, type FakeSlackUser, type SlackDriver, type SlackInbound, type TestOrg } from '@opensym/testing'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { buildApp } from '../src/app.js'
import { callApi, eventually, ref, sendSlack, type Json } from './slack-helpers.js'


const SIGNING_SECRET = 'slack-signing-secret-for-tests'
const TOKEN_KEY = randomBytes(32).toString('base64')
const PUBLIC_URL = 'http://sym.test'
/** Retries that do not slow tests down (a 429's Retry-After is still waited out). */
const QUICK_RETRIES = { retries: 2, factor: 1, minTimeout: 10, maxTimeout: 50 }

let db: Db
let redis: Redis
let queues: EngineQueues
let app: FastifyInstance
let worker: EngineWorker
let slackWorker: { close(): Promise<void> }
let fake: FakeSlack
let driver: SlackDriver
let notifier: SlackNotifier
let installations: Installations
let clients: SlackClients
let org: TestOrg
let team: FakeSlackTeam
let otherTeam: FakeSlackTeam
const strategy = new RecordingStrategy()
const slackUsers = {} as Record<'admin' | 'member' | 'contractor' | 'partner', FakeSlackUser>
let requestsChannel: string
let environmentId: string
let integrationId: string
let targets: { staging: string; prod: string }

const api = (method: 'GET' | 'POST', url: string, body?: unknown) => callApi(app, org.tokens.bot, method, url, body)
const send = (inbound: SlackInbound) => sendSlack(app, inbound)

const runIs = (runId: string, status: string) =>
  eventually(async () => {
    const run = await db.run.findUniqueOrThrow({ where: { id: runId }, include: { events: { orderBy: { seq: 'asc' } } } })
    return run.status === status && run.events.every((e) => e.status !== 'pending') && run
  }, `run ${runId} to be ${status}`)

/** What the engine's notify queue does: tell the notifier about every completed event of the run. */
async function notifyEvents(runId: string): Promise<void> {
  const events = await db.runEvent.findMany({ where: { runId, status: { not: 'pending' } }, orderBy: { seq: 'asc' } })
  for (const e of events) await notifier.notifyEvent({ orgId: org.id, runId, environmentId, eventId: e.id })
}

async function openModal(user: FakeSlackUser, text: string): Promise<Json> {
  const before = fake.callsOf('views.open').length
  const views = fake.views.size
  const res = await send(driver.command({ team: team.id, user: ref(user), channel: requestsChannel, text }))
  expect(res).toEqual({ status: 200, body: '' })
  await eventually(() => fake.callsOf('views.open').length > before, 'views.open')
  const call = fake.callsOf('views.open').at(-1)!
  // Slack answers a refused view (invalid_blocks…) with HTTP 200 too: only a stored view was accepted.
  await eventually(() => fake.views.size > views, 'the view to be accepted')
  return call.args.view as Json
}

const submitValues = (over: Record<string, Json> = {}): Record<string, Record<string, Json>> => ({
  target_id: { value: { type: 'static_select', selected_option: { value: targets.prod } } },
  'field:reason': { value: { type: 'plain_text_input', value: 'incident 42' } },
  'field:duration': { value: { type: 'static_select', selected_option: { value: '1h' } } },
  'field:ticket': { value: { type: 'number_input', value: '77' } },
  'field:urgent': { value: { type: 'checkboxes', selected_options: [{ value: 'true' }] } },
  'field:tables': { value: { type: 'plain_text_input', value: 'users\norders' } },
  'field:buddy': { value: { type: 'users_select', selected_user: null } },
  'field:watchers': { value: { type: 'multi_users_select', selected_users: [] } },
  'field:level': { value: { type: 'static_select', selected_option: { value: 'write' } } },
  ...over,
})

/** Requests access as `user` through /sym and the modal; returns the run and its card (posted by the notifier). */
async function requestViaSlack(user: FakeSlackUser, values = submitValues()): Promise<{ runId: string; card: { channel: string; ts: string } }> {
  const view = await openModal(user, 'req db-access')
  const before = await db.run.findMany({ select: { id: true } })
  const res = await send(driver.viewSubmission({ team: team.id, user: ref(user), view: { id: 'V1', hash: 'h', ...view }, values }))
  expect(res).toEqual({ status: 200, body: '' })
  const run = await db.run.findFirstOrThrow({ where: { orgId: org.id, id: { notIn: before.map((r) => r.id) } } })
  await runIs(run.id, 'requested')
  await notifier.notifyRequest({ orgId: org.id, runId: run.id, environmentId, index: 0, destinations: [{ type: 'slack_channel', channel: '#access-requests' }], timeoutSeconds: null })
  const copy = await db.slackMessage.findFirstOrThrow({ where: { runId: run.id } })
  return { runId: run.id, card: { channel: copy.channel, ts: copy.ts } }
}

const click = (user: FakeSlackUser, card: { channel: string; ts: string }, actionId: string, runId: string, extra: { actionTs?: string; message?: string } = {}) =>
  driver.blockActions({
    team: team.id,
    user: ref(user),
    channel: card.channel,
    messageTs: card.ts,
    actionId,
    value: runId,
    ...(extra.actionTs ? { actionTs: extra.actionTs } : {}),
    ...(extra.message ? { stateValues: { decision_message: { value: { type: 'plain_text_input', value: extra.message } } } } : {}),
  })

const cardNow = (card: { channel: string; ts: string }) => fake.messages.find((m) => m.channel === card.channel && m.ts === card.ts)!
const buttons = (blocks: unknown[]) => (blocks as Json[]).filter((b) => b.type === 'actions').flatMap((b) => (b.elements as Json[]).map((e) => e.action_id as string))
const dmsTo = (user: FakeSlackUser) => fake.messagesIn(fake.dmChannel(team.id, user.id)).filter((m) => !buttons(m.blocks).length)

beforeAll(async () => {
  db = createDb(inject('databaseUrl'), { poolSize: 8 })
  redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null })
  const prefix = `${inject('redisPrefix')}-slack-${randomBytes(3).toString('hex')}`
  queues = new EngineQueues({ connection: redis, prefix, attempts: 3, backoffMs: 50 })
  fake = await startFakeSlack()
  driver = fake.driver(SIGNING_SECRET)
  team = fake.addTeam({ name: 'acme' })
  otherTeam = fake.addTeam({ name: 'partner' })
  slackUsers.admin = fake.addUser({ teamId: team.id, email: 'admin@example.com', name: 'Ada Admin' })
  slackUsers.member = fake.addUser({ teamId: team.id, email: 'member@example.com', name: 'Mia Member' })
  slackUsers.contractor = fake.addUser({ teamId: team.id, email: 'contractor@example.com', name: 'Carl Contractor', isRestricted: true })
  slackUsers.partner = fake.addUser({ teamId: otherTeam.id, email: 'pat@partner.io', name: 'Pat Partner' })
  requestsChannel = fake.addChannel({ teamId: team.id, name: 'access-requests' }).id
  fake.addChannel({ teamId: team.id, name: 'sym-errors' })

  app = await buildApp({
    config: { logLevel: 'silent' },
    db,
    redis,
    queues,
    slack: { signingSecret: SIGNING_SECRET, tokenKey: TOKEN_KEY, apiUrl: fake.apiUrl, clientId: fake.clientId, clientSecret: fake.clientSecret, publicUrl: PUBLIC_URL, retryConfig: QUICK_RETRIES },
  })
  worker = await startEngineWorker({ db, connection: redis, prefix, strategies: new Map([['http', strategy]]), reconcileIntervalMs: 0, concurrency: 5, attempts: 3, backoffMs: 50 })
  installations = new Installations(db, TokenCipher.fromConfig(TOKEN_KEY))
  clients = new SlackClients({ apiUrl: fake.apiUrl, retryConfig: QUICK_RETRIES })
  slackWorker = startSlackWorker({ connection: redis, prefix, installations, clients })
  notifier = new SlackNotifier({ db, installations, clients })
  org = await createTestOrg(db, 'slack')

  // What `terraform apply` creates: the workspace's integration, an error logger, the environment using both.
  const integration = await api('POST', 'entities/integrations', { type: 'slack', slug: 'main-slack', external_id: team.id, settings: {} })
  integrationId = integration.id as string
  const errorLogger = await api('POST', 'entities/error-loggers', { integration_id: integrationId, destination: '#sym-errors' })
  const env = await api('POST', 'entities/environments', { slug: 'prod', integrations: { slack_id: integrationId }, error_logger_id: errorLogger.id })
  environmentId = env.id as string
  const staging = await api('POST', 'entities/access-targets', { type: 'custom', slug: 'staging-db', label: 'Staging DB', settings: { identifier: 'staging' } })
  const prod = await api('POST', 'entities/access-targets', { type: 'custom', slug: 'prod-db', label: 'Prod DB', settings: { identifier: 'prod' } })
  targets = { staging: staging.id as string, prod: prod.id as string }
  const grant = await api('POST', 'entities/access-strategies', { type: 'http', slug: 'grant', integration_id: '<null>', targets: [staging.id, prod.id], settings: { url: 'http://127.0.0.1:9/unused' } })
  const impl = Buffer.from('export {}').toString('base64')
  await api('POST', 'entities/flows', {
    slug: 'db-access',
    label: 'Database access',
    implementation: impl,
    environment_id: environmentId,
    params: {
      strategy_id: grant.id,
      allow_revoke: true,
      include_decision_message: true,
      additional_header_text: 'Ask in *#dba* first.',
      prompt_fields: [
        { name: 'reason', type: 'string', required: true, label: 'Why do you need it?' },
        { name: 'duration', type: 'duration', required: true, allowed_values: ['30m', '1h', '1d'] },
        { name: 'ticket', type: 'int', required: false },
        { name: 'urgent', type: 'bool', required: false },
        { name: 'tables', type: 'str_list', required: false },
        { name: 'buddy', type: 'slack_user', required: false },
        { name: 'watchers', type: 'slack_user_list', required: false },
        { name: 'level', type: 'string', allowed_values: ['read', 'write'], default: 'read' },
        { name: 'internal', type: 'string', required: false, visible: false, default: 'from-terraform' },
      ],
    },
  })
  await api('POST', 'entities/flows', { slug: 'api-only', implementation: impl, environment_id: environmentId, params: { allowed_sources: ['api'], prompt_fields: [{ name: 'reason', type: 'string' }] } })
  await api('POST', 'entities/flows', { slug: 'approval', label: 'Just approve', implementation: impl, environment_id: environmentId, params: { prompt_fields: [{ name: 'reason', type: 'string' }] } })

  // The install, as an admin does it: the install link, Slack's authorize page, the callback.
  const install = await app.inject({ method: 'GET', url: `/api/v1/slack/install?integration_id=${integrationId}` })
  expect(install.statusCode).toBe(302)
  const location = new URL(install.headers.location as string)
  const code = fake.authorizeCode(team.id, { redirectUri: location.searchParams.get('redirect_uri')!, installer: slackUsers.admin.id })
  const done = await app.inject({ method: 'GET', url: `/api/v1/slack/oauth/callback?code=${code}&state=${encodeURIComponent(location.searchParams.get('state')!)}` })
  expect(done.statusCode).toBe(200)
})

afterAll(async () => {
  await worker?.close()
  await slackWorker?.close()
  await app?.close()
  await queues?.close()
  await fake?.close()
  redis?.disconnect()
  await db?.$disconnect()
})

describe('install (OAuth v2)', () => {
  it('redirects to Slack with the scopes, exchanges the code and stores the bot token encrypted, bound to the integration', async () => {
    const res = await app.inject({ method: 'GET', url: `/api/v1/slack/install?integration_id=${integrationId}` })
    const url = new URL(res.headers.location as string)
    expect(url.origin + url.pathname).toBe('https://slack.com/oauth/v2/authorize')
    expect(url.searchParams.get('client_id')).toBe(fake.clientId)
    expect(url.searchParams.get('redirect_uri')).toBe(`${PUBLIC_URL}/api/v1/slack/oauth/callback`)
    expect(url.searchParams.get('scope')!.split(',')).toEqual(expect.arrayContaining(['commands', 'chat:write', 'im:write', 'users:read.email']))

    const row = await db.slackInstallation.findUniqueOrThrow({ where: { integrationId } })
    expect(row).toMatchObject({ orgId: org.id, teamId: team.id, botUserId: team.botUserId, installedBy: slackUsers.admin.id, revokedAt: null })
    expect(row.botToken).toMatch(/^v1\./)
    expect(row.botToken).not.toContain('xoxb')
    const token = TokenCipher.fromConfig(TOKEN_KEY).decrypt(row.botToken, integrationId)
    expect(token).toMatch(/^xoxb-/)
    expect(fake.callsOf('oauth.v2.access')).toHaveLength(1)
    expect(fake.callsOf('oauth.v2.access')[0]!.args).toMatchObject({ client_id: fake.clientId, client_secret: fake.clientSecret })
  })

  it('refuses a forged state, and a workspace other than the integration’s external_id, storing nothing', async () => {
    const forged = await app.inject({ method: 'GET', url: `/api/v1/slack/oauth/callback?code=x&state=${Buffer.from('{"i":"x","e":99999999999999}').toString('base64url')}.bad` })
    expect(forged.statusCode).toBe(400)
    const res = await app.inject({ method: 'GET', url: `/api/v1/slack/install?integration_id=${integrationId}` })
    const state = new URL(res.headers.location as string).searchParams.get('state')!
    const wrong = await app.inject({ method: 'GET', url: `/api/v1/slack/oauth/callback?code=${fake.authorizeCode(otherTeam.id)}&state=${encodeURIComponent(state)}` })
    expect(wrong.statusCode).toBe(409)
    expect(wrong.body).toContain(team.id)
    expect(await db.slackInstallation.count({ where: { teamId: otherTeam.id } })).toBe(0)
  })

  it('refuses to connect a workspace another org has installed: it cannot take over its commands and clicks', async () => {
    const squatter = await createTestOrg(db, 'slack-squat')
    const theirs = await db.integration.create({ data: { orgId: squatter.id, type: 'slack', slug: 'their-slack', externalId: team.id, settings: {} } })
    const res = await app.inject({ method: 'GET', url: `/api/v1/slack/install?integration_id=${theirs.id}` })
    const location = new URL(res.headers.location as string)
    const code = fake.authorizeCode(team.id, { redirectUri: location.searchParams.get('redirect_uri')!, installer: slackUsers.admin.id })
    const done = await app.inject({ method: 'GET', url: `/api/v1/slack/oauth/callback?code=${code}&state=${encodeURIComponent(location.searchParams.get('state')!)}` })
    expect(done.statusCode).toBe(409)
    expect(await db.slackInstallation.count({ where: { integrationId: theirs.id } })).toBe(0)
    expect((await installations.byTeam(team.id))?.orgId).toBe(org.id)
  })

  it('serves a manifest pointing Slack at this deployment', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/slack/manifest' })
    expect(res.json<Json>().settings.interactivity.request_url).toBe(`${PUBLIC_URL}/api/v1/slack/interactions`)
  })
})

describe('/sym', () => {
  it('/sym req <flow> opens the flow’s modal with a widget per field type, and remembers the Slack identity', async () => {
    const view = await openModal(slackUsers.member, 'req db-access')
    expect(view.title.text).toBe('Database access')
    expect(view.callback_id).toBe('sym_request')
    const blocks = view.blocks as Json[]
    expect(blocks.find((b) => b.block_id === 'additional_header')!.text.text).toBe('Ask in *#dba* first.')
    expect(blocks.filter((b) => b.type === 'input').map((b) => [b.block_id, b.element.type])).toEqual([
      ['target_id', 'static_select'],
      ['field:reason', 'plain_text_input'],
      ['field:duration', 'static_select'],
      ['field:ticket', 'number_input'],
      ['field:urgent', 'checkboxes'],
      ['field:tables', 'plain_text_input'],
      ['field:buddy', 'users_select'],
      ['field:watchers', 'multi_users_select'],
      ['field:level', 'static_select'],
    ])
    expect(blocks.find((b) => b.block_id === 'target_id')!.element.options.map((o: Json) => o.text.text)).toEqual(['Staging DB', 'Prod DB'])
    expect(blocks.find((b) => b.block_id === 'field:duration')!.element.options.map((o: Json) => o.value)).toEqual(['30m', '1h', '1d'])
    const member = await db.user.findFirstOrThrow({ where: { orgId: org.id, email: 'member@example.com' } })
    expect(await db.userIdentity.findFirst({ where: { userId: member.id, service: 'slack', serviceId: team.id } })).toMatchObject({ externalUserId: slackUsers.member.id })
  })

  it('/sym lists the flows startable from Slack here; an unknown name falls back to it with a note', async () => {
    for (const text of ['', 'req', 'request']) {
      const view = await openModal(slackUsers.member, text)
      expect(view.callback_id).toBe('sym_select_flow')
      expect(view.blocks.find((b: Json) => b.block_id === 'flow').element.options.map((o: Json) => o.text.text)).toEqual(['Just approve', 'Database access'])
    }
    const fallback = await openModal(slackUsers.member, 'req no-such-flow')
    expect(fallback.blocks[0].text.text).toContain('No flow "no-such-flow"')
    const wrongEnv = await openModal(slackUsers.member, 'req db-access staging')
    expect(wrongEnv.callback_id).toBe('sym_select_flow')
    expect(wrongEnv.blocks[0].text.text).toContain('in environment "staging"')
    const withEnv = await openModal(slackUsers.member, 'req db-access prod')
    expect(withEnv.callback_id).toBe('sym_request')
  })

  it('picking a flow in the selection modal replaces it with the flow’s form', async () => {
    const view = await openModal(slackUsers.member, '')
    const approval = await db.flow.findFirstOrThrow({ where: { orgId: org.id, slug: 'approval' } })
    const res = await send(driver.viewSubmission({ team: team.id, user: ref(slackUsers.member), view: { id: 'V2', ...view }, values: { flow: { value: { type: 'static_select', selected_option: { value: approval.id } } } } }))
    expect(res.status).toBe(200)
    expect((res.body as Json).response_action).toBe('update')
    expect((res.body as Json).view.title.text).toBe('Just approve')
  })

  it('shows guests (Slack guests, Slack Connect users) no flows', async () => {
    for (const u of [slackUsers.contractor, slackUsers.partner]) {
      const view = await openModal(u, 'req db-access')
      expect(view.callback_id).toBe('sym_select_flow')
      expect(JSON.stringify(view.blocks)).toContain('Guests cannot start flows')
      expect(view.blocks.find((b: Json) => b.block_id === 'flow')).toBeUndefined()
    }
    const created = await db.user.findFirstOrThrow({ where: { orgId: org.id, email: 'pat@partner.io' } })
    expect(created.role).toBe('guest')
  })

  it('refuses a Slack Connect account with the email of an org admin (its email is another workspace’s word)', async () => {
    const impostor = fake.addUser({ teamId: otherTeam.id, email: 'admin@example.com', name: 'Not Ada' })
    const inst = (await installations.byTeam(team.id))!
    const who = await resolveSlackActor(db, clients.forToken(inst.token), inst, impostor.id)
    expect(who.ok).toBe(false)
    expect(await db.userIdentity.count({ where: { orgId: org.id, externalUserId: impostor.id } })).toBe(0)
  })
})

describe('request → approve → escalate → revoke', () => {
  let runId: string
  let card: { channel: string; ts: string }

  it('a submission missing a required field comes back as inline errors and creates nothing', async () => {
    const view = await openModal(slackUsers.member, 'req db-access')
    const runs = await db.run.count()
    const res = await send(
      driver.viewSubmission({ team: team.id, user: ref(slackUsers.member), view: { id: 'V3', ...view }, values: submitValues({ 'field:reason': { value: { type: 'plain_text_input', value: '' } }, 'field:ticket': { value: { type: 'number_input', value: 'x' } } }) }),
    )
    expect(res).toEqual({ status: 200, body: { response_action: 'errors', errors: { 'field:reason': 'is required', 'field:ticket': 'must be an integer' } } })
    expect(await db.run.count()).toBe(runs)
  })

  it('a valid submission creates the run with the typed fields, and the card goes to the channel', async () => {
    ;({ runId, card } = await requestViaSlack(slackUsers.member))
    const run = await db.run.findUniqueOrThrow({ where: { id: runId }, include: { requester: true } })
    expect(run.requester.email).toBe('member@example.com')
    expect(run.fields).toEqual({ reason: 'incident 42', duration: 3600, ticket: 77, urgent: true, tables: ['users', 'orders'], level: 'write', internal: 'from-terraform', target_id: targets.prod })
    expect(run.context).toMatchObject({ slack: { team_id: team.id, channel_id: requestsChannel, user_id: slackUsers.member.id } })
    // Recorded as coming from Slack (checked against allowed_sources as such), not from the API.
    expect(await db.runEvent.findFirstOrThrow({ where: { runId, name: 'request' } })).toMatchObject({ channel: 'slack' })
    expect(card.channel).toBe(requestsChannel)
    const posted = cardNow(card)
    expect(buttons(posted.blocks)).toEqual([ACTION_APPROVE, ACTION_DENY])
    const text = JSON.stringify(posted.blocks)
    for (const part of [`<@${slackUsers.member.id}>`, 'Database access', 'Prod DB', '1 hour', 'incident 42', 'decision_message']) expect(text).toContain(part)
  })

  it('an allowed approver’s Approve escalates (strategy called), updates the card and DMs the requester; the same click twice acts once', async () => {
    const approve = click(slackUsers.admin, card, ACTION_APPROVE, runId, { actionTs: '1700000000.000100', message: 'ok, go' })
    // Slack delivering a click twice signs each delivery anew; the very same signed request again is a replay.
    const redelivered = driver.sign(approve.path, approve.body, approve.headers['content-type']!, { timestamp: Math.floor(Date.now() / 1000) + 1 })
    const [first, replayed, again] = [await send(approve), await send(approve), await send(redelivered)]
    expect(first).toEqual({ status: 200, body: '' })
    expect(replayed).toEqual({ status: 401, body: { error: 'replayed_request', message: expect.any(String) } })
    expect(again).toEqual({ status: 200, body: '' })
    const run = await runIs(runId, 'escalated')
    expect(run.events.filter((e) => e.name === 'approve')).toHaveLength(1)
    expect(run.events.find((e) => e.name === 'approve')).toMatchObject({ channel: 'slack', fields: { decision_message: 'ok, go' } })
    expect(strategy.callsOf('escalate', runId)).toHaveLength(1)
    await notifyEvents(runId)
    const updated = cardNow(card)
    expect(updated.updates.length).toBeGreaterThan(0)
    expect(buttons(updated.blocks)).toEqual([ACTION_REVOKE])
    const text = JSON.stringify(updated.blocks)
    expect(text).toContain(`Approved by <@${slackUsers.admin.id}>`)
    expect(text).toContain('ok, go')
    expect(text).toContain('Access granted until')
    expect(dmsTo(slackUsers.member).map((m) => m.text)).toEqual([expect.stringContaining('was approved by')])
    // Notices are idempotent: telling the notifier again posts no second DM.
    await notifyEvents(runId)
    expect(dmsTo(slackUsers.member)).toHaveLength(1)
  })

  it('Revoke by the requester de-escalates; the card says so and the requester is DMed', async () => {
    expect(await send(click(slackUsers.member, card, ACTION_REVOKE, runId))).toEqual({ status: 200, body: '' })
    await runIs(runId, 'deescalated')
    expect(strategy.callsOf('deescalate', runId)).toHaveLength(1)
    await notifyEvents(runId)
    const final = cardNow(card)
    expect(buttons(final.blocks)).toEqual([])
    expect(JSON.stringify(final.blocks)).toContain(`revoked by <@${slackUsers.member.id}>`)
    expect(dmsTo(slackUsers.member).at(-1)!.text).toContain('has ended')
  })

  it('Deny closes the request: no strategy call, the card says who denied, the requester hears it', async () => {
    const { runId: denied, card: c } = await requestViaSlack(slackUsers.member)
    expect(await send(click(slackUsers.admin, c, ACTION_DENY, denied))).toEqual({ status: 200, body: '' })
    await runIs(denied, 'denied')
    await notifyEvents(denied)
    expect(strategy.callsOf('escalate', denied)).toHaveLength(0)
    expect(buttons(cardNow(c).blocks)).toEqual([])
    expect(JSON.stringify(cardNow(c).blocks)).toContain(`Denied by <@${slackUsers.admin.id}>`)
    expect(dmsTo(slackUsers.member).at(-1)!.text).toContain('was denied')
  })

  it('every copy of a card (channel, DM, group DM) is updated when anyone acts', async () => {
    const { runId: id } = await requestViaSlack(slackUsers.member)
    await notifier.notifyRequest({ orgId: org.id, runId: id, environmentId, index: 1, destinations: [{ type: 'slack_user', user: 'admin@example.com' }, { type: 'slack_group', users: [slackUsers.admin.id, 'member@example.com'] }], timeoutSeconds: null })
    const copies = await db.slackMessage.findMany({ where: { runId: id } })
    expect(copies.map((c) => c.channel[0]).sort()).toEqual(['C', 'D', 'G'])
    await send(click(slackUsers.admin, { channel: copies[1]!.channel, ts: copies[1]!.ts }, ACTION_APPROVE, id))
    await runIs(id, 'escalated')
    await notifyEvents(id)
    for (const c of copies) expect(buttons(cardNow(c).blocks)).toEqual([ACTION_REVOKE])
  })
})

describe('refusals: an ephemeral message to that person only, and no state change', () => {
  let runId: string
  let card: { channel: string; ts: string }

  beforeAll(async () => {
    ;({ runId, card } = await requestViaSlack(slackUsers.admin))
  })

  const ephemeralFor = (u: FakeSlackUser, n: number) => eventually(() => fake.ephemerals.filter((e) => e.user === u.id).length >= n && fake.ephemerals.filter((e) => e.user === u.id).at(-1)!, `an ephemeral to ${u.name}`)

  it('self-approval', async () => {
    const before = fake.ephemerals.filter((e) => e.user === slackUsers.admin.id).length
    expect(await send(click(slackUsers.admin, card, ACTION_APPROVE, runId))).toEqual({ status: 200, body: '' })
    const eph = await ephemeralFor(slackUsers.admin, before + 1)
    expect(eph).toMatchObject({ channel: card.channel })
    expect(eph.text).toMatch(/own request|self/i)
    const run = await db.run.findUniqueOrThrow({ where: { id: runId }, include: { events: true } })
    expect(run.status).toBe('requested')
    expect(run.events.map((e) => e.name)).toEqual(['request'])
  })

  it('a guest without allow_guest_interaction, and a member who may not decide', async () => {
    for (const u of [slackUsers.contractor, slackUsers.member]) {
      const before = fake.ephemerals.filter((e) => e.user === u.id).length
      expect(await send(click(u, card, ACTION_DENY, runId))).toEqual({ status: 200, body: '' })
      expect((await ephemeralFor(u, before + 1)).text).toContain(':no_entry:')
    }
    const run = await db.run.findUniqueOrThrow({ where: { id: runId }, include: { events: true } })
    expect(run.status).toBe('requested')
    expect(run.events.map((e) => e.name)).toEqual(['request'])
    expect(buttons(cardNow(card).blocks)).toEqual([ACTION_APPROVE, ACTION_DENY])
  })

  it('a decision refused after the click (a hook’s ignore) is told to the clicker, and the card stays actionable', async () => {
    // The shape the engine leaves when a hook ignores an approval: the event failed with the hook's message.
    const run = await db.run.findUniqueOrThrow({ where: { id: runId } })
    const admin = await db.user.findFirstOrThrow({ where: { orgId: org.id, email: 'admin@example.com' } })
    const event = await db.runEvent.create({ data: { orgId: org.id, runId, seq: 99, name: 'approve', actorId: admin.id, channel: 'slack', status: 'error', error: 'Approvals are frozen until Monday.', completedAt: new Date() } })
    await db.slackDelivery.create({ data: { key: `click:${team.id}:${slackUsers.partner.id}:${card.ts}:x`, orgId: org.id, runId, eventId: event.id, teamId: team.id, channel: card.channel, slackUser: slackUsers.partner.id } })
    await notifier.notifyEvent({ orgId: org.id, runId, environmentId, eventId: event.id })
    await notifier.notifyEvent({ orgId: org.id, runId, environmentId, eventId: event.id })
    const told = fake.ephemerals.filter((e) => e.user === slackUsers.partner.id)
    expect(told).toEqual([{ channel: card.channel, user: slackUsers.partner.id, text: ':no_entry: Approvals are frozen until Monday.', blocks: [] }])
    expect(run.status).toBe('requested')
    expect(buttons(cardNow(card).blocks)).toEqual([ACTION_APPROVE, ACTION_DENY])
  })
})

describe('rejected requests change nothing', () => {
  const counts = async () => ({ runs: await db.run.count(), events: await db.runEvent.count(), deliveries: await db.slackDelivery.count(), slackCalls: fake.requests.length })

  it('bad signature, stale timestamp, malformed payload, unknown team', async () => {
    const run = await db.run.findFirstOrThrow({ where: { orgId: org.id, status: 'requested' } })
    const copy = await db.slackMessage.findFirstOrThrow({ where: { runId: run.id } })
    const good = click(slackUsers.admin, copy, ACTION_DENY, run.id)
    const before = await counts()

    expect((await send(driver.sign(good.path, good.body, good.headers['content-type']!, { secret: 'not-the-secret' }))).status).toBe(401)
    expect((await send(driver.sign(good.path, good.body, good.headers['content-type']!, { timestamp: Math.floor(Date.now() / 1000) - 301 }))).status).toBe(401)
    expect((await send({ ...good, headers: { 'content-type': good.headers['content-type']! } })).status).toBe(401)
    expect((await send({ ...good, body: `${good.body}x` })).status).toBe(401)
    const form = 'application/x-www-form-urlencoded'
    expect((await send(driver.sign('/api/v1/slack/interactions', 'payload=%7Bnot-json', form))).status).toBe(400)
    expect((await send(driver.sign('/api/v1/slack/interactions', `payload=${encodeURIComponent(JSON.stringify({ type: 'block_actions', actions: [] }))}`, form))).status).toBe(400)
    expect((await send(driver.sign('/api/v1/slack/commands', 'command=%2Fsym', form))).status).toBe(400)
    const stranger = driver.blockActions({ team: 'TUNKNOWN', user: { id: 'UX', teamId: 'TUNKNOWN' }, channel: copy.channel, messageTs: copy.ts, actionId: ACTION_DENY, value: run.id })
    expect((await send(stranger)).status).toBe(403)
    const command = await send(driver.command({ team: 'TUNKNOWN', user: { id: 'UX', teamId: 'TUNKNOWN' }, text: 'req db-access' }))
    expect(command).toEqual({ status: 200, body: { response_type: 'ephemeral', text: expect.stringContaining('not connected') } })

    await new Promise((r) => setTimeout(r, 100)) // any deferred work would have started by now
    expect(await counts()).toEqual(before)
    expect((await db.run.findUniqueOrThrow({ where: { id: run.id } })).status).toBe('requested')
  })

  it('a form submission replayed (the same signed request again) is refused: one run, not two', async () => {
    const view = await openModal(slackUsers.member, 'req db-access')
    const submission = driver.viewSubmission({ team: team.id, user: ref(slackUsers.member), view: { id: 'V9', hash: 'h', ...view }, values: submitValues() })
    const runs = await db.run.count()
    expect(await send(submission)).toEqual({ status: 200, body: '' })
    expect(await send(submission)).toEqual({ status: 401, body: { error: 'replayed_request', message: expect.any(String) } })
    const command = driver.command({ team: team.id, user: ref(slackUsers.member), text: 'req db-access' })
    expect((await send(command)).status).toBe(200)
    expect((await send(command)).status).toBe(401)
    expect(await db.run.count()).toBe(runs + 1)
  })
})

describe('Slack outages and limits', () => {
  it('a 429 with Retry-After is waited out: the card update still lands', async () => {
    const { runId, card } = await requestViaSlack(slackUsers.member)
    await send(click(slackUsers.admin, card, ACTION_DENY, runId))
    await runIs(runId, 'denied')
    fake.rateLimit({ method: 'chat.update', retryAfter: 1 })
    await notifyEvents(runId)
    const updates = fake.callsOf('chat.update').filter((c) => c.args.ts === card.ts)
    expect(updates.map((u) => u.status).slice(0, 2)).toEqual([429, 200])
    expect(buttons(cardNow(card).blocks)).toEqual([])
  })

  it('a Slack outage loses no decision: it is recorded before the click is acknowledged, the card catches up later', async () => {
    const { runId, card } = await requestViaSlack(slackUsers.member)
    fake.fail({ match: { service: 'slack' }, times: Infinity, respond: { status: 500, body: 'down' } })
    try {
      expect(await send(click(slackUsers.admin, card, ACTION_APPROVE, runId))).toEqual({ status: 200, body: '' })
      await runIs(runId, 'escalated')
      await expect(notifyEvents(runId)).rejects.toThrow()
    } finally {
      fake.reset()
    }
    await notifyEvents(runId)
    expect(buttons(cardNow(card).blocks)).toEqual([ACTION_REVOKE])
  })

  it('a link whose destinations all fail is undeliverable; a fallback uses the first that works', async () => {
    const { runId } = await requestViaSlack(slackUsers.member)
    const undeliverable = notifier.notifyRequest({ orgId: org.id, runId, environmentId, index: 2, destinations: [{ type: 'slack_channel', channel: '#nope' }, { type: 'slack_user', user: 'nobody@example.com' }], timeoutSeconds: 60 })
    await expect(undeliverable).rejects.toBeInstanceOf(NotificationUndeliverable)
    await notifier.notifyRequest({
      orgId: org.id,
      runId,
      environmentId,
      index: 3,
      destinations: [{ type: 'fallback', destinations: [{ type: 'slack_channel', channel: '#nope' }, { type: 'slack_user', user: slackUsers.admin.id }], continueOnDeliveryFailure: true, continueOnTimeout: false }],
      timeoutSeconds: null,
    })
    const copy = await db.slackMessage.findFirstOrThrow({ where: { runId, link: 3 } })
    expect(copy.channel).toBe(fake.dmChannel(team.id, slackUsers.admin.id))
  })
})

describe('error logger', () => {
  it('posts failures to the environment’s error channel with flow, run, step and message, grouped so a loop cannot flood it', async () => {
    const reporter = slackErrorReporter({ db, installations, clients, windowMs: 60_000, maxPerWindow: 3 })
    const run = await db.run.findFirstOrThrow({ where: { orgId: org.id } })
    const before = fake.messagesIn([...fake.channels.values()].find((c) => c.name === 'sym-errors')!.id).length
    const failure = { orgId: org.id, runId: run.id, eventId: run.id, step: 'escalate', environmentId, message: 'okta said 403' }
    for (let i = 0; i < 10; i++) await reporter(failure)
    for (let i = 0; i < 5; i++) await reporter({ ...failure, message: `distinct failure ${i}` })
    const posts = fake.messagesIn([...fake.channels.values()].find((c) => c.name === 'sym-errors')!.id).slice(before)
    expect(posts).toHaveLength(3)
    expect(posts[0]!.text).toBe('escalate failed in flow db-access: okta said 403')
    expect(JSON.stringify(posts[0]!.blocks)).toContain(run.id)
  })
})

describe('Slack identities', () => {
  const infoCalls = (id: string) => fake.callsOf('users.info').filter((c) => c.args.user === id).length
  const identities = (id: string) => db.userIdentity.count({ where: { orgId: org.id, externalUserId: id } })
  const inAWhile = (ms: number) => new Date(Date.now() + ms)

  it('a stored identity is checked with Slack again after an hour: a member made a Slack guest acts as a guest from then on', async () => {
    const person = fake.addUser({ teamId: team.id, email: 'sam@example.com', name: 'Sam Staff' })
    const inst = (await installations.byTeam(team.id))!
    const client = clients.forToken(inst.token)
    expect(await resolveSlackActor(db, client, inst, person.id)).toMatchObject({ ok: true, actor: { principal: { role: 'member' } } })
    expect(await identities(person.id)).toBe(1)
    person.isRestricted = true
    // Within the hour the stored identity stands, without asking Slack.
    const calls = infoCalls(person.id)
    expect(await resolveSlackActor(db, client, inst, person.id, inAWhile(10 * 60_000))).toMatchObject({ ok: true, actor: { principal: { role: 'member' } } })
    expect(infoCalls(person.id)).toBe(calls)
    // After it, Slack is asked: now a guest, and no longer remembered as a member.
    expect(await resolveSlackActor(db, client, inst, person.id, inAWhile(2 * 3600_000))).toMatchObject({ ok: true, actor: { principal: { role: 'guest' } } })
    expect(infoCalls(person.id)).toBe(calls + 1)
    expect(await identities(person.id)).toBe(0)
    // Deactivated in Slack: refused.
    person.deleted = true
    expect(await resolveSlackActor(db, client, inst, person.id, inAWhile(3 * 3600_000))).toMatchObject({ ok: false, reason: 'This Slack user cannot use Sym.' })
  })

  it('a person still a full member keeps the identity, trusted for another hour', async () => {
    const person = fake.addUser({ teamId: team.id, email: 'kim@example.com', name: 'Kim Keeper' })
    const inst = (await installations.byTeam(team.id))!
    const client = clients.forToken(inst.token)
    await resolveSlackActor(db, client, inst, person.id)
    const at = inAWhile(2 * 3600_000)
    expect(await resolveSlackActor(db, client, inst, person.id, at)).toMatchObject({ ok: true, actor: { principal: { role: 'member' } } })
    expect((await db.userIdentity.findFirstOrThrow({ where: { orgId: org.id, externalUserId: person.id } })).updatedAt).toEqual(at)
    const calls = infoCalls(person.id)
    await resolveSlackActor(db, client, inst, person.id, new Date(at.getTime() + 30 * 60_000))
    expect(infoCalls(person.id)).toBe(calls)
  })

  it('user_change drops the identity of someone made a guest at once; a full member’s change keeps it', async () => {
    const person = fake.addUser({ teamId: team.id, email: 'lee@example.com', name: 'Lee Later' })
    const inst = (await installations.byTeam(team.id))!
    await resolveSlackActor(db, clients.forToken(inst.token), inst, person.id)
    const change = (user: Json, eventId: string) => send(driver.event({ team: team.id, event: { type: 'user_change', user }, eventId }))
    expect((await change({ id: person.id, team_id: team.id, is_restricted: false, deleted: false }, 'EvU1')).status).toBe(200)
    expect(await identities(person.id)).toBe(1)
    expect((await change({ id: person.id, team_id: team.id, is_restricted: true }, 'EvU2')).status).toBe(200)
    expect(await identities(person.id)).toBe(0)
  })
})

describe('Events API', () => {
  it('answers url_verification with the challenge', async () => {
    expect(await send(driver.urlVerification('ch4ll3nge'))).toEqual({ status: 200, body: { challenge: 'ch4ll3nge' } })
  })

  it('app_uninstalled revokes the installation (token erased): the workspace is unknown from then on', async () => {
    const event = driver.event({ team: team.id, event: { type: 'app_uninstalled' }, eventId: 'Ev1' })
    expect((await send(event)).status).toBe(200)
    expect((await send({ ...event, headers: { ...event.headers, 'x-slack-retry-num': '1' } })).status).toBe(200)
    const row = await db.slackInstallation.findUniqueOrThrow({ where: { integrationId } })
    expect(row.revokedAt).not.toBeNull()
    expect(row.botToken).toBe('revoked')
    const res = await send(driver.command({ team: team.id, user: ref(slackUsers.member), text: 'req db-access' }))
    expect((res.body as Json).text).toContain('not connected')
  })
})
