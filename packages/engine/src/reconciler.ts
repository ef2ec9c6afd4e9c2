/**
 * The reconciler repairs what Redis lost or a crash left half-done, from PostgreSQL alone (worker start, then every
 * few seconds): every pending event gets its job, every escalated run with an expiry its de-escalation job (run now
 * when overdue), every requested run its expiry job. Job ids are derived from ids, so re-adding an existing job is
 * a no-op; `EngineQueues.ensure` adds only what is missing and replaces failed jobs.
 */
import { Prisma, type Db } from '@opensym/db'
import { isEventStep, jobIds, type EngineQueues } from './queues.js'
import { silentLogger, systemClock, type Clock, type EngineLogger } from './seams.js'

export interface ReconcilerOptions {
  readonly db: Db
  readonly queues: EngineQueues
  readonly logger?: EngineLogger
  readonly clock?: Clock
  /** Pending events younger than this are left to the code that just created them. Default 2 s. */
  readonly pendingGraceMs?: number
  /**
   * After a de-escalation failed for good (reported), an overdue run is tried again only after this long, so a
   * broken target is retried and reported periodically rather than in a tight loop. Default 10 min.
   */
  readonly deescalateRetryCooldownMs?: number
  /** Rows read per query. Default 500. */
  readonly batchSize?: number
}

export interface ReconcileReport {
  /** Jobs added for pending events. */
  readonly events: number
  /** De-escalation jobs added (overdue ones run at once). */
  readonly deescalations: number
  /** Request expiry jobs added. */
  readonly expiries: number
  /** Notify jobs added: links to post, link timeouts, events the RunNotifier has not heard about. */
  readonly notifications: number
}

/** Redis round trips in flight at once while checking jobs. */
const PARALLEL = 16

export class Reconciler {
  private readonly db: Db
  private readonly queues: EngineQueues
  private readonly logger: EngineLogger
  private readonly clock: Clock
  private readonly graceMs: number
  private readonly cooldownMs: number
  private readonly batchSize: number
  private timer: NodeJS.Timeout | undefined
  private running: Promise<ReconcileReport | undefined> | undefined
  private stopped = false

  constructor(o: ReconcilerOptions) {
    this.db = o.db
    this.queues = o.queues
    this.logger = o.logger ?? silentLogger
    this.clock = o.clock ?? systemClock
    this.graceMs = o.pendingGraceMs ?? 2000
    this.cooldownMs = o.deescalateRetryCooldownMs ?? 600_000
    this.batchSize = o.batchSize ?? 500
  }

  /** One pass; concurrent calls share the pass in progress. */
  runOnce(): Promise<ReconcileReport | undefined> {
    this.running ??= this.pass()
      .catch((err: unknown) => {
        this.logger.error({ err }, 'reconcile pass failed')
        return undefined
      })
      .finally(() => (this.running = undefined))
    return this.running
  }

