/** `npm run -s admin -- <command> [--json]`: see cli.ts. */
import { createDb } from '@opensym/db'
import { Redis } from 'ioredis'
import { run } from './cli.js'

const DEFAULT_DATABASE_URL = 'postgresql://postgres@127.0.0.1:5432/opensym'

const db = createDb(process.env.DATABASE_URL || DEFAULT_DATABASE_URL, { poolSize: 1 })
// Only `queues` commands connect to Redis. A Redis that is down fails them at once (no reconnecting), and ioredis
// reports why only as an 'error' event: keep it for the message.
const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379'
let redis: Redis | undefined
let redisError: Error | undefined
const connectRedis = () => {
  if (!redis) {
    redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, connectTimeout: 5000, retryStrategy: () => null })
    redis.on('error', (e: Error) => (redisError = e))
  }
  return redis
}
let code = 1
try {
  code = await run(
    process.argv.slice(2),
    db,
    { out: (text) => (text.startsWith('error: ') ? process.stderr : process.stdout).write(`${text}\n`) },
    { redis: connectRedis, queuePrefix: process.env.QUEUE_PREFIX || undefined },
  )
} catch (e) {
  // Unexpected (e.g. the database is down): one line, not a stack trace.
  const message = redisError ? `Redis at ${redisUrl.replace(/\/\/[^@/]*@/, '//')}: ${redisError.message}` : e instanceof Error ? e.message.split('\n').filter(Boolean).at(-1) : String(e)
  process.stderr.write(`error: ${message}\n`)
} finally {
  await db.$disconnect()
  redis?.disconnect()
}
process.exit(code)
