/**
 * The worker process's lifecycle: connect to PostgreSQL (the source of truth) and Redis (the scheduler), start the
 * access flow engine (one BullMQ worker per step queue, and the reconciler), report readiness, and on stop let
 * in-flight steps finish before disconnecting.
 */
import { createDb, type Db } from '@opensym/db'
import {
  builtinStrategies,
  createHostHandlers,
  FlowRuntime,
  startEngineWorker,
  type EngineWorker,
  type ErrorReporter,
  type RunNotifier,
  type SlackHost,
  type StrategyRegistry,
} from '@opensym/engine'
import { instrumentSandbox } from '@opensym/metrics'
import { LOG_DELIVERY_QUEUE, startLogDelivery, type LogDeliveryWorker, type LogDeliveryWorkerOptions } from '@opensym/reporting'
import { createSandbox, type Sandbox } from '@opensym/sandbox'
import { SLACK_QUEUE, startSlackApp, type SlackApp } from '@opensym/slack'
import { Redis } from 'ioredis'
import type { Logger } from 'pino'
import type { WorkerConfig } from './config.js'
import { startWorkerMetrics, type WorkerMetrics } from './metrics.js'

export interface RunningWorker {
  readonly db: Db
  readonly redis: Redis
  readonly engine: EngineWorker
  /** GET /metrics; undefined when METRICS_ENABLED=false. */
  readonly metrics: WorkerMetrics | undefined
  /** Delivery of audit entries to log destinations (the `log-delivery` queue); undefined when turned off. */
  readonly logDelivery: LogDeliveryWorker | undefined
  /** Resolves once everything is closed; safe to call twice. */
  stop(): Promise<void>
}

/** What tests (and later issues) plug in instead of the defaults. */
export interface WorkerExtensions {
  /** Strategy implementations by type. Default: the built-in ones, `custom` running in {@link sandbox}. */
  readonly strategies?: StrategyRegistry
  /** Where `custom` strategies run. Default: a sandbox of the worker's own, closed on stop. */
  readonly sandbox?: Sandbox
  /** Where failed steps are reported. Default: the log (the reporting issue adds the Slack error logger). */
  readonly reporter?: ErrorReporter
  /**
   * Where requests are posted and who hears what happened (the Slack app's `RunNotifier`): the engine's `notify`
   * queue calls it. Default: `silentNotifier` (nothing is posted).
   */
  readonly notifier?: RunNotifier
  /** The Slack app's handlers of `slack.*` SDK calls from hooks. Default: the Slack app's when SLACK_TOKEN_KEY is set. */
  readonly slackHost?: SlackHost
  /** Runs flow implementations (hooks, reducers). Default: a FlowRuntime of the worker's own with the host handlers. */
  readonly flows?: FlowRuntime
  /** Log delivery settings (AWS clients, endpoints, poll interval…), or false to leave delivery to other workers. */
  readonly logDelivery?: Partial<Omit<LogDeliveryWorkerOptions, 'db' | 'connection' | 'prefix'>> | false
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
  // Timed and traced per load and call, its stats in /metrics (@opensym/metrics).
  const sandbox = extensions.sandbox ?? instrumentSandbox(createSandbox({ onCatastrophicError: (message) => log.fatal({ message }, 'sandbox: isolated-vm lost control of an isolate; restart the worker') }))
  // The Slack app: cards and DMs (notifier), the error-logger channel (reporter), `slack.*` SDK calls (host), and the
  // `slack` queue.
  const slack: SlackApp | undefined = config.slackTokenKey
    ? startSlackApp({ db, connection: redis, prefix: config.queuePrefix, tokenKey: config.slackTokenKey, apiUrl: config.slackApiUrl, logger: log })
    : undefined
  // Flow code (hooks, reducers) runs in a sandbox of its own, whose integration calls reach the host handlers.
  const flows = extensions.flows ?? new FlowRuntime({ db, host: createHostHandlers({ db, slack: extensions.slackHost ?? slack?.host }), logger: log })
  let engine: EngineWorker
  try {
    engine = await startEngineWorker({
      db,
      connection: redis,
      prefix: config.queuePrefix,
      strategies: extensions.strategies ?? builtinStrategies({ sandbox }),
      reporter: extensions.reporter ?? slack?.reporter,
      flows,
      notifier: extensions.notifier ?? slack?.notifier,
      logger: log,
      concurrency: config.concurrency,
      deescalateConcurrency: config.deescalateConcurrency,
      expiryBatchSize: config.expiryBatchSize,
      attempts: config.jobAttempts,
      backoffMs: config.jobBackoffMs,
      lockDurationMs: config.lockDurationMs,
      stalledIntervalMs: config.stalledIntervalMs,
      strategyTimeoutMs: config.strategyTimeoutMs,
      reconcileIntervalMs: config.reconcileIntervalMs,
      deescalateRetryCooldownMs: config.deescalateRetryCooldownMs,
    })
  } catch (e) {
    await slack?.close()
    redis.disconnect()
    await db.$disconnect()
    throw new Error(`worker could not start the engine: ${e instanceof Error ? e.message : String(e)}`, { cause: e })
  }
  let logDelivery: LogDeliveryWorker | undefined
  if (extensions.logDelivery !== false) {
    try {
      logDelivery = await startLogDelivery({
        db,
        connection: redis,
        prefix: config.queuePrefix,
        logger: log,
        // Same crash recovery as the step queues: a killed worker's batch is picked up as soon as theirs are.
        lockDurationMs: config.lockDurationMs,
        stalledIntervalMs: config.stalledIntervalMs,
        ...extensions.logDelivery,
      })
    } catch (e) {
      await engine.close()
      await slack?.close()
      redis.disconnect()
      await db.$disconnect()
      throw new Error(`worker could not start log delivery: ${e instanceof Error ? e.message : String(e)}`, { cause: e })
    }
  }
  const metrics = config.metricsEnabled
    ? await startWorkerMetrics({
        host: config.metricsHost,
        port: config.metricsPort,
        db,
        queues: engine.queues,
        otherQueues: { redis, prefix: config.queuePrefix, names: [LOG_DELIVERY_QUEUE, SLACK_QUEUE] },
        log,
      })
    : undefined
  log.info({ queuePrefix: config.queuePrefix }, 'worker ready')

  let stopped: Promise<void> | undefined
  return {
    db,
    redis,
    engine,
    metrics,
    logDelivery,
    stop: () =>
      (stopped ??= (async () => {
        log.info('worker stopping')
        await metrics?.close()
        // Active steps finish (a strategy call in flight is recorded) before the connections close.
        // A batch in flight is sent and recorded; the rest waits in PostgreSQL for the next start.
        await logDelivery?.close()
        await engine.close()
        await slack?.close()
        if (!extensions.sandbox) await sandbox.close()
        if (!extensions.flows) await flows.close()
        await Promise.allSettled([redis.quit(), db.$disconnect()])
        log.info('worker stopped')
      })()),
  }
}
