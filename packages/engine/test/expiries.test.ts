/**
 * The expiry sweep (expiries.ts) against real PostgreSQL and Redis: due runs de-escalated in batches under the grant
 * ledger's rules, the audit chain kept whole, and everything it cannot batch left to the run's own job.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { createDb, Prisma, type Db } from '@opensym/db'
import { RecordingStrategy } from '@opensym/engine/testing'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { buildLogEntry, chainAudit, loadEntryInput, verifyAuditChain } from '../src/audit.js'
import { ExpirySweeper } from '../src/expiries.js'
import { EngineQueues, jobIds } from '../src/queues.js'
import { RunService } from '../src/service.js'
import { scheduledDeescalateEventId, scheduledDeescalateIdSql } from '../src/store.js'
import { RetryableStrategyError, type Strategy } from '../src/strategy.js'
import { startEngineWorker, type EngineWorker } from '../src/worker.js'
import { createFlow, eventually, orgWithPrincipals, queuePrefix, redisClient, type FlowFixture, type OrgPrincipals } from './fixtures.js'

let db: Db
let redis: Redis
let queues: EngineQueues
let service: RunService
let worker: EngineWorker
let o: OrgPrincipals
let flow: FlowFixture
const strategy = new RecordingStrategy({ readBack: true })
const HOUR = 3600

beforeAll(async () => {
  db = createDb(inject('databaseUrl'), { poolSize: 10 })
  redis = redisClient()
  const prefix = queuePrefix('expiries')
  queues = new EngineQueues({ connection: redis, prefix, attempts: 3, backoffMs: 50 })
  service = new RunService({ db, queues })
  o = await orgWithPrincipals(db, 'expiries')
  flow = await createFlow(db, o.org.id)
  worker = await startEngineWorker({ db, connection: redis, prefix, strategies: new Map([['http', strategy]]), attempts: 3, backoffMs: 50, reconcileIntervalMs: 0, concurrency: 5 })
})
afterAll(async () => {
  await worker?.close()
  await queues?.close()
  redis?.disconnect()
  await db?.$disconnect()
})

let users = 0
/** A member of the org of its own: each has a grant of its own on a target. */
async function member(): Promise<string> {
  const email = `person${++users}-${Date.now()}@example.com`
  await db.user.create({ data: { orgId: o.org.id, email, username: email } })
  return email
}

async function escalated(email: string, duration: number): Promise<string> {
  const { run_id } = await service.createRequest(o.bot, { flow_srn: flow.flowSlug, flow_inputs: { reason: 'maintenance', duration, target_id: flow.targets[0]!.id }, user_email: email })
  await service.decide(o.admin, 'approve', { run_id })
  await eventually(async () => (await db.run.findUniqueOrThrow({ where: { id: run_id } })).status === 'escalated', 10_000, `run ${run_id} to be escalated`)
  return run_id
}

const runOf = (id: string) => db.run.findUniqueOrThrow({ where: { id }, include: { events: { orderBy: { seq: 'asc' } }, leases: { include: { grant: true } } } })

/** A sweeper whose clock is `aheadS` seconds ahead, so that runs of shorter durations are due. */
const sweeper = (aheadS: number, batchSize: number) =>
  new ExpirySweeper({ db, queues, strategies: new Map([['http', strategy]]), clock: () => new Date(Date.now() + aheadS * 1000), batchSize, announceEvents: false })

