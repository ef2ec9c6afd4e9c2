/**
 * How steps write, against real PostgreSQL and Redis: a step's completion as one statement (it locks the run and the
 * event itself, writes only from the state its step read, and stages the same audit entry as the two-statement
 * path reads back), the escalate's lock seeing its event as it is after any wait, an escalation that follows its
 * approval in the same job, and, without a RunNotifier, a request's
 * first notification posted by the request's own statement, its timeouts still scheduled.
 */
import { createDb, isUniqueViolation, Prisma, type Db } from '@opensym/db'
import { RecordingStrategy } from '@opensym/engine/testing'
import type { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest'
import { buildLogEntry, loadEntryInput } from '../src/audit.js'
import { createHostHandlers } from '../src/host.js'
import { lockGrantByKey } from '../src/grants.js'
import { EngineQueues, jobIds, type EventStep } from '../src/queues.js'
import { FlowRuntime } from '../src/runtime.js'
import { RunService } from '../src/service.js'
import { completeEvent, lockRun, RunChangedError } from '../src/store.js'
import { StepRunner } from '../src/steps.js'
import { startEngineWorker, type EngineWorker } from '../src/worker.js'
import { createFlow, eventually, orgWithPrincipals, queuePrefix, redisClient, type FlowFixture, type OrgPrincipals } from './fixtures.js'

let db: Db
let redis: Redis
let prefix: string
let queues: EngineQueues
let service: RunService
let worker: EngineWorker
let flows: FlowRuntime
let o: OrgPrincipals
let flow: FlowFixture
const strategy = new RecordingStrategy()
/** Every event job the worker added (step, event id). */
const enqueued: Array<[EventStep, string]> = []

beforeAll(async () => {
  db = createDb(inject('databaseUrl'), { poolSize: 10 })
  redis = redisClient()
  prefix = queuePrefix('steps')
  queues = new EngineQueues({ connection: redis, prefix, attempts: 3, backoffMs: 50 })
  service = new RunService({ db, queues })
  o = await orgWithPrincipals(db, 'steps')
  flow = await createFlow(db, o.org.id)
  flows = new FlowRuntime({ db, host: createHostHandlers({ db }), timeoutMs: 2000 })
  // No notifier: nobody is told of requests or events.
  worker = await startEngineWorker({ db, connection: redis, prefix, strategies: new Map([['http', strategy]]), flows, attempts: 3, backoffMs: 50, reconcileIntervalMs: 0, concurrency: 5 })
  const enqueue = worker.queues.enqueueEvent.bind(worker.queues)
  worker.queues.enqueueEvent = (step, eventId, delayMs) => {
    enqueued.push([step, eventId])
    return enqueue(step, eventId, delayMs)
  }
})
afterAll(async () => {
  await worker?.close()
  await flows?.close()
  await queues?.close()
  redis?.disconnect()
  await db?.$disconnect()
})

const inputs = (f: FlowFixture) => ({ reason: 'incident 42', duration: 3600, target_id: f.targets[0]!.id })

async function run(runId: string) {
  return db.run.findUniqueOrThrow({ where: { id: runId }, include: { events: { orderBy: { seq: 'asc' } }, notifications: { orderBy: { index: 'asc' } } } })
}

async function settled(runId: string, status: string, timeoutMs = 10_000) {
  return eventually(async () => {
    const r = await run(runId)
    return r.status === status && r.events.every((e) => e.status !== 'pending') && r
  }, timeoutMs, `run ${runId} to be ${status}`)
}

/** A run with its request event done and an approval pending (no worker involved: the events are written here). */
async function runWithPendingApproval(fields: Record<string, unknown> = {}) {
  const r = await db.run.create({
    data: { orgId: o.org.id, flowSlug: flow.flowSlug, flowVersion: 1, requesterId: o.member.userId, durationSeconds: 60, fields: { reason: 'x' }, snapshot: { orgSlug: o.org.slug }, status: 'requested' },
  })
  await db.runEvent.create({ data: { orgId: o.org.id, runId: r.id, seq: 1, name: 'request', actorId: o.member.userId, channel: 'api', status: 'success', completedAt: new Date() } })
  const approve = await db.runEvent.create({ data: { orgId: o.org.id, runId: r.id, seq: 2, name: 'approve', actorId: o.admin.userId, channel: 'api', fields: fields as Prisma.InputJsonValue, status: 'pending' } })
  return { run: r, approve }
}

/**
 * Ends what the direct tests leave pending: other test files' reconcilers (which look at every org) must not find
 * those events.
 */
afterEach(async () => {
  await db.runEvent.updateMany({ where: { orgId: o.org.id, status: 'pending', run: { flowSlug: flow.flowSlug } }, data: { status: 'error', error: 'test over', completedAt: new Date() } })
})

const staged = async (eventId: string) => (await db.$queryRaw<Array<{ entry: unknown }>>`SELECT "entry" FROM "AuditStaged" WHERE "eventId" = ${eventId}::uuid`)[0]?.entry

describe('a step completed in one statement', () => {
  it('stages the entry the two-statement path reads back, for a success with added fields and for an error', async () => {
    for (const outcome of [
      { status: 'success' as const, completedAt: new Date(), addFields: { decision_message: 'ok', n: 2 } },
      { status: 'error' as const, error: 'Cannot approve a run with status "expired".', completedAt: new Date() },
    ]) {
      const { run: r, approve } = await runWithPendingApproval({ source: 'test' })
      const pending = await loadEntryInput(db.sql, approve.id)
      const done = await completeEvent(db.sql, approve.id, outcome, outcome.status === 'success' ? { run: { id: r.id, version: r.version, status: r.status, to: 'approved' } } : {}, pending)
      expect(done).toEqual({ nextEventId: undefined })
      // What the event's entry is once it completed, read back as the two-statement path does.
      const expected = buildLogEntry(await loadEntryInput(db.sql, approve.id))
      expect(await staged(approve.id)).toEqual(JSON.parse(JSON.stringify(expected)))
      expect(Object.keys(expected.run.actors)).toEqual(outcome.status === 'success' ? ['request', 'approve'] : ['request'])
    }
  })

  it('writes nothing for an event done already, and nothing but a RunChangedError for a run that moved on', async () => {
    const { run: r, approve } = await runWithPendingApproval()
    const pending = await loadEntryInput(db.sql, approve.id)
    const approveIt = (version: number) =>
      completeEvent(db.sql, approve.id, { status: 'success', completedAt: new Date() }, { run: { id: r.id, version, status: 'requested', to: 'approved' }, next: { run: r, name: 'escalate', actorId: o.admin.userId, channel: 'api' } }, pending)
    // Someone else moved the run on (its version).
    await db.run.update({ where: { id: r.id }, data: { version: { increment: 1 } } })
    await expect(approveIt(r.version)).rejects.toBeInstanceOf(RunChangedError)
    expect(await run(r.id)).toMatchObject({ status: 'requested', events: [{ status: 'success' }, { status: 'pending' }] })
    expect(await staged(approve.id)).toBeUndefined()
    // From the run as it is now it goes through, once.
    const done = await approveIt(r.version + 1)
    expect(done?.nextEventId).toEqual(expect.any(String))
    expect(await approveIt(r.version + 2)).toBeUndefined()
    const after = await run(r.id)
    expect(after.status).toBe('approved')
    expect(after.events.map((e) => [e.seq, e.name, e.status])).toEqual([
      [1, 'request', 'success'],
      [2, 'approve', 'success'],
      [3, 'escalate', 'pending'],
    ])
  })

  it('fails whole when another event of the run was appended while it waited for the run (its seq is taken), and can be redone', async () => {
    const { run: r, approve } = await runWithPendingApproval()
    const pending = await loadEntryInput(db.sql, approve.id)
    const approveIt = () =>
      completeEvent(db.sql, approve.id, { status: 'success', completedAt: new Date() }, { run: { id: r.id, version: r.version, status: 'requested', to: 'approved' }, next: { run: r, name: 'escalate', actorId: o.admin.userId, channel: 'api' } }, pending)
    let waiting: Promise<unknown> | undefined
    await db.sql.transaction(async (tx) => {
      // The API appends a decision under the run's lock; the step's statement starts meanwhile and waits for the lock.
      await lockRun(tx, r.id)
      await tx.execute(Prisma.sql`INSERT INTO "RunEvent" ("id", "orgId", "runId", "seq", "name", "actorId", "channel", "status") VALUES (gen_random_uuid(), ${o.org.id}::uuid, ${r.id}::uuid, 3, 'deny', ${o.admin.userId}::uuid, 'api', 'pending')`)
      waiting = approveIt().then(
        () => 'completed',
        (e: unknown) => e,
      )
      await new Promise((resolve) => setTimeout(resolve, 300))
    })
    const failure = await waiting
    expect(isUniqueViolation(failure, 'RunEvent_runId_seq_key')).toBe(true)
    expect(await run(r.id)).toMatchObject({ status: 'requested', events: [{ status: 'success' }, { status: 'pending' }, { name: 'deny', status: 'pending' }] })
    expect(await staged(approve.id)).toBeUndefined()
    expect((await approveIt())?.nextEventId).toEqual(expect.any(String))
    expect((await run(r.id)).events.map((e) => [e.seq, e.name])).toEqual([
      [1, 'request'],
      [2, 'approve'],
      [3, 'deny'],
      [4, 'escalate'],
    ])
  })
})

describe('the escalate lock', () => {
  it('sees an event completed while it waited for the run’s lock as no longer pending (nothing would be called)', async () => {
    const { run: r, approve } = await runWithPendingApproval()
    const key = `http:steps-test-${r.id}`
    const lockIt = () => db.sql.transaction((tx) => lockGrantByKey(tx, o.org.id, key, 'http', 'member@example.com', r.id, approve.id))
    expect(await lockIt()).toMatchObject({ eventPending: true, run: { id: r.id, status: 'requested' }, grant: { applied: false } })
    let waiting: Promise<unknown> | undefined
    await db.sql.transaction(async (tx) => {
      // A duplicate job completes the event under the run's lock; this one's lock statement starts meanwhile and waits.
      await lockRun(tx, r.id)
      waiting = lockIt()
      await new Promise((resolve) => setTimeout(resolve, 300))
      await tx.execute(Prisma.sql`UPDATE "RunEvent" SET "status" = 'error', "error" = 'done elsewhere', "completedAt" = now() WHERE "id" = ${approve.id}::uuid`)
    })
    expect(await waiting).toMatchObject({ eventPending: false })
    await db.grant.deleteMany({ where: { orgId: o.org.id, key } })
  })
})

describe('the worker', () => {
  it('escalates an approved run in the approval’s job: no escalate job', async () => {
    const { run_id } = await service.createRequest(o.bot, { flow_srn: flow.flowSlug, flow_inputs: inputs(flow), user_email: 'member@example.com' })
    await service.decide(o.admin, 'approve', { run_id })
    const r = await settled(run_id, 'escalated')
    expect(r.events.map((e) => [e.name, e.status, e.attempts])).toEqual([
      ['request', 'success', 1],
      ['approve', 'success', 1],
      ['escalate', 'success', 1],
    ])
    expect(strategy.callsOf('escalate', run_id)).toHaveLength(1)
    expect(enqueued.filter(([, id]) => r.events.some((e) => e.id === id))).toEqual([])
  })

  it('escalates with what the approval read and wrote, reading nothing again: the payload and entry a fresh read makes', async () => {
    const readStep = vi.spyOn(StepRunner.prototype as unknown as { readStep: (eventId: string) => Promise<unknown> }, 'readStep')
    try {
      // A flow of its own: its target is granted to nobody yet, so the strategy is called.
      const own = await createFlow(db, o.org.id)
      const { run_id } = await service.createRequest(o.bot, { flow_srn: own.flowSlug, flow_inputs: inputs(own), user_email: 'member@example.com' })
      await service.decide(o.admin, 'approve', { run_id, decision_message: 'go' })
      const r = await settled(run_id, 'escalated')
      const [request, approve, escalate] = r.events
      const read = readStep.mock.calls.map(([id]) => id)
      expect(read).toContain(request!.id)
      expect(read).toContain(approve!.id)
      expect(read).not.toContain(escalate!.id)
      // The entry of the escalation as its row reads now, and as the strategy got it while it was pending.
      const expected = JSON.parse(JSON.stringify(buildLogEntry(await loadEntryInput(db.sql, escalate!.id))))
      await eventually(async () => (await staged(escalate!.id)) ?? (await db.auditEntry.findUnique({ where: { eventId: escalate!.id } }))?.entry, 5000, 'the escalate entry')
      expect((await staged(escalate!.id)) ?? (await db.auditEntry.findUniqueOrThrow({ where: { eventId: escalate!.id } })).entry).toEqual(expected)
      const [call] = strategy.callsOf('escalate', run_id)
      expect(JSON.parse(JSON.stringify(call!.payload))).toEqual({ ...expected, event: { ...expected.event, timestamp: escalate!.createdAt.toISOString() }, state: expect.anything() })
      expect(Object.keys(expected.run.actors)).toEqual(['request', 'approve', 'escalate'])
    } finally {
      readStep.mockRestore()
    }
  })

  it('without a notifier, posts the first link with the request; a chain with timeouts still forwards and expires', async () => {
    const single = await createFlow(db, o.org.id)
    await db.flow.update({
      where: { id: single.flowId },
      data: { implementation: `import { slack } from '@opensym/sdk'\nexport function getRequestNotifications() { return [{ destinations: [slack.channel('#only')], timeout: 1 }] }` },
    })
    const { run_id: one } = await service.createRequest(o.bot, { flow_srn: single.flowSlug, flow_inputs: inputs(single), user_email: 'member@example.com' })
    await eventually(async () => ((await run(one)).notifications[0]?.postedAt ? true : undefined), 10_000, 'link 0 posted')
    // Read again once the post is seen: `run()` reads the run, its events and its links in separate queries, so the
    // read that first saw the link may have read the run before the statement that wrote both committed.
    const posted = await run(one)
    const link = posted.notifications[0]!
    // Posted by the request's statement: the request event's completion and the link's post are the same moment.
    expect(link.postedAt).toEqual(posted.events[0]!.completedAt)
    expect(link.dueAt!.getTime() - link.postedAt!.getTime()).toBe(1000)
    // The only link's timeout is the request's expiry.
    expect(posted.requestExpiresAt).toEqual(link.dueAt)
    expect(await queues.jobState('notify', jobIds.notifyRequest(one, 0))).toBe('unknown')
    await settled(one, 'expired')

    const chain = await createFlow(db, o.org.id)
    await db.flow.update({
      where: { id: chain.flowId },
      data: { implementation: `import { slack } from '@opensym/sdk'\nexport function getRequestNotifications() { return [{ destinations: [slack.channel('#first')], timeout: 1 }, { destinations: [slack.channel('#second')], timeout: 1 }] }` },
    })
    const { run_id: two } = await service.createRequest(o.bot, { flow_srn: chain.flowSlug, flow_inputs: inputs(chain), user_email: 'member@example.com' })
    const r = await settled(two, 'expired', 15_000)
    expect(r.notifications.map((n) => [n.index, n.outcome, n.postedAt !== null])).toEqual([
      [0, 'timeout', true],
      [1, null, true],
    ])
    expect(r.events.at(-1)).toMatchObject({ name: 'expire', status: 'success' })
  })
})
