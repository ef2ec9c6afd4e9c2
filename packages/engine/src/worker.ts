/**
 * The consumer side: one BullMQ worker per queue running the step processors, and the reconciler. `apps/worker`
 * starts this with its configuration; tests start it in-process.
 */
import type { Db } from '@opensym/db'
import { AuditChainer } from './audit.js'
import { ExpirySweeper } from './expiries.js'
import { DelayedError, Worker, type Job } from 'bullmq'
import type { Redis } from 'ioredis'
import type { IdentityReducer } from './identities.js'
import { EngineQueues, engineBackoff, parseJobData, QUEUE_KINDS, QUEUE_NAMES, type QueueKind } from './queues.js'
import { Reconciler } from './reconciler.js'
import { instrumentInline, instrumentProcessor, instrumentStrategies, RunTraces } from './telemetry.js'
import { NotificationRunner } from './notifications.js'
import type { FlowRuntime } from './runtime.js'
import { silentLogger, silentNotifier, type Clock, type EngineLogger, type ErrorReporter, type RunNotifier } from './seams.js'
import { NotYet, StepRunner, type SecretsFor, type StepContext, type StepResult } from './steps.js'
import type { StrategyRegistry } from './strategy.js'

export interface EngineWorkerOptions {
  readonly db: Db
  /** A Redis client without `keyPrefix`, with `maxRetriesPerRequest: null`. Not closed by `close()`. */
  readonly connection: Redis
  /** BullMQ key prefix; the API must use the same. */
  readonly prefix: string
  readonly strategies: StrategyRegistry
  readonly secrets?: SecretsFor
  /** The flow's `getIdentity` reducer (see identities.ts). Default: the flow runtime's. */
  readonly getIdentity?: IdentityReducer
  /**
   * Runs flow implementations (hooks, getPermissions, getRequestNotifications, getIdentity). Default: none, every
   * flow behaves with the defaults. apps/worker passes one (`new FlowRuntime({ db, host })`).
   */
  readonly flows?: FlowRuntime
  /**
   * Delivers request notifications and event notices (the Slack app). Default: `silentNotifier` (request links are
   * still posted to it, so chain timeouts and expiries hold; completed events are marked notified as they complete
   * instead of being announced one job each).
   */
  readonly notifier?: RunNotifier
  readonly reporter?: ErrorReporter
  readonly logger?: EngineLogger
  readonly clock?: Clock
  /** Jobs processed at once per queue. Default 10. */
  readonly concurrency?: number
  /**
   * Jobs of the deescalate queue processed at once. Default: max(concurrency, 50). Expiries come in bursts (many
   * grants ending at the same moment) and each waits mostly on PostgreSQL and the target, so more run at once than
   * other steps; each one still locks its grant and its run, so a grant's calls never overlap.
   */
  readonly deescalateConcurrency?: number
  /**
   * Due de-escalations recorded per transaction by the expiry sweep a scheduled de-escalation job starts
   * (expiries.ts). Default 200; 0 turns the sweep off (one job and transaction per run).
   */
  readonly expiryBatchSize?: number
  /** Attempts of the jobs this worker adds (escalate, de-escalation). Default 8. */
  readonly attempts?: number
  /** First retry delay; doubles per retry. Default 1000 ms. */
  readonly backoffMs?: number
  /** A job whose worker stops renewing its lock for this long (a crash) is taken over. Default 30 s. */
  readonly lockDurationMs?: number
  /** How often to look for such jobs. Default 30 s. */
  readonly stalledIntervalMs?: number
  readonly strategyTimeoutMs?: number
  /** Reconciler period. Default 5 s; 0 runs it only at start. */
  readonly reconcileIntervalMs?: number
  readonly deescalateRetryCooldownMs?: number
}

export interface EngineWorker {
  readonly queues: EngineQueues
  readonly steps: StepRunner
  readonly expiries: ExpirySweeper | undefined
  readonly notifications: NotificationRunner
  readonly reconciler: Reconciler
  /** Chains the audit entries that completed steps staged (audit.ts). */
  readonly audit: AuditChainer
  /** Stops taking jobs, waits for active ones and the reconciler, closes queues. Safe to call twice. */
  close(): Promise<void>
}

