/**
 * The engine against real PostgreSQL and Redis, with an in-process worker and a recording strategy: the grant
 * ledger, retries, verification, failures and their reporting, the reconciler, and request validation.
 */
import { createDb, type Db } from '@opensym/db'
import { RecordingStrategy } from '@opensym/engine/testing'
import type { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest'
import { chainAudit, verifyAuditChain } from '../src/audit.js'
import { EngineError } from '../src/errors.js'
import { EngineQueues, jobIds } from '../src/queues.js'
import { Reconciler } from '../src/reconciler.js'
import type { EngineFailure } from '../src/seams.js'
import { RunService } from '../src/service.js'
import { RetryableStrategyError } from '../src/strategy.js'
import { startEngineWorker, type EngineWorker } from '../src/worker.js'
import { createFlow, deleteKeys, eventually, orgWithPrincipals, queuePrefix, redisClient, type FlowFixture, type OrgPrincipals } from './fixtures.js'

let db: Db
let redis: Redis
let prefix: string
let queues: EngineQueues
let service: RunService
let worker: EngineWorker
let o: OrgPrincipals
let flow: FlowFixture
const strategy = new RecordingStrategy({ readBack: true })
const reported: EngineFailure[] = []

async function startWorker(): Promise<EngineWorker> {
  return startEngineWorker({
    db,
    connection: redis,
    prefix,
    strategies: new Map([['http', strategy]]),
    reporter: (f) => void reported.push(f),
    attempts: 3,
    backoffMs: 50,
    reconcileIntervalMs: 0,
    concurrency: 5,
  })
}

beforeAll(async () => {
  db = createDb(inject('databaseUrl'), { poolSize: 10 })
  redis = redisClient()
  prefix = queuePrefix('engine')
  queues = new EngineQueues({ connection: redis, prefix, attempts: 3, backoffMs: 50 })
  service = new RunService({ db, queues })
  o = await orgWithPrincipals(db, 'engine')
  flow = await createFlow(db, o.org.id)
  worker = await startWorker()
})
afterAll(async () => {
  await worker?.close()
  await queues?.close()
  redis?.disconnect()
  await db?.$disconnect()
})


const inputs = (extra: Record<string, unknown> = {}) => ({ reason: 'incident 42', duration: 3600, target_id: flow.targets[0]!.id, ...extra })

async function run(runId: string) {
  return db.run.findUniqueOrThrow({ where: { id: runId }, include: { events: { orderBy: { seq: 'asc' } }, leases: true } })
}

async function until(runId: string, status: string, timeoutMs = 10_000) {
  return eventually(async () => {
    const r = await run(runId)
    return r.status === status && r.events.every((e) => e.status !== 'pending') && r
  }, timeoutMs, `run ${runId} to be ${status}`)
}

async function escalated(extra: Record<string, unknown> = {}, f: FlowFixture = flow) {
  const { run_id } = await service.createRequest(o.bot, { flow_srn: f.flowSlug, flow_inputs: { ...inputs(), target_id: f.targets[0]!.id, ...extra }, user_email: 'member@example.com' })
  await service.decide(o.admin, 'approve', { run_id })
  return until(run_id, 'escalated')
}

describe('the grant ledger', () => {
  it('escalates through the strategy, verified by reading the target back, with one lease and an audit entry per event', async () => {
    const r = await escalated()
    expect(strategy.callsOf('escalate', r.id)).toHaveLength(1)
    expect(r.events.map((e) => [e.name, e.status])).toEqual([
      ['request', 'success'],
      ['approve', 'success'],
      ['escalate', 'success'],
    ])
    const escalate = r.events[2]!
    expect(escalate).toMatchObject({ verified: true, output: { body: { granted: 'member@example.com|' + flow.targets[0]!.slug }, errors: [] } })
    expect(r.leases).toHaveLength(1)
    expect(r.expiresAt!.getTime() - r.escalatedAt!.getTime()).toBe(3600_000)
    // The payload is the escalate event's §7.2 log entry.
    expect(strategy.callsOf('escalate', r.id)[0]!.payload).toMatchObject({ id: escalate.id, event: { type: 'escalate' }, state: { status: 'processing' }, fields: { reason: 'incident 42', duration: 3600 } })
    await chainAudit(db.sql)
    expect(await db.auditEntry.count({ where: { runId: r.id } })).toBe(3)
    expect(await queues.jobState('deescalate', jobIds.deescalation(r.id))).toBe('delayed')
  })

  it('two overlapping runs share one grant: the first revoke keeps the access, the second removes it', async () => {
    const f = await createFlow(db, o.org.id, { targets: [{ slug: 'shared', settings: { group: 'admins' } }] })
    const first = await escalated({}, f)
    const second = await escalated({}, f)
    expect(strategy.callsOf('escalate', second.id)).toHaveLength(0)
    expect(second.events.at(-1)!.output).toMatchObject({ body: { strategy_called: false } })
    const grants = await db.grant.findMany({ where: { leases: { some: { runId: { in: [first.id, second.id] } } } }, include: { leases: true } })
    expect(grants).toHaveLength(1)
    expect(grants[0]!.leases).toHaveLength(2)

    await service.revoke(o.bot, first.id)
    const firstDone = await until(first.id, 'deescalated')
    expect(strategy.callsOf('deescalate', first.id)).toHaveLength(0)
    expect(firstDone.events.at(-1)).toMatchObject({ name: 'deescalate', fields: { deescalate_type: 'manual' }, output: { body: { strategy_called: false, reason: expect.stringMatching(/1 other run/) } } })
    expect(strategy.granted.has(`member@example.com|${f.targets[0]!.slug}`)).toBe(true)

    await service.revoke(o.member, second.id)
    const secondDone = await until(second.id, 'deescalated')
    expect(strategy.callsOf('deescalate', second.id)).toHaveLength(1)
    expect(secondDone.events.at(-1)).toMatchObject({ verified: true })
    expect(strategy.granted.has(`member@example.com|${f.targets[0]!.slug}`)).toBe(false)
    expect(await db.grant.findUniqueOrThrow({ where: { id: grants[0]!.id } })).toMatchObject({ applied: false })
    await chainAudit(db.sql)
    expect(await verifyAuditChain(db, o.org.id)).toMatchObject({ ok: true })
  })

  it('processes one event once even when two workers take it at the same time', async () => {
    const f = await createFlow(db, o.org.id)
    const { run_id } = await service.createRequest(o.bot, { flow_srn: f.flowSlug, flow_inputs: inputs({ target_id: f.targets[0]!.id }), user_email: 'member@example.com' })
    // Decide in the database with the worker's own step code, but hold the escalate event back from the queue.
    const { event_id } = await service.decide(o.admin, 'approve', { run_id })
    await eventually(async () => (await db.runEvent.findUnique({ where: { id: event_id } }))?.status === 'success')
    const escalate = await eventually(() => db.runEvent.findFirst({ where: { runId: run_id, name: 'escalate' } }).then((e) => e ?? undefined))
    const results = await Promise.all([1, 2, 3].map(() => worker.steps.processEvent(escalate.id, { attempt: 1, maxAttempts: 3 })))
    await until(run_id, 'escalated')
    expect(results.filter((x) => x === 'done').length).toBeLessThanOrEqual(1)
    expect(strategy.callsOf('escalate', run_id)).toHaveLength(1)
    expect(await db.grantLease.count({ where: { runId: run_id } })).toBe(1)
    await chainAudit(db.sql)
    expect(await db.auditEntry.count({ where: { eventId: escalate.id } })).toBe(1)
  })
})

describe('revoking', () => {
  it('a revoke while a de-escalation is in progress returns that one; one strategy call in all', async () => {
    const f = await createFlow(db, o.org.id)
    const r = await escalated({}, f)
    await worker.close()
    try {
      const first = await service.revoke(o.bot, r.id)
      const second = await service.revoke(o.admin, r.id)
      expect(second).toEqual(first)
    } finally {
      worker = await startWorker()
    }
    const done = await until(r.id, 'deescalated')
    expect(done.events.filter((e) => e.name === 'deescalate')).toHaveLength(1)
    expect(strategy.callsOf('deescalate', r.id)).toHaveLength(1)
  })

  it('needs allow_revoke, and the requester or an approver', async () => {
    const f = await createFlow(db, o.org.id, { params: { allow_revoke: false, prompt_fields: [{ name: 'reason', type: 'string' }, { name: 'duration', type: 'duration' }] } })
    const r = await escalated({}, f)
    expect(await service.revoke(o.member, r.id).catch((e: unknown) => e)).toMatchObject({
      code: 'EventsAPI:FORBIDDEN',
      status: 403,
      message: 'This flow does not allow revoking access (allow_revoke is false).',
    })
    const g = await createFlow(db, o.org.id)
    const other = await escalated({}, g)
    const stranger = { ...o.member, userId: o.guest.userId, role: 'member' as const }
    expect(await service.revoke(stranger, other.id).catch((e: unknown) => e)).toMatchObject({ status: 403, message: 'Only the requester or an approver can revoke this access.' })
  })
})

describe('retries, verification and failures', () => {
  it('retries a retryable strategy error with backoff and records the attempt that worked', async () => {
    strategy.failures.escalate.push(new RetryableStrategyError('503 from the target'))
    const r = await escalated({}, await createFlow(db, o.org.id))
    expect(strategy.callsOf('escalate', r.id)).toHaveLength(2)
    expect(r.events.at(-1)).toMatchObject({ name: 'escalate', status: 'success', attempts: 2 })
  })

  it('a strategy that refuses fails the escalation at once: run errored, event error, reported, nothing leased', async () => {
    strategy.failures.escalate.push(new Error('user not found in target'))
    const f = await createFlow(db, o.org.id)
    const { run_id } = await service.createRequest(o.bot, { flow_srn: f.flowSlug, flow_inputs: inputs({ target_id: f.targets[0]!.id }), user_email: 'member@example.com' })
    await service.decide(o.admin, 'approve', { run_id })
    const r = await until(run_id, 'errored')
    expect(r.events.at(-1)).toMatchObject({ name: 'escalate', status: 'error', error: 'escalate failed: user not found in target' })
    expect(r.leases).toHaveLength(0)
    expect(r.endedAt).not.toBeNull()
    expect(reported.find((f) => f.runId === run_id)).toMatchObject({ step: 'escalate', message: expect.stringMatching(/user not found in target/) })
  })

  it('an unverified removal is retried, then recorded as failed and reported — the run stays escalated, never silently dropped', async () => {
    const f = await createFlow(db, o.org.id)
    const r = await escalated({}, f)
    strategy.removes = false
    try {
      await service.revoke(o.bot, r.id)
      const failed = await eventually(async () => {
        const x = await run(r.id)
        return x.events.at(-1)?.status === 'error' && x
      })
      expect(failed.status).toBe('escalated')
      expect(failed.events.at(-1)).toMatchObject({ name: 'deescalate', status: 'error', verified: false, attempts: 3, error: expect.stringMatching(/still shows in the target/) })
      expect(strategy.callsOf('deescalate', r.id)).toHaveLength(3)
      expect(failed.leases[0]!.endedAt).toBeNull()
      expect(reported.find((f) => f.runId === r.id)).toMatchObject({ step: 'deescalate', message: expect.stringMatching(/may still be in place/) })
    } finally {
      strategy.removes = true
    }
    // A later revoke removes it.
    await service.revoke(o.bot, r.id)
    await until(r.id, 'deescalated')
    expect(strategy.granted.has(`member@example.com|${f.targets[0]!.slug}`)).toBe(false)
  })
})

describe('the reconciler', () => {
  it('re-adds lost jobs: a pending event, a scheduled de-escalation, a request expiry', async () => {
    const r = await escalated({ duration: 3600 })
    const waiting = await service.createRequest(o.bot, { flow_srn: flow.flowSlug, flow_inputs: inputs(), user_email: 'member@example.com' })
    await until(waiting.run_id, 'requested')
    // Stop the worker so nothing runs, then lose every job.
    await worker.close()
    const pending = await service.decide(o.admin, 'approve', { run_id: waiting.run_id })
    expect(await deleteKeys(redis, prefix)).toBeGreaterThan(0)
    expect(await queues.jobState('deescalate', jobIds.deescalation(r.id))).toBe('unknown')

    const reconciler = new Reconciler({ db, queues, pendingGraceMs: 0 })
    const report = await reconciler.runOnce()
    expect(report).toMatchObject({ events: 1 })
    expect(report!.deescalations).toBeGreaterThanOrEqual(1)
    expect(await queues.jobState('approve', jobIds.event('approve', pending.event_id))).toBe('waiting')
    expect(await queues.jobState('deescalate', jobIds.deescalation(r.id))).toBe('delayed')
    // A second pass adds nothing.
    expect(await reconciler.runOnce()).toMatchObject({ events: 0, deescalations: 0, expiries: 0 })

    worker = await startWorker()
    await until(waiting.run_id, 'escalated')
  })
})

describe('requests', () => {
  const request = (flowInputs: Record<string, unknown>, more: Record<string, unknown> = {}) =>
    service.createRequest(o.bot, { flow_srn: flow.flowSlug, flow_inputs: flowInputs, user_email: 'member@example.com', ...more }).catch((e: unknown) => e)

  it('refuses invalid inputs with a 400 naming each field', async () => {
    const err = await request({ duration: '2y', target_id: '00000000-0000-4000-8000-000000000000' })
    expect(err).toBeInstanceOf(EngineError)
    expect(err).toMatchObject({
      code: 'EventsAPI:INVALID_REQUEST',
      status: 400,
      errors: [
        { field: 'flow_inputs.reason', message: 'is required' },
        { field: 'flow_inputs.duration', message: expect.stringMatching(/must be a duration/) },
      ],
    })
    expect(await request(inputs({ target_id: '00000000-0000-4000-8000-000000000000' }))).toMatchObject({ errors: [{ field: 'flow_inputs.target_id', message: expect.stringMatching(/is not a target of strategy/) }] })
  })

  it('resolves flows by SRN (latest or the current version) and targets by SRN', async () => {
    const t = flow.targets[0]!
    const ok = await service.createRequest(o.bot, {
      flow_srn: `${o.org.slug}:flow:${flow.flowSlug}:latest`,
      flow_inputs: { reason: 'r', duration: '1h', target_srn: `${o.org.slug}:access_target:custom:${t.slug}:latest` },
    })
    expect(ok.run_id).toMatch(/^[0-9a-f-]{36}$/)
    expect(await service.createRequest(o.bot, { flow_srn: `${o.org.slug}:flow:${flow.flowSlug}:1`, flow_inputs: inputs() })).toHaveProperty('run_id')
    expect(await request(inputs(), { flow_srn: `${o.org.slug}:flow:${flow.flowSlug}:2` })).toMatchObject({ errors: [{ field: 'flow_srn', message: expect.stringMatching(/is at version 1/) }] })
    expect(await request(inputs(), { flow_srn: `other-org:flow:${flow.flowSlug}:latest` })).toMatchObject({ errors: [{ field: 'flow_srn', message: expect.stringMatching(/names org "other-org"/) }] })
    expect(await request(inputs(), { flow_srn: 'no-such-flow' })).toMatchObject({ errors: [{ field: 'flow_srn', message: 'no flow "no-such-flow" in this organization' }] })
  })

  it('snapshots the flow, the strategy and the target with its field bindings', async () => {
    const f = await createFlow(db, o.org.id, {
      targets: [{ slug: 'repo', type: 'github_repo', settings: {}, fieldBindings: ['repo_name'] }],
      params: { prompt_fields: [{ name: 'repo_name', type: 'string' }, { name: 'duration', type: 'duration' }] },
    })
    const created = await service.createRequest(o.bot, { flow_srn: f.flowSlug, flow_inputs: { repo_name: 'opensym', duration: '30m', target_id: f.targets[0]!.id } })
    const r = await run(created.run_id)
    expect(r.snapshot).toMatchObject({ orgSlug: o.org.slug, flow: { slug: f.flowSlug, version: 1, params: { allow_revoke: true, schedule_deescalation: true } }, strategy: { type: 'http' }, target: { settings: { repo_name: 'opensym' } } })
    expect(r).toMatchObject({ durationSeconds: 1800, fields: { repo_name: 'opensym', duration: 1800, target_id: f.targets[0]!.id }, requesterId: o.bot.userId })
    const missing = await service.createRequest(o.bot, { flow_srn: f.flowSlug, flow_inputs: { duration: '30m', target_id: f.targets[0]!.id } }).catch((e: unknown) => e)
    expect(missing).toMatchObject({ errors: [{ field: 'flow_inputs.repo_name' }] })
  })

  it('honours allowed_sources, and only bots and admins request for someone else', async () => {
    const slackOnly = await createFlow(db, o.org.id, { strategy: null, params: { allowed_sources: ['slack'] } })
    expect(await service.createRequest(o.bot, { flow_srn: slackOnly.flowSlug, flow_inputs: {} }).catch((e: unknown) => e)).toMatchObject({
      code: 'EventsAPI:SOURCE_NOT_ALLOWED',
      status: 403,
      message: `Flow '${slackOnly.flowSlug}' cannot be started from the API (allowed_sources: slack).`,
    })
    expect(await service.createRequest(o.member, { flow_srn: flow.flowSlug, flow_inputs: inputs(), user_email: 'admin@example.com' }).catch((e: unknown) => e)).toMatchObject({ status: 403 })
    expect(await request(inputs(), { user_email: 'nobody@example.com' })).toMatchObject({ errors: [{ field: 'user_email', message: 'no such user in this organization' }] })
  })

  it('an approval-only flow ends at approved', async () => {
    const approvalOnly = await createFlow(db, o.org.id, { strategy: null, params: { prompt_fields: [{ name: 'reason', type: 'string' }] } })
    const { run_id } = await service.createRequest(o.member, { flow_srn: approvalOnly.flowSlug, flow_inputs: { reason: 'deploy' } })
    expect(await service.decide(o.member, 'approve', { run_id }).catch((e: unknown) => e)).toMatchObject({ code: 'EventsAPI:FORBIDDEN', message: 'You cannot approve or deny your own request.' })
    await service.decide(o.admin, 'approve', { run_id, decision_message: 'ship it' })
    const r = await until(run_id, 'approved')
    expect(r.events.map((e) => e.name)).toEqual(['request', 'approve'])
    expect(r.events[1]!.fields).toEqual({ decision_message: 'ship it' })
    expect(r.endedAt).not.toBeNull()
  })
})

afterEach(() => {
  strategy.failures.escalate.length = 0
  strategy.failures.deescalate.length = 0
})
