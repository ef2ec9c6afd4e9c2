/**
 * `admin queues …`: the BullMQ queues as an operator sees them. Counts per queue, failed jobs with their reasons,
 * retrying them and cleaning old ones. Engine jobs only say "look at this event/run", and their processors re-read
 * PostgreSQL, so retrying a failed job is always safe: a step already decided is a no-op.
 */
import { parseDuration } from '@opensym/domain'
import { QUEUE_NAMES } from '@opensym/engine'
import { Queue, type Job } from 'bullmq'
import type { Redis } from 'ioredis'

export const QUEUES_USAGE = `  queues [list]                              jobs per queue and state
  queues failed <queue> [--limit 20]         failed jobs, newest first, with their reasons
  queues retry <queue> (<job-id> | --all)    run failed jobs again (safe: steps re-read PostgreSQL)
  queues clean <queue> --state failed|completed [--older-than 7d] [--limit N]
      (queues live in Redis under QUEUE_PREFIX, default opensym; what each step did is in PostgreSQL, so
       cleaning removes only Redis's record of the jobs)`

/** A problem with the command: `usage` ones exit 2, others 1. */
export class QueueAdminError extends Error {
  constructor(
    message: string,
    readonly usage = false,
  ) {
    super(message)
  }
}

export interface QueueAdminOptions {
  readonly json?: boolean
  readonly limit?: string
  readonly state?: string
  readonly 'older-than'?: string
  readonly all?: boolean
}

export interface QueueAdminContext {
  /** Connected on first use. */
  readonly redis: () => Redis
  readonly prefix: string
  readonly out: (json: object, text: string) => void
}

const COUNTED = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'failed', 'completed'] as const

/** The engine's queues, and any other queue found under the prefix (e.g. log deliveries). */
async function queueNames(redis: Redis, prefix: string): Promise<string[]> {
  const names = new Set<string>(Object.values(QUEUE_NAMES))
  // Every BullMQ queue has a `<prefix>:<name>:meta` hash; queue names cannot contain ':'.
  const pattern = `${prefix}:*:meta`
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
    cursor = next
    for (const key of keys) {
      const name = key.slice(prefix.length + 1, -':meta'.length)
      if (name && !name.includes(':')) names.add(name)
    }
  } while (cursor !== '0')
  return [...names].sort()
}

function positiveInt(value: string | undefined, fallback: number, flag: string): number {
  if (value === undefined) return fallback
  if (!/^\d+$/.test(value)) throw new QueueAdminError(`--${flag} must be a whole number`, true)
  return Number(value)
}

const iso = (ms: number | undefined) => (ms ? new Date(ms).toISOString() : null)

/** The job's payload without the trace context it carries. */
function payload(job: Job): unknown {
  if (!job.data || typeof job.data !== 'object') return job.data as unknown
  const { _trace: _, ...rest } = job.data as Record<string, unknown>
  return rest
}

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return rows.map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd()).join('\n')
}

