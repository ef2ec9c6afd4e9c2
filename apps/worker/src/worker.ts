/**
 * The worker process's lifecycle: connect to PostgreSQL (the source of truth) and Redis (the scheduler), report
 * readiness, and on stop let in-flight work finish before disconnecting. Step queues and their processors plug in
 * here as the access flow engine arrives.
 */
import { createDb, type Db } from '@opensym/db'
import { Redis } from 'ioredis'
import type { Logger } from 'pino'
import type { WorkerConfig } from './config.js'

export interface RunningWorker {
  readonly db: Db
  readonly redis: Redis
  /** Resolves once everything is closed; safe to call twice. */
  stop(): Promise<void>
}

const CONNECT_TIMEOUT_MS = 5000

export async function startWorker(config: WorkerConfig, log: Logger): Promise<RunningWorker> {
  const db = createDb(config.databaseUrl, { poolSize: config.dbPoolSize })
  // BullMQ workers need maxRetriesPerRequest: null (blocking commands must not be retried by ioredis).
  const redis = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: null, connectTimeout: CONNECT_TIMEOUT_MS })
  // ioredis reports only "Connection is closed." when connect() fails; the cause arrives as an 'error' event.
  let redisError: Error | undefined
  const remember = (err: Error) => (redisError = err)
  redis.on('error', remember)
  try {
    await Promise.all([
      db.$queryRaw`SELECT 1`.catch((e: unknown) => {
        throw new Error(`PostgreSQL: ${e instanceof Error ? e.message : String(e)}`, { cause: e })
      }),
      redis
        .connect()
        .then(() => redis.ping())
        .catch((e: unknown) => {
          throw new Error(`Redis: ${redisError?.message ?? (e instanceof Error ? e.message : String(e))}`, { cause: e })
        }),
    ])
  } catch (e) {
    redis.disconnect()
    await db.$disconnect()
    throw new Error(`worker could not connect to ${e instanceof Error ? e.message : String(e)}`, { cause: e })
  }
  redis.off('error', remember)
  redis.on('error', (err) => log.warn({ err }, 'redis connection error'))
  log.info({ queuePrefix: config.queuePrefix }, 'worker ready')

  let stopped: Promise<void> | undefined
  return {
    db,
    redis,
    stop: () =>
      (stopped ??= (async () => {
        log.info('worker stopping')
        await Promise.allSettled([redis.quit(), db.$disconnect()])
        log.info('worker stopped')
      })()),
  }
}
