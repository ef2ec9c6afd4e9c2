/**
 * Due de-escalations, many per transaction. Grants often end together (a shift, a maintenance window, a batch of
 * incident access); one job and one transaction each, a thousand of them cost seconds of CPU and end late. A sweep
 * takes the runs whose access is due, up to `batchSize` at a time, and for each batch: appends their scheduled
 * de-escalate events, ends their leases, calls the strategies of the grants whose last lease ends (at once, within a
 * budget), and records everything that worked — events, leases, grants, runs and the audit entries — in a few
 * statements, then removes those runs' scheduled jobs. Same ledger rules as the step (steps.ts `deescalate`).
 *
 * Only the plain case is batched. Everything else is left to the run's own scheduled job, which does the same under
 * the same locks with retries and reporting: a run with a pending event (a revoke in progress) or an earlier
 * de-escalate event (one that failed), a flow with code at this step (`onDeescalate`/`afterDeescalate`), a second
 * run of the same grant in one batch (the next batch takes it), a run or grant another step holds locked, a strategy
 * call that fails or outlasts the budget (its pending event stays; the job finishes it and retries).
 *
 * Locks: runs and grants are taken with SKIP LOCKED, so a sweep never waits for a step or another sweep (no
 * deadlock with the step's grant-then-run order); the orgs' audit chain heads come last, in org order, like every
 * step's audit append.
 */
import { performance } from 'node:perf_hooks'
import { Prisma, type Db, type Sql } from '@opensym/db'
import { appendAuditBatch, buildLogEntry, ENTRY_INPUT_COLUMNS, ENTRY_INPUT_JOINS, entryInputOf, type EntryInputRow, type LoadedEntryInput } from './audit.js'
import { readSnapshot } from './flows.js'
import type { EngineQueues } from './queues.js'
import type { FlowRuntime } from './runtime.js'
import { silentLogger, systemClock, type Clock, type EngineLogger } from './seams.js'
import type { RunSnapshot } from './snapshot.js'
import { removeAccess, runsFlowCode, strategyPhase, type SecretsFor } from './steps.js'
import { scheduledDeescalateEventId } from './store.js'
import type { StrategyOutput, StrategyRegistry, Subject } from './strategy.js'
import type { RunTraces } from './telemetry.js'
import { createSecretResolver } from './secrets.js'

const { sql } = Prisma

export interface ExpirySweeperOptions {
  readonly db: Db
  readonly queues: EngineQueues
  readonly strategies: StrategyRegistry
  readonly secrets?: SecretsFor
  /** Runs flow implementations: a flow with code at de-escalate is left to the run's job. */
  readonly flows?: FlowRuntime
  readonly logger?: EngineLogger
  readonly clock?: Clock
  /** Whether completed events are announced (a notify-event job each); false marks them notified. Default true. */
  readonly announceEvents?: boolean
  /** Runs per transaction. Default 200. */
  readonly batchSize?: number
  /** Batches in progress at once (each its own transaction; they claim different runs). Default 4. */
  readonly parallelBatches?: number
  /** Strategy calls in flight at once, across the batches of a sweep. Default 50. */
  readonly callConcurrency?: number
  /**
   * Budget of one strategy call (removal and read-back) in a sweep; a slower one is left to the run's job (with the
   * full step budget), so that one slow target does not hold a whole batch. Default 5 s.
   */
  readonly callTimeoutMs?: number
  /** Spans of the batched de-escalations in their runs' traces. */
  readonly traces?: RunTraces
}

/** A due run as a sweep claims it: locked, with its requester and its active lease. */
interface DueRun {
  readonly id: string
  readonly orgId: string
  readonly version: number
  readonly requesterId: string
  readonly requesterEmail: string | null
  readonly requesterUsername: string
  readonly snapshot: unknown
  readonly leaseId: string
  readonly grantId: string
}

interface LockedGrantRow {
  readonly id: string
  readonly applied: boolean
  readonly identity: string
  /** Active leases, this run's included. */
  readonly active: number
}

/** One run of a batch, once its event exists. */
interface Item {
  readonly run: DueRun
  readonly snapshot: RunSnapshot
  readonly grant: LockedGrantRow
  readonly eventId: string
  input?: LoadedEntryInput
  /** Set when the run's de-escalation worked (strategy called or not needed). */
  result?: { output: StrategyOutput; verified: boolean | null; removed: boolean }
}

