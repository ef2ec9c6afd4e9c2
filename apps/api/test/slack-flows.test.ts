/**
 * The Slack app with flow code, end to end: signed requests into the real API (whose FlowRuntime runs prefetch
 * reducers and the org's flows filter in isolated-vm), runs processed by the real engine worker with the Slack app's
 * worker side (startSlackApp: notifier, reporter, SlackHost) through the real queues — the card is posted and updated
 * by the engine's notify queue, never by calling the notifier here — and Web API calls out to the local Slack fake.
 */
import { randomBytes } from 'node:crypto'
import { createDb, type Db } from '@opensym/db'
import { createHostHandlers, EngineQueues, FlowRuntime, HostCallError, silentLogger, startEngineWorker, type EngineWorker, type HostContext } from '@opensym/engine'
import { RecordingStrategy } from '@opensym/engine/testing'
import { fakeEventData } from '@opensym/sdk/testing'
import { ACTION_APPROVE, ACTION_DENY, ACTION_REVOKE, createSlackHost, fieldActionId, Installations, SlackClients, startSlackApp, TokenCipher, type SlackApp } from '@opensym/slack'
import { createTestOrg, startFakeSlack, type FakeSlack, type FakeSlackTeam, type FakeSlackUser, type SlackDriver, type SlackInbound, type TestOrg } from '@opensym/testing'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { buildApp } from '../src/app.js'
import { callApi, eventually, ref, sendSlack, type Json } from './slack-helpers.js'


const SIGNING_SECRET = 'slack-signing-secret-for-flow-tests'
const TOKEN_KEY = randomBytes(32).toString('base64')
const QUICK_RETRIES = { retries: 2, factor: 1, minTimeout: 10, maxTimeout: 50 }

/** The flow's implementation, as `terraform apply` stores it: routing, a prefetch reducer, and a hook using Slack. */
const IMPLEMENTATION = `
import { ApprovalTemplate, slack, type Event, type Notification, type RequestPermission } from '@opensym/sdk'

export function onPrompt(event: Event) {
  if (event.channel.identifier === event.flow.vars.frozen_channel) return ApprovalTemplate.ignore({ message: 'Requests from this channel are frozen.' })
}

export async function afterPrompt(event: Event) {
  await slack.sendMessage('#prompts', event.user.email + ' opened ' + event.flow.name)
}

export function getPermissions(): RequestPermission {
  return { webappView: 'member', approveDeny: 'admin', allowSelfApproval: false }
}

export function getRequestNotifications(event: Event): Notification[] {
  return [{ destinations: [slack.channel(event.flow.vars.request_channel!)], timeout: null }]
}

export const prefetch = {
  repo: (event: Event) => ['api', 'web', 'worker'].map((r) => ({ value: 'acme/' + r, label: r + ' for ' + event.user.email })),
}

export async function afterEscalate(event: Event) {
  const requester = event.getActor('request')!
  const info = await slack.getUserInfo(requester)
  await slack.sendMessage('#audit', (await slack.mention(requester)) + ' (' + String(info.real_name) + ') got ' + String(event.payload.fields.repo))
  await slack.sendMessage(requester, 'Your access to ' + String(event.payload.fields.repo) + ' is ready.')
  await slack.sendThreadMessage('Granted.')
}
`

/** The org's sym_flows_filter: flows named in vars.admin_only are for admins. */
const FLOWS_FILTER = `
import type { FlowInfo, User } from '@opensym/sdk'
export function getFlows(user: User, flows: readonly FlowInfo[], vars: Record<string, string>) {
  const hidden = (vars.admin_only ?? '').split(',')
  return user.role === 'admin' ? flows : flows.filter((f) => !hidden.includes(f.name)).map((f) => f.name)
}
`

let db: Db
let redis: Redis
let queues: EngineQueues
let app: FastifyInstance
let worker: EngineWorker
let slackApp: SlackApp
let workerFlows: FlowRuntime
let fake: FakeSlack
let driver: SlackDriver
let org: TestOrg
let team: FakeSlackTeam
let requestsChannel: string
let auditChannel: string
let frozenChannel: string
let promptsChannel: string
let environmentId: string
let targetId: string
const strategy = new RecordingStrategy()
const users = {} as Record<'admin' | 'member', FakeSlackUser>

