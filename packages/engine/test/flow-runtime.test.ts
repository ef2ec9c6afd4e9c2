/**
 * Flow implementations in the engine, against real PostgreSQL and Redis with an in-process worker running flow code
 * in the sandbox: hooks around each step, routing reducers (permissions stored and enforced by the API and the
 * worker), the notification chain with its timeouts and the reconciler, failures and their reporting.
 */
import { createDb, type Db } from '@opensym/db'
import type { Principal } from '@opensym/domain'
import { RecordingStrategy } from '@opensym/engine/testing'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest'
import { createHostHandlers } from '../src/host.js'
import { EngineQueues, jobIds } from '../src/queues.js'
import { Reconciler } from '../src/reconciler.js'
import { FlowRuntime } from '../src/runtime.js'
import type { EngineFailure, EventNotice, RequestNotice, RunNotifier } from '../src/seams.js'
import { NotificationUndeliverable } from '../src/seams.js'
import { RunService } from '../src/service.js'
import { startEngineWorker, type EngineWorker } from '../src/worker.js'
import { createFlow, deleteKeys, eventually, orgWithPrincipals, queuePrefix, redisClient, type FlowFixture, type FlowOptions, type OrgPrincipals } from './fixtures.js'

let db: Db
let redis: Redis
let prefix: string
let queues: EngineQueues
let service: RunService
let worker: EngineWorker
let flows: FlowRuntime
let o: OrgPrincipals
let other: Principal
const strategy = new RecordingStrategy()
const reported: EngineFailure[] = []
const requests: RequestNotice[] = []
const events: EventNotice[] = []
const sent: Array<{ to: unknown; message: string }> = []
/** Destinations (by channel) that cannot be delivered to. */
const undeliverable = new Set<string>()

const notifier: RunNotifier = {
  async notifyRequest(n) {
    const channel = n.destinations[0]?.type === 'slack_channel' ? n.destinations[0].channel : ''
    if (undeliverable.has(channel)) throw new NotificationUndeliverable(`no channel ${channel}`)
    requests.push(n)
  },
  async notifyEvent(n) {
    events.push(n)
  },
}

async function startWorker(): Promise<EngineWorker> {
  return startEngineWorker({
    db,
    connection: redis,
    prefix,
    strategies: new Map([['http', strategy]]),
    reporter: (f) => void reported.push(f),
    flows,
    notifier,
    attempts: 3,
    backoffMs: 50,
    reconcileIntervalMs: 0,
    concurrency: 5,
  })
}

beforeAll(async () => {
  db = createDb(inject('databaseUrl'), { poolSize: 10 })
  redis = redisClient()
  prefix = queuePrefix('flows')
  queues = new EngineQueues({ connection: redis, prefix, attempts: 3, backoffMs: 50 })
  service = new RunService({ db, queues })
  o = await orgWithPrincipals(db, 'flows')
  const u = await db.user.create({ data: { orgId: o.org.id, email: 'other@example.com', username: 'other@example.com', role: 'member' } })
  other = { orgId: o.org.id, userId: u.id, userType: 'normal', role: 'member' }
  const host = createHostHandlers({
    db,
    slack: {
      'slack.sendMessage': async (args) => {
        sent.push(args)
        return null
      },
    },
  })
  flows = new FlowRuntime({ db, host, timeoutMs: 2000 })
  worker = await startWorker()
})
afterAll(async () => {
  await worker?.close()
  await flows?.close()
  await queues?.close()
  redis?.disconnect()
  await db?.$disconnect()
})

async function flowWith(implementation: string, options: FlowOptions = {}): Promise<FlowFixture> {
  const f = await createFlow(db, o.org.id, options)
  await db.flow.update({ where: { id: f.flowId }, data: { implementation } })
  return f
}

const inputs = (f: FlowFixture, extra: Record<string, unknown> = {}) => ({ reason: 'incident 42', duration: 3600, target_id: f.targets[0]!.id, ...extra })

async function request(f: FlowFixture, extra: Record<string, unknown> = {}, who = 'member@example.com') {
  return service.createRequest(o.bot, { flow_srn: f.flowSlug, flow_inputs: inputs(f, extra), user_email: who })
}

