/**
 * The registry, the scrape-time sources (cached, bounded, failing alone) and the trace-context helpers, read back
 * through the exposition format as Prometheus would.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createDb, type Db } from '@opensym/db'
import { afterAll, describe, expect, inject, it } from 'vitest'
import {
  deliveryBacklogFromDb,
  extractTraceContext,
  inSpan,
  instrumentSandbox,
  observeHttpRequest,
  recordDeliveryFailure,
  recordDeliveryLag,
  recordSandboxCall,
  recordSandboxResult,
  registry,
  startTracingFromEnv,
  trace,
  TRACE_KEY,
  watchDeliveryBacklog,
  watchQueues,
  watchRuns,
  watchSandbox,
  withTraceContext,
  type QueueLike,
} from '../src/index.js'
import { parseExposition } from '../src/testing.js'

const scrape = async () => parseExposition(await registry.metrics())
const never = <T>() => new Promise<T>(() => {})

let db: Db | undefined
afterAll(async () => {
  await db?.$disconnect()
})

describe('metrics recorded on hot paths', () => {
  it('sandbox calls: a latency histogram by call kind and outcome, and failures by kind', async () => {
    recordSandboxCall('identity', 12, 'ok')
    recordSandboxCall('identity', 1000, 'timeout')
    const result = recordSandboxResult('reducer', { ok: false as const, durationMs: 3, error: { kind: 'error' } })
    expect(result.error.kind).toBe('error')
    const m = await scrape()
    expect(m.types.get('opensym_sandbox_call_duration_seconds')).toBe('histogram')
    expect(m.value('opensym_sandbox_call_duration_seconds_count', { call: 'identity', outcome: 'ok' })).toBe(1)
    expect(m.value('opensym_sandbox_call_duration_seconds_sum', { call: 'identity', outcome: 'timeout' })).toBe(1)
    // 12 ms lands in the 25 ms bucket, not the 10 ms one.
    expect(m.value('opensym_sandbox_call_duration_seconds_bucket', { call: 'identity', outcome: 'ok', le: '0.01' })).toBe(0)
    expect(m.value('opensym_sandbox_call_duration_seconds_bucket', { call: 'identity', outcome: 'ok', le: '0.025' })).toBe(1)
    expect(m.value('opensym_sandbox_call_failures_total', { call: 'identity', kind: 'timeout' })).toBe(1)
    expect(m.value('opensym_sandbox_call_failures_total', { call: 'reducer', kind: 'error' })).toBe(1)
    expect(m.find('opensym_sandbox_call_failures_total', { kind: 'ok' })).toEqual([])
  })

  it('HTTP requests by route template and status class; deliveries by destination type', async () => {
    observeHttpRequest('/api/v1/runs/:id', 'GET', 404, 0.002)
    observeHttpRequest(undefined, 'GET', 404, 0.001)
    recordDeliveryLag('http', 1.5)
    recordDeliveryFailure('s3')
    const m = await scrape()
    expect(m.value('opensym_http_request_duration_seconds_count', { route: '/api/v1/runs/:id', method: 'GET', status_class: '4xx' })).toBe(1)
    expect(m.value('opensym_http_request_duration_seconds_count', { route: 'unmatched', status_class: '4xx' })).toBe(1)
    expect(m.value('opensym_log_delivery_lag_seconds_bucket', { destination_type: 'http', le: '2.5' })).toBe(1)
    expect(m.value('opensym_log_delivery_lag_seconds_bucket', { destination_type: 'http', le: '1' })).toBe(0)
    expect(m.value('opensym_log_delivery_failures_total', { destination_type: 's3' })).toBe(1)
  })
})

describe('an instrumented sandbox', () => {
  it('times loads and the calls of what it loads, and reports its stats until closed', async () => {
    const flow = {
      key: 'f:1',
      has: (name: string) => name === 'onApprove',
      callHook: async (name: string) => ({ ok: false as const, durationMs: 40, error: { kind: 'timeout', message: `${name} timed out` }, logs: [] }),
      callReducer: async () => ({ ok: true as const, durationMs: 2, value: { allowed: true }, logs: [] }),
    }
    let closed = false
    const sandbox = instrumentSandbox({
      load: async (key: string) => (key === 'broken' ? { ok: false as const, error: { kind: 'compile', message: 'syntax' } } : { ok: true as const, flow }),
      stats: () => ({ flows: 4, isolates: 2 }),
      close: async () => {
        closed = true
      },
    })
    const loaded = await sandbox.load('f:1')
    expect(loaded.ok).toBe(true)
    if (!loaded.ok) return
    expect(loaded.flow.key).toBe('f:1')
    expect(loaded.flow.has('onApprove')).toBe(true)
    expect(await loaded.flow.callHook('onApprove')).toMatchObject({ ok: false, error: { kind: 'timeout' } })
    expect(await loaded.flow.callReducer()).toMatchObject({ ok: true, value: { allowed: true } })
    expect(await sandbox.load('broken')).toMatchObject({ ok: false, error: { kind: 'compile' } })

    let m = await scrape()
    expect(m.value('opensym_sandbox_call_duration_seconds_count', { call: 'load', outcome: 'ok' })).toBe(1)
    expect(m.value('opensym_sandbox_call_failures_total', { call: 'load', kind: 'compile' })).toBe(1)
    expect(m.value('opensym_sandbox_call_duration_seconds_sum', { call: 'hook', outcome: 'timeout' })).toBeCloseTo(0.04)
    expect(m.value('opensym_sandbox_call_failures_total', { call: 'hook', kind: 'timeout' })).toBe(1)
    expect(m.value('opensym_sandbox_call_duration_seconds_count', { call: 'reducer', outcome: 'ok' })).toBe(1)
    expect(m.value('opensym_sandbox_isolates')).toBe(2)
    expect(m.value('opensym_sandbox_flows')).toBe(4)
    await sandbox.close()
    expect(closed).toBe(true)
    m = await scrape()
    expect(m.value('opensym_sandbox_isolates')).toBe(0)
  })
})

describe('scrape-time sources', () => {
  it('runs by status from PostgreSQL: every status, 0 when none', async () => {
    db = createDb(inject('databaseUrl'), { poolSize: 1 })
    const dispose = watchRuns(db, { cacheMs: 0 })
    try {
      const m = await scrape()
      const statuses = m.find('opensym_runs').map((s) => s.labels.status)
      expect(statuses.sort()).toEqual(['approved', 'deescalated', 'denied', 'errored', 'escalated', 'expired', 'requested'])
      for (const s of m.find('opensym_runs')) expect(s.value).toBeGreaterThanOrEqual(0)
    } finally {
      dispose()
    }
    expect((await scrape()).find('opensym_runs')).toEqual([])
  })

  it('reads a source at most once per cacheMs, sharing a read between concurrent scrapes', async () => {
    let reads = 0
    const fake = {
      $queryRaw: async () => {
        reads++
        return [{ status: 'escalated', n: 3 }]
      },
    } as unknown as Pick<Db, '$queryRaw'>
    const dispose = watchRuns(fake, { cacheMs: 60_000 })
    try {
      const [a] = await Promise.all([scrape(), scrape()])
      await scrape()
      expect(reads).toBe(1)
      expect(a.value('opensym_runs', { status: 'escalated' })).toBe(3)
      expect(a.value('opensym_runs', { status: 'requested' })).toBe(0)
    } finally {
      dispose()
    }
  })

  it('queue depths per queue and state; the latest registration of a queue name wins', async () => {
    const queue = (name: string, waiting: number): QueueLike => ({ name, getJobCounts: async () => ({ waiting, delayed: 2, active: 0, failed: 1 }) })
    const first = watchQueues([queue('request', 1), queue('escalate', 4)], { cacheMs: 0 })
    const second = watchQueues(() => [queue('request', 7)], { cacheMs: 0 })
    try {
      const m = await scrape()
      expect(m.value('opensym_queue_jobs', { queue: 'request', state: 'waiting' })).toBe(7)
      expect(m.value('opensym_queue_jobs', { queue: 'escalate', state: 'waiting' })).toBe(4)
      expect(m.value('opensym_queue_jobs', { queue: 'escalate', state: 'delayed' })).toBe(2)
      expect(m.value('opensym_queue_jobs', { queue: 'escalate', state: 'failed' })).toBe(1)
      expect(m.find('opensym_queue_jobs', { queue: 'escalate' }).map((s) => s.labels.state).sort()).toEqual(['active', 'delayed', 'failed', 'waiting'])
    } finally {
      first()
      second()
    }
  })

  it('a source that fails or hangs drops only its own series and counts an error', async () => {
    const errorsBefore = (await scrape()).sum('opensym_metrics_source_errors_total')
    const disposers = [
      watchQueues([{ name: 'request', getJobCounts: () => Promise.reject(new Error('redis down')) }], { cacheMs: 0 }),
      watchRuns({ $queryRaw: () => never() } as unknown as Pick<Db, '$queryRaw'>, { cacheMs: 0, timeoutMs: 20 }),
      watchSandbox(() => ({ flows: 2, isolates: 3 })),
    ]
    try {
      const m = await scrape()
      expect(m.find('opensym_queue_jobs')).toEqual([])
      expect(m.find('opensym_runs')).toEqual([])
      expect(m.value('opensym_metrics_source_errors_total', { source: 'queues' })).toBeGreaterThanOrEqual(1)
      expect(m.value('opensym_metrics_source_errors_total', { source: 'runs' })).toBeGreaterThanOrEqual(1)
      expect(m.sum('opensym_metrics_source_errors_total')).toBe(errorsBefore + 2)
      // The rest of the scrape is there.
      expect(m.value('opensym_sandbox_isolates')).toBe(3)
      expect(m.value('opensym_sandbox_flows')).toBe(2)
    } finally {
      disposers.forEach((d) => d())
    }
    // Gauges without labels always have a value: no sandbox, no isolates.
    expect((await scrape()).value('opensym_sandbox_isolates')).toBe(0)
  })

  it('log delivery backlog per destination from a registered reader', async () => {
    const dispose = watchDeliveryBacklog(async () => [
      { destinationId: 'd1', destinationType: 'http', pending: 0, oldestPendingSeconds: 0 },
      { destinationId: 'd2', destinationType: 's3', pending: 12, oldestPendingSeconds: 95.5 },
    ])
    try {
      const m = await scrape()
      expect(m.value('opensym_log_delivery_pending', { destination_id: 'd2', destination_type: 's3' })).toBe(12)
      expect(m.value('opensym_log_delivery_oldest_pending_seconds', { destination_id: 'd2' })).toBe(95.5)
      expect(m.value('opensym_log_delivery_oldest_pending_seconds', { destination_id: 'd1' })).toBe(0)
    } finally {
      dispose()
    }
  })
})

describe('log delivery backlog from PostgreSQL', () => {
  it('per destination attached to an environment: entries after its cursor and the age of the first of them', async () => {
    db ??= createDb(inject('databaseUrl'), { poolSize: 1 })
    const org = await db.organization.create({ data: { slug: `metrics-${randomBytes(4).toString('hex')}` } })
    const env = await db.environment.create({ data: { orgId: org.id, slug: 'prod' } })
    const destination = (type: string) => db!.logDestination.create({ data: { orgId: org.id, type, slug: `${type}-${randomBytes(2).toString('hex')}` } })
    const [behind, fresh, dead, detached] = [await destination('http'), await destination('s3'), await destination('datadog'), await destination('segment')]
    for (const [position, d] of [behind, fresh, dead].entries()) {
      await db.environmentLogDestination.create({ data: { environmentId: env.id, logDestinationId: d.id, position } })
    }
    // Five entries, the first ten minutes old, one a minute after the other.
    const start = Date.now() - 600_000
    for (let seq = 1; seq <= 5; seq++) {
      await db.auditEntry.create({
        data: { id: randomUUID(), orgId: org.id, seq, runId: randomUUID(), eventId: randomUUID(), eventType: 'request', timestamp: new Date(start + (seq - 1) * 60_000), entry: {}, prevHash: '0'.repeat(64), hash: '0'.repeat(64) },
      })
    }
    await db.auditChainHead.create({ data: { orgId: org.id, seq: 5, hash: '0'.repeat(64) } })
    await db.logDelivery.create({ data: { destinationId: behind.id, deliveredSeq: 2 } })
    await db.logDelivery.create({ data: { destinationId: dead.id, deliveredSeq: 5, status: 'dead' } })

    const rows = await deliveryBacklogFromDb(db)()
    const of = (id: string) => rows.find((r) => r.destinationId === id)
    // 3 entries after seq 2; the first of them (seq 3) is 8 minutes old.
    expect(of(behind.id)).toMatchObject({ destinationType: 'http', pending: 3, dead: false })
    expect(of(behind.id)!.oldestPendingSeconds).toBeGreaterThanOrEqual(480)
    expect(of(behind.id)!.oldestPendingSeconds).toBeLessThan(3600)
    // Never attempted yet: everything is pending, from the first entry.
    expect(of(fresh.id)).toMatchObject({ destinationType: 's3', pending: 5, dead: false })
    expect(of(fresh.id)!.oldestPendingSeconds).toBeGreaterThanOrEqual(600)
    expect(of(dead.id)).toMatchObject({ pending: 0, oldestPendingSeconds: 0, dead: true })
    // Attached to no environment: nothing to deliver, not reported.
    expect(of(detached.id)).toBeUndefined()

    const dispose = watchDeliveryBacklog(deliveryBacklogFromDb(db), { cacheMs: 0 })
    try {
      const m = await scrape()
      expect(m.value('opensym_log_delivery_pending', { destination_id: behind.id, destination_type: 'http' })).toBe(3)
      expect(m.value('opensym_log_delivery_dead', { destination_id: dead.id })).toBe(1)
      expect(m.value('opensym_log_delivery_dead', { destination_id: behind.id })).toBe(0)
    } finally {
      dispose()
    }
  })
})

describe('the SDK from the environment', () => {
  it('does nothing without OTEL_EXPORTER_OTLP_ENDPOINT, and exports spans over OTLP/HTTP with it', async () => {
    expect(await startTracingFromEnv('test', {})).toBeUndefined()
    expect(await startTracingFromEnv('test', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1', OTEL_SDK_DISABLED: 'true' })).toBeUndefined()

    const received: { path: string; type: string | undefined; body: string }[] = []
    const collector = createServer((req, res) => {
      let body = ''
      req.on('data', (d: Buffer) => (body += d.toString()))
      req.on('end', () => {
        received.push({ path: req.url ?? '', type: req.headers['content-type'], body })
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
      })
    })
    await new Promise<void>((ok) => collector.listen(0, '127.0.0.1', ok))
    try {
      const { port } = collector.address() as AddressInfo
      const tracing = await startTracingFromEnv('opensym-test', { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, OTEL_SERVICE_NAME: 'opensym-custom' })
      expect(tracing).toBeDefined()
      try {
        await inSpan('exported span', {}, async () => {})
      } finally {
        await tracing!.shutdown()
      }
      expect(received.map((r) => r.path)).toEqual(['/v1/traces'])
      // OTLP/HTTP with protobuf by default; the names are readable in the bytes either way.
      expect(received[0]!.body).toContain('exported span')
      expect(received[0]!.body).toContain('opensym-custom')
    } finally {
      await new Promise((ok) => collector.close(ok))
    }
  })
})

describe('trace context in job data', () => {
  it('is a no-op without an SDK: the data is passed on as it is', async () => {
    const data = { eventId: 'e' }
    await inSpan('outer', {}, async () => {
      expect(withTraceContext(data)).toBe(data)
    })
    expect(trace.getSpanContext(extractTraceContext({ eventId: 'e' }))).toBeUndefined()
  })

  it('with the SDK: the producer span travels in the data and is the consumer span’s parent', async () => {
    const { InMemorySpanExporter, startTracing } = await import('../src/otel.js')
    const exporter = new InMemorySpanExporter()
    const tracing = startTracing({ serviceName: 'test', exporter })
    try {
      const sent = await inSpan('publish', {}, async () => withTraceContext({ eventId: 'e' }))
      const carrier = (sent as Record<string, unknown>)[TRACE_KEY] as Record<string, string>
      expect(carrier.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)
      // What a worker sees after JSON went through Redis.
      const received: unknown = JSON.parse(JSON.stringify(sent))
      await inSpan('process', { parent: extractTraceContext(received) }, async () => {})
      const [publish, processed] = exporter.getFinishedSpans()
      expect(processed!.spanContext().traceId).toBe(publish!.spanContext().traceId)
      expect(processed!.parentSpanContext?.spanId).toBe(publish!.spanContext().spanId)
    } finally {
      await tracing.shutdown()
    }
  })
})
