/**
 * `GET /metrics` of the API after a run went through it: request latencies by route template, runs by status and
 * queue depths, read back through the exposition format.
 */
import { QUEUE_NAMES } from '@opensym/engine'
import { parseExposition } from '@opensym/metrics/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { startRunHarness, type RunHarness } from './run-harness.js'

let h: RunHarness
beforeAll(async () => {
  h = await startRunHarness('metrics')
})
afterAll(async () => {
  await h?.close()
})

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i

describe('GET /metrics on the API', () => {
  it('after a run: request latency by route template, runs by status and queue depths', async () => {
    const runId = await h.approvedRun(3600)
    await h.runIs(runId, 'escalated')
    await h.app.inject({ method: 'GET', url: '/no/such/path' })

    const res = await h.app.inject({ method: 'GET', url: '/metrics' })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/)
    const m = parseExposition(res.body)

    // Latency of the requests just made, by route template, method and status class.
    expect(m.types.get('opensym_http_request_duration_seconds')).toBe('histogram')
    const request = { route: '/api/v1/events/request', method: 'POST', status_class: '2xx' }
    expect(m.value('opensym_http_request_duration_seconds_count', request)).toBe(1)
    expect(m.value('opensym_http_request_duration_seconds_bucket', { ...request, le: '+Inf' })).toBe(1)
    expect(m.value('opensym_http_request_duration_seconds_sum', request)).toBeGreaterThan(0)
    expect(m.value('opensym_http_request_duration_seconds_count', { route: '/api/v1/runs/:id', method: 'GET', status_class: '2xx' })).toBeGreaterThanOrEqual(1)
    expect(m.value('opensym_http_request_duration_seconds_count', { route: '/api/v1/entities/flows', method: 'POST', status_class: '2xx' })).toBe(1)
    expect(m.value('opensym_http_request_duration_seconds_count', { route: 'unmatched', method: 'GET', status_class: '4xx' })).toBe(1)
    // Buckets are cumulative.
    const buckets = m.find('opensym_http_request_duration_seconds_bucket', request).map((s) => s.value)
    expect(buckets).toEqual([...buckets].sort((a, b) => a - b))
    // Route templates only: no ids, no raw paths.
    const routes = new Set(m.find('opensym_http_request_duration_seconds_count').map((s) => s.labels.route!))
    for (const route of routes) expect(route).not.toMatch(UUID)
    expect(routes.has('/no/such/path')).toBe(false)

    // Runs by status: every status, this run among the escalated ones.
    expect(m.find('opensym_runs').map((s) => s.labels.status).sort()).toEqual(['approved', 'deescalated', 'denied', 'errored', 'escalated', 'expired', 'requested'])
    expect(m.value('opensym_runs', { status: 'escalated' })).toBeGreaterThanOrEqual(1)

    // Queue depths: every engine queue and state; the run's de-escalation waits in the delayed set for its hour.
    for (const queue of Object.values(QUEUE_NAMES)) {
      for (const state of ['waiting', 'delayed', 'active', 'failed']) expect(m.value('opensym_queue_jobs', { queue, state })).toBeGreaterThanOrEqual(0)
    }
    // (At least: the database is shared with other test files, whose escalated runs the reconciler schedules too.)
    expect(m.value('opensym_queue_jobs', { queue: 'deescalate', state: 'delayed' })).toBeGreaterThanOrEqual(1)

    // The process's own metrics.
    expect(m.find('process_cpu_user_seconds_total')).toHaveLength(1)
    expect(m.find('nodejs_eventloop_lag_seconds')).toHaveLength(1)
    // Nothing failed to read.
    expect(m.sum('opensym_metrics_source_errors_total')).toBe(0)
  })

  it('is off with METRICS_ENABLED=false', async () => {
    expect(loadConfig({ METRICS_ENABLED: 'false' }).metricsEnabled).toBe(false)
    expect(loadConfig({}).metricsEnabled).toBe(true)
    expect(() => loadConfig({ METRICS_ENABLED: 'sometimes' })).toThrow(/METRICS_ENABLED/)
    const app = await buildApp({ config: { logLevel: 'silent', metricsEnabled: false }, db: h.db, redis: h.redis, queues: h.queues })
    try {
      expect((await app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(404)
    } finally {
      await app.close()
    }
  })
})