async function run(runId: string) {
  return db.run.findUniqueOrThrow({ where: { id: runId }, include: { events: { orderBy: { seq: 'asc' } }, notifications: { orderBy: { index: 'asc' } } } })
}

/** Waits until the run has no pending event and `check` holds. */
async function settled(runId: string, check: (r: Awaited<ReturnType<typeof run>>) => boolean, what = 'the run to settle', timeoutMs = 15_000) {
  return eventually(async () => {
    const r = await run(runId)
    return r.events.every((e) => e.status !== 'pending') && check(r) && r
  }, timeoutMs, what)
}

const routed = (runId: string) => settled(runId, (r) => r.events[0]!.status !== 'pending' && r.permission !== null, 'the request to be routed')

/** An approve event as a Slack click would record it, straight to the worker (no API check). */
async function clickApprove(runId: string, actorId: string): Promise<string> {
  const r = await db.run.findUniqueOrThrow({ where: { id: runId } })
  const seq = (await db.runEvent.count({ where: { runId } })) + 1
  const e = await db.runEvent.create({ data: { orgId: r.orgId, runId, seq, name: 'approve', actorId, channel: 'slack', fields: {} } })
  await queues.enqueueEvent('approve', e.id)
  return e.id
}

const ROUTING = `
import { ApprovalTemplate, slack, type Event } from '@opensym/sdk'

export function getPermissions() {
  return { webappView: 'member', approveDeny: 'member', allowSelfApproval: false }
}

export function getRequestNotifications(event: Event) {
  return [{ destinations: [slack.channel(event.flow.vars.request_channel ?? '#team-access')], timeout: null }]
}

export function onRequest(event: Event) {
  if (event.payload.fields.reason === 'emergency') return ApprovalTemplate.approve({ note: 'auto-approved: emergency' })
}

export async function afterEscalate(event: Event) {
  await slack.sendMessage('#audit', 'granted ' + JSON.stringify(event.getStepOutput()))
}
`