const b64 = (text: string) => Buffer.from(text).toString('base64')

const api = (method: 'GET' | 'POST', url: string, body?: unknown) => callApi(app, org.tokens.bot, method, url, body)
const send = (inbound: SlackInbound) => sendSlack(app, inbound)

/** `/sym …` as `user`; resolves with the modal the fake accepted (a view it refused, e.g. invalid_blocks, times out). */
async function openModal(user: FakeSlackUser, text: string, channel = requestsChannel): Promise<Json> {
  const before = fake.views.size
  expect(await send(driver.command({ team: team.id, user: ref(user), channel, text }))).toEqual({ status: 200, body: '' })
  await eventually(() => fake.views.size > before, 'views.open')
  return [...fake.views.values()].at(-1)!.view
}

const listed = (view: Json): string[] => (view.blocks as Json[]).find((b) => b.block_id === 'flow')?.element.options.map((o: Json) => o.text.text) ?? []
const buttons = (blocks: unknown[]) => (blocks as Json[]).filter((b) => b.type === 'actions').flatMap((b) => (b.elements as Json[]).map((e) => e.action_id as string))

beforeAll(async () => {
  db = createDb(inject('databaseUrl'), { poolSize: 8 })
  redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null })
  const prefix = `${inject('redisPrefix')}-slackflows-${randomBytes(3).toString('hex')}`
  queues = new EngineQueues({ connection: redis, prefix, attempts: 3, backoffMs: 50 })
  fake = await startFakeSlack()
  driver = fake.driver(SIGNING_SECRET)
  team = fake.addTeam({ name: 'flows' })
  users.admin = fake.addUser({ teamId: team.id, email: 'admin@example.com', name: 'Ada Admin' })
  users.member = fake.addUser({ teamId: team.id, email: 'member@example.com', name: 'Mia Member' })
  requestsChannel = fake.addChannel({ teamId: team.id, name: 'flow-requests' }).id
  auditChannel = fake.addChannel({ teamId: team.id, name: 'audit' }).id
  frozenChannel = fake.addChannel({ teamId: team.id, name: 'frozen' }).id
  promptsChannel = fake.addChannel({ teamId: team.id, name: 'prompts' }).id

  app = await buildApp({
    config: { logLevel: 'silent' },
    db,
    redis,
    queues,
    slack: { signingSecret: SIGNING_SECRET, tokenKey: TOKEN_KEY, apiUrl: fake.apiUrl, clientId: fake.clientId, clientSecret: fake.clientSecret, publicUrl: 'http://sym.test', retryConfig: QUICK_RETRIES },
  })
  // The worker's side, as apps/worker composes it: the Slack app's notifier, reporter and SlackHost.
  slackApp = startSlackApp({ db, connection: redis, prefix, tokenKey: TOKEN_KEY, apiUrl: fake.apiUrl, logger: silentLogger })
  workerFlows = new FlowRuntime({ db, host: createHostHandlers({ db, slack: slackApp.host }), timeoutMs: 5000 })
  worker = await startEngineWorker({
    db,
    connection: redis,
    prefix,
    strategies: new Map([['http', strategy]]),
    flows: workerFlows,
    notifier: slackApp.notifier,
    reporter: slackApp.reporter,
    reconcileIntervalMs: 0,
    concurrency: 5,
    attempts: 3,
    backoffMs: 50,
  })
  org = await createTestOrg(db, 'slackflows')

  const integration = await api('POST', 'entities/integrations', { type: 'slack', slug: 'flows-slack', external_id: team.id, settings: {} })
  const env = await api('POST', 'entities/environments', { slug: 'prod', integrations: { slack_id: integration.id } })
  environmentId = env.id as string
  const target = await api('POST', 'entities/access-targets', { type: 'custom', slug: 'github-org', label: 'GitHub org', settings: { identifier: 'acme' } })
  targetId = target.id as string
  const grant = await api('POST', 'entities/access-strategies', { type: 'http', slug: 'grant', integration_id: '<null>', targets: [targetId], settings: { url: 'http://127.0.0.1:9/unused' } })
  await api('POST', 'entities/flows', {
    slug: 'repo-access',
    label: 'Repository access',
    implementation: b64(IMPLEMENTATION),
    environment_id: environmentId,
    vars: { request_channel: '#flow-requests', frozen_channel: frozenChannel },
    params: {
      strategy_id: grant.id,
      prompt_fields: [
        { name: 'reason', type: 'string', required: true },
        { name: 'duration', type: 'duration', required: true, allowed_values: ['1h'] },
        { name: 'repo', type: 'string', required: true, prefetch: true },
      ],
    },
  })
  await api('POST', 'entities/flows', { slug: 'admin-tools', label: 'Admin tools', implementation: b64('export {}'), environment_id: environmentId, params: { prompt_fields: [{ name: 'reason', type: 'string' }] } })
  await api('POST', 'entities/flows-filter', { implementation: b64(FLOWS_FILTER), vars: { admin_only: 'admin-tools' } })

  const install = await app.inject({ method: 'GET', url: `/api/v1/slack/install?integration_id=${integration.id as string}` })
  const location = new URL(install.headers.location as string)
  const code = fake.authorizeCode(team.id, { redirectUri: location.searchParams.get('redirect_uri')!, installer: users.admin.id })
  const done = await app.inject({ method: 'GET', url: `/api/v1/slack/oauth/callback?code=${code}&state=${encodeURIComponent(location.searchParams.get('state')!)}` })
  expect(done.statusCode).toBe(200)
})

