/**
 * Scrape-time series: values read from PostgreSQL, Redis or another component when Prometheus scrapes, never on a
 * request or job path. Each source is cached briefly (several scrapers, or a scraper plus a curl, cost one query)
 * and bounded in time: a source that fails or hangs drops its own series from that scrape and counts an error,
 * while the rest of /metrics is still served.
 *
 * Components register sources (`watch…`) and get a disposer back. A process normally registers each once; when
 * several are registered (tests build several apps in one process), the most recent answers for runs and queues of
 * the same name.
 */
import { RunStatus, type Db } from '@opensym/db'
import { Queue } from 'bullmq'
import type { Redis } from 'ioredis'
import { Counter } from 'prom-client'
import { registry, scrapeGauge } from './registry.js'

export type Disposer = () => void

export interface SourceOptions {
  /** How long a value is reused. Default 5000 ms; 0 reads on every scrape. */
  readonly cacheMs?: number
  /** A read slower than this is given up for this scrape. Default 2000 ms. */
  readonly timeoutMs?: number
}

const DEFAULT_CACHE_MS = 5000
const DEFAULT_TIMEOUT_MS = 2000

/** A value read at most once per `cacheMs`; concurrent readers share one read. */
class Cached<T> {
  private value: { readonly at: number; readonly data: T } | undefined
  private inflight: Promise<T> | undefined
  private readonly cacheMs: number
  private readonly timeoutMs: number

  constructor(
    private readonly read: () => Promise<T>,
    options: SourceOptions = {},
  ) {
    this.cacheMs = options.cacheMs ?? DEFAULT_CACHE_MS
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  }

  get(): Promise<T> {
    if (this.value && performance.now() - this.value.at < this.cacheMs) return Promise.resolve(this.value.data)
    this.inflight ??= withTimeout(this.read(), this.timeoutMs)
      .then((data) => {
        this.value = { at: performance.now(), data }
        return data
      })
      .finally(() => {
        this.inflight = undefined
      })
    return this.inflight
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms)
    timer.unref()
  })
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}

/** Source reads of the scrape in progress. */
const reading = new Set<Promise<unknown>>()

export const sourceErrors = new Counter({
  name: 'opensym_metrics_source_errors_total',
  help: 'Scrapes in which a scrape-time source (PostgreSQL, Redis) failed or timed out; its series are then missing from that scrape.',
  labelNames: ['source'] as const,
  registers: [registry],
  async collect() {
    // Every metric is collected at once; let the sources' reads of this scrape start, then count their failures
    // in this same scrape.
    await new Promise((resolve) => setImmediate(resolve))
    await Promise.allSettled([...reading])
  },
})

/** The value, or undefined (counted as an error of `source`) when it could not be read. */
function settle<T>(source: string, p: Promise<T>): Promise<T | undefined> {
  const settled = p.catch(() => {
    sourceErrors.inc({ source })
    return undefined
  })
  reading.add(settled)
  void settled.finally(() => reading.delete(settled))
  return settled
}