describe('hooks and routing', () => {
  it('onRequest auto-approves when a field says so: escalated without anyone acting, nobody notified', async () => {
    const f = await flowWith(ROUTING)
    const { run_id } = await request(f, { reason: 'emergency' })
    const r = await settled(run_id, (x) => x.status === 'escalated', 'the auto-approved run to escalate')
    expect(r.events.map((e) => [e.name, e.status, e.channel])).toEqual([
      ['request', 'success', 'api'],
      ['approve', 'success', 'sdk'],
      ['escalate', 'success', 'sdk'],
    ])
    expect(r.events[1]!.fields).toEqual({ note: 'auto-approved: emergency' })
    expect(strategy.callsOf('escalate', run_id)).toHaveLength(1)
    expect(requests.filter((n) => n.runId === run_id)).toEqual([])
    // afterEscalate saw the strategy's output through getStepOutput().
    await eventually(async () => sent.find((m) => m.message.includes(`member@example.com|${f.targets[0]!.slug}`)), 10_000, 'afterEscalate to send its message')
    // Every completed event is announced.
    await eventually(async () => events.filter((e) => e.runId === run_id).length === 3, 10_000, 'three event notices')
  })

  it('otherwise the request goes where getRequestNotifications says, and a member may decide as getPermissions says', async () => {
    const f = await flowWith(ROUTING)
    const { run_id } = await request(f)
    const r = await routed(run_id)
    expect(r.status).toBe('requested')
    expect(r.permission).toEqual({ webappView: 'member', approveDeny: 'member', allowSelfApproval: false })
    await eventually(async () => requests.find((n) => n.runId === run_id), 10_000, 'the request notice')
    expect(requests.filter((n) => n.runId === run_id)).toEqual([
      { orgId: o.org.id, runId: run_id, environmentId: expect.any(String), index: 0, destinations: [{ type: 'slack_channel', channel: '#team-access' }], timeoutSeconds: null },
    ])
    expect(await service.decide(o.member, 'approve', { run_id }).catch((e: unknown) => e)).toMatchObject({ code: 'EventsAPI:FORBIDDEN', message: 'You cannot approve or deny your own request.' })
    await service.decide(other, 'approve', { run_id })
    const done = await settled(run_id, (x) => x.status === 'escalated')
    expect(done.events.map((e) => e.name)).toEqual(['request', 'approve', 'escalate'])
  })

  it('onApprove returning ignore leaves the run requested, the event in error with the message', async () => {
    const f = await flowWith(`
      import { ApprovalTemplate, type Event } from '@opensym/sdk'
      export function onApprove(event: Event) {
        if (!event.payload.fields.decision_message) return ApprovalTemplate.ignore({ message: 'Say why you approve.' })
      }
    `)
    const { run_id } = await request(f)
    await routed(run_id)
    const { event_id } = await service.decide(o.admin, 'approve', { run_id })
    const r = await settled(run_id, (x) => x.events.length === 2)
    expect(r.status).toBe('requested')
    expect(r.events[1]).toMatchObject({ id: event_id, name: 'approve', status: 'error', error: 'Say why you approve.' })
    expect(await service.getEvent(o.admin, event_id)).toMatchObject({ status: 'error', error: 'Say why you approve.' })
    await service.decide(o.admin, 'approve', { run_id, decision_message: 'on call' })
    await settled(run_id, (x) => x.status === 'escalated')
  })

  it('onApprove may turn an approval into a denial (forward only)', async () => {
    const f = await flowWith(`
      import { ApprovalTemplate } from '@opensym/sdk'
      export const onApprove = () => ApprovalTemplate.deny({ reason: 'freeze week' })
    `)
    const { run_id } = await request(f)
    await routed(run_id)
    await service.decide(o.admin, 'approve', { run_id })
    const r = await settled(run_id, (x) => x.status === 'denied')
    expect(r.events.map((e) => [e.name, e.status, e.channel])).toEqual([
      ['request', 'success', 'api'],
      ['approve', 'error', 'api'],
      ['deny', 'success', 'sdk'],
    ])
    expect(r.events[1]!.error).toBe('onApprove replaced this approve with deny')
    expect(r.events[2]!.fields).toEqual({ reason: 'freeze week' })
  })

  it('onEscalate returning deescalate grants nothing: the run ends de-escalated, and the trail says why', async () => {
    const f = await flowWith(`
      import { ApprovalTemplate } from '@opensym/sdk'
      export const onEscalate = () => ApprovalTemplate.deescalate({ reason: 'outside business hours' })
    `)
    const { run_id } = await request(f)
    await routed(run_id)
    await service.decide(o.admin, 'approve', { run_id })
    const r = await settled(run_id, (x) => x.status === 'deescalated')
    expect(r.events.map((e) => [e.name, e.status, e.channel])).toEqual([
      ['request', 'success', 'api'],
      ['approve', 'success', 'api'],
      ['escalate', 'success', 'api'],
      ['deescalate', 'success', 'sdk'],
    ])
    expect(r.events[2]!.output).toMatchObject({ body: { strategy_called: false } })
    expect(r.events[3]!.fields).toEqual({ deescalate_type: 'hook', reason: 'outside business hours' })
    expect(strategy.callsOf('escalate', run_id)).toHaveLength(0)
  })

  it('a failing after-hook cannot undo its step: the event keeps success, with a warning, and it is reported', async () => {
    const f = await flowWith(`
      export function afterApprove() { throw new Error('webhook down') }
    `)
    const { run_id } = await request(f)
    await routed(run_id)
    await service.decide(o.admin, 'approve', { run_id })
    await settled(run_id, (x) => x.status === 'escalated')
    const approve = await eventually(async () => (await run(run_id)).events.find((e) => e.name === 'approve' && e.warning !== null), 10_000, 'the warning')
    expect(approve).toMatchObject({ status: 'success', warning: expect.stringContaining('afterApprove threw Error: webhook down') })
    expect(reported.find((x) => x.runId === run_id)).toMatchObject({ step: 'approve', message: expect.stringContaining('afterApprove') })
  })

  it('a Python implementation runs with the defaults, and the request records why', async () => {
    const f = await flowWith('from sym.sdk.annotations import reducer\n\n@reducer\ndef get_approvers(event):\n    return None\n')
    await db.flow.update({ where: { id: f.flowId }, data: { vars: { request_channel: '#py-requests' } } })
    const { run_id } = await request(f)
    const r = await routed(run_id)
    expect(r.events[0]).toMatchObject({ status: 'success', warning: expect.stringMatching(/Python/) })
    expect(r.permission).toEqual({ webappView: 'admin', approveDeny: 'admin', allowSelfApproval: false })
    await eventually(async () => requests.find((n) => n.runId === run_id && (n.destinations[0] as { channel?: string }).channel === '#py-requests'), 10_000, 'the default notice')
  })
})