/** Which due runs a batch claims: any, or those of one share of the grants (`hash(grant) mod of = index`). */
type Lane = 'all' | { readonly index: number; readonly of: number }

/** What a batch did: the runs it de-escalated (with their events), the runs it left, how many it claimed. */
interface Batch {
  readonly done: ReadonlyArray<{ readonly runId: string; readonly eventId: string }>
  readonly skipped: readonly string[]
  readonly claimed: number
  /** Runs left for the next batch: another run of the batch held their grant. */
  readonly deferred: number
}

/** A batch starts strategy calls for at most this many call budgets; the rest are left to the runs' jobs. */
const BATCH_CALL_ROUNDS = 4

const DEESCALATE_FIELDS = JSON.stringify({ deescalate_type: 'scheduled' })

export class ExpirySweeper {
  private readonly db: Db
  private readonly queues: EngineQueues
  private readonly strategies: StrategyRegistry
  private readonly secrets: SecretsFor
  private readonly flows: FlowRuntime | undefined
  private readonly logger: EngineLogger
  private readonly clock: Clock
  private readonly announceEvents: boolean
  private readonly batchSize: number
  private readonly parallelBatches: number
  private readonly slots: Slots
  private readonly traces: RunTraces | undefined
  private readonly callTimeoutMs: number
  private running: Promise<ReadonlySet<string>> | undefined

  constructor(o: ExpirySweeperOptions) {
    this.db = o.db
    this.queues = o.queues
    this.strategies = o.strategies
    this.secrets = o.secrets ?? ((orgId, db) => createSecretResolver({ db, orgId }))
    this.flows = o.flows
    this.logger = o.logger ?? silentLogger
    this.clock = o.clock ?? systemClock
    this.announceEvents = o.announceEvents ?? true
    this.batchSize = o.batchSize ?? 200
    this.parallelBatches = o.parallelBatches ?? 4
    this.slots = new Slots(o.callConcurrency ?? 50)
    this.traces = o.traces
    this.callTimeoutMs = o.callTimeoutMs ?? 5000
  }

  /**
   * De-escalates every run that is due and batchable, batch after batch until none is left; returns the ids of the
   * runs it de-escalated. Concurrent calls share the sweep in progress. Never throws: a failed batch is logged and
   * its runs are left to their jobs.
   */
  sweep(): Promise<ReadonlySet<string>> {
    this.running ??= this.loop().finally(() => (this.running = undefined))
    return this.running
  }

  private async loop(): Promise<ReadonlySet<string>> {
    const done = new Set<string>()
    // Runs a batch left to their jobs (locked, flow code, failed call): not claimed again by this sweep.
    const skipped = new Set<string>()
    // One batch of every due run first (usually all there is); then, if more are due, lanes of batches, one after
    // another each, sharing what they did and skipped. A lane takes only the runs of its share of the grants: two
    // lanes never hold one grant (a run whose grant is locked is left to its job).
    const more = async (lane: Lane): Promise<boolean> => {
      let batch: Batch
      const started = performance.now()
      const startedAt = Date.now()
      try {
        batch = await this.batch(lane, [...skipped])
      } catch (err) {
        this.logger.error({ err }, 'an expiry batch failed; its runs are left to their scheduled jobs')
        return false
      }
      for (const { runId } of batch.done) done.add(runId)
      for (const id of batch.skipped) skipped.add(id)
      if (batch.done.length) {
        await this.afterCommit(batch.done)
        await this.traces?.recordBatch(
          batch.done.map((d) => d.runId),
          'deescalate (expiry batch)',
          startedAt,
          { 'opensym.batch.size': batch.done.length },
        )
      }
      this.logger.debug({ lane, claimed: batch.claimed, done: batch.done.length, skipped: batch.skipped.length, deferred: batch.deferred, ms: Math.round(performance.now() - started) }, 'expiry batch')
      return batch.claimed === this.batchSize || batch.deferred > 0
    }
    if (await more('all')) {
      const lanes = this.parallelBatches
      await Promise.all(Array.from({ length: lanes }, async (_, index) => {
        while (await more({ index, of: lanes }));
      }))
    }
    return done
  }

