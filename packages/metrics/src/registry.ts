/**
 * Every Prometheus metric of opensym, defined once, on one registry per process. Hot paths only touch in-memory
 * counters and histograms through the `record…`/`observe…` functions below; anything that needs PostgreSQL or Redis
 * is computed at scrape time (see sources.ts).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'

/** The process's registry: what `GET /metrics` serves on the API and on the worker. */
export const registry = new Registry()

/** Seconds; from a fast in-memory step up to a strategy call near its 30 s budget. */
const STEP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
/** Sandbox calls are limited to about a second by default. */
const SANDBOX_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
/** From an entry logged to its delivery: seconds when all is well, up to hours while a destination is down. */
const LAG_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 15, 60, 300, 900, 3600, 14_400]

export const httpRequestDuration = new Histogram({
  name: 'opensym_http_request_duration_seconds',
  help: 'API request latency by route template (unmatched: no route), method and status class (2xx…5xx).',
  labelNames: ['route', 'method', 'status_class'] as const,
  buckets: HTTP_BUCKETS,
  registers: [registry],
})

export const stepDuration = new Histogram({
  name: 'opensym_step_duration_seconds',
  help: 'Time to process one job of a step queue, by queue (the step kind) and outcome (done, noop, refused, failed: the step result; delayed: not due yet; error: the attempt threw and is retried).',
  labelNames: ['queue', 'outcome'] as const,
  buckets: STEP_BUCKETS,
  registers: [registry],
})

export const jobFailures = new Counter({
  name: 'opensym_queue_job_failures_total',
  help: 'Job attempts that threw, by queue; final="true" when it was the last attempt (the job is now failed).',
  labelNames: ['queue', 'final'] as const,
  registers: [registry],
})

export const strategyCallDuration = new Histogram({
  name: 'opensym_strategy_call_duration_seconds',
  help: 'Strategy calls by strategy type, operation (identity, escalate, deescalate, is_granted) and outcome (ok; reported: the target answered with errors; error: the call threw).',
  labelNames: ['strategy', 'operation', 'outcome'] as const,
  buckets: STEP_BUCKETS,
  registers: [registry],
})

export const sandboxCallDuration = new Histogram({
  name: 'opensym_sandbox_call_duration_seconds',
  help: 'Sandbox calls (flow implementation code) by call kind (load, reducer, hook, prefetch, identity) and outcome (ok, or the failure kind: error, timeout, memory, …).',
  labelNames: ['call', 'outcome'] as const,
  buckets: SANDBOX_BUCKETS,
  registers: [registry],
})

export const sandboxFailures = new Counter({
  name: 'opensym_sandbox_call_failures_total',
  help: 'Sandbox calls that failed, by call kind and failure kind (compile, error, timeout, memory, invalid_result, …).',
  labelNames: ['call', 'kind'] as const,
  registers: [registry],
})

export const deliveryLag = new Histogram({
  name: 'opensym_log_delivery_lag_seconds',
  help: 'Time from an audit entry being logged to its delivery to a log destination, by destination type.',
  labelNames: ['destination_type'] as const,
  buckets: LAG_BUCKETS,
  registers: [registry],
})

export const deliveryFailures = new Counter({
  name: 'opensym_log_delivery_failures_total',
  help: 'Failed delivery attempts to log destinations, by destination type (retried; see the dead-letter state for the ones given up).',
  labelNames: ['destination_type'] as const,
  registers: [registry],
})

export type Outcome = string

/** An API request completed. `route` is the route template, never the raw URL (bounded label values). */
export function observeHttpRequest(route: string | undefined, method: string, statusCode: number, seconds: number): void {
  httpRequestDuration.observe({ route: route ?? 'unmatched', method, status_class: `${Math.floor(statusCode / 100)}xx` }, seconds)
}

/** A step job finished an attempt. */
export function observeStep(queue: string, outcome: Outcome, seconds: number): void {
  stepDuration.observe({ queue, outcome }, seconds)
}

/** A step job's attempt threw (not counting "not due yet" delays). */
export function recordJobFailure(queue: string, final: boolean): void {
  jobFailures.inc({ queue, final: String(final) })
}

export function observeStrategyCall(strategy: string, operation: string, outcome: 'ok' | 'reported' | 'error', seconds: number): void {
  strategyCallDuration.observe({ strategy, operation, outcome }, seconds)
}

/**
 * A sandbox call ended: `kind` is the kind of call (load, reducer, hook, prefetch, identity: keep it to a few
 * values, not handler or field names), `ms` its duration, `outcome` `ok` or the sandbox's failure kind.
 */
export function recordSandboxCall(kind: string, ms: number, outcome: 'ok' | (string & {})): void {
  sandboxCallDuration.observe({ call: kind, outcome }, ms / 1000)
  if (outcome !== 'ok') sandboxFailures.inc({ call: kind, kind: outcome })
}

/** The shape of the sandbox's `CallResult` that matters here (kept structural: no dependency on the sandbox). */
export interface SandboxCallOutcome {
  readonly ok: boolean
  readonly durationMs: number
  readonly error?: { readonly kind: string }
}

/** Records a sandbox `CallResult` (or `LoadResult` with a duration) and returns it, for `return record(kind, await …)`. */
export function recordSandboxResult<R extends SandboxCallOutcome>(kind: string, result: R): R {
  recordSandboxCall(kind, result.durationMs, result.ok ? 'ok' : (result.error?.kind ?? 'internal'))
  return result
}

/** An audit entry reached a log destination `seconds` after it was logged. */
export function recordDeliveryLag(destinationType: string, seconds: number): void {
  deliveryLag.observe({ destination_type: destinationType }, Math.max(0, seconds))
}

/** A delivery attempt to a log destination failed (it will be retried or dead-lettered). */
export function recordDeliveryFailure(destinationType: string): void {
  deliveryFailures.inc({ destination_type: destinationType })
}

let processMetrics = false
/** Node's own metrics (event loop lag, heap, GC, CPU, open handles) under their usual names; once per process. */
export function enableProcessMetrics(): void {
  if (processMetrics) return
  processMetrics = true
  collectDefaultMetrics({ register: registry })
}

/** A gauge whose values are set at scrape time by `collect`. */
export function scrapeGauge<L extends string>(name: string, help: string, labelNames: readonly L[], collect: (gauge: Gauge<L>) => Promise<void>): Gauge<L> {
  return new Gauge<L>({
    name,
    help,
    labelNames,
    registers: [registry],
    async collect() {
      await collect(this)
    },
  })
}