afterAll(async () => {
  await worker?.close()
  await slackApp?.close()
  await workerFlows?.close()
  await app?.close()
  await queues?.close()
  await fake?.close()
  redis?.disconnect()
  await db?.$disconnect()
})

describe('sym_flows_filter getFlows', () => {
  it('/sym lists only the flows getFlows returns for that person', async () => {
    expect(listed(await openModal(users.member, ''))).toEqual(['Repository access'])
    expect(listed(await openModal(users.admin, ''))).toEqual(['Admin tools', 'Repository access'])
    const direct = await openModal(users.member, 'req admin-tools')
    expect(direct.callback_id).toBe('sym_select_flow')
    expect(direct.blocks[0].text.text).toContain('No flow "admin-tools"')
  })

  it('a filter that fails lists nothing and says so (fail closed)', async () => {
    await db.flowsFilter.update({ where: { orgId: org.id }, data: { implementation: 'export function getFlows() { throw new Error("pagerduty down") }' } })
    try {
      const view = await openModal(users.admin, '')
      expect(listed(view)).toEqual([])
      expect(JSON.stringify(view.blocks)).toContain('the flows filter failed')
    } finally {
      await db.flowsFilter.update({ where: { orgId: org.id }, data: { implementation: FLOWS_FILTER } })
    }
  })
})

describe('prefetch reducers → external selects', () => {
  it('a signed block_suggestion returns the reducer’s options, for the person asking, narrowed by what they typed', async () => {
    const view = await openModal(users.member, 'req repo-access')
    const repo = (view.blocks as Json[]).find((b) => b.block_id === 'field:repo')!
    expect(repo.element).toMatchObject({ type: 'external_select', action_id: fieldActionId('repo') })
    const suggest = (value: string) => driver.blockSuggestion({ team: team.id, user: ref(users.member), view: { id: 'V1', private_metadata: view.private_metadata }, blockId: 'field:repo', actionId: fieldActionId('repo'), value })
    expect(await send(suggest(''))).toEqual({
      status: 200,
      body: {
        options: ['api', 'web', 'worker'].map((r) => ({ text: { type: 'plain_text', text: `${r} for member@example.com` }, value: `acme/${r}` })),
      },
    })
    expect(await send(suggest('WE'))).toEqual({ status: 200, body: { options: [{ text: { type: 'plain_text', text: 'web for member@example.com' }, value: 'acme/web' }] } })
  })

  it('a field without a reducer, or a forged flow id, gives no options', async () => {
    const view = await openModal(users.member, 'req repo-access')
    const other = driver.blockSuggestion({ team: team.id, user: ref(users.member), view: { id: 'V1', private_metadata: view.private_metadata }, blockId: 'field:reason', actionId: fieldActionId('reason'), value: '' })
    expect(await send(other)).toEqual({ status: 200, body: { options: [] } })
    const forged = JSON.stringify({ ...(JSON.parse(view.private_metadata as string) as Json), flowId: '00000000-0000-4000-8000-000000000000' })
    const res = await send(driver.blockSuggestion({ team: team.id, user: ref(users.member), view: { id: 'V1', private_metadata: forged }, blockId: 'field:repo', actionId: fieldActionId('repo'), value: '' }))
    expect(res).toEqual({ status: 200, body: { options: [] } })
  })
})