  /** One transaction: claim, call, record. */
  private async batch(lane: Lane, exclude: string[]): Promise<Batch> {
    const now = this.clock()
    // Calls not started by then are left to the runs' jobs: a slow target never holds a batch (and its locks) past
    // the transaction's limit below.
    const callsUntil = performance.now() + this.callTimeoutMs * BATCH_CALL_ROUNDS
    return this.db.sql.transaction(
      async (tx) => {
        const due = await this.claim(tx, now, lane, exclude)
        if (!due.length) return { done: [], skipped: [], claimed: 0, deferred: 0 }
        const grants = await this.lockGrants(tx, [...new Set(due.map((r) => r.grantId))])
        const items: Item[] = []
        const skipped: string[] = []
        const grantTaken = new Set<string>()
        let deferred = 0
        for (const run of due) {
          const grant = grants.get(run.grantId)
          // Another run of this batch holds the grant: the next batch takes this one (its lease count is then current).
          if (grant && grantTaken.has(grant.id)) {
            deferred++
            continue
          }
          const snapshot = readSnapshot(run.snapshot)
          // The grant is locked by a step (or another sweep), or the flow has code to run: the run's job does it.
          if (!grant || (await runsFlowCode(this.flows, snapshot, 'deescalate'))) {
            skipped.push(run.id)
            continue
          }
          grantTaken.add(grant.id)
          // The run has no de-escalate event yet (the claim says so): its first one's derived id, the same on a redo.
          items.push({ run, snapshot, grant, eventId: scheduledDeescalateEventId(run.id, 0) })
        }
        const appended = items.length ? await this.appendEvents(tx, items, now) : []
        for (const i of items) if (!appended.includes(i)) skipped.push(i.run.id)
        if (!appended.length) return { done: [], skipped, claimed: due.length, deferred }
        await this.callStrategies(tx, appended, callsUntil)
        const worked = appended.filter((i) => i.result)
        for (const i of appended) if (!i.result) skipped.push(i.run.id)
        if (worked.length) await this.record(tx, worked)
        return { done: worked.map((i) => ({ runId: i.run.id, eventId: i.eventId })), skipped, claimed: due.length, deferred }
      },
      { timeoutMs: this.callTimeoutMs * (BATCH_CALL_ROUNDS + 1) + 30_000, maxWaitMs: 10_000 },
    )
  }

  /**
   * Locks up to a batch of due, escalated runs (of the lane's share of the grants) that hold a lease and have no
   * pending event and no de-escalate event yet, skipping runs other transactions hold.
   */
  private claim(tx: Sql, now: Date, lane: Lane, exclude: string[]): Promise<DueRun[]> {
    return tx.query<DueRun>(sql`
      SELECT r."id", r."orgId", r."version", r."requesterId", r."snapshot", u."email" AS "requesterEmail", u."username" AS "requesterUsername",
             l."id" AS "leaseId", l."grantId"
      FROM "Run" r
      JOIN "User" u ON u."id" = r."requesterId"
      JOIN "GrantLease" l ON l."runId" = r."id" AND l."endedAt" IS NULL
      WHERE r."status" = 'escalated' AND r."expiresAt" <= ${now}::timestamptz
        ${exclude.length ? sql`AND r."id" <> ALL(${exclude}::uuid[])` : Prisma.empty}
        ${lane !== 'all' && lane.of > 1 ? sql`AND abs(hashtext(l."grantId"::text) % ${lane.of}) = ${lane.index}` : Prisma.empty}
        AND NOT EXISTS (SELECT 1 FROM "RunEvent" p WHERE p."runId" = r."id" AND (p."status" = 'pending' OR p."name" = 'deescalate'))
      ORDER BY r."expiresAt"
      LIMIT ${this.batchSize}
      FOR UPDATE OF r SKIP LOCKED`)
  }

  /** Locks the grants nobody else holds, with their active lease counts (current: leases change under the lock). */
  private async lockGrants(tx: Sql, ids: string[]): Promise<Map<string, LockedGrantRow>> {
    const rows = await tx.query<LockedGrantRow>(sql`
      SELECT g."id", g."applied", g."identity",
             (SELECT count(*)::int FROM "GrantLease" o WHERE o."grantId" = g."id" AND o."endedAt" IS NULL) AS "active"
      FROM "Grant" g WHERE g."id" = ANY(${ids}::uuid[])
      FOR UPDATE OF g SKIP LOCKED`)
    return new Map(rows.map((g) => [g.id, g]))
  }

