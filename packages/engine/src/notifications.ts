/**
 * A request's notification chain (reference §3.7) and what the RunNotifier hears, processed from the `notify`
 * queue. PostgreSQL holds the chain (`RunNotification`: one row per link, posted/due/forwarded) and which events
 * were announced (`RunEvent.notifiedAt`); jobs only say "look now", so the reconciler re-drives whatever Redis lost.
 *
 * Link 0 is posted when the request is routed. A posted link with a timeout forwards to the next link once, when its
 * timeout passes (a delayed `notify-timeout` job) or at once when nothing of it can be delivered
 * (`NotificationUndeliverable`); the last link's timeout is the request's expiry (`Run.requestExpiresAt`, the
 * existing `expire-request` path), after which the requester is told through `notifyEvent` of the expire event.
 */
import { Prisma, type Db } from '@opensym/db'
import { afterLink, linkDueAt } from '@opensym/domain'
import type { DestinationData } from '@opensym/sdk/flow'
import type { EngineQueues } from './queues.js'
import { NotificationUndeliverable, silentLogger, systemClock, type Clock, type EngineLogger, type RunNotifier } from './seams.js'
import { NotYet, type StepResult } from './steps.js'
import { lockRun } from './store.js'

const { sql } = Prisma

export interface NotificationDeps {
  readonly db: Db
  readonly queues: EngineQueues
  readonly notifier: RunNotifier
  readonly logger?: EngineLogger
  readonly clock?: Clock
}

export class NotificationRunner {
  private readonly db: Db
  private readonly queues: EngineQueues
  private readonly notifier: RunNotifier
  private readonly logger: EngineLogger
  private readonly clock: Clock

  constructor(deps: NotificationDeps) {
    this.db = deps.db
    this.queues = deps.queues
    this.notifier = deps.notifier
    this.logger = deps.logger ?? silentLogger
    this.clock = deps.clock ?? systemClock
  }

  /** Delivers link `index` of the run's chain, once; then schedules its timeout (or the request's expiry). */
  async postLink(runId: string, index: number): Promise<StepResult> {
    const [row] = await this.db.sql.query<{ status: string; orgId: string; environmentId: string | null; snapshotEnv: string | null; count: number; id: string | null; destinations: unknown; timeoutSeconds: number | null; postedAt: Date | null; dueAt: Date | null; forwardedAt: Date | null }>(sql`
      SELECT r."status"::text AS "status", r."orgId", r."environmentId", r."snapshot"->'flow'->>'environmentId' AS "snapshotEnv",
             (SELECT count(*)::int FROM "RunNotification" c WHERE c."runId" = r."id") AS "count",
             n."id", n."destinations", n."timeoutSeconds", n."postedAt", n."dueAt", n."forwardedAt"
      FROM "Run" r LEFT JOIN "RunNotification" n ON n."runId" = r."id" AND n."index" = ${index}
      WHERE r."id" = ${runId}::uuid`)
    if (!row?.id || row.status !== 'requested' || row.forwardedAt) return 'noop'
    if (row.postedAt) {
      await this.queues.scheduleLinkDue(runId, index, row.count, row.dueAt)
      return 'noop'
    }
    try {
      await this.notifier.notifyRequest({
        orgId: row.orgId,
        runId,
        environmentId: row.environmentId ?? row.snapshotEnv ?? '',
        index,
        destinations: row.destinations as DestinationData[],
        timeoutSeconds: row.timeoutSeconds,
      })
    } catch (e) {
      if (!(e instanceof NotificationUndeliverable)) throw e
      this.logger.warn({ runId, index, err: e }, 'notification link could not be delivered; moving on')
      return this.moveOn(runId, index, 'undeliverable', e.message)
    }
    const now = this.clock()
    const dueAt = linkDueAt(now, row.timeoutSeconds)
    const last = index + 1 >= row.count
    const posted = await this.db.sql.transaction(async (tx) => {
      const n = await tx.execute(sql`UPDATE "RunNotification" SET "postedAt" = ${now}::timestamptz, "dueAt" = ${dueAt}::timestamptz WHERE "id" = ${row.id}::uuid AND "postedAt" IS NULL`)
      // The last link's timeout is the request's expiry.
      if (n === 1 && last && dueAt) await tx.execute(sql`UPDATE "Run" SET "requestExpiresAt" = ${dueAt}::timestamptz WHERE "id" = ${runId}::uuid AND "status" = 'requested'`)
      return n === 1
    })
    if (!posted) return 'noop'
    await this.queues.scheduleLinkDue(runId, index, row.count, dueAt)
    return 'done'
  }