describe('onPrompt / afterPrompt around the request form', () => {
  it('onPrompt’s ignore keeps the form closed, with its message, from /sym req and from the selection modal', async () => {
    const direct = await openModal(users.member, 'req repo-access', frozenChannel)
    expect(direct.callback_id).toBe('sym_select_flow')
    expect(direct.blocks[0].text.text).toContain('Requests from this channel are frozen.')
    const picker = await openModal(users.member, '', frozenChannel)
    const flow = await db.flow.findFirstOrThrow({ where: { orgId: org.id, slug: 'repo-access' } })
    const res = await send(driver.viewSubmission({ team: team.id, user: ref(users.member), view: { id: 'V3', ...picker }, values: { flow: { value: { type: 'static_select', selected_option: { value: flow.id } } } } }))
    expect(res).toEqual({ status: 200, body: { response_action: 'errors', errors: { flow: 'Requests from this channel are frozen.' } } })
  })

  it('afterPrompt runs once the form is shown, and its slack.* calls reach the workspace (the API’s SlackHost)', async () => {
    const before = fake.messagesIn(promptsChannel).length
    const view = await openModal(users.member, 'req repo-access')
    expect(view.callback_id).toBe('sym_request')
    await eventually(() => fake.messagesIn(promptsChannel).length > before, 'the afterPrompt message')
    expect(fake.messagesIn(promptsChannel).at(-1)!.text).toBe('member@example.com opened repo-access')
  })
})

