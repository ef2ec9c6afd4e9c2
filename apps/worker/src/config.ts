/** The worker's configuration, read from the environment once and validated. */
import { Type, type Static } from 'typebox'
import { Value } from 'typebox/value'

const ms = (defaultMs: number, description: string, minimum = 1) => Type.Integer({ minimum, default: defaultMs, description })

export const WorkerConfigSchema = Type.Object({
  databaseUrl: Type.String({ minLength: 1, default: 'postgresql://postgres@127.0.0.1:5432/opensym' }),
  redisUrl: Type.String({ minLength: 1, default: 'redis://127.0.0.1:6379' }),
  /** Every BullMQ key starts with this, so several stacks can share one Redis. The API must use the same. */
  queuePrefix: Type.String({ minLength: 1, pattern: '^[A-Za-z0-9_-]+$', default: 'opensym' }),
  logLevel: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' }),
  dbPoolSize: Type.Integer({ minimum: 1, default: 20 }),
  /**
   * Prepare each distinct statement once per connection (less PostgreSQL CPU per step). Turn off behind a pooler
   * in transaction mode that does not track prepared statements (PgBouncer before 1.21).
   */
  dbPreparedStatements: Type.Boolean({ default: true }),
  /** Jobs processed at once per queue (request, approve, deny, escalate, deescalate, expire-request). */
  concurrency: Type.Integer({ minimum: 1, maximum: 1000, default: 10 }),
  /**
   * Jobs of the deescalate queue processed at once (expiries come in bursts). Default: max(WORKER_CONCURRENCY, 50).
   * Each de-escalation holds a database connection while it runs: keep WORKER_DB_POOL_SIZE in proportion.
   */
  deescalateConcurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  expiryBatchSize: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
  /** Attempts per job before its step fails for good (and a failed revocation is reported). */
  jobAttempts: Type.Integer({ minimum: 1, maximum: 100, default: 8 }),
  jobBackoffMs: ms(1000, 'First retry delay; each next one doubles.'),
  /** A crashed worker's job is taken over after this long without a lock renewal. */
  lockDurationMs: ms(30_000, 'Job lock duration.', 100),
  stalledIntervalMs: ms(30_000, 'How often to look for jobs of crashed workers.', 100),
  strategyTimeoutMs: ms(30_000, 'Budget of each strategy phase (identity; call and read-back).'),
  /** The reconciler re-adds lost jobs every this often (0: only at start). */
  reconcileIntervalMs: ms(5000, 'Reconciler period.', 0),
  deescalateRetryCooldownMs: ms(600_000, 'After a de-escalation failed for good, wait this long before trying again.', 0),
  /** Serve GET /metrics (Prometheus) on metricsHost:metricsPort. */
  metricsEnabled: Type.Boolean({ default: true }),
  metricsHost: Type.String({ minLength: 1, default: '127.0.0.1' }),
  /** 0: any free port. */
  metricsPort: Type.Integer({ minimum: 0, maximum: 65535, default: 9464 }),
  /** The Slack app (request cards, DMs, the error-logger channel): on when the bot-token key is set. */
  slackTokenKey: Type.Optional(Type.String({ minLength: 1 })),
  slackApiUrl: Type.Optional(Type.String({ minLength: 1 })),
})
export type WorkerConfig = Static<typeof WorkerConfigSchema> & { logLevel: string }

const ENV_NAMES: Record<keyof WorkerConfig, string> = {
  databaseUrl: 'DATABASE_URL',
  redisUrl: 'REDIS_URL',
  queuePrefix: 'QUEUE_PREFIX',
  logLevel: 'LOG_LEVEL',
  dbPoolSize: 'WORKER_DB_POOL_SIZE',
  dbPreparedStatements: 'WORKER_DB_PREPARED_STATEMENTS',
  concurrency: 'WORKER_CONCURRENCY',
  deescalateConcurrency: 'WORKER_DEESCALATE_CONCURRENCY',
  expiryBatchSize: 'WORKER_EXPIRY_BATCH_SIZE',
  jobAttempts: 'JOB_ATTEMPTS',
  jobBackoffMs: 'JOB_BACKOFF_MS',
  lockDurationMs: 'JOB_LOCK_DURATION_MS',
  stalledIntervalMs: 'JOB_STALLED_INTERVAL_MS',
  strategyTimeoutMs: 'STRATEGY_TIMEOUT_MS',
  reconcileIntervalMs: 'RECONCILE_INTERVAL_MS',
  deescalateRetryCooldownMs: 'DEESCALATE_RETRY_COOLDOWN_MS',
  slackTokenKey: 'SLACK_TOKEN_KEY',
  slackApiUrl: 'SLACK_API_URL',
  metricsEnabled: 'METRICS_ENABLED',
  metricsHost: 'WORKER_METRICS_HOST',
  metricsPort: 'WORKER_METRICS_PORT',
}

const ofType = (type: string) => new Set<string>(Object.entries(WorkerConfigSchema.properties).filter(([, s]) => (s as { type?: unknown }).type === type).map(([k]) => k))
const NUMERIC = ofType('integer')
const BOOLEAN = ofType('boolean')

export function loadConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const raw: Record<string, unknown> = {}
  for (const [key, name] of Object.entries(ENV_NAMES)) {
    const v = env[name]
    if (v === undefined || v === '') continue
    if (NUMERIC.has(key) && /^\d+$/.test(v)) raw[key] = Number(v)
    else if (BOOLEAN.has(key) && /^(true|false|1|0)$/i.test(v)) raw[key] = /^(true|1)$/i.test(v)
    else raw[key] = v
  }
  const value = Value.Default(WorkerConfigSchema, raw)
  const errors = [...Value.Errors(WorkerConfigSchema, value)]
  if (errors.length) {
    const lines = errors.map((e) => `${ENV_NAMES[e.instancePath.replace(/^\//, '') as keyof WorkerConfig] ?? e.instancePath}: ${e.message}`)
    throw new Error(`invalid configuration: ${lines.join('; ')}`)
  }
  return value as WorkerConfig
}
