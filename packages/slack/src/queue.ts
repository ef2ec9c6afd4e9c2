/**
 * Slow Slack work the HTTP handlers hand off so they answer within Slack's 3 seconds: a BullMQ queue `slack` (the
 * API adds, the worker processes, with retries that wait out rate limits and outages). Payloads carry ids and the
 * message; the token is read in the worker. Job ids derive from Slack's payload identifiers, so a duplicate add is
 * a no-op.
 */
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq'
import type { Redis } from 'ioredis'
import { Type, type Static } from 'typebox'
import { Value } from 'typebox/value'
import { silentLogger, type EngineLogger } from '@opensym/engine'
import { slackError, TOKEN_DEAD, UNDELIVERABLE, type SlackClients } from './client.js'
import type { Installations } from './installations.js'

export const SLACK_QUEUE = 'slack'

const EphemeralJob = Type.Object({ teamId: Type.String(), channel: Type.String(), user: Type.String(), text: Type.String() })
export type EphemeralJob = Static<typeof EphemeralJob>

export class SlackQueue {
  private queue: Queue | undefined

  constructor(private readonly options: { connection: Redis; prefix: string; attempts?: number; backoffMs?: number }) {}

  /** Tells one person something only they see, in the channel they acted in. */
  async ephemeral(id: string, job: EphemeralJob): Promise<void> {
    this.queue ??= new Queue(SLACK_QUEUE, { connection: this.options.connection, prefix: this.options.prefix })
    await this.queue.add('ephemeral', job, {
      jobId: `ephemeral-${id.replace(/[^A-Za-z0-9_-]/g, '_')}`,
      attempts: this.options.attempts ?? 6,
      backoff: { type: 'exponential', delay: this.options.backoffMs ?? 1000 },
      removeOnComplete: { age: 3600 },
      removeOnFail: { age: 86_400 },
    })
  }

  async close(): Promise<void> {
    await this.queue?.close()
  }
}

export interface SlackWorkerOptions {
  readonly connection: Redis
  readonly prefix: string
  readonly installations: Installations
  readonly clients: SlackClients
  readonly logger?: EngineLogger
  readonly concurrency?: number
}

/** Processes the `slack` queue; `close()` waits for active jobs. */
export function startSlackWorker(o: SlackWorkerOptions): { close(): Promise<void> } {
  const log = o.logger ?? silentLogger
  const worker = new Worker(
    SLACK_QUEUE,
    async (job: Job) => {
      if (job.name !== 'ephemeral' || !Value.Check(EphemeralJob, job.data)) throw new UnrecoverableError(`unknown slack job ${job.name}`)
      const data = job.data
      const inst = await o.installations.byTeam(data.teamId)
      if (!inst) return 'no-installation'
      try {
        await o.clients.forToken(inst.token).chat.postEphemeral({ channel: data.channel, user: data.user, text: data.text })
        return 'sent'
      } catch (e) {
        const code = slackError(e)
        if (code && (UNDELIVERABLE.has(code) || TOKEN_DEAD.has(code))) throw new UnrecoverableError(code)
        throw e
      }
    },
    { connection: o.connection, prefix: o.prefix, concurrency: o.concurrency ?? 10 },
  )
  worker.on('failed', (job, err) => log.warn({ jobId: job?.id, err }, 'slack job failed'))
  worker.on('error', (err) => log.warn({ err }, 'slack worker error'))
  return { close: () => worker.close() }
}
