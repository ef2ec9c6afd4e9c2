/**
 * The `log-delivery` queue: one pump job per destination (id `logs-<destinationId>`, so adding it again while it is
 * waiting, delayed or running is a no-op), which sends batches until the destination is caught up, fails (then the
 * job moves itself to the delayed set until the backoff PostgreSQL recorded is over) or the worker stops.
 *
 * Jobs are added by a tick (at start and every `pollIntervalMs`) for every destination whose cursor is behind its
 * org's chain head: PostgreSQL alone decides what is due, so losing Redis loses nothing, and a destination that is
 * down holds only its own job.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { DelayedError, Queue, Worker, type Job } from 'bullmq'
import type { Redis } from 'ioredis'
import { silentLogger } from '@opensym/engine'
import { LogDeliverer, type DeliveryOptions, type PumpOutcome } from './delivery.js'

export const LOG_DELIVERY_QUEUE = 'log-delivery'
const JOB_NAME = 'pump'
/** BullMQ refuses ids with `:`; a UUID has none. */
export const logDeliveryJobId = (destinationId: string): string => `logs-${destinationId}`

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export interface LogDeliveryWorkerOptions extends DeliveryOptions {
  /** A Redis client without `keyPrefix`, with `maxRetriesPerRequest: null`. Not closed by `close()`. */
  readonly connection: Redis
  /** BullMQ key prefix. */
  readonly prefix: string
  /** Destinations pumped at once. Default 8. */
  readonly concurrency?: number
  /** How often PostgreSQL is asked which destinations are behind. Default 500 ms; 0: only at start and on `tick()`. */
  readonly pollIntervalMs?: number
  /**
   * How long `close()` lets pumps in progress finish their batch. Default 5 s. A pump still sending after that (a
   * destination that does not answer) is left: its job is taken up again once its lock lapses, and the batch is
   * sent again from the cursor — delivery is at least once — so a worker never outwaits a deployment's stop timeout.
   */
  readonly closeGraceMs?: number
  readonly lockDurationMs?: number
  readonly stalledIntervalMs?: number
}

export interface LogDeliveryWorker {
  readonly deliverer: LogDeliverer
  readonly queue: Queue
  /** Adds a pump job for every destination that is behind; returns how many were due. */
  tick(): Promise<number>
  /**
   * Stops taking jobs; a pump in progress finishes its batch (and records it) within `closeGraceMs`, or is left to be
   * redone. Safe to call twice.
   */
  close(): Promise<void>
}

export async function startLogDelivery(o: LogDeliveryWorkerOptions): Promise<LogDeliveryWorker> {
  const logger = o.logger ?? silentLogger
  const deliverer = new LogDeliverer(o)
  const queue = new Queue(LOG_DELIVERY_QUEUE, { connection: o.connection, prefix: o.prefix })
  let closing = false

  let pumping = 0
  const processor = async (job: Job, token?: string): Promise<string> => {
    pumping++
    try {
      return await pump(job, token)
    } finally {
      pumping--
    }
  }
  const pump = async (job: Job, token?: string): Promise<string> => {
    const destinationId = (job.data as { destinationId?: unknown } | undefined)?.destinationId
    if (typeof destinationId !== 'string' || !UUID.test(destinationId)) throw new Error(`malformed log-delivery job: ${JSON.stringify(job.data)}`)
    let outcome: PumpOutcome = { kind: 'idle' }
    while (!closing) {
      outcome = await deliverer.pump(destinationId)
      if (outcome.kind !== 'delivered') break
    }
    if ((outcome.kind === 'failed' || outcome.kind === 'waiting') && !closing) {
      // The backoff is in PostgreSQL; the delayed job only saves the tick from finding it. Not an attempt.
      await job.moveToDelayed(outcome.kind === 'failed' ? outcome.retryAt.getTime() : outcome.until.getTime(), token)
      throw new DelayedError()
    }
    return outcome.kind
  }

  const worker = new Worker(LOG_DELIVERY_QUEUE, processor, {
    connection: o.connection,
    prefix: o.prefix,
    concurrency: o.concurrency ?? 8,
    lockDuration: o.lockDurationMs ?? 30_000,
    stalledInterval: o.stalledIntervalMs ?? 30_000,
  })
  worker.on('failed', (job, err) => logger.warn({ err, jobId: job?.id }, 'log delivery job failed; the tick adds it again'))
  worker.on('error', (err) => logger.warn({ err, queue: LOG_DELIVERY_QUEUE }, 'queue worker error'))
  await worker.waitUntilReady()

  const tick = async (): Promise<number> => {
    const due = await deliverer.dueDestinations()
    await Promise.all(
      due.map((destinationId) =>
        queue.add(JOB_NAME, { destinationId }, { jobId: logDeliveryJobId(destinationId), attempts: 1, removeOnComplete: true, removeOnFail: true }),
      ),
    )
    return due.length
  }

  let timer: NodeJS.Timeout | undefined
  let running: Promise<unknown> | undefined
  const loop = () => {
    if (closing) return
    running = tick()
      .catch((err: unknown) => logger.error({ err }, 'log delivery tick failed'))
      .finally(() => {
        running = undefined
        if (!closing && (o.pollIntervalMs ?? 500) > 0) timer = setTimeout(loop, o.pollIntervalMs ?? 500)
      })
  }
  loop()
  logger.info({ prefix: o.prefix, queue: LOG_DELIVERY_QUEUE }, 'log delivery started')

  let closed: Promise<void> | undefined
  return {
    deliverer,
    queue,
    tick,
    close: () =>
      (closed ??= (async () => {
        closing = true
        clearTimeout(timer)
        await running
        // No new pumps; those in progress get the grace, then the worker stops without them.
        await worker.pause(true)
        const deadline = Date.now() + (o.closeGraceMs ?? 5000)
        while (pumping > 0 && Date.now() < deadline) await sleep(20)
        if (pumping > 0) logger.warn({ pumping }, 'log delivery stopped with pumps in progress; their batches are sent again later')
        await worker.close(pumping > 0)
        await queue.close()
        deliverer.close()
      })()),
  }
}
