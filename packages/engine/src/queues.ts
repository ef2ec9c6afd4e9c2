/**
 * Queue names, job ids and the producer side of scheduling (the API and the worker both add jobs). Redis only
 * schedules: a job says "look at this event/run now", its id is derived from that event or run so a duplicate add
 * is a no-op, and processors re-read PostgreSQL. Losing every job loses nothing: the reconciler re-adds them.
 */
import type { Step } from '@opensym/domain'
import { Queue, type BackoffStrategy, type JobsOptions } from 'bullmq'
import type { Redis } from 'ioredis'
import { traceQueue } from './telemetry.js'

/** One queue per step kind, plus the delayed expiry of unanswered requests. */
export const QUEUE_NAMES = {
  request: 'request',
  approve: 'approve',
  deny: 'deny',
  escalate: 'escalate',
  deescalate: 'deescalate',
  expire: 'expire-request',
  /** Request notification links, their timeouts, and completed events for the RunNotifier. */
  notify: 'notify',
} as const
export type QueueKind = keyof typeof QUEUE_NAMES
export const QUEUE_KINDS = Object.keys(QUEUE_NAMES) as QueueKind[]

/** Steps whose events are processed by a job of their own queue. */
export const EVENT_STEPS = ['request', 'approve', 'deny', 'escalate', 'deescalate'] as const satisfies readonly Step[]
export type EventStep = (typeof EVENT_STEPS)[number]
export const isEventStep = (name: string): name is EventStep => (EVENT_STEPS as readonly string[]).includes(name)

/**
 * Job names and payloads. Payloads carry ids only; everything else is read from PostgreSQL when the job runs.
 * - `event`: process the pending event `eventId` (every step queue), id `<step>-<eventId>`.
 * - `scheduled`: the run's de-escalation is due (deescalate queue), id `deescalate-<runId>`.
 * - `expire`: the run's request expires now (expire-request queue), id `expire-<runId>`.
 */
export type JobData = { readonly eventId: string } | { readonly runId: string } | { readonly runId: string; readonly index: number }
/**
 * Notify queue jobs:
 * - `notify-request`: post link `index` of the run's notification chain, id `notify-request-<runId>-<index>`;
 * - `notify-timeout`: link `index` timed out (delayed to its `dueAt`): forward to the next, id `notify-timeout-<runId>-<index>`;
 * - `notify-event`: tell the RunNotifier the event completed, id `notify-event-<eventId>`.
 */
export const JOB_NAMES = {
  event: 'event',
  scheduled: 'scheduled',
  expire: 'expire',
  notifyRequest: 'notify-request',
  notifyTimeout: 'notify-timeout',
  notifyEvent: 'notify-event',
} as const