  /**
   * Appends each run's pending scheduled de-escalate event (the approver's, as the step's) and loads its entry input;
   * returns the items that got one. The claim's check of the run's events is made again here: the claim's snapshot
   * was taken before its locks, so an event a step appended and committed just before (under the run's lock, which
   * the sweep then took) is seen only now, and that run is left to the step.
   */
  private async appendEvents(tx: Sql, items: Item[], now: Date): Promise<Item[]> {
    const rows = await tx.query<EntryInputRow>(sql`
      WITH x AS (
        SELECT * FROM unnest(${items.map((i) => i.eventId)}::uuid[], ${items.map((i) => i.run.id)}::uuid[], ${items.map((i) => i.run.orgId)}::uuid[]) AS x("id", "runId", "orgId")
      ), e AS (
        INSERT INTO "RunEvent" ("id", "orgId", "runId", "seq", "name", "actorId", "channel", "fields", "status", "attempts", "createdAt")
        SELECT x."id", x."orgId", x."runId", (SELECT COALESCE(MAX(p."seq"), 0) + 1 FROM "RunEvent" p WHERE p."runId" = x."runId"), 'deescalate',
               (SELECT a."actorId" FROM "RunEvent" a WHERE a."runId" = x."runId" AND a."name" = 'approve' AND a."status" = 'success' LIMIT 1),
               'internal'::"EventChannel", ${DEESCALATE_FIELDS}::jsonb, 'pending', 0, ${now}::timestamptz
        FROM x
        WHERE NOT EXISTS (SELECT 1 FROM "RunEvent" p WHERE p."runId" = x."runId" AND (p."status" = 'pending' OR p."name" = 'deescalate'))
        RETURNING *
      )
      SELECT ${Prisma.raw(ENTRY_INPUT_COLUMNS)} FROM e ${Prisma.raw(ENTRY_INPUT_JOINS)}`)
    const byId = new Map(rows.map((r) => [r.id, entryInputOf(r)]))
    return items.filter((item) => (item.input = byId.get(item.eventId)) !== undefined)
  }

  /**
   * The strategy of each grant whose last lease ends and that is applied; the others need no call. A failure only
   * leaves that run out of the batch.
   */
  private async callStrategies(tx: Sql, items: Item[], until: number): Promise<void> {
    await Promise.all(
      items.map(async (item) => {
        try {
          item.result = await this.deescalateOne(tx, item, until)
        } catch (err) {
          this.logger.warn({ err, runId: item.run.id }, 'a de-escalation in an expiry batch failed; the run\'s job retries it')
        }
      }),
    )
  }

  private async deescalateOne(tx: Sql, item: Item, until: number): Promise<NonNullable<Item['result']>> {
    const { run, grant, snapshot } = item
    const others = grant.active - 1
    if (others > 0 || !grant.applied) {
      const reason = others > 0 ? `the access stays: ${others} other run(s) still hold it` : 'the access was not in place'
      return { output: { body: { strategy_called: false, reason }, errors: [] }, verified: null, removed: false }
    }
    const { strategy: config, target } = snapshot
    if (!config || !target) throw new Error('this run has no strategy or target to de-escalate with')
    const strategy = this.strategies.get(config.type)
    if (!strategy) throw new Error(`no strategy implementation for type "${config.type}" is installed`)
    const payload = buildLogEntry(item.input!) as unknown as Record<string, unknown>
    const subject: Subject = { userId: run.requesterId, email: run.requesterEmail, username: run.requesterUsername }
    // The budget starts with the call, not while it waits for a slot.
    const removal = await this.slots.run(() => {
      if (performance.now() > until) throw new Error('the expiry batch ran out of time before this call')
      return strategyPhase('deescalate', this.callTimeoutMs, this.logger, (signal) =>
        removeAccess(strategy, { strategy: config, target, subject, identity: grant.identity, payload, secrets: this.secrets(run.orgId, tx), signal }),
      )
    })
    return { ...removal, removed: true }
  }

