/**
 * The engine's metrics and trace spans, applied from the outside so the step code stays as it is: queues add a
 * producer span and carry its context in the job data, processors run in a consumer span continuing it (and are
 * timed per queue), and strategy calls get spans and latencies of their own. `RunTraces` keeps each run in one
 * trace across the requests that drive it. All of it is in-memory or no-op when tracing is off.
 */
import { Prisma, type Db } from '@opensym/db'
import {
  context,
  extractTraceContext,
  inSpan,
  observeStep,
  observeStrategyCall,
  propagation,
  recordError,
  recordJobFailure,
  ROOT_CONTEXT,
  SpanKind,
  trace,
  tracer,
  withTraceContext,
  type Context,
  type Span,
} from '@opensym/metrics'
import { DelayedError, UnrecoverableError, type Job, type Queue } from 'bullmq'
import type { Redis } from 'ioredis'
import type { Strategy, StrategyRegistry } from './strategy.js'

const MESSAGING = { 'messaging.system': 'bullmq' } as const

/**
 * Wraps `queue.add` (every producer call goes through it): a `publish <queue>` span, whose context the job carries
 * to its worker. Job ids and options are untouched.
 */
export function traceQueue<Q extends Queue>(queue: Q): Q {
  const add = queue.add.bind(queue)
  const traced: typeof queue.add = (name, data, opts) =>
    inSpan(
      `publish ${queue.name}`,
      { kind: SpanKind.PRODUCER, attributes: { ...MESSAGING, 'messaging.operation.type': 'send', 'messaging.destination.name': queue.name, 'opensym.job.name': name } },
      async (span) => {
        const job = await add(name, data && typeof data === 'object' ? withTraceContext(data) : data, opts)
        if (job.id) span.setAttribute('messaging.message.id', job.id)
        return job
      },
    )
  queue.add = traced
  return queue
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Whether an SDK registered a propagator: without one there is no trace to keep together. */
const tracingOn = () => propagation.fields().length > 0

/** Returns the anchor (and refreshes its expiry), or sets ARGV[1] as the anchor when there is none (and it is given). */
const ANCHOR_SCRIPT = `
local v = redis.call('GET', KEYS[1])
if v then redis.call('EXPIRE', KEYS[1], ARGV[2]) return v end
if ARGV[1] ~= '' then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) end
return false`

export interface RunTracesOptions {
  readonly db: Db
  /** The engine's Redis connection (no keyPrefix). */
  readonly connection: Redis
  /** The BullMQ prefix; anchors live under `<prefix>:trace:run:<runId>`. */
  readonly prefix: string
  /** How long an anchor outlives the last job of its run. Default 30 days. */
  readonly ttlSeconds?: number
}

interface SpanParent {
  readonly parent: Context
  /** The producer's context when the span is re-parented into the run's trace. */
  readonly links: { context: ReturnType<Span['spanContext']> }[]
  /** Set the new span as the run's anchor (the run had none and the job carried no context). */
  readonly anchorKey?: string
}

/**
 * Keeps a run in one trace. A run's jobs come from several places: the API request that created it, later
 * decisions (other API requests, Slack), the worker's own next steps, the reconciler. The first traced job of a
 * run stores its producer's context in Redis as the run's anchor; every later job's span is a child of that
 * anchor, linked to its own producer's span (the decision request that caused it). Only when tracing is on: one
 * PostgreSQL lookup (event → run) and one Redis round trip per job; never fails a job.
 */
export class RunTraces {
  private readonly ttl: number

  constructor(private readonly o: RunTracesOptions) {
    this.ttl = o.ttlSeconds ?? 30 * 86_400
  }

  async parentOf(job: Job): Promise<SpanParent> {
    const producer = extractTraceContext(job.data)
    if (!tracingOn()) return { parent: producer, links: [] }
    try {
      const runId = await this.runIdOf(job.data)
      if (!runId) return { parent: producer, links: [] }
      const key = `${this.o.prefix}:trace:run:${runId}`
      const carrier: Record<string, string> = {}
      propagation.inject(producer, carrier)
      const stored = (await this.o.connection.eval(ANCHOR_SCRIPT, 1, key, carrier.traceparent ? JSON.stringify(carrier) : '', this.ttl)) as string | null
      if (!stored) return carrier.traceparent ? { parent: producer, links: [] } : { parent: ROOT_CONTEXT, links: [], anchorKey: key }
      const anchor = propagation.extract(ROOT_CONTEXT, JSON.parse(stored) as Record<string, string>)
      const anchorSpan = trace.getSpanContext(anchor)
      const producerSpan = trace.getSpanContext(producer)
      if (!anchorSpan || anchorSpan.traceId === producerSpan?.traceId) return { parent: producer, links: [] }
      return { parent: anchor, links: producerSpan ? [{ context: producerSpan }] : [] }
    } catch {
      return { parent: producer, links: [] }
    }
  }

  /** Makes `span` the anchor of a run that has none. Best effort. */
  async anchor(key: string, span: Span): Promise<void> {
    const carrier: Record<string, string> = {}
    propagation.inject(trace.setSpan(context.active(), span), carrier)
    if (carrier.traceparent) await this.o.connection.set(key, JSON.stringify(carrier), 'EX', this.ttl, 'NX').catch(() => undefined)
  }

  /**
   * Work done for many runs at once (an expiry batch): a `name` span per run, from `startTime` to now, in each run's
   * trace (a child of its anchor; a run without one gets a trace of its own). One Redis round trip; best effort.
   */
  async recordBatch(runIds: readonly string[], name: string, startTime: number, attributes: Record<string, string | number>): Promise<void> {
    if (!tracingOn() || runIds.length === 0) return
    try {
      const anchors = await this.o.connection.mget(...runIds.map((id) => `${this.o.prefix}:trace:run:${id}`))
      runIds.forEach((runId, i) => {
        const stored = anchors[i]
        const parent = stored ? propagation.extract(ROOT_CONTEXT, JSON.parse(stored) as Record<string, string>) : ROOT_CONTEXT
        tracer().startSpan(name, { kind: SpanKind.INTERNAL, startTime, attributes: { ...attributes, 'opensym.run.id': runId } }, parent).end()
      })
    } catch {
      // Traces never fail the work they describe.
    }
  }

  /** Engine jobs carry a run id or an event id (looked up). */
  private async runIdOf(data: unknown): Promise<string | undefined> {
    const d = (data && typeof data === 'object' ? data : {}) as Record<string, unknown>
    if (typeof d.runId === 'string' && UUID.test(d.runId)) return d.runId
    if (typeof d.eventId !== 'string' || !UUID.test(d.eventId)) return undefined
    const [row] = await this.o.db.sql.query<{ runId: string }>(Prisma.sql`SELECT "runId"::text AS "runId" FROM "RunEvent" WHERE "id" = ${d.eventId}::uuid`)
    return row?.runId
  }
}

/**
 * A processor in a `process <queue>` span (continuing the producer's trace, or the run's with `traces`), timed
 * into `opensym_step_duration_seconds` with its result as the outcome; thrown attempts count as job failures.
 */
export function instrumentProcessor<R>(queue: string, processor: (job: Job, token?: string) => Promise<R>, traces?: RunTraces): (job: Job, token?: string) => Promise<R> {
  return async (job, token) => {
    const attempt = job.attemptsMade + 1
    const attributes = { ...MESSAGING, 'messaging.operation.type': 'process', 'messaging.destination.name': queue, 'messaging.message.id': job.id ?? '', 'opensym.job.attempt': attempt }
    const { parent, links, anchorKey } = traces ? await traces.parentOf(job) : { parent: extractTraceContext(job.data), links: [], anchorKey: undefined }
    return tracer().startActiveSpan(`process ${queue}`, { kind: SpanKind.CONSUMER, attributes, links }, parent, async (span) => {
      if (anchorKey && traces) void traces.anchor(anchorKey, span)
      return observed(queue, span, () => processor(job, token), (e) => e instanceof UnrecoverableError || attempt >= (job.opts.attempts ?? 1))
    })
  }
}

/**
 * A step processed in the job of the step before it (no job of its own: steps.ts `continueWith`), as its own queue's
 * processor would be: a `process <queue>` span, child of the current one, timed into `opensym_step_duration_seconds`.
 * A throw is a failed attempt that its queue's job retries (never a final failure).
 */
export function instrumentInline<R extends string>(queue: string, step: () => Promise<R>): Promise<R> {
  const attributes = { ...MESSAGING, 'messaging.operation.type': 'process', 'messaging.destination.name': queue, 'opensym.job.attempt': 1, 'opensym.step.inline': true }
  return tracer().startActiveSpan(`process ${queue}`, { kind: SpanKind.INTERNAL, attributes }, (span) => observed(queue, span, step, () => false))
}

/**
 * Runs a step in `span` (ended after it), timed with its result as the outcome (a StepResult; anything else is a
 * plain success). A throw is a failed attempt — a job failure, final when `final` says so — except a job put back
 * to the delayed set without using an attempt.
 */
async function observed<R>(queue: string, span: Span, step: () => Promise<R>, final: (e: unknown) => boolean): Promise<R> {
  const started = performance.now()
  const seconds = () => (performance.now() - started) / 1000
  try {
    const result = await step()
    const outcome = typeof result === 'string' ? result : 'done'
    observeStep(queue, outcome, seconds())
    span.setAttribute('opensym.step.result', outcome)
    return result
  } catch (e) {
    if (e instanceof DelayedError) {
      observeStep(queue, 'delayed', seconds())
      span.setAttribute('opensym.step.result', 'delayed')
    } else {
      observeStep(queue, 'error', seconds())
      recordJobFailure(queue, final(e))
      recordError(span, e)
    }
    throw e
  } finally {
    span.end()
  }
}

type Operation = 'identity' | 'escalate' | 'deescalate' | 'is_granted'

/** Strategies whose calls are spans (`strategy <type> <operation>`) and timed into `opensym_strategy_call_duration_seconds`. */
export function instrumentStrategies(registry: StrategyRegistry): StrategyRegistry {
  return new Map([...registry].map(([type, strategy]) => [type, instrumentStrategy(strategy)]))
}

function instrumentStrategy(s: Strategy): Strategy {
  const timed = <T>(operation: Operation, call: () => Promise<T>, reported?: (out: T) => boolean): Promise<T> =>
    inSpan(`strategy ${s.type} ${operation}`, { kind: SpanKind.CLIENT, attributes: { 'opensym.strategy.type': s.type, 'opensym.strategy.operation': operation } }, async (span) => {
      const started = performance.now()
      try {
        const out = await call()
        const outcome = reported?.(out) ? 'reported' : 'ok'
        if (outcome === 'reported') span.setAttribute('opensym.strategy.reported_errors', true)
        observeStrategyCall(s.type, operation, outcome, (performance.now() - started) / 1000)
        return out
      } catch (e) {
        observeStrategyCall(s.type, operation, 'error', (performance.now() - started) / 1000)
        throw e
      }
    })
  const isGranted = s.isGranted?.bind(s)
  const wrapped: Partial<Strategy> = {
    identity: (call) => timed('identity', () => s.identity(call)),
    escalate: (call) => timed('escalate', () => s.escalate(call), (out) => out.errors.length > 0),
    deescalate: (call) => timed('deescalate', () => s.deescalate(call), (out) => out.errors.length > 0),
    ...(isGranted ? { isGranted: (call) => timed('is_granted', () => isGranted(call)) } : {}),
  }
  // Everything else (type, identityService, whatever strategies grow) is the strategy's own, called on itself.
  return new Proxy(s, {
    get(target, prop) {
      if (Object.hasOwn(wrapped, prop)) return wrapped[prop as keyof Strategy]
      const value: unknown = Reflect.get(target, prop, target)
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value
    },
  })
}
