/**
 * `GET /metrics` (Prometheus text format, unauthenticated like `/healthz`; `METRICS_ENABLED=false` turns it and the
 * request histograms off) and the request latency histogram. Per request only an in-memory histogram is updated;
 * runs by status and queue depths are read from PostgreSQL and Redis when scraped (cached briefly).
 */
import type { Db } from '@opensym/db'
import { QUEUE_KINDS, type EngineQueues } from '@opensym/engine'
import { deliveryBacklogFromDb, enableProcessMetrics, observeHttpRequest, registry, watchDeliveryBacklog, watchQueues, watchRuns, type SourceOptions } from '@opensym/metrics'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

export interface MetricsPluginOptions {
  readonly enabled: boolean
  readonly db: Db
  readonly queues: EngineQueues
  /** Scrape-time sources' cache (tests read fresh values). */
  readonly sources?: SourceOptions
}

export default fp<MetricsPluginOptions>(
  async function metrics(app: FastifyInstance, opts: MetricsPluginOptions) {
    if (!opts.enabled) return
    enableProcessMetrics()
    const disposers = [
      watchRuns(opts.db, opts.sources),
      watchQueues(() => QUEUE_KINDS.map((k) => opts.queues.queue(k)), opts.sources),
      watchDeliveryBacklog(deliveryBacklogFromDb(opts.db), opts.sources),
    ]
    app.addHook('onClose', async () => disposers.forEach((dispose) => dispose()))

    app.addHook('onResponse', (req, reply, done) => {
      observeHttpRequest(req.routeOptions.url, req.method, reply.statusCode, reply.elapsedTime / 1000)
      done()
    })

    // Scrapes every few seconds would flood the request log at info.
    app.get('/metrics', { schema: { hide: true }, logLevel: 'warn' }, async (_req, reply) => {
      reply.header('content-type', registry.contentType).header('cache-control', 'no-store')
      return registry.metrics()
    })
  },
  { name: 'metrics' },
)