  /** Link `index`'s timeout passed: the chain moves on (once), unless the request was decided meanwhile. */
  async linkTimeout(runId: string, index: number): Promise<StepResult> {
    const [link] = await this.db.sql.query<{ status: string; forwardedAt: Date | null; dueAt: Date | null }>(sql`
      SELECT r."status"::text AS "status", n."forwardedAt", n."dueAt" FROM "RunNotification" n JOIN "Run" r ON r."id" = n."runId"
      WHERE n."runId" = ${runId}::uuid AND n."index" = ${index}`)
    if (!link || link.status !== 'requested' || link.forwardedAt || !link.dueAt) return 'noop'
    const due = link.dueAt.getTime() - this.clock().getTime()
    if (due > 0) throw new NotYet(due)
    return this.moveOn(runId, index, 'timeout', null)
  }

  /** Tells the RunNotifier an event completed, once it did and until it was told. */
  async notifyEvent(eventId: string): Promise<StepResult> {
    const [row] = await this.db.sql.query<{ status: string; notifiedAt: Date | null; runId: string; orgId: string; environmentId: string | null; snapshotEnv: string | null }>(sql`
      SELECT e."status"::text AS "status", e."notifiedAt", e."runId", r."orgId", r."environmentId", r."snapshot"->'flow'->>'environmentId' AS "snapshotEnv"
      FROM "RunEvent" e JOIN "Run" r ON r."id" = e."runId" WHERE e."id" = ${eventId}::uuid`)
    if (!row || row.status === 'pending' || row.notifiedAt) return 'noop'
    await this.notifier.notifyEvent({ orgId: row.orgId, runId: row.runId, environmentId: row.environmentId ?? row.snapshotEnv ?? '', eventId })
    await this.db.sql.execute(sql`UPDATE "RunEvent" SET "notifiedAt" = ${this.clock()}::timestamptz WHERE "id" = ${eventId}::uuid AND "notifiedAt" IS NULL`)
    return 'done'
  }

  /** Forwards from link `index` to the next one, or expires the request after the last. Once per link. */
  private async moveOn(runId: string, index: number, outcome: 'timeout' | 'undeliverable', error: string | null): Promise<StepResult> {
    const now = this.clock()
    const next = await this.db.sql.transaction(async (tx) => {
      const run = await lockRun(tx, runId)
      if (run.status !== 'requested') return undefined
      const n = await tx.execute(sql`
        UPDATE "RunNotification" SET "forwardedAt" = ${now}::timestamptz, "outcome" = ${outcome}, "error" = ${error}
        WHERE "runId" = ${runId}::uuid AND "index" = ${index} AND "forwardedAt" IS NULL`)
      if (n !== 1) return undefined
      const [links] = await tx.query<{ count: number }>(sql`SELECT count(*)::int AS "count" FROM "RunNotification" WHERE "runId" = ${runId}::uuid`)
      const step = afterLink(index, links?.count ?? 0)
      if ('expire' in step) await tx.execute(sql`UPDATE "Run" SET "requestExpiresAt" = ${now}::timestamptz WHERE "id" = ${runId}::uuid`)
      return step
    })
    if (!next) return 'noop'
    if ('next' in next) await this.queues.enqueueNotifyRequest(runId, next.next)
    else await this.queues.rescheduleExpiry(runId, now)
    return 'done'
  }
}