describe('permissions', () => {
  const LIST = (approvers: string, extra = '') => `
    export function getPermissions() {
      return { webappView: 'member', approveDeny: ${approvers}, allowSelfApproval: ${extra === 'self' ? 'true' : 'false'} }
    }
  `

  it('an approver outside getPermissions is refused by the API (403) and by the worker', async () => {
    // A list naming `other` only.
    const f = await flowWith(LIST(JSON.stringify([other.userId])))
    const { run_id } = await request(f)
    await routed(run_id)
    const stranger = { ...o.member, userId: o.guest.userId, role: 'member' as const }
    expect(await service.decide(stranger, 'approve', { run_id }).catch((e: unknown) => e)).toMatchObject({ code: 'EventsAPI:FORBIDDEN', status: 403, message: 'You are not an approver of this request.' })
    // The worker is the authority: a click that reached it anyway is refused with the reason.
    const outsider = await db.user.create({ data: { orgId: o.org.id, email: `m-${run_id.slice(0, 6)}@example.com`, username: `m-${run_id.slice(0, 6)}@example.com`, role: 'member' } })
    const clicked = await clickApprove(run_id, outsider.id)
    const r = await settled(run_id, (x) => x.events.some((e) => e.id === clicked && e.status !== 'pending'))
    expect(r.events.find((e) => e.id === clicked)).toMatchObject({ status: 'error', error: 'You are not an approver of this request.' })
    expect(r.status).toBe('requested')
    await service.decide(other, 'approve', { run_id })
    await settled(run_id, (x) => x.status === 'escalated')
  })

  it('self-approval is refused unless getPermissions allows it', async () => {
    const f = await flowWith(LIST(`'member'`, 'self'))
    const { run_id } = await request(f)
    await routed(run_id)
    await service.decide(o.member, 'approve', { run_id })
    await settled(run_id, (x) => x.status === 'escalated')

    const g = await flowWith(LIST(`'member'`))
    const second = await request(g)
    await routed(second.run_id)
    const clicked = await clickApprove(second.run_id, o.member.userId)
    const r = await settled(second.run_id, (x) => x.events.some((e) => e.id === clicked && e.status !== 'pending'))
    expect(r.events.find((e) => e.id === clicked)).toMatchObject({ status: 'error', error: 'You cannot approve or deny your own request.' })
  })

  it('guests are refused unless the flow sets allow_guest_interaction', async () => {
    const params = (guests: boolean) => ({ allow_guest_interaction: guests, prompt_fields: [{ name: 'reason', type: 'string' }, { name: 'duration', type: 'duration' }] })
    const closed = await flowWith(LIST(`'all_users'`), { params: params(false) })
    const a = await request(closed)
    await routed(a.run_id)
    const refused = await clickApprove(a.run_id, o.guest.userId)
    const r = await settled(a.run_id, (x) => x.events.some((e) => e.id === refused && e.status !== 'pending'))
    expect(r.events.find((e) => e.id === refused)).toMatchObject({ status: 'error', error: 'Guests cannot act on requests of this flow.' })

    const open = await flowWith(LIST(`'all_users'`), { params: params(true) })
    const b = await request(open)
    await routed(b.run_id)
    await clickApprove(b.run_id, o.guest.userId)
    await settled(b.run_id, (x) => x.status === 'escalated')
  })
})