function register<T>(list: T[], entry: T): Disposer {
  list.push(entry)
  return () => {
    const i = list.indexOf(entry)
    if (i >= 0) list.splice(i, 1)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Runs by status (PostgreSQL)

const runSources: Cached<ReadonlyMap<string, number>>[] = []
const RUN_STATUSES = Object.values(RunStatus)

scrapeGauge('opensym_runs', 'Runs by status (every status is present, 0 when none), from PostgreSQL at scrape time.', ['status'], async (gauge) => {
  gauge.reset()
  const source = runSources.at(-1)
  if (!source) return
  const counts = await settle('runs', source.get())
  if (!counts) return
  for (const status of RUN_STATUSES) gauge.set({ status }, counts.get(status) ?? 0)
})

/** Serves `opensym_runs{status}` from this database: one `GROUP BY status` per scrape (at most one per `cacheMs`). */
export function watchRuns(db: Pick<Db, '$queryRaw'>, options?: SourceOptions): Disposer {
  return register(
    runSources,
    new Cached(async () => {
      const rows = await db.$queryRaw<Array<{ status: string; n: number }>>`SELECT "status"::text AS "status", count(*)::int AS "n" FROM "Run" GROUP BY 1`
      return new Map(rows.map((r) => [r.status, r.n]))
    }, options),
  )
}

// ---------------------------------------------------------------------------------------------------------------
// Queue depths (Redis)

export const QUEUE_STATES = ['waiting', 'delayed', 'active', 'failed'] as const
export type QueueState = (typeof QUEUE_STATES)[number]

/** What is read of a BullMQ `Queue` (structural, so any queue of any package can be watched). */
export interface QueueLike {
  readonly name: string
  getJobCounts(...types: QueueState[]): Promise<Record<string, number>>
}

type QueueCounts = ReadonlyMap<string, Record<string, number>>
const queueSources: Cached<QueueCounts>[] = []

scrapeGauge('opensym_queue_jobs', 'Jobs per queue and state (waiting, delayed, active, failed), from Redis at scrape time.', ['queue', 'state'], async (gauge) => {
  gauge.reset()
  const all = await Promise.all(queueSources.map((s) => settle('queues', s.get())))
  // Later registrations win for a queue of the same name.
  const merged = new Map<string, Record<string, number>>()
  for (const counts of all) for (const [name, c] of counts ?? []) merged.set(name, c)
  for (const [queue, counts] of merged) for (const state of QUEUE_STATES) gauge.set({ queue, state }, counts[state] ?? 0)
})

/**
 * Serves `opensym_queue_jobs{queue,state}` for these queues (`getJobCounts` on each, in parallel, at scrape time).
 * A function is called at every read, for queue sets that grow.
 */
export function watchQueues(queues: Iterable<QueueLike> | (() => Iterable<QueueLike>), options?: SourceOptions): Disposer {
  return register(
    queueSources,
    new Cached(async () => {
      const list = [...(typeof queues === 'function' ? queues() : queues)]
      const counts = await Promise.all(list.map((q) => q.getJobCounts(...QUEUE_STATES)))
      return new Map(list.map((q, i) => [q.name, counts[i] ?? {}]))
    }, options),
  )
}

/**
 * BullMQ queues by name, only for counting (another component's queue this process has no handle on). They use
 * `connection` (not closed by `close()`), and open nothing until first read.
 */
export function bullmqQueues(connection: Redis, prefix: string, names: readonly string[]): { readonly queues: readonly QueueLike[]; close(): Promise<void> } {
  const queues = names.map((name) => new Queue(name, { connection, prefix }))
  return { queues, close: async () => void (await Promise.allSettled(queues.map((q) => q.close()))) }
}

// ---------------------------------------------------------------------------------------------------------------
// Log delivery backlog (from PostgreSQL with `deliveryBacklogFromDb`, or whatever a component reads)

export interface DeliveryBacklog {
  readonly destinationId: string
  readonly destinationType: string
  /** Entries not yet delivered to this destination (or passed over: not of its environments). */
  readonly pending: number
  /** Age of the oldest of them, in seconds (0 when none): the destination's current delivery lag. */
  readonly oldestPendingSeconds: number
  /** Delivery gave up (dead-letter state) until an operator replays it. */
  readonly dead?: boolean
}

const deliverySources: Cached<readonly DeliveryBacklog[]>[] = []

async function deliveryRows(): Promise<DeliveryBacklog[]> {
  const all = await Promise.all(deliverySources.map((s) => settle('log_deliveries', s.get())))
  return all.flatMap((rows) => rows ?? [])
}

scrapeGauge(
  'opensym_log_delivery_pending',
  'Audit entries not yet delivered, per log destination, at scrape time.',
  ['destination_id', 'destination_type'],
  async (gauge) => {
    gauge.reset()
    for (const r of await deliveryRows()) gauge.set({ destination_id: r.destinationId, destination_type: r.destinationType }, r.pending)
  },
)

scrapeGauge(
  'opensym_log_delivery_oldest_pending_seconds',
  'Age of the oldest audit entry not yet delivered, per log destination (the current delivery lag), at scrape time.',
  ['destination_id', 'destination_type'],
  async (gauge) => {
    gauge.reset()
    for (const r of await deliveryRows()) gauge.set({ destination_id: r.destinationId, destination_type: r.destinationType }, r.oldestPendingSeconds)
  },
)

scrapeGauge(
  'opensym_log_delivery_dead',
  'Log destinations whose delivery is in the dead-letter state (1) until replayed (`admin log-destinations replay`).',
  ['destination_id', 'destination_type'],
  async (gauge) => {
    gauge.reset()
    for (const r of await deliveryRows()) gauge.set({ destination_id: r.destinationId, destination_type: r.destinationType }, r.dead ? 1 : 0)
  },
)

/**
 * Reads the backlog of every log destination attached to an environment from reporting's tables: each
 * destination's cursor (`LogDelivery.deliveredSeq`, 0 before its first attempt) against its org's audit chain head,
 * and the age of the first entry after the cursor. Index lookups only, one statement.
 */
export function deliveryBacklogFromDb(db: Pick<Db, '$queryRaw'>): () => Promise<DeliveryBacklog[]> {
  return async () => {
    const rows = await db.$queryRaw<Array<{ destinationId: string; destinationType: string; pending: number; oldestPendingSeconds: number; dead: boolean }>>`
      SELECT d."id"::text AS "destinationId", d."type" AS "destinationType",
             GREATEST(h."seq" - COALESCE(ld."deliveredSeq", 0), 0)::float8 AS "pending",
             COALESCE(GREATEST(EXTRACT(EPOCH FROM (now() - a."timestamp")), 0), 0)::float8 AS "oldestPendingSeconds",
             COALESCE(ld."status"::text = 'dead', false) AS "dead"
      FROM "LogDestination" d
      JOIN "AuditChainHead" h ON h."orgId" = d."orgId"
      LEFT JOIN "LogDelivery" ld ON ld."destinationId" = d."id"
      LEFT JOIN "AuditEntry" a ON a."orgId" = d."orgId" AND a."seq" = COALESCE(ld."deliveredSeq", 0) + 1
      WHERE EXISTS (SELECT 1 FROM "EnvironmentLogDestination" e WHERE e."logDestinationId" = d."id")`
    return rows
  }
}

/** Serves the `opensym_log_delivery_*` gauges from `read` (called at scrape time, at most once per `cacheMs`). */
export function watchDeliveryBacklog(read: () => Promise<readonly DeliveryBacklog[]>, options?: SourceOptions): Disposer {
  return register(deliverySources, new Cached(read, options))
}

// ---------------------------------------------------------------------------------------------------------------
// Sandbox (in-process)

export interface SandboxStatsLike {
  readonly flows: number
  readonly isolates: number
}

const sandboxes: Array<() => SandboxStatsLike> = []

scrapeGauge('opensym_sandbox_isolates', 'Sandbox isolates alive in this process (0 without a sandbox).', [], async (gauge) => {
  gauge.set(sandboxes.reduce((n, s) => n + s().isolates, 0))
})

scrapeGauge('opensym_sandbox_flows', 'Flow versions loaded in this process’s sandbox (0 without a sandbox).', [], async (gauge) => {
  gauge.set(sandboxes.reduce((n, s) => n + s().flows, 0))
})

/** Serves the sandbox gauges from `sandbox.stats()` (cheap and in-process: read on every scrape). */
export function watchSandbox(stats: () => SandboxStatsLike): Disposer {
  return register(sandboxes, stats)
}
