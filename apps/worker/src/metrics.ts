/**
 * The worker's `GET /metrics`: a small HTTP server of its own (the worker has no other), on WORKER_METRICS_HOST:
 * WORKER_METRICS_PORT. It serves the process's registry: step latencies and job failures measured as jobs run, and
 * runs by status and queue depths read at scrape time (cached briefly).
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Db } from '@opensym/db'
import { QUEUE_KINDS, type EngineQueues } from '@opensym/engine'
import { bullmqQueues, deliveryBacklogFromDb, enableProcessMetrics, registry, watchDeliveryBacklog, watchQueues, watchRuns, type Disposer, type SourceOptions } from '@opensym/metrics'
import type { Redis } from 'ioredis'
import type { Logger } from 'pino'

export interface WorkerMetrics {
  /** `http://host:port` of the server; undefined when it could not listen (the worker runs on without it). */
  readonly url: string | undefined
  close(): Promise<void>
}

export interface WorkerMetricsOptions {
  readonly host: string
  /** 0: any free port (tests). */
  readonly port: number
  readonly db: Db
  readonly queues: EngineQueues
  /** Queues of other components (log delivery, Slack) counted too, on `redis` under `prefix`. */
  readonly otherQueues?: { readonly redis: Redis; readonly prefix: string; readonly names: readonly string[] }
  readonly log: Logger
  readonly sources?: SourceOptions
}

export async function startWorkerMetrics(o: WorkerMetricsOptions): Promise<WorkerMetrics> {
  enableProcessMetrics()
  const others = o.otherQueues ? bullmqQueues(o.otherQueues.redis, o.otherQueues.prefix, o.otherQueues.names) : undefined
  const disposers: Disposer[] = [
    watchRuns(o.db, o.sources),
    watchQueues(() => [...QUEUE_KINDS.map((k) => o.queues.queue(k)), ...(others?.queues ?? [])], o.sources),
    watchDeliveryBacklog(deliveryBacklogFromDb(o.db), o.sources),
  ]
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end()
      return
    }
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: the worker serves GET /metrics only\n')
      return
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' }).end(req.method === 'HEAD' ? undefined : text),
      (err: unknown) => {
        o.log.warn({ err }, 'metrics scrape failed')
        res.writeHead(500, { 'content-type': 'text/plain' }).end('scrape failed\n')
      },
    )
  })
  // Scrapers keep connections alive; do not let them hold up shutdown.
  server.keepAliveTimeout = 5000
  const url = await listen(server, o.host, o.port).then(
    (address) => `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`,
    (err: unknown) => {
      // Another worker on this machine may hold the port (several workers, a drill): metrics are not worth a crash.
      o.log.error({ err, host: o.host, port: o.port }, 'metrics server could not listen; GET /metrics is not served by this worker')
      return undefined
    },
  )
  if (url) o.log.info({ url: `${url}/metrics` }, 'metrics served')
  let closed: Promise<void> | undefined
  return {
    url,
    close: () =>
      (closed ??= (async () => {
        disposers.forEach((dispose) => dispose())
        await others?.close()
        if (!url) return
        await new Promise<void>((ok) => {
          server.close(() => ok())
          server.closeAllConnections()
        })
      })()),
  }
}

function listen(server: Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((ok, fail) => {
    server.once('error', fail)
    server.listen(port, host, () => {
      server.off('error', fail)
      ok(server.address() as AddressInfo)
    })
  })
}