describe('failing hooks', () => {
  it('a throwing onEscalate fails the step without a grant, records the error and reports it', async () => {
    const f = await flowWith(`
      export function onEscalate() { throw new Error('boom') }
    `)
    const { run_id } = await request(f)
    await routed(run_id)
    await service.decide(o.admin, 'approve', { run_id })
    const r = await settled(run_id, (x) => x.status === 'errored')
    expect(r.events.at(-1)).toMatchObject({ name: 'escalate', status: 'error', error: expect.stringContaining('onEscalate threw Error: boom') })
    expect(strategy.callsOf('escalate', run_id)).toHaveLength(0)
    expect(await db.grantLease.count({ where: { runId: run_id } })).toBe(0)
    expect(reported.find((x) => x.runId === run_id)).toMatchObject({ step: 'escalate', message: expect.stringContaining('boom') })
  })

  it('a hook that never returns times out: the request fails, nobody is notified, it is reported', async () => {
    const f = await flowWith(`
      export async function onRequest() { await new Promise(() => {}) }
    `)
    const { run_id } = await request(f)
    const r = await settled(run_id, (x) => x.status === 'errored')
    expect(r.events[0]).toMatchObject({ status: 'error', error: expect.stringMatching(/did not finish within/) })
    expect(r.notifications).toEqual([])
    // The reporter hears after the step committed: wait for it rather than race it.
    await vi.waitFor(() => expect(reported.find((x) => x.runId === run_id)).toMatchObject({ step: 'request' }), { timeout: 10_000 })
  })
})

const CHAIN = (first: number, second: number | null, firstChannel = '#first') => `
  import { slack } from '@opensym/sdk'
  export function getRequestNotifications() {
    return [
      { destinations: [slack.channel('${firstChannel}')], timeout: ${first} },
      { destinations: [slack.channel('#second')], timeout: ${second} },
    ]
  }
`

describe('the notification chain', () => {
  it('forwards once after the first timeout, then the request expires after the last and the requester hears of it', async () => {
    const f = await flowWith(CHAIN(1, 1))
    const { run_id } = await request(f)
    const r = await settled(run_id, (x) => x.status === 'expired', 'the chain to run out', 20_000)
    expect(requests.filter((n) => n.runId === run_id).map((n) => [n.index, (n.destinations[0] as { channel: string }).channel, n.timeoutSeconds])).toEqual([
      [0, '#first', 1],
      [1, '#second', 1],
    ])
    expect(r.notifications.map((n) => [n.index, n.outcome, n.postedAt !== null])).toEqual([
      [0, 'timeout', true],
      [1, null, true],
    ])
    const expire = r.events.at(-1)!
    expect(expire).toMatchObject({ name: 'expire', status: 'success' })
    await eventually(async () => events.find((e) => e.eventId === expire.id), 10_000, 'the expire notice')
  })

  it('a link that cannot be delivered moves the chain on at once', async () => {
    undeliverable.add('#nowhere')
    const f = await flowWith(CHAIN(3600, null, '#nowhere'))
    const { run_id } = await request(f)
    await eventually(async () => requests.find((n) => n.runId === run_id && n.index === 1), 10_000, 'the second link')
    const r = await run(run_id)
    expect(r.notifications[0]).toMatchObject({ outcome: 'undeliverable', error: 'no channel #nowhere' })
    expect(r.status).toBe('requested')
  })

  it('Redis flushed mid-chain: the reconciler restores the pending timeout from PostgreSQL', async () => {
    const f = await flowWith(CHAIN(5, null))
    const { run_id } = await request(f)
    await eventually(async () => (await run(run_id)).notifications[0]?.dueAt, 10_000, 'link 0 to be posted')
    await worker.close()
    try {
      expect(await deleteKeys(redis, prefix)).toBeGreaterThan(0)
      expect(await queues.jobState('notify', jobIds.notifyTimeout(run_id, 0))).toBe('unknown')
      const report = await new Reconciler({ db, queues }).runOnce()
      expect(report?.notifications).toBeGreaterThanOrEqual(1)
      // Delayed until the link's dueAt (or waiting, if the flush took longer than the timeout).
      expect(['delayed', 'waiting']).toContain(await queues.jobState('notify', jobIds.notifyTimeout(run_id, 0)))
    } finally {
      worker = await startWorker()
    }
    await eventually(async () => requests.find((n) => n.runId === run_id && n.index === 1), 15_000, 'the second link after the flush')
    expect(requests.filter((n) => n.runId === run_id && n.index === 1)).toHaveLength(1)
  })
})