  /** Passes every `intervalMs` until {@link stop}. */
  start(intervalMs: number): void {
    this.stopped = false
    const tick = () => {
      if (this.stopped) return
      void this.runOnce().finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, intervalMs)
      })
    }
    this.timer = setTimeout(tick, intervalMs)
  }

  /** Stops the timer and waits for a pass in progress. */
  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    await this.running
  }

  private async pass(): Promise<ReconcileReport> {
    const report = {
      events: await this.pendingEvents(),
      deescalations: await this.deescalations(),
      expiries: await this.expiries(),
      notifications: (await this.links()) + (await this.announcements()),
    }
    if (report.events || report.deescalations || report.expiries || report.notifications) this.logger.info(report, 'reconciled lost or missing jobs')
    return report
  }

  private async pendingEvents(): Promise<number> {
    const before = new Date(this.clock().getTime() - this.graceMs)
    let added = 0
    for (let cursor: string | undefined; ; ) {
      const rows = await this.db.runEvent.findMany({
        where: { status: 'pending', createdAt: { lt: before }, ...(cursor ? { id: { gt: cursor } } : {}) },
        orderBy: { id: 'asc' },
        take: this.batchSize,
        select: { id: true, name: true },
      })
      added += await this.each(rows, async ({ id, name }) => {
        if (!isEventStep(name)) return false
        return this.queues.ensure(name, jobIds.event(name, id), () => this.queues.enqueueEvent(name, id))
      })
      if (rows.length < this.batchSize) return added
      cursor = rows.at(-1)!.id
    }
  }

  private async deescalations(): Promise<number> {
    const cooldownSince = new Date(this.clock().getTime() - this.cooldownMs)
    // Jobs Redis has and will run need no look each; only the others go through `ensure`.
    const live = await this.queues.liveJobIds('deescalate')
    let added = 0
    for (let cursor: string | undefined; ; ) {
      const rows = await this.db.run.findMany({
        where: {
          status: 'escalated',
          expiresAt: { not: null },
          // A de-escalation that failed for good was reported; it is tried again after the cooldown.
          events: { none: { name: 'deescalate', status: 'error', completedAt: { gt: cooldownSince } } },
          ...(cursor ? { id: { gt: cursor } } : {}),
        },
        orderBy: { id: 'asc' },
        take: this.batchSize,
        select: { id: true, expiresAt: true },
      })
      added += await this.each(rows, async ({ id, expiresAt }) =>
        live.has(jobIds.deescalation(id)) ? false : this.queues.ensure('deescalate', jobIds.deescalation(id), () => this.queues.scheduleDeescalation(id, expiresAt!)),
      )
      if (rows.length < this.batchSize) return added
      cursor = rows.at(-1)!.id
    }
  }

  private async expiries(): Promise<number> {
    const live = await this.queues.liveJobIds('expire')
    let added = 0
    for (let cursor: string | undefined; ; ) {
      const rows = await this.db.run.findMany({
        where: { status: 'requested', requestExpiresAt: { not: null }, ...(cursor ? { id: { gt: cursor } } : {}) },
        orderBy: { id: 'asc' },
        take: this.batchSize,
        select: { id: true, requestExpiresAt: true },
      })
      added += await this.each(rows, async ({ id, requestExpiresAt }) =>
        live.has(jobIds.expiry(id)) ? false : this.queues.ensure('expire', jobIds.expiry(id), () => this.queues.scheduleExpiry(id, requestExpiresAt!)),
      )
      if (rows.length < this.batchSize) return added
      cursor = rows.at(-1)!.id
    }
  }

  /**
   * Requested runs' notification chains: the link to post now (link 0, or the one after a forwarded link) and the
   * timeout of a posted link that is not the last (the last one's is the request's expiry, `expiries`).
   */
  private async links(): Promise<number> {
    const live = await this.queues.liveJobIds('notify')
    let added = 0
    for (let cursor: string | undefined; ; ) {
      const rows = await this.db.$queryRaw<Array<{ id: string; runId: string; index: number; postedAt: Date | null; dueAt: Date | null; last: boolean }>>`
        SELECT n."id", n."runId", n."index", n."postedAt", n."dueAt",
               NOT EXISTS (SELECT 1 FROM "RunNotification" x WHERE x."runId" = n."runId" AND x."index" > n."index") AS "last"
        FROM "RunNotification" n JOIN "Run" r ON r."id" = n."runId"
        WHERE n."forwardedAt" IS NULL AND r."status" = 'requested'
          AND (n."index" = 0 OR EXISTS (SELECT 1 FROM "RunNotification" p WHERE p."runId" = n."runId" AND p."index" = n."index" - 1 AND p."forwardedAt" IS NOT NULL))
          ${cursor ? Prisma.sql`AND n."id" > ${cursor}::uuid` : Prisma.empty}
        ORDER BY n."id" LIMIT ${this.batchSize}`
      added += await this.each(rows, async ({ runId, index, postedAt, dueAt, last }) => {
        if (!postedAt) {
          const id = jobIds.notifyRequest(runId, index)
          return live.has(id) ? false : this.queues.ensure('notify', id, () => this.queues.enqueueNotifyRequest(runId, index))
        }
        if (!dueAt || last) return false
        const id = jobIds.notifyTimeout(runId, index)
        return live.has(id) ? false : this.queues.ensure('notify', id, () => this.queues.scheduleNotifyTimeout(runId, index, dueAt))
      })
      if (rows.length < this.batchSize) return added
      cursor = rows.at(-1)!.id
    }
  }

  /** Completed events the RunNotifier has not heard about (`notifiedAt` null). */
  private async announcements(): Promise<number> {
    const before = new Date(this.clock().getTime() - this.graceMs)
    const live = await this.queues.liveJobIds('notify')
    let added = 0
    for (let cursor: string | undefined; ; ) {
      const rows = await this.db.runEvent.findMany({
        where: { notifiedAt: null, status: { not: 'pending' }, completedAt: { lt: before }, ...(cursor ? { id: { gt: cursor } } : {}) },
        orderBy: { id: 'asc' },
        take: this.batchSize,
        select: { id: true },
      })
      added += await this.each(rows, async ({ id }) =>
        live.has(jobIds.notifyEvent(id)) ? false : this.queues.ensure('notify', jobIds.notifyEvent(id), () => this.queues.enqueueNotifyEvent(id)),
      )
      if (rows.length < this.batchSize) return added
      cursor = rows.at(-1)!.id
    }
  }

  /** Runs `fn` over `rows`, PARALLEL at a time; counts the rows for which it added a job. */
  private async each<T>(rows: readonly T[], fn: (row: T) => Promise<boolean>): Promise<number> {
    let added = 0
    for (let i = 0; i < rows.length && !this.stopped; i += PARALLEL) {
      const results = await Promise.all(rows.slice(i, i + PARALLEL).map(fn))
      added += results.filter(Boolean).length
    }
    return added
  }
}
