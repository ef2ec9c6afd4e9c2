/** The worker's configuration, read from the environment once and validated. */
import { Type, type Static } from 'typebox'
import { Value } from 'typebox/value'

export const WorkerConfigSchema = Type.Object({
  databaseUrl: Type.String({ minLength: 1, default: 'postgresql://postgres@127.0.0.1:5432/opensym' }),
  redisUrl: Type.String({ minLength: 1, default: 'redis://127.0.0.1:6379' }),
  /** Every BullMQ key starts with this, so several stacks can share one Redis. */
  queuePrefix: Type.String({ minLength: 1, pattern: '^[A-Za-z0-9_-]+$', default: 'opensym' }),
  logLevel: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' }),
  dbPoolSize: Type.Integer({ minimum: 1, default: 5 }),
})
export type WorkerConfig = Static<typeof WorkerConfigSchema> & { logLevel: string }

const ENV_NAMES: Record<keyof WorkerConfig, string> = {
  databaseUrl: 'DATABASE_URL',
  redisUrl: 'REDIS_URL',
  queuePrefix: 'QUEUE_PREFIX',
  logLevel: 'LOG_LEVEL',
  dbPoolSize: 'WORKER_DB_POOL_SIZE',
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const raw: Record<string, unknown> = {}
  for (const [key, name] of Object.entries(ENV_NAMES)) {
    const v = env[name]
    if (v === undefined || v === '') continue
    raw[key] = key === 'dbPoolSize' && /^\d+$/.test(v) ? Number(v) : v
  }
  const value = Value.Default(WorkerConfigSchema, raw)
  const errors = [...Value.Errors(WorkerConfigSchema, value)]
  if (errors.length) {
    const lines = errors.map((e) => `${ENV_NAMES[e.instancePath.replace(/^\//, '') as keyof WorkerConfig] ?? e.instancePath}: ${e.message}`)
    throw new Error(`invalid configuration: ${lines.join('; ')}`)
  }
  return value as WorkerConfig
}