export async function queuesCommand(verb: string | undefined, args: readonly string[], options: QueueAdminOptions, ctx: QueueAdminContext): Promise<number> {
  const redis = ctx.redis()
  const opened: Queue[] = []
  const open = async (name: string | undefined): Promise<Queue> => {
    if (!name) throw new QueueAdminError(`queues ${verb} needs a queue name`, true)
    const known = await queueNames(redis, ctx.prefix)
    if (!known.includes(name)) throw new QueueAdminError(`no queue "${name}" under prefix ${ctx.prefix}; queues: ${known.join(', ')}`)
    const q = new Queue(name, { connection: redis, prefix: ctx.prefix })
    opened.push(q)
    return q
  }
  try {
    switch (verb ?? 'list') {
      case 'list': {
        const names = await queueNames(redis, ctx.prefix)
        const rows = await Promise.all(
          names.map(async (name) => {
            const q = new Queue(name, { connection: redis, prefix: ctx.prefix })
            opened.push(q)
            const [counts, paused] = await Promise.all([q.getJobCounts(...COUNTED), q.isPaused()])
            return { queue: name, ...Object.fromEntries(COUNTED.map((s) => [s, counts[s] ?? 0])), is_paused: paused } as { queue: string; is_paused: boolean } & Record<(typeof COUNTED)[number], number>
          }),
        )
        const header = ['queue', 'waiting', 'active', 'delayed', 'prioritized', 'failed', 'completed', '']
        const text = table([header, ...rows.map((r) => [r.queue, ...['waiting', 'active', 'delayed', 'prioritized', 'failed', 'completed'].map((s) => String(r[s as (typeof COUNTED)[number]])), r.is_paused ? 'paused' : ''])])
        ctx.out(rows, `${text}\n(prefix ${ctx.prefix})`)
        return 0
      }
      case 'failed': {
        const q = await open(args[0])
        const limit = positiveInt(options.limit, 20, 'limit')
        const [total, jobs] = await Promise.all([q.getFailedCount(), limit > 0 ? q.getJobs(['failed'], 0, limit - 1, false) : Promise.resolve([])])
        const rows = jobs.map((j) => ({
          id: j.id ?? null,
          name: j.name,
          attempts_made: j.attemptsMade,
          attempts: j.opts.attempts ?? 1,
          failed_at: iso(j.finishedOn),
          reason: j.failedReason ?? null,
          data: payload(j),
        }))
        const lines = rows.map((r) => `${r.id}  ${r.name}  ${r.attempts_made}/${r.attempts} attempts  failed ${r.failed_at ?? '?'}\n    ${r.reason ?? '(no reason recorded)'}`)
        ctx.out({ queue: q.name, total, jobs: rows }, total ? `${total} failed job${total === 1 ? '' : 's'} in ${q.name}${total > rows.length ? ` (newest ${rows.length} shown)` : ''}\n${lines.join('\n')}` : `no failed jobs in ${q.name}`)
        return 0
      }
      case 'retry': {
        const q = await open(args[0])
        if (options.all) {
          if (args[1]) throw new QueueAdminError('give a job id or --all, not both', true)
          const count = await q.getFailedCount()
          await q.retryJobs({ state: 'failed' })
          ctx.out({ queue: q.name, retried: count }, `retried ${count} failed job${count === 1 ? '' : 's'} of ${q.name}`)
          return 0
        }
        const id = args[1]
        if (!id) throw new QueueAdminError('queues retry needs a job id (see `queues failed <queue>`) or --all', true)
        const job = await q.getJob(id)
        if (!job) throw new QueueAdminError(`no job "${id}" in ${q.name}`)
        const state = await job.getState()
        if (state !== 'failed') throw new QueueAdminError(`job "${id}" of ${q.name} is ${state}, not failed`)
        await job.retry('failed')
        ctx.out({ queue: q.name, id, retried: 1 }, `retried job ${id} of ${q.name}`)
        return 0
      }
      case 'clean': {
        const q = await open(args[0])
        const state = options.state
        if (state !== 'failed' && state !== 'completed') throw new QueueAdminError('--state must be failed or completed', true)
        let graceMs = 0
        if (options['older-than'] !== undefined) {
          const seconds = parseDuration(options['older-than'])
          if (seconds === undefined) throw new QueueAdminError(`--older-than "${options['older-than']}" is not a duration like 7d, 12h or 90m`, true)
          graceMs = seconds * 1000
        }
        // BullMQ: a limit of 0 removes every matching job.
        const removed = await q.clean(graceMs, positiveInt(options.limit, 0, 'limit'), state)
        ctx.out({ queue: q.name, state, removed: removed.length }, `removed ${removed.length} ${state} job${removed.length === 1 ? '' : 's'} from ${q.name}`)
        return 0
      }
      default:
        throw new QueueAdminError(`unknown command "queues ${verb}"; run with --help for usage`, true)
    }
  } finally {
    // The connection is the caller's; closing a queue on it leaves it open.
    await Promise.allSettled(opened.map((q) => q.close()))
  }
}
