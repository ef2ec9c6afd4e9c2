/**
 * The worker process's lifecycle: connect to PostgreSQL (the source of truth) and Redis (the scheduler), start the
 * access flow engine (one BullMQ worker per step queue, and the reconciler), report readiness, and on stop let
 * in-flight steps finish before disconnecting.
 */
import { createDb, type Db } from '@opensym/db'
import { builtinStrategies, startEngineWorker, type EngineWorker, type ErrorReporter, type StrategyRegistry } from '@opensym/engine'
import { Redis } from 'ioredis'
import type { Logger } from 'pino'
import type { WorkerConfig } from './config.js'

export interface RunningWorker {
  readonly db: Db
  readonly redis: Redis
  readonly engine: EngineWorker
  /** Resolves once everything is closed; safe to call twice. */
  stop(): Promise<void>
}

/** What tests (and later issues) plug in instead of the defaults. */
export interface WorkerExtensions {
  /** Strategy implementations by type. Default: the built-in ones (http). */
  readonly strategies?: StrategyRegistry
  /** Where failed steps are reported. Default: the log (the reporting issue adds the Slack error logger). */
  readonly reporter?: ErrorReporter
}

const CONNECT_TIMEOUT_MS = 5000

export async function startWorker(config: WorkerConfig, log: Logger, extensions: WorkerExtensions = {}): Promise<RunningWorker> {
  const db = createDb(config.databaseUrl, { poolSize: config.dbPoolSize, preparedStatements: config.dbPreparedStatements })
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
  let engine: EngineWorker
  try {
    engine = await startEngineWorker({
      db,
      connection: redis,
      prefix: config.queuePrefix,
      strategies: extensions.strategies ?? builtinStrategies(),
      reporter: extensions.reporter,
      logger: log,
      concurrency: config.concurrency,
      attempts: config.jobAttempts,
      backoffMs: config.jobBackoffMs,
      lockDurationMs: config.lockDurationMs,
      stalledIntervalMs: config.stalledIntervalMs,
      strategyTimeoutMs: config.strategyTimeoutMs,
      reconcileIntervalMs: config.reconcileIntervalMs,
      deescalateRetryCooldownMs: config.deescalateRetryCooldownMs,
    })
  } catch (e) {
    redis.disconnect()
    await db.$disconnect()
    throw new Error(`worker could not start the engine: ${e instanceof Error ? e.message : String(e)}`, { cause: e })
  }
  log.info({ queuePrefix: config.queuePrefix }, 'worker ready')

  let stopped: Promise<void> | undefined
  return {
    db,
    redis,
    engine,
    stop: () =>
      (stopped ??= (async () => {
        log.info('worker stopping')
        // Active steps finish (a strategy call in flight is recorded) before the connections close.
        await engine.close()
        await Promise.allSettled([redis.quit(), db.$disconnect()])
        log.info('worker stopped')
      })()),
  }
}