describe('request → card → approve → escalate, through the queues', () => {
  it('a signed view_submission creates the run; the worker posts the card, a signed Approve escalates, the card updates, the requester is DMed, and the hook’s Slack calls land', async () => {
    const view = await openModal(users.member, 'req repo-access')
    // Keyed by block and action_id, as Slack sends view state.
    const values = {
      target_id: { [fieldActionId('target_id')]: { type: 'static_select', selected_option: { value: targetId } } },
      'field:reason': { [fieldActionId('reason')]: { type: 'plain_text_input', value: 'deploy fix' } },
      'field:duration': { [fieldActionId('duration')]: { type: 'static_select', selected_option: { value: '1h' } } },
      'field:repo': { [fieldActionId('repo')]: { type: 'external_select', selected_option: { value: 'acme/web' } } },
    }
    expect(await send(driver.viewSubmission({ team: team.id, user: ref(users.member), view: { id: 'V2', hash: 'h', ...view }, values }))).toEqual({ status: 200, body: '' })
    const run = await db.run.findFirstOrThrow({ where: { orgId: org.id, flowSlug: 'repo-access' } })
    expect(run.fields).toMatchObject({ repo: 'acme/web', reason: 'deploy fix' })

    // The engine's request step routes with getRequestNotifications; its notify queue has the notifier post the card.
    const copy = await eventually(() => db.slackMessage.findFirst({ where: { runId: run.id } }).then((m) => m ?? undefined), 'the card')
    expect(copy.channel).toBe(requestsChannel)
    const card = () => fake.messages.find((m) => m.channel === copy.channel && m.ts === copy.ts)!
    expect(buttons(card().blocks)).toEqual([ACTION_APPROVE, ACTION_DENY])

    const click = driver.blockActions({ team: team.id, user: ref(users.admin), channel: copy.channel, messageTs: copy.ts, actionId: ACTION_APPROVE, value: run.id })
    expect(await send(click)).toEqual({ status: 200, body: '' })
    await eventually(async () => (await db.run.findUniqueOrThrow({ where: { id: run.id } })).status === 'escalated', 'escalated')
    expect(strategy.callsOf('escalate', run.id)).toHaveLength(1)

    // Updated after the approve event, then after the escalate one: granted, with Revoke (allow_revoke's default).
    await eventually(() => JSON.stringify(card().blocks).includes(`Approved by <@${users.admin.id}>`) && buttons(card().blocks).join() === ACTION_REVOKE, 'the card update')
    expect(card().updates.length).toBeGreaterThanOrEqual(1)
    const dm = fake.dmChannel(team.id, users.member.id)
    await eventually(() => fake.messagesIn(dm).some((m) => m.text.includes('was approved by')), 'the approval DM')

    // afterEscalate's slack.* calls, made by the worker's SlackHost with the workspace's bot token.
    await eventually(() => fake.messagesIn(dm).some((m) => m.text === 'Your access to acme/web is ready.'), 'the hook’s DM')
    expect(fake.messagesIn(auditChannel).map((m) => m.text)).toEqual([`<@${users.member.id}> (Mia Member) got acme/web`])
    const thread = await eventually(() => fake.messages.find((m) => m.threadTs === copy.ts), 'the thread reply')
    expect(thread).toMatchObject({ channel: copy.channel, text: 'Granted.' })
    // The installation's bot token, as the notifier used for the card.
    const posts = fake.callsOf('chat.postMessage')
    const cardToken = posts.find((c) => c.args.channel === '#flow-requests')!.token
    expect(cardToken).toMatch(/^xoxb-/)
    expect(posts.filter((c) => c.args.channel === '#audit').map((c) => c.token)).toEqual([cardToken])
    const escalate = await db.runEvent.findFirstOrThrow({ where: { runId: run.id, name: 'escalate' } })
    expect(escalate).toMatchObject({ status: 'success', error: null })
  })
})

describe('SlackHost', () => {
  const call = (context: HostContext | undefined) => ({
    flowKey: 'f@1',
    handler: 'afterApprove',
    event: fakeEventData({ flow: { environment: { integrations: { slack: { type: 'slack', externalId: team.id, settings: {} } } } } }),
    signal: new AbortController().signal,
    context,
  })

  it('turns Slack’s errors into integration errors with a code, and never uses another org’s workspace', async () => {
    const host = createSlackHost({ db, installations: new Installations(db, TokenCipher.fromConfig(TOKEN_KEY)), clients: new SlackClients({ apiUrl: fake.apiUrl, retryConfig: QUICK_RETRIES }) })
    const ours: HostContext = { orgId: org.id, flowId: 'f', environmentId, runId: null, eventId: null }
    await expect(host['slack.sendMessage']!({ to: { channel: '#nope' }, message: 'hi' }, call(ours))).rejects.toMatchObject({ name: 'HostCallError', code: 'not_found', message: 'slack chat.postMessage: channel_not_found' })
    await expect(host['slack.sendThreadMessage']!({ message: 'hi' }, call(ours))).rejects.toMatchObject({ code: 'not_found' })
    await expect(host['slack.sendMessage']!({ to: { user: 'nobody@example.com' }, message: 'hi' }, call(ours))).rejects.toBeInstanceOf(HostCallError)
    // No environment (a flows filter): the event's slack integration, only when it is installed for this org.
    const filterCall = { ...ours, environmentId: null }
    expect(await host['slack.mention']!({ to: { user: 'member@example.com' } }, call(filterCall))).toBe(`<@${users.member.id}>`)
    const other = await createTestOrg(db, 'slackflows-other')
    await expect(host['slack.mention']!({ to: { user: 'member@example.com' } }, call({ ...filterCall, orgId: other.id }))).rejects.toMatchObject({ code: 'not_configured' })
  })
})