  /** Completes the events, ends the leases, removes the grants, moves the runs, then appends the audit entries. */
  private async record(tx: Sql, items: Item[]): Promise<void> {
    const now = this.clock()
    const data = JSON.stringify(
      items.map((i) => ({
        eventId: i.eventId,
        runId: i.run.id,
        version: i.run.version,
        leaseId: i.run.leaseId,
        grantId: i.grant.id,
        removed: i.result!.removed,
        output: i.result!.output,
        verified: i.result!.verified,
      })),
    )
    const [counts] = await tx.query<{ completed: number; moved: number; ended: number }>(sql`
      WITH d AS (
        SELECT * FROM jsonb_to_recordset(${data}::jsonb)
          AS d("eventId" uuid, "runId" uuid, "version" int, "leaseId" uuid, "grantId" uuid, "removed" boolean, "output" jsonb, "verified" boolean)
      ), e AS (
        UPDATE "RunEvent" v SET "status" = 'success', "error" = NULL, "output" = d."output", "verified" = d."verified", "attempts" = 1,
               "completedAt" = ${now}::timestamptz, "notifiedAt" = ${this.announceEvents ? null : now}::timestamptz
        FROM d WHERE v."id" = d."eventId" AND v."status" = 'pending'
        RETURNING 1
      ), l AS (
        UPDATE "GrantLease" gl SET "endedAt" = ${now}::timestamptz FROM d WHERE gl."id" = d."leaseId" AND gl."endedAt" IS NULL RETURNING 1
      ), g AS (
        UPDATE "Grant" g SET "applied" = false, "removedAt" = ${now}::timestamptz, "updatedAt" = ${now}::timestamptz FROM d WHERE g."id" = d."grantId" AND d."removed" RETURNING 1
      ), m AS (
        UPDATE "Run" r SET "status" = 'deescalated', "version" = r."version" + 1, "deescalatedAt" = ${now}::timestamptz, "endedAt" = ${now}::timestamptz, "updatedAt" = ${now}::timestamptz
        FROM d WHERE r."id" = d."runId" AND r."version" = d."version" AND r."status" = 'escalated'
        RETURNING 1
      )
      SELECT (SELECT count(*)::int FROM e) AS "completed", (SELECT count(*)::int FROM m) AS "moved", (SELECT count(*)::int FROM l) AS "ended"`)
    // Every run and event is locked or was created by this transaction: anything short is a bug, and rolls back.
    if (counts?.completed !== items.length || counts.moved !== items.length || counts.ended !== items.length) {
      throw new Error(`an expiry batch of ${items.length} recorded ${counts?.completed ?? 0} events, ${counts?.moved ?? 0} runs, ${counts?.ended ?? 0} leases`)
    }
    // The entries of the events as now completed: what the pending event's input says, with its new status and time
    // (nothing else of the event, its run or its actors changed).
    await appendAuditBatch(
      tx,
      items.map((i) => ({ ...i.input!, event: { ...i.input!.event, status: 'success' as const, error: null, timestamp: now } })),
    )
  }

  /** The de-escalated runs' scheduled jobs are not needed any more; their events are announced. */
  private async afterCommit(done: Batch['done']): Promise<void> {
    // A job that is running cannot be removed: it finds its run de-escalated and does nothing. An event nobody heard
    // about is re-driven by the reconciler.
    await Promise.all([
      ...done.map(({ runId }) => this.queues.cancelDeescalation(runId).catch(() => undefined)),
      ...(this.announceEvents ? done.map(({ eventId }) => this.queues.enqueueNotifyEvent(eventId).catch((err: unknown) => this.logger.warn({ err, eventId }, 'could not announce the event'))) : []),
    ])
  }
}

/** At most `size` calls at once; the others wait in order. */
class Slots {
  private free: number
  private readonly waiting: Array<() => void> = []

  constructor(size: number) {
    this.free = Math.max(1, size)
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--
    else await new Promise<void>((resolve) => this.waiting.push(resolve))
    try {
      return await fn()
    } finally {
      // The slot passes to the next waiter, or is freed.
      const next = this.waiting.shift()
      if (next) next()
      else this.free++
    }
  }
}
