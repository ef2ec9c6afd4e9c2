/** Runs the worker until SIGINT/SIGTERM. */
import { startTracingFromEnv } from '@opensym/metrics'
import { pino } from 'pino'
import { loadConfig } from './config.js'
import { startWorker } from './worker.js'

const SHUTDOWN_GRACE_MS = 30_000

const config = loadConfig()
// OpenTelemetry SDK only when OTEL_EXPORTER_OTLP_ENDPOINT is set; spans are no-ops otherwise.
const tracing = await startTracingFromEnv('opensym-worker')
const log = pino({ level: config.logLevel, base: { service: 'worker', pid: process.pid } })
const worker = await startWorker(config, log).catch((err: unknown) => {
  log.fatal({ err }, 'worker failed to start')
  process.exit(1)
})

const stop = (signal: string) => {
  log.info({ signal }, 'shutting down')
  setTimeout(() => {
    log.error('shutdown took too long; exiting')
    process.exit(1)
  }, SHUTDOWN_GRACE_MS).unref()
  void worker
    .stop()
    .then(() => tracing?.shutdown())
    .then(() => process.exit(0))
}
process.once('SIGINT', () => stop('SIGINT'))
process.once('SIGTERM', () => stop('SIGTERM'))