describe('the expiry sweep', () => {
  it('de-escalates every due run in batches: one removal per grant, verified, leases ended, audited, jobs removed', async () => {
    const emails = await Promise.all([1, 2, 3, 4, 5, 6].map(() => member()))
    const runs = await Promise.all(emails.map((e) => escalated(e, HOUR)))
    // A second run of the first person's grant: the first of the two to end keeps the access in place.
    const shared = await escalated(emails[0]!, HOUR - 60)
    const notDue = await escalated(await member(), 3 * HOUR)
    const done = await sweeper(2 * HOUR, 3).sweep()

    expect([...runs, shared].every((id) => done.has(id))).toBe(true)
    // Six grants, six removals; the shared grant's one with the run that ended last.
    expect(runs.map((id) => strategy.callsOf('deescalate', id).length)).toEqual(runs.map(() => 1))
    expect(strategy.callsOf('deescalate', shared)).toHaveLength(0)
    expect(strategy.callsOf('deescalate', runs[0])).toHaveLength(1)
    for (const id of [...runs, shared]) {
      const r = await runOf(id)
      expect(r.status).toBe('deescalated')
      expect(r.deescalatedAt).not.toBeNull()
      const event = r.events.at(-1)!
      expect(event).toMatchObject({ name: 'deescalate', status: 'success', channel: 'internal', fields: { deescalate_type: 'scheduled' }, actorId: o.admin.userId, attempts: 1 })
      expect(r.leases[0]!.endedAt).not.toBeNull()
      expect(await queues.jobState('deescalate', jobIds.deescalation(id))).toBe('unknown')
      // The entry is the one the event's row builds (as a step's would be), chained.
      await chainAudit(db.sql)
      const entries = await db.auditEntry.findMany({ where: { eventId: event.id } })
      expect(entries).toHaveLength(1)
      expect(entries[0]!.entry).toEqual(JSON.parse(JSON.stringify(buildLogEntry(await loadEntryInput(db.sql, event.id)))))
      expect(entries[0]!.entry).toMatchObject({ state: { status: 'completed' }, event: { type: 'deescalate', timestamp: event.completedAt!.toISOString() } })
    }
    expect((await runOf(shared)).events.at(-1)!.output).toMatchObject({ body: { strategy_called: false, reason: 'the access stays: 1 other run(s) still hold it' } })
    const first = await runOf(runs[0]!)
    expect(first.events.at(-1)).toMatchObject({ verified: true, output: { body: { removed: `${emails[0]}|${flow.targets[0]!.slug}` } } })
    expect(first.leases[0]!.grant.applied).toBe(false)
    expect(strategy.granted.has(`${emails[0]}|${flow.targets[0]!.slug}`)).toBe(false)
    // The strategy got the §7.2 payload of the pending event.
    expect(strategy.callsOf('deescalate', runs[1]).at(-1)!.payload).toMatchObject({ event: { type: 'deescalate', channel: 'internal' }, state: { status: 'processing' } })
    expect((await runOf(notDue)).status).toBe('escalated')
    await chainAudit(db.sql)
    expect(await verifyAuditChain(db, o.org.id)).toMatchObject({ ok: true })
  })

  it('two sweeps at once (two workers) de-escalate each run exactly once', async () => {
    const emails = await Promise.all(Array.from({ length: 8 }, () => member()))
    const runs = await Promise.all(emails.map((e) => escalated(e, HOUR)))
    const [a, b] = await Promise.all([sweeper(2 * HOUR, 2).sweep(), sweeper(2 * HOUR, 3).sweep()])
    expect([...a].filter((id) => b.has(id))).toEqual([])
    expect(runs.every((id) => a.has(id) || b.has(id))).toBe(true)
    expect(runs.map((id) => strategy.callsOf('deescalate', id).length)).toEqual(runs.map(() => 1))
    await chainAudit(db.sql)
    expect(await verifyAuditChain(db, o.org.id)).toMatchObject({ ok: true })
  })

  it('the derived id of a scheduled de-escalate event is the same in PostgreSQL and here', async () => {
    const id = await escalated(await member(), HOUR)
    const [row] = await db.$queryRaw<Array<{ id: string }>>`SELECT ${scheduledDeescalateIdSql(Prisma.sql`${id}::uuid`)}::text AS "id"`
    expect(row!.id).toBe(scheduledDeescalateEventId(id, 0))
    expect(scheduledDeescalateEventId(id, 1)).not.toBe(scheduledDeescalateEventId(id, 0))
  })

  it('a slow target does not hold a batch: calls not started in its time are left to the runs’ jobs', async () => {
    const runs = await Promise.all(Array.from({ length: 10 }, async () => escalated(await member(), HOUR)))
    const slow: Strategy = {
      type: 'http',
      identity: (call) => strategy.identity(call),
      escalate: (call) => strategy.escalate(call),
      deescalate: async (call) => {
        await sleep(200)
        return strategy.deescalate(call)
      },
    }
    // One call at a time, 300 ms each at most: the batch starts calls for 4 × 300 ms, fewer than ten 200 ms calls.
    const sweep = new ExpirySweeper({ db, queues, strategies: new Map([['http', slow]]), clock: () => new Date(Date.now() + 2 * HOUR * 1000), callConcurrency: 1, callTimeoutMs: 300, announceEvents: false })
    const done = await sweep.sweep()
    const mine = runs.filter((id) => done.has(id))
    expect(mine.length).toBeGreaterThan(0)
    expect(mine.length).toBeLessThan(runs.length)
    for (const id of runs) {
      const r = await runOf(id)
      const events = r.events.filter((e) => e.name === 'deescalate')
      expect(events).toHaveLength(1)
      if (done.has(id)) {
        expect(r.status).toBe('deescalated')
        expect(strategy.callsOf('deescalate', id)).toHaveLength(1)
      } else {
        // Never called: its pending event is the job's to finish, under the same id.
        expect(r.status).toBe('escalated')
        expect(events[0]).toMatchObject({ status: 'pending', id: scheduledDeescalateEventId(id, 0) })
        expect(strategy.callsOf('deescalate', id)).toHaveLength(0)
      }
    }
  })

  it('leaves a run with an event in progress to its job, untouched', async () => {
    const id = await escalated(await member(), HOUR)
    // What a revoke in progress looks like: a pending de-escalate event.
    await db.runEvent.create({ data: { orgId: o.org.id, runId: id, seq: 100, name: 'deescalate', actorId: o.admin.userId, channel: 'api', status: 'pending' } })
    const done = await sweeper(2 * HOUR, 10).sweep()
    expect(done.has(id)).toBe(false)
    const r = await runOf(id)
    expect(r.status).toBe('escalated')
    expect(r.events.filter((e) => e.name === 'deescalate')).toHaveLength(1)
    expect(strategy.callsOf('deescalate', id)).toHaveLength(0)
  })

  it('a removal that fails in the sweep stays pending, and the run\'s job finishes it: access ends, one event', async () => {
    const email = await member()
    const other = await member()
    // This person's first removal fails (whichever of the next removals it is); the others go through.
    let failed = false
    const failOnce = (call: { identity: string }) => {
      if (call.identity !== email || failed) return undefined
      failed = true
      return new RetryableStrategyError('target busy')
    }
    strategy.failures.deescalate.push(failOnce, failOnce, failOnce)
    const [failing, fine] = await Promise.all([escalated(email, 2), escalated(other, 2)])
    // The worker's scheduled jobs come when due; the sweep takes both, the failing one goes back to its job.
    for (const id of [failing, fine]) {
      await eventually(async () => {
        const r = await runOf(id)
        return r.status === 'deescalated' && r.events.every((e) => e.status !== 'pending') && r
      }, 15_000, `run ${id} to be de-escalated`)
    }
    expect(strategy.callsOf('deescalate', failing)).toHaveLength(2)
    // Both calls carry the event's id (the receiver's Idempotency-Key): derived from the run, so that a batch rolled
    // back after its calls (a crash) redoes them under the same id, whichever path redoes it.
    expect(strategy.callsOf('deescalate', failing).map((c) => c.payload?.id)).toEqual([scheduledDeescalateEventId(failing, 0), scheduledDeescalateEventId(failing, 0)])
    expect(strategy.callsOf('deescalate', fine)).toHaveLength(1)
    const r = await runOf(failing)
    expect(r.events.filter((e) => e.name === 'deescalate')).toMatchObject([{ status: 'success', error: null, fields: { deescalate_type: 'scheduled' } }])
    expect(strategy.granted.has(`${email}|${flow.targets[0]!.slug}`)).toBe(false)
    await chainAudit(db.sql)
    expect(await verifyAuditChain(db, o.org.id)).toMatchObject({ ok: true })
    strategy.failures.deescalate.length = 0
  })
})
