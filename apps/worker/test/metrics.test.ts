/**
 * The worker's `GET /metrics` after it processed a run whose escalation failed once and was retried: step
 * latencies, job failures, strategy calls, runs by status and queue depths, read back through the exposition format.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import { createDb, type Db, type Prisma } from '@opensym/db'
import type { Principal } from '@opensym/domain'
import { builtinStrategies, EngineQueues, RetryableStrategyError, RunService, type Strategy } from '@opensym/engine'
import { parseExposition } from '@opensym/metrics/testing'
import { createTestOrg, startHttpReceiver, type HttpReceiver, type TestOrg } from '@opensym/testing'
import { Redis } from 'ioredis'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { loadConfig } from '../src/config.js'
import { startWorker, type RunningWorker } from '../src/worker.js'

const silent = pino({ level: 'silent' })
let db: Db
let redis: Redis
let prefix: string
let queues: EngineQueues
let service: RunService
let receiver: HttpReceiver
let org: TestOrg
let bot: Principal
let admin: Principal
let worker: RunningWorker | undefined

const config = (env: Record<string, string> = {}) =>
  loadConfig({
    DATABASE_URL: inject('databaseUrl'),
    REDIS_URL: inject('redisUrl'),
    QUEUE_PREFIX: prefix,
    WORKER_METRICS_PORT: '0',
    JOB_BACKOFF_MS: '50',
    RECONCILE_INTERVAL_MS: '0',
    ...env,
  })

/** The http strategy, but the first escalation fails as a target that is briefly down would. */
function flakyStrategies() {
  const builtin = builtinStrategies()
  const http = builtin.get('http')!
  let failed = false
  const flaky: Strategy = {
    type: 'http',
    identity: (call) => http.identity(call),
    deescalate: (call) => http.deescalate(call),
    escalate: (call) => {
      if (failed) return http.escalate(call)
      failed = true
      return Promise.reject(new RetryableStrategyError('target unavailable (503)'))
    },
  }
  return new Map([...builtin, ['http', flaky]])
}

async function eventually<T>(check: () => Promise<T | undefined | false>, what: string, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v !== undefined && v !== false) return v
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

async function scrape(w: RunningWorker) {
  const res = await fetch(`${w.metrics!.url}/metrics`)
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
  return parseExposition(await res.text())
}

beforeAll(async () => {
  db = createDb(inject('databaseUrl'), { poolSize: 3 })
  redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null })
  prefix = `${inject('redisPrefix')}-metrics-${randomBytes(3).toString('hex')}`
  queues = new EngineQueues({ connection: redis, prefix })
  service = new RunService({ db, queues })
  receiver = await startHttpReceiver()
  org = await createTestOrg(db, 'wmetrics')
  const users = await db.user.findMany({ where: { orgId: org.id } })
  const principal = (u: (typeof users)[number]): Principal => ({ orgId: org.id, userId: u.id, userType: u.type, role: u.role })
  bot = principal(users.find((u) => u.type === 'bot')!)
  admin = principal(users.find((u) => u.role === 'admin' && u.type === 'normal')!)
})

afterAll(async () => {
  await worker?.stop()
  await queues?.close()
  await receiver?.close()
  redis?.disconnect()
  await db?.$disconnect()
})