export async function startEngineWorker(o: EngineWorkerOptions): Promise<EngineWorker> {
  const logger = o.logger ?? silentLogger
  const queues = new EngineQueues({ connection: o.connection, prefix: o.prefix, attempts: o.attempts, backoffMs: o.backoffMs })
  const strategies = instrumentStrategies(o.strategies)
  const steps = new StepRunner({
    db: o.db,
    queues,
    strategies,
    secrets: o.secrets,
    getIdentity: o.getIdentity,
    flows: o.flows,
    reporter: o.reporter,
    logger,
    clock: o.clock,
    strategyTimeoutMs: o.strategyTimeoutMs,
    // Nobody listens for event notices without a notifier: no notify-event job per event, and a request's first
    // notification is recorded as posted by the request's own statement (steps.ts).
    announceEvents: o.notifier !== undefined,
    notifiesRequests: o.notifier !== undefined,
    inline: (kind, process) => instrumentInline(QUEUE_NAMES[kind], process),
  })
  const traces = new RunTraces({ db: o.db, connection: o.connection, prefix: o.prefix })
  const audit = new AuditChainer(o.db.sql, { onError: (err) => logger.warn({ err }, 'chaining audit entries failed; the next pass retries') })
  const expiryBatchSize = o.expiryBatchSize ?? 200
  const expiries =
    expiryBatchSize > 0
      ? new ExpirySweeper({
          db: o.db,
          queues,
          strategies,
          secrets: o.secrets,
          flows: o.flows,
          logger,
          clock: o.clock,
          announceEvents: o.notifier !== undefined,
          batchSize: expiryBatchSize,
          traces,
        })
      : undefined
  const notifications = new NotificationRunner({ db: o.db, queues, notifier: o.notifier ?? silentNotifier, logger, clock: o.clock })
  const reconciler = new Reconciler({ db: o.db, queues, logger, clock: o.clock, deescalateRetryCooldownMs: o.deescalateRetryCooldownMs })

  /** What a job does. */
  const step = async (data: ReturnType<typeof parseJobData>, ctx: StepContext): Promise<StepResult> => {
    switch (data.kind) {
      case 'event':
        return steps.processEvent(data.eventId, ctx)
      case 'scheduled': {
        // Everything due goes in batches first; what the sweep leaves (or a run not due yet) is this job's. A job
        // that joined a sweep already past its claims (its run came due meanwhile) takes the next one.
        if (expiries && ctx.attempt === 1) {
          for (let sweeps = 0; sweeps < 2; sweeps++) if ((await expiries.sweep()).has(data.runId)) return 'done'
        }
        return steps.scheduledDeescalation(data.runId, ctx)
      }
      case 'expire':
        return steps.expireRequest(data.runId, ctx)
      case 'notify-request':
        return notifications.postLink(data.runId, data.index)
      case 'notify-timeout':
        return notifications.linkTimeout(data.runId, data.index)
      case 'notify-event':
        return notifications.notifyEvent(data.eventId)
    }
  }

  // Each job in a span of its run's trace, timed per queue (telemetry.ts).
  const processor = (kind: QueueKind) => instrumentProcessor(QUEUE_NAMES[kind], async (job: Job, token?: string): Promise<StepResult> => {
    const data = parseJobData(job.name, job.data)
    const ctx: StepContext = { attempt: job.attemptsMade + 1, maxAttempts: job.opts.attempts ?? 1 }
    try {
      const result = await step(data, ctx)
      // The step may have completed events: their staged audit entries are chained soon after, with others'.
      if (result !== 'noop') audit.kick()
      return result
    } catch (e) {
      if (e instanceof NotYet) {
        // Not an attempt: the job goes back to the delayed set and its attempts stay as they are.
        await job.moveToDelayed(Date.now() + e.delayMs, token)
        throw new DelayedError()
      }
      // A failed attempt may have recorded its event's failure.
      audit.kick()
      logger.debug({ err: e, queue: kind, jobId: job.id, attempt: ctx.attempt }, 'job attempt failed')
      throw e
    }
  }, traces)

  const workers = QUEUE_KINDS.map((kind) => {
    const w = new Worker(QUEUE_NAMES[kind], processor(kind), {
      connection: o.connection,
      prefix: o.prefix,
      concurrency: kind === 'deescalate' ? (o.deescalateConcurrency ?? Math.max(o.concurrency ?? 10, 50)) : (o.concurrency ?? 10),
      lockDuration: o.lockDurationMs ?? 30_000,
      stalledInterval: o.stalledIntervalMs ?? 30_000,
      settings: { backoffStrategy: engineBackoff },
    })
    w.on('failed', (job, err) => {
      if (job && job.attemptsMade >= (job.opts.attempts ?? 1)) logger.error({ err, queue: kind, jobId: job.id }, 'job failed after its last attempt')
    })
    w.on('error', (err) => logger.warn({ err, queue: kind }, 'queue worker error'))
    return w
  })
  await Promise.all(workers.map((w) => w.waitUntilReady()))
  await reconciler.runOnce()
  // What an earlier process staged and did not chain (it crashed) is chained now, and checked for with the reconciler.
  audit.kick()
  const reconcileIntervalMs = o.reconcileIntervalMs ?? 5000
  const auditSweep = reconcileIntervalMs > 0 ? setInterval(() => audit.kick(), reconcileIntervalMs) : undefined
  auditSweep?.unref()
  if (reconcileIntervalMs > 0) reconciler.start(reconcileIntervalMs)
  logger.info({ prefix: o.prefix, queues: Object.values(QUEUE_NAMES) }, 'engine workers started')

  let closing: Promise<void> | undefined
  return {
    queues,
    steps,
    expiries,
    notifications,
    reconciler,
    audit,
    close: () =>
      (closing ??= (async () => {
        await reconciler.stop()
        clearInterval(auditSweep)
        await Promise.allSettled(workers.map((w) => w.close()))
        await audit.close()
        await queues.close()
      })()),
  }
}
