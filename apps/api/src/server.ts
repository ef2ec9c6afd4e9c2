/** Runs the API: load config, connect, listen; on SIGINT/SIGTERM stop taking requests, finish, disconnect. */
import { createDb } from '@opensym/db'
import { startTracingFromEnv } from '@opensym/metrics'
import { Redis } from 'ioredis'
import { buildApp } from './app.js'
import { loadConfig } from './config.js'

const SHUTDOWN_GRACE_MS = 10_000

async function main(): Promise<void> {
  const config = loadConfig()
  // OpenTelemetry SDK only when OTEL_EXPORTER_OTLP_ENDPOINT is set; spans are no-ops otherwise.
  const tracing = await startTracingFromEnv('opensym-api')
  const db = createDb(config.databaseUrl, { poolSize: config.dbPoolSize, preparedStatements: config.dbPreparedStatements })
  const redis = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2 })
  const app = await buildApp({ config, db, redis })
  await redis.connect()

  let stopping = false
  const stop = async (signal: string) => {
    if (stopping) return
    stopping = true
    app.log.info({ signal }, 'shutting down')
    const force = setTimeout(() => {
      app.log.error('shutdown took too long; exiting')
      process.exit(1)
    }, SHUTDOWN_GRACE_MS)
    force.unref()
    await app.close()
    await Promise.allSettled([db.$disconnect(), redis.quit(), tracing?.shutdown()])
    process.exit(0)
  }
  process.on('SIGINT', () => void stop('SIGINT'))
  process.on('SIGTERM', () => void stop('SIGTERM'))

  await app.listen({ port: config.port, host: config.host })
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err)
  process.exit(1)
})