describe('GET /metrics on the worker', () => {
  it('after a run whose escalation was retried once: step latencies, failures, strategy calls, runs and queues', async () => {
    worker = await startWorker(config(), silent, { strategies: flakyStrategies() })
    expect(worker.metrics?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)

    const env = await db.environment.upsert({ where: { orgId_slug: { orgId: org.id, slug: 'main' } }, update: {}, create: { orgId: org.id, slug: 'main' } })
    const strategy = await db.strategy.create({ data: { orgId: org.id, type: 'http', slug: 'grant', settings: { url: `${receiver.url}/grant` } } })
    const target = await db.target.create({ data: { orgId: org.id, type: 'custom', slug: 'db', settings: { identifier: 'db' } } })
    await db.strategyTarget.create({ data: { strategyId: strategy.id, targetId: target.id, position: 0 } })
    const params: Prisma.InputJsonValue = { prompt_fields: [{ name: 'duration', type: 'duration' }] }
    const flow = await db.flow.create({ data: { orgId: org.id, slug: 'access', implementation: 'export {}', environmentId: env.id, strategyId: strategy.id, params } })
    const { run_id } = await service.createRequest(bot, { flow_srn: flow.slug, flow_inputs: { duration: 3600, target_id: target.id }, user_email: 'member@example.com' })
    await service.decide(admin, 'approve', { run_id })
    await eventually(async () => {
      const run = await db.run.findUniqueOrThrow({ where: { id: run_id }, include: { events: true } })
      return run.status === 'escalated' && run.events.every((e) => e.status !== 'pending')
    }, 'the run to be escalated')

    const m = await scrape(worker)
    // Step latencies per queue and outcome: each step done, the escalation after one failed attempt.
    expect(m.types.get('opensym_step_duration_seconds')).toBe('histogram')
    for (const queue of ['request', 'approve', 'escalate']) {
      expect(m.value('opensym_step_duration_seconds_count', { queue, outcome: 'done' })).toBeGreaterThanOrEqual(1)
      expect(m.value('opensym_step_duration_seconds_sum', { queue, outcome: 'done' })).toBeGreaterThan(0)
      expect(m.value('opensym_step_duration_seconds_bucket', { queue, outcome: 'done', le: '+Inf' })).toBe(m.value('opensym_step_duration_seconds_count', { queue, outcome: 'done' }))
    }
    expect(m.value('opensym_step_duration_seconds_count', { queue: 'escalate', outcome: 'error' })).toBeGreaterThanOrEqual(1)
    // The failed attempt is a job failure, not a final one (it was retried).
    expect(m.value('opensym_queue_job_failures_total', { queue: 'escalate', final: 'false' })).toBeGreaterThanOrEqual(1)
    expect(m.find('opensym_queue_job_failures_total', { queue: 'escalate', final: 'true' })).toEqual([])
    // Strategy calls: the failed one and the one that granted.
    expect(m.value('opensym_strategy_call_duration_seconds_count', { strategy: 'http', operation: 'escalate', outcome: 'error' })).toBe(1)
    expect(m.value('opensym_strategy_call_duration_seconds_count', { strategy: 'http', operation: 'escalate', outcome: 'ok' })).toBeGreaterThanOrEqual(1)
    // Scrape-time: runs by status, and the run's de-escalation waiting for its hour.
    expect(m.value('opensym_runs', { status: 'escalated' })).toBeGreaterThanOrEqual(1)
    expect(m.value('opensym_queue_jobs', { queue: 'deescalate', state: 'delayed' })).toBeGreaterThanOrEqual(1)
    expect(m.value('opensym_queue_jobs', { queue: 'escalate', state: 'active' })).toBeGreaterThanOrEqual(0)
    // The other components' queues the worker runs.
    for (const queue of ['log-delivery', 'slack']) expect(m.find('opensym_queue_jobs', { queue }).map((s) => s.labels.state).sort()).toEqual(['active', 'delayed', 'failed', 'waiting'])
    expect(m.sum('opensym_metrics_source_errors_total')).toBe(0)
    // Sandbox gauges are always there; the process's own metrics too.
    expect(m.find('opensym_sandbox_isolates')).toHaveLength(1)
    expect(m.find('nodejs_heap_size_used_bytes')).toHaveLength(1)

    expect((await fetch(`${worker.metrics!.url}/other`)).status).toBe(404)
    expect((await fetch(`${worker.metrics!.url}/metrics`, { method: 'POST' })).status).toBe(405)
    const url = worker.metrics!.url
    await worker.stop()
    worker = undefined
    await expect(fetch(`${url}/metrics`)).rejects.toThrow()
  })

  it('is off with METRICS_ENABLED=false, and a port already taken does not stop the worker', async () => {
    expect(config({ METRICS_ENABLED: 'false' }).metricsEnabled).toBe(false)
    expect(loadConfig({})).toMatchObject({ metricsEnabled: true, metricsHost: '127.0.0.1', metricsPort: 9464 })
    expect(() => loadConfig({ WORKER_METRICS_PORT: '70000' })).toThrow(/WORKER_METRICS_PORT/)
    const off = await startWorker(config({ METRICS_ENABLED: 'false' }), silent)
    expect(off.metrics).toBeUndefined()
    await off.stop()

    const taken = createServer()
    await new Promise<void>((ok) => taken.listen(0, '127.0.0.1', ok))
    try {
      const port = (taken.address() as AddressInfo).port
      const w = await startWorker(config({ WORKER_METRICS_PORT: String(port) }), silent)
      expect(w.metrics?.url).toBeUndefined()
      expect(await w.redis.ping()).toBe('PONG')
      await w.stop()
    } finally {
      await new Promise((ok) => taken.close(ok))
    }
  })
})