/** Job ids; BullMQ refuses ids with `:` and all-digit ids, which these never are. */
export const jobIds = {
  event: (step: EventStep, eventId: string) => `${step}-${eventId}`,
  deescalation: (runId: string) => `deescalate-${runId}`,
  expiry: (runId: string) => `expire-${runId}`,
  notifyRequest: (runId: string, index: number) => `notify-request-${runId}-${index}`,
  notifyTimeout: (runId: string, index: number) => `notify-timeout-${runId}-${index}`,
  notifyEvent: (eventId: string) => `notify-event-${eventId}`,
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** The payload of a job, checked against its name; a malformed job is a bug, never retried. */
export function parseJobData(
  name: string,
  data: unknown,
):
  | { kind: 'event' | 'notify-event'; eventId: string }
  | { kind: 'scheduled' | 'expire'; runId: string }
  | { kind: 'notify-request' | 'notify-timeout'; runId: string; index: number } {
  const d = (data && typeof data === 'object' ? data : {}) as Record<string, unknown>
  if ((name === JOB_NAMES.event || name === JOB_NAMES.notifyEvent) && typeof d.eventId === 'string' && UUID.test(d.eventId)) return { kind: name, eventId: d.eventId }
  if ((name === JOB_NAMES.notifyRequest || name === JOB_NAMES.notifyTimeout) && typeof d.runId === 'string' && UUID.test(d.runId) && Number.isInteger(d.index) && (d.index as number) >= 0) {
    return { kind: name, runId: d.runId, index: d.index as number }
  }
  if ((name === JOB_NAMES.scheduled || name === JOB_NAMES.expire) && typeof d.runId === 'string' && UUID.test(d.runId)) {
    return { kind: name, runId: d.runId }
  }
  throw new Error(`malformed job "${name}": ${JSON.stringify(data)}`)
}

/** The backoff type of every engine job: exponential, but never sooner than a strategy's `Retry-After`. */
export const BACKOFF_TYPE = 'engine'

/** Delay before retry `attemptsMade` (1 = first retry): `delay · 2^(n-1)`, or the error's `retryAfterMs` if later. */
export const engineBackoff: BackoffStrategy = (attemptsMade, _type, err, job) => {
  const base = (job?.opts.backoff && typeof job.opts.backoff === 'object' ? job.opts.backoff.delay : undefined) ?? 1000
  const exponential = Math.round(base * 2 ** Math.max(0, attemptsMade - 1))
  const retryAfter = (err as { retryAfterMs?: unknown } | undefined)?.retryAfterMs
  return typeof retryAfter === 'number' && retryAfter > exponential ? retryAfter : exponential
}

export interface EngineQueuesOptions {
  /** A Redis client without `keyPrefix` (BullMQ refuses those; it uses `prefix`). Not closed by `close()`. */
  readonly connection: Redis
  /** Every BullMQ key starts with `<prefix>:`. */
  readonly prefix: string
  /** Attempts per job before its step fails for good. Default 8. */
  readonly attempts?: number
  /** The first retry delay; each next one doubles. Default 1000 ms. */
  readonly backoffMs?: number
}

export type JobState = Awaited<ReturnType<Queue['getJobState']>>

/** The producer side: adds, reschedules and cancels engine jobs. Queues are opened on first use. */
export class EngineQueues {
  readonly prefix: string
  /** The first retry delay of every job (each next one doubles). */
  readonly firstRetryMs: number
  private readonly queues = new Map<QueueKind, Queue>()
  private readonly jobOptions: JobsOptions

  constructor(private readonly options: EngineQueuesOptions) {
    this.prefix = options.prefix
    this.firstRetryMs = options.backoffMs ?? 1000
    this.jobOptions = {
      attempts: options.attempts ?? 8,
      backoff: { type: BACKOFF_TYPE, delay: this.firstRetryMs },
      // Ids must be reusable: a re-added de-escalation of the same run must not collide with the finished one.
      removeOnComplete: true,
      removeOnFail: { age: 7 * 86_400 },
    }
  }

  queue(kind: QueueKind): Queue {
    let q = this.queues.get(kind)
    if (!q) {
      // Producer spans; the job data carries the trace to the worker (telemetry.ts).
      q = traceQueue(new Queue(QUEUE_NAMES[kind], { connection: this.options.connection, prefix: this.prefix }))
      this.queues.set(kind, q)
    }
    return q
  }

  /** Processes a pending event now, or after `delayMs`. */
  async enqueueEvent(step: EventStep, eventId: string, delayMs?: number): Promise<void> {
    await this.queue(step).add(JOB_NAMES.event, { eventId }, { ...this.jobOptions, jobId: jobIds.event(step, eventId), ...(delayMs ? { delay: delayMs } : {}) })
  }

  /** Expires the request at `at` unless someone decides first. */
  async scheduleExpiry(runId: string, at: Date): Promise<void> {
    await this.queue('expire').add(JOB_NAMES.expire, { runId }, { ...this.jobOptions, jobId: jobIds.expiry(runId), delay: delayUntil(at) })
  }

  /** De-escalates the run at `at` (its `expiresAt`). */
  async scheduleDeescalation(runId: string, at: Date): Promise<void> {
    await this.queue('deescalate').add(JOB_NAMES.scheduled, { runId }, { ...this.jobOptions, jobId: jobIds.deescalation(runId), delay: delayUntil(at) })
  }

  /**
   * Moves the request's expiry to `at` (a notification chain decides it): the delayed job is replaced. A job that is
   * running cannot be removed; its processor re-reads `requestExpiresAt` and comes back later (NotYet) or is done.
   */
  async rescheduleExpiry(runId: string, at: Date): Promise<void> {
    await this.queue('expire').remove(jobIds.expiry(runId))
    await this.scheduleExpiry(runId, at)
  }

  /** Posts link `index` of the run's notification chain now. */
  async enqueueNotifyRequest(runId: string, index: number): Promise<void> {
    await this.queue('notify').add(JOB_NAMES.notifyRequest, { runId, index }, { ...this.jobOptions, jobId: jobIds.notifyRequest(runId, index) })
  }

  /** Forwards from link `index` at `at` (its timeout) unless someone decides first. */
  async scheduleNotifyTimeout(runId: string, index: number, at: Date): Promise<void> {
    await this.queue('notify').add(JOB_NAMES.notifyTimeout, { runId, index }, { ...this.jobOptions, jobId: jobIds.notifyTimeout(runId, index), delay: delayUntil(at) })
  }

  /**
   * After link `index` of `count` of a request's chain is posted (by the notification runner, or by the request's
   * statement when nobody posts): its timeout job, or for the last link the request's expiry (replacing the default).
   */
  async scheduleLinkDue(runId: string, index: number, count: number, dueAt: Date | null): Promise<void> {
    if (!dueAt) return
    if (index + 1 >= count) await this.rescheduleExpiry(runId, dueAt)
    else await this.scheduleNotifyTimeout(runId, index, dueAt)
  }

  /** Tells the RunNotifier that an event completed. */
  async enqueueNotifyEvent(eventId: string): Promise<void> {
    await this.queue('notify').add(JOB_NAMES.notifyEvent, { eventId }, { ...this.jobOptions, jobId: jobIds.notifyEvent(eventId) })
  }

  /** Best effort: a job already running cannot be removed (BullMQ returns 0), and its processor then does nothing. */
  async cancelExpiry(runId: string): Promise<void> {
    await this.queue('expire').remove(jobIds.expiry(runId))
  }

  async cancelDeescalation(runId: string): Promise<void> {
    await this.queue('deescalate').remove(jobIds.deescalation(runId))
  }

  async jobState(kind: QueueKind, jobId: string): Promise<JobState> {
    return this.queue(kind).getJobState(jobId)
  }

  /**
   * The ids of a queue's jobs that are still to run (waiting, delayed, prioritized, active, waiting for children),
   * in one round trip: the reconciler checks its many rows against this instead of asking per job.
   */
  async liveJobIds(kind: QueueKind): Promise<Set<string>> {
    return new Set(await this.queue(kind).getRanges(['active', 'waiting', 'delayed', 'prioritized', 'waiting-children'], 0, -1))
  }

  /**
   * Makes sure a job with this id will run: adds it when Redis has none (lost, or removed when it completed) and
   * replaces a failed one. Returns whether a job was added.
   */
  async ensure(kind: QueueKind, jobId: string, add: () => Promise<void>): Promise<boolean> {
    const state = await this.jobState(kind, jobId)
    if (state === 'failed' || state === 'completed') await this.queue(kind).remove(jobId)
    else if (state !== 'unknown') return false
    await add()
    return true
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.queues.values()].map((q) => q.close()))
    this.queues.clear()
  }
}

function delayUntil(at: Date): number {
  return Math.max(0, at.getTime() - Date.now())
}
