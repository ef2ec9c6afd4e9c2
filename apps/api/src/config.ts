/**
 * The API's configuration: read from the environment once, validated, then passed in. Nothing else in the API
 * reads `process.env`.
 */
import { durationSeconds } from '@opensym/domain'
import { Type, type Static } from 'typebox'
import { Value } from 'typebox/value'

export const ApiConfigSchema = Type.Object({
  port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080, description: 'PORT: the API listens here.' }),
  host: Type.String({ default: '127.0.0.1', description: 'HOST: the interface to listen on (0.0.0.0 for all).' }),
  databaseUrl: Type.String({
    minLength: 1,
    default: 'postgresql://postgres@127.0.0.1:5432/opensym',
    description: 'DATABASE_URL: PostgreSQL connection string.',
  }),
  redisUrl: Type.String({ minLength: 1, default: 'redis://127.0.0.1:6379', description: 'REDIS_URL: Redis connection string.' }),
  logLevel: Type.Union([Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'), Type.Literal('info'), Type.Literal('debug'), Type.Literal('trace'), Type.Literal('silent')], {
    default: 'info',
    description: 'LOG_LEVEL: pino log level.',
  }),
  dbPoolSize: Type.Integer({ minimum: 1, default: 10, description: 'DB_POOL_SIZE: PostgreSQL connections per process.' }),
  dbPreparedStatements: Type.Boolean({
    default: true,
    description:
      'DB_PREPARED_STATEMENTS: prepare each distinct statement once per connection (less PostgreSQL CPU per request); false behind a pooler in transaction mode that does not track prepared statements (PgBouncer before 1.21).',
  }),
  queuePrefix: Type.String({
    minLength: 1,
    pattern: '^[A-Za-z0-9_-]+$',
    default: 'opensym',
    description: 'QUEUE_PREFIX: the BullMQ key prefix; the worker must use the same.',
  }),
  metricsEnabled: Type.Boolean({ default: true, description: 'METRICS_ENABLED: serve GET /metrics (Prometheus); false turns it off.' }),
  requestExpirySeconds: Type.Integer({
    minimum: 1,
    default: 86_400,
    description: 'REQUEST_EXPIRY: how long a request waits for a decision before it expires (seconds, or like "12h", "1d").',
  }),
  // The Slack app (routes under /api/v1/slack): off unless the signing secret and the token key are set.
  slackSigningSecret: Type.Optional(Type.String({ minLength: 1, description: 'SLACK_SIGNING_SECRET: verifies requests from Slack (v0 signatures).' })),
  slackTokenKey: Type.Optional(Type.String({ minLength: 1, description: 'SLACK_TOKEN_KEY: 32 bytes (base64 or hex) encrypting bot tokens at rest (AES-256-GCM).' })),
  slackClientId: Type.Optional(Type.String({ minLength: 1, description: 'SLACK_CLIENT_ID: the Slack app\'s client id (OAuth install).' })),
  slackClientSecret: Type.Optional(Type.String({ minLength: 1, description: 'SLACK_CLIENT_SECRET: the Slack app\'s client secret (OAuth install).' })),
  slackApiUrl: Type.Optional(Type.String({ minLength: 1, description: 'SLACK_API_URL: Slack\'s Web API base (default https://slack.com/api/).' })),
  publicUrl: Type.Optional(Type.String({ minLength: 1, description: 'PUBLIC_URL: where Slack and browsers reach this API (Slack manifest, OAuth redirect).' })),
})
export type ApiConfig = Static<typeof ApiConfigSchema>

const ENV_NAMES: Record<keyof ApiConfig, string> = {
  port: 'PORT',
  host: 'HOST',
  databaseUrl: 'DATABASE_URL',
  redisUrl: 'REDIS_URL',
  logLevel: 'LOG_LEVEL',
  dbPoolSize: 'DB_POOL_SIZE',
  queuePrefix: 'QUEUE_PREFIX',
  requestExpirySeconds: 'REQUEST_EXPIRY',
  slackSigningSecret: 'SLACK_SIGNING_SECRET',
  slackTokenKey: 'SLACK_TOKEN_KEY',
  slackClientId: 'SLACK_CLIENT_ID',
  slackClientSecret: 'SLACK_CLIENT_SECRET',
  slackApiUrl: 'SLACK_API_URL',
  publicUrl: 'PUBLIC_URL',
  metricsEnabled: 'METRICS_ENABLED',
  dbPreparedStatements: 'DB_PREPARED_STATEMENTS',
}

/** Reads the configuration from environment variables; throws one line per bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): ApiConfig {
  const raw: Record<string, unknown> = {}
  for (const [key, name] of Object.entries(ENV_NAMES)) {
    const v = env[name]
    if (v === undefined || v === '') continue
    if (key === 'requestExpirySeconds') raw[key] = durationSeconds(v) ?? v
    else if (key === 'metricsEnabled' || key === 'dbPreparedStatements') raw[key] = /^(true|1)$/i.test(v) ? true : /^(false|0)$/i.test(v) ? false : v
    else raw[key] = /^\d+$/.test(v) && (key === 'port' || key === 'dbPoolSize') ? Number(v) : v
  }
  const withDefaults = Value.Default(ApiConfigSchema, raw)
  const errors = [...Value.Errors(ApiConfigSchema, withDefaults)]
  if (errors.length) {
    const lines = errors.map((e) => {
      const key = e.instancePath.replace(/^\//, '') as keyof ApiConfig
      return `${ENV_NAMES[key] ?? key}: ${e.message}`
    })
    throw new Error(`invalid configuration: ${lines.join('; ')}`)
  }
  return withDefaults as ApiConfig
}
