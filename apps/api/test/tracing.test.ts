/**
 * OpenTelemetry traces with the SDK registered and an in-memory exporter: a request through the API continues in
 * the queue, the worker and the strategy call as one trace (API request span → enqueue → worker step → strategy).
 */
import { InMemorySpanExporter, startTracing, type ReadableSpan } from '@opensym/metrics/otel'
import { SpanKind, SpanStatusCode, type Tracing } from '@opensym/metrics'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startRunHarness, type RunHarness } from './run-harness.js'

let h: RunHarness
let tracing: Tracing
const exporter = new InMemorySpanExporter()

beforeAll(async () => {
  tracing = startTracing({ serviceName: 'opensym-test', exporter })
  h = await startRunHarness('tracing')
})
afterAll(async () => {
  await h?.close()
  await tracing?.shutdown()
})

const spans = () => exporter.getFinishedSpans()
const named = (name: string, traceId?: string) => spans().filter((s) => s.name === name && (!traceId || s.spanContext().traceId === traceId))
const parentOf = (span: ReadableSpan) => spans().find((s) => s.spanContext().spanId === span.parentSpanContext?.spanId)

async function eventually<T>(check: () => T | undefined, what: string): Promise<T> {
  const until = Date.now() + 10_000
  for (;;) {
    const v = check()
    if (v !== undefined) return v
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}; spans: ${spans().map((s) => s.name).join(', ')}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

describe('tracing', () => {
  it('a request and its approval through the API: spans from the HTTP request to the strategy call, in one trace each', async () => {
    // The caller's trace is continued (W3C traceparent).
    const callerTrace = '4bf92f3577b34da6a3ce929d0e0e4736'
    const runId = await h.approvedRun(3600, { headers: { traceparent: `00-${callerTrace}-00f067aa0ba902b7-01` } })
    await h.runIs(runId, 'escalated')

    const approveRequest = await eventually(() => named('POST /api/v1/events/approve')[0], 'the approve request span')
    const traceId = approveRequest.spanContext().traceId
    expect(traceId).toBe(callerTrace)
    expect(approveRequest.kind).toBe(SpanKind.SERVER)
    expect(approveRequest.attributes).toMatchObject({ 'http.route': '/api/v1/events/approve', 'http.response.status_code': 200 })

    // API request → enqueue → worker step → its next step (in the same job) → strategy call: each the parent of the next.
    const strategyCall = await eventually(() => named('strategy http escalate', traceId)[0], 'the strategy call span')
    const chain: ReadableSpan[] = [strategyCall]
    for (let s = parentOf(strategyCall); s; s = parentOf(s)) chain.unshift(s)
    expect(chain.map((s) => s.name)).toEqual([
      'POST /api/v1/events/approve',
      'publish approve',
      'process approve',
      'process escalate',
      'strategy http escalate',
    ])
    expect(chain.map((s) => s.kind)).toEqual([SpanKind.SERVER, SpanKind.PRODUCER, SpanKind.CONSUMER, SpanKind.INTERNAL, SpanKind.CLIENT])
    for (const s of chain) expect(s.spanContext().traceId).toBe(traceId)
    expect(chain[2]!.attributes).toMatchObject({ 'messaging.destination.name': 'approve', 'opensym.step.result': 'done', 'opensym.job.attempt': 1 })
    expect(chain[3]!.attributes).toMatchObject({ 'messaging.destination.name': 'escalate', 'opensym.step.result': 'done', 'opensym.step.inline': true })
    expect(chain[4]!.attributes).toMatchObject({ 'opensym.strategy.type': 'http', 'opensym.strategy.operation': 'escalate' })
    // The scheduled de-escalation is enqueued within the escalation, so when it runs it joins this trace too.
    expect(named('publish deescalate', traceId).map((s) => parentOf(s)?.name)).toEqual(['process escalate'])

    // The request: API → enqueue → worker, and its expiry scheduled in the same trace.
    const request = named('POST /api/v1/events/request', callerTrace)
    expect(request).toHaveLength(1)
    const processRequest = await eventually(() => named('process request', callerTrace)[0], 'the request step span')
    expect(parentOf(processRequest)?.name).toBe('publish request')
    expect(parentOf(parentOf(processRequest)!)?.spanContext().spanId).toBe(request[0]!.spanContext().spanId)
    expect(named('publish expire-request', callerTrace)).toHaveLength(1)
    // Nothing failed.
    expect(spans().filter((s) => s.status.code === SpanStatusCode.ERROR).map((s) => s.name)).toEqual([])
  })

  it('a run is one trace: a decision made in another trace joins the run’s, linked to the request that made it', async () => {
    exporter.reset()
    const runId = await h.approvedRun(3600, { targetId: h.targetIds[1] })
    await h.runIs(runId, 'escalated')
    const strategyCall = await eventually(() => named('strategy http escalate')[0], 'the strategy call span')
    const [request] = named('POST /api/v1/events/request')
    const [approve] = named('POST /api/v1/events/approve')
    const runTrace = request!.spanContext().traceId
    // Two API requests, two traces of their own…
    expect(approve!.spanContext().traceId).not.toBe(runTrace)
    // …and every step of the run in the trace of the request that created it.
    for (const name of ['process request', 'process approve', 'process escalate']) expect(named(name).map((s) => s.spanContext().traceId)).toEqual([runTrace])
    expect(strategyCall.spanContext().traceId).toBe(runTrace)
    const processApprove = named('process approve')[0]!
    expect(parentOf(processApprove)?.name).toBe('publish request')
    // The approval's own trace is one click away.
    const [publishApprove] = named('publish approve')
    expect(publishApprove!.spanContext().traceId).toBe(approve!.spanContext().traceId)
    expect(processApprove.links.map((l) => l.context.spanId)).toEqual([publishApprove!.spanContext().spanId])
    expect(parentOf(strategyCall)?.name).toBe('process escalate')
  })

  it('de-escalations done in an expiry batch show in each run’s trace', async () => {
    const traces = ['5bf92f3577b34da6a3ce929d0e0e4701', '5bf92f3577b34da6a3ce929d0e0e4702']
    const runIds = await Promise.all(traces.map((t) => h.approvedRun(1, { headers: { traceparent: `00-${t}-00f067aa0ba902b7-01` }, targetId: h.targetIds[traces.indexOf(t)] })))
    for (const [i, runId] of runIds.entries()) {
      await h.runIs(runId, 'deescalated')
      const span = await eventually(() => named('deescalate (expiry batch)', traces[i]).find((s) => s.attributes['opensym.run.id'] === runId), `the batch span of run ${runId}`)
      expect(span.attributes['opensym.batch.size']).toBeGreaterThanOrEqual(1)
      expect(span.parentSpanContext?.spanId).toBeDefined()
    }
  })

  it('a request without a caller trace starts its own', async () => {
    exporter.reset()
    const res = await h.app.inject({ method: 'GET', url: '/healthz' })
    expect(res.statusCode).toBe(200)
    const span = await eventually(() => named('GET /healthz')[0], 'the health check span')
    expect(span.parentSpanContext).toBeUndefined()
  })
})
