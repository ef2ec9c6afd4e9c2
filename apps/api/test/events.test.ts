/**
 * The Events API end to end: configuration pushed through the entities API (as Terraform does), requests and
 * decisions over HTTP (app.inject), an in-process engine worker, and the real `http` strategy POSTing to a local
 * receiver. PostgreSQL and Redis are real; the queues live under a prefix of this file's own.
 */
import { randomBytes } from 'node:crypto'
import { createDb, type Db } from '@opensym/db'
import { builtinStrategies, chainAudit, ENGINE_ERRORS, EngineQueues, jobIds, startEngineWorker, verifyAuditChain, type EngineWorker } from '@opensym/engine'
import { createTestOrg, startHttpReceiver, type HttpReceiver, type TestOrg } from '@opensym/testing'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { buildApp } from '../src/app.js'
import { ERRORS, kindOfCode } from '../src/errors.js'

let db: Db
let redis: Redis
let queues: EngineQueues
let app: FastifyInstance
/** The same API with a one-second request expiry. */
let quickExpiryApp: FastifyInstance
let worker: EngineWorker
let receiver: HttpReceiver
let org: TestOrg
let flowSlug: string
let targets: { db: string; cache: string }

// Responses are read as loose JSON; the schemas under test check their shape.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>

async function api(method: 'GET' | 'POST', url: string, opts: { token?: string; body?: unknown; on?: FastifyInstance } = {}) {
  const res = await (opts.on ?? app).inject({
    method,
    url: `/api/v1/${url}`,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${opts.token ?? org.tokens.bot}` },
    payload: JSON.stringify(opts.body ?? null),
  })
  return { status: res.statusCode, body: res.json<Json>() }
}

async function ok(method: 'GET' | 'POST', url: string, opts: { token?: string; body?: unknown; on?: FastifyInstance } = {}): Promise<Json> {
  const res = await api(method, url, opts)
  if (res.status >= 300) throw new Error(`${method} ${url} → ${res.status}: ${JSON.stringify(res.body)}`)
  return res.body
}

async function eventually<T>(check: () => Promise<T | undefined | false>, what: string, timeoutMs = 15_000): Promise<T> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v !== undefined && v !== false) return v
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** Polls GET /runs/{id} until the run has `status` and no pending event. */
const runIs = (runId: string, status: string) =>
  eventually(async () => {
    const run = await ok('GET', `runs/${runId}`)
    return run.status === status && (run.events as Json[]).every((e) => e.status !== 'pending') && run
  }, `run ${runId} to be ${status}`)

/** What the receiver got for one run. */
const received = (type: 'escalate' | 'deescalate', runId: string) =>
  receiver.received(type).filter((r) => (r.json as Json).run.srn.endsWith(runId))

const request = (flowInputs: Json, extra: Json = {}) =>
  ok('POST', 'events/request', { body: { flow_srn: `${org.slug}:flow:${flowSlug}:latest`, flow_inputs: flowInputs, user_email: 'member@example.com', ...extra } })

async function escalatedRun(duration: number, target = targets.db): Promise<Json> {
  const { run_id } = await request({ reason: 'incident 42', duration, target_id: target })
  await ok('POST', 'events/approve', { token: org.tokens.admin, body: { run_id } })
  return runIs(run_id, 'escalated')
}

beforeAll(async () => {
  db = createDb(inject('databaseUrl'), { poolSize: 8 })
  redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null })
  const prefix = `${inject('redisPrefix')}-events-${randomBytes(3).toString('hex')}`
  queues = new EngineQueues({ connection: redis, prefix })
  app = await buildApp({ config: { logLevel: 'silent' }, db, redis, queues })
  quickExpiryApp = await buildApp({ config: { logLevel: 'silent', requestExpirySeconds: 1 }, db, redis, queues })
  worker = await startEngineWorker({ db, connection: redis, prefix, strategies: builtinStrategies(), reconcileIntervalMs: 1000, concurrency: 5 })
  receiver = await startHttpReceiver()
  org = await createTestOrg(db, 'events')

  // What `terraform apply` of an http access flow creates.
  const env = await ok('POST', 'entities/environments', { body: { slug: 'prod' } })
  const db1 = await ok('POST', 'entities/access-targets', { body: { type: 'custom', slug: 'staging-db', label: 'Staging DB', settings: { identifier: 'staging' } } })
  const cache = await ok('POST', 'entities/access-targets', { body: { type: 'custom', slug: 'cache', label: 'Cache', settings: { identifier: 'cache' } } })
  const strategy = await ok('POST', 'entities/access-strategies', {
    body: { type: 'http', slug: 'grant', integration_id: '<null>', targets: [db1.id, cache.id], settings: { url: `${receiver.url}/grant` } },
  })
  flowSlug = 'db-access'
  await ok('POST', 'entities/flows', {
    body: {
      slug: 'DB-Access',
      implementation: Buffer.from('export {}').toString('base64'),
      environment_id: env.id,
      params: {
        strategy_id: strategy.id,
        allow_revoke: true,
        prompt_fields: [
          { name: 'reason', type: 'string', required: true },
          { name: 'duration', type: 'duration', required: true },
        ],
      },
    },
  })
  targets = { db: db1.id as string, cache: cache.id as string }
})

afterAll(async () => {
  await worker?.close()
  await app?.close()
  await quickExpiryApp?.close()
  await queues?.close()
  await receiver?.close()
  redis?.disconnect()
  await db?.$disconnect()
})

describe('an access request approved over the API', () => {
  it('is escalated through the http strategy, de-escalated automatically after its 2 s, and the run, events and audit show it all', async () => {
    const created = await request({ reason: 'incident 42', duration: 2, target_id: targets.db })
    expect(created).toEqual({ run_id: expect.stringMatching(/^[0-9a-f-]{36}$/), event_id: expect.stringMatching(/^[0-9a-f-]{36}$/) })
    const requestEvent = await eventually(async () => {
      const e = await ok('GET', `events/${created.event_id}`)
      return e.status === 'success' && e
    }, 'the request event')
    expect(requestEvent).toEqual({ run_id: created.run_id, name: 'request', status: 'success', timestamp: expect.any(String) })

    const approval = await ok('POST', 'events/approve', { token: org.tokens.admin, body: { run_id: created.run_id, decision_message: 'go' } })
    expect(approval).toEqual({ run_id: created.run_id, event_id: expect.any(String) })
    const escalated = await runIs(created.run_id, 'escalated')
    expect(received('escalate', created.run_id)).toHaveLength(1)
    const payload = received('escalate', created.run_id)[0]!.json as Json
    expect(payload).toMatchObject({
      type: 'event',
      meta: { schema_version: 6 },
      event: { type: 'escalate' },
      fields: { reason: 'incident 42', duration: 2, target: { name: 'staging-db', label: 'Staging DB', settings: { identifier: 'staging' } } },
      run: { srn: `${org.slug}:run:db-access:1:${created.run_id}` },
    })
    expect(Date.parse(escalated.expires_at) - Date.parse(escalated.escalated_at)).toBe(2000)

    const done = await runIs(created.run_id, 'deescalated')
    expect(received('deescalate', created.run_id)).toHaveLength(1)
    expect(done).toMatchObject({
      status: 'deescalated',
      flow: { slug: 'db-access', version: 1, srn: `${org.slug}:flow:db-access:1` },
      requester: { username: 'member@example.com' },
      target: { name: 'staging-db', type: 'custom', srn: expect.stringContaining(':access_target:custom:staging-db:latest:') },
      fields: { reason: 'incident 42', duration: 2, target_id: targets.db },
      duration: 2,
      actors: { request: { username: 'member@example.com' }, approve: { username: 'admin@example.com' }, escalate: { username: 'admin@example.com' } },
    })
    expect((done.events as Json[]).map((e) => [e.name, e.status, e.channel])).toEqual([
      ['request', 'success', 'api'],
      ['approve', 'success', 'api'],
      ['escalate', 'success', 'api'],
      ['deescalate', 'success', 'internal'],
    ])
    const [, approve, escalate, deescalate] = done.events as Json[]
    expect(approve!.fields).toEqual({ decision_message: 'go' })
    expect(escalate!.output).toEqual({ body: {}, errors: [] })
    expect(deescalate!.fields).toEqual({ deescalate_type: 'scheduled' })
    expect(done.events[0].submitted_by).toMatchObject({ username: 'terraform', type: 'bot' })
    // On time: within a few seconds of expires_at (generous for a loaded machine).
    const lateness = Date.parse(done.deescalated_at) - Date.parse(done.expires_at)
    expect(lateness).toBeGreaterThanOrEqual(0)
    expect(lateness).toBeLessThan(5000)

    await chainAudit(db.sql)
    const audit = await db.auditEntry.findMany({ where: { runId: created.run_id }, orderBy: { seq: 'asc' } })
    expect(audit.map((a) => a.eventType)).toEqual(['request', 'approve', 'escalate', 'deescalate'])
    expect(audit[3]!.entry).toMatchObject({ event: { type: 'deescalate', channel: 'internal' }, fields: { deescalate_type: 'scheduled' } })
    expect(await verifyAuditChain(db, org.id)).toMatchObject({ ok: true })

    // Nothing runs twice.
    await new Promise((r) => setTimeout(r, 1200))
    expect(received('deescalate', created.run_id)).toHaveLength(1)
  })

  it('revoked by the requester before expiry: exactly one de-escalation, and the scheduled one does nothing', async () => {
    const run = await escalatedRun(60)
    const res = await ok('POST', 'events/deescalate', { token: org.tokens.member, body: { run_id: run.id } })
    expect(res).toEqual({ event_id: expect.any(String), request_body: { run_id: run.id } })
    const done = await runIs(run.id, 'deescalated')
    expect(received('deescalate', run.id)).toHaveLength(1)
    expect((done.events as Json[]).at(-1)).toMatchObject({ name: 'deescalate', channel: 'api', fields: { deescalate_type: 'manual' }, actor: { username: 'member@example.com' } })
    expect(await ok('GET', `events/${res.event_id}`)).toMatchObject({ name: 'deescalate', status: 'success' })
    // The scheduled job was removed; had it fired anyway, it would find nothing to do.
    expect(await queues.jobState('deescalate', jobIds.deescalation(run.id))).toBe('unknown')
    expect(await worker.steps.scheduledDeescalation(run.id, { attempt: 1, maxAttempts: 1 })).toBe('noop')
    expect(received('deescalate', run.id)).toHaveLength(1)
    // A second revoke is refused in Sym's words.
    expect(await api('POST', 'events/deescalate', { body: { run_id: run.id } })).toMatchObject({
      status: 400,
      body: { code: 'DeescalateAPI:INVALID_RUN', message: "Cannot de-escalate a run with status 'deescalated'. Status must be 'escalated'." },
    })
  })

  it('two overlapping runs for the same user and target: the first expiry leaves the access, the second removes it', async () => {
    const first = await escalatedRun(2, targets.cache)
    const second = await escalatedRun(4, targets.cache)
    expect(received('escalate', first.id)).toHaveLength(1)
    expect(received('escalate', second.id)).toHaveLength(0)
    await runIs(first.id, 'deescalated')
    expect(received('deescalate', first.id)).toHaveLength(0)
    expect((await ok('GET', `runs/${second.id}`)).status).toBe('escalated')
    await runIs(second.id, 'deescalated')
    expect(received('deescalate', second.id)).toHaveLength(1)
    expect(received('deescalate', first.id)).toHaveLength(0)
  })
})

describe('decisions and the state machine', () => {
  it('deny ends the run without access', async () => {
    const { run_id } = await request({ reason: 'curious', duration: 60, target_id: targets.db })
    const denial = await ok('POST', 'events/deny', { token: org.tokens.admin, body: { run_id, decision_message: 'no' } })
    const done = await runIs(run_id, 'denied')
    expect(await ok('GET', `events/${denial.event_id}`)).toMatchObject({ name: 'deny', status: 'success' })
    expect((done.events as Json[]).map((e) => e.name)).toEqual(['request', 'deny'])
    expect(done.ended_at).not.toBeNull()
    expect(received('escalate', run_id)).toHaveLength(0)
    expect(await api('POST', 'events/approve', { token: org.tokens.admin, body: { run_id } })).toMatchObject({
      status: 400,
      body: { code: 'ApproveAPI:INVALID_RUN', message: "Cannot approve a run with status 'denied'. Status must be 'requested'." },
    })
  })

  it('a request nobody acts on expires', async () => {
    const created = await ok('POST', 'events/request', {
      on: quickExpiryApp,
      body: { flow_srn: flowSlug, flow_inputs: { reason: 'weekend', duration: '1h', target_id: targets.db }, user_email: 'member@example.com' },
    })
    const done = await runIs(created.run_id, 'expired')
    expect((done.events as Json[]).map((e) => [e.name, e.status, e.channel])).toEqual([
      ['request', 'success', 'api'],
      ['expire', 'success', 'internal'],
    ])
    expect(Date.parse(done.ended_at)).toBeGreaterThanOrEqual(Date.parse(done.request_expires_at))
    expect(await api('POST', 'events/approve', { token: org.tokens.admin, body: { run_id: created.run_id } })).toMatchObject({
      status: 400,
      body: { message: "Cannot approve a run with status 'expired'. Status must be 'requested'." },
    })
  })

  it("a de-escalation of a requested run gets Sym's 400", async () => {
    const { run_id } = await request({ reason: 'x', duration: 60, target_id: targets.db })
    expect(await api('POST', 'events/deescalate', { body: { run_id } })).toEqual({
      status: 400,
      body: {
        error: true,
        message: "Cannot de-escalate a run with status 'requested'. Status must be 'escalated'.",
        errors: [],
        code: 'DeescalateAPI:INVALID_RUN',
        status_code: 400,
        is_retryable: false,
      },
    })
  })

  it('only approvers decide: members are refused (403), and nobody approves their own request', async () => {
    const { run_id } = await request({ reason: 'x', duration: 60, target_id: targets.db })
    expect(await api('POST', 'events/approve', { token: org.tokens.member, body: { run_id } })).toMatchObject({
      status: 403,
      body: { code: 'EventsAPI:FORBIDDEN', message: 'You cannot approve or deny your own request.' },
    })
    expect(await api('POST', 'events/approve', { token: org.tokens.guest, body: { run_id } })).toMatchObject({ status: 404 })
    expect(await api('POST', 'events/approve', { body: { run_id: '00000000-0000-4000-8000-000000000000' } })).toMatchObject({ status: 404, body: { code: 'EventsAPI:NOT_FOUND' } })
  })
})

describe('request validation', () => {
  it('names the field at fault', async () => {
    const res = await api('POST', 'events/request', { body: { flow_srn: flowSlug, flow_inputs: { duration: '1h', target_id: targets.db } } })
    expect(res).toMatchObject({ status: 400, body: { code: 'EventsAPI:INVALID_REQUEST', errors: [{ field: 'flow_inputs.reason', message: 'is required' }], message: 'flow_inputs.reason: is required' } })
    const target = await api('POST', 'events/request', { body: { flow_srn: flowSlug, flow_inputs: { reason: 'x', duration: '1h', target_id: randomUUIDish() } } })
    expect(target).toMatchObject({ status: 400, body: { errors: [{ field: 'flow_inputs.target_id', message: expect.stringMatching(/is not a target of strategy "grant"/) }] } })
    const duration = await api('POST', 'events/request', { body: { flow_srn: flowSlug, flow_inputs: { reason: 'x', duration: '10y', target_id: targets.db } } })
    expect(duration).toMatchObject({ status: 400, body: { errors: [{ field: 'flow_inputs.duration' }] } })
    const schema = await api('POST', 'events/request', { body: { flow_inputs: {} } })
    expect(schema).toMatchObject({ status: 400, body: { code: 'EventsAPI:INVALID_REQUEST', errors: [{ field: 'flow_srn', message: 'is required' }] } })
    const srn = await api('POST', 'events/request', { body: { flow_srn: `${org.slug}:flow:nope:latest`, flow_inputs: {} } })
    expect(srn).toMatchObject({ status: 400, body: { errors: [{ field: 'flow_srn', message: 'no flow "nope" in this organization' }] } })
  })
})

describe('reading runs', () => {
  it('lists runs newest first, filtered by flow, status and requester, a page at a time', async () => {
    const all = await ok('GET', `runs?flow=${flowSlug}&requester=member@example.com&limit=2`)
    expect(all.runs).toHaveLength(2)
    expect(Date.parse(all.runs[0].created_at)).toBeGreaterThanOrEqual(Date.parse(all.runs[1].created_at))
    const seen = new Set<string>(all.runs.map((r: Json) => r.id))
    let cursor = all.next_cursor as string | null
    while (cursor) {
      const page = await ok('GET', `runs?flow=${flowSlug}&limit=2&cursor=${cursor}`)
      for (const r of page.runs as Json[]) {
        expect(seen.has(r.id)).toBe(false)
        seen.add(r.id)
      }
      cursor = page.next_cursor
    }
    expect(seen.size).toBe(await db.run.count({ where: { orgId: org.id, flowSlug } }))
    const denied = await ok('GET', 'runs?status=denied')
    expect(denied.runs.length).toBeGreaterThanOrEqual(1)
    expect((denied.runs as Json[]).every((r) => r.status === 'denied')).toBe(true)
    expect(await api('GET', 'runs?status=unknown')).toMatchObject({ status: 400 })
    expect(await api('GET', 'runs?cursor=bogus')).toMatchObject({ status: 400, body: { errors: [{ field: 'cursor' }] } })
    // Guests see only their own runs.
    expect((await ok('GET', 'runs', { token: org.tokens.guest })).runs).toEqual([])
  })

  it('404s unknown runs and events', async () => {
    expect(await api('GET', 'runs/00000000-0000-4000-8000-000000000000')).toMatchObject({ status: 404, body: { code: 'EventsAPI:NOT_FOUND' } })
    expect(await api('GET', 'events/not-a-uuid')).toMatchObject({ status: 404 })
  })
})

describe('error codes', () => {
  it('every engine error code is in the API registry with the same status', () => {
    for (const def of Object.values(ENGINE_ERRORS)) {
      const kind = kindOfCode(def.code)
      expect(kind, def.code).toBeDefined()
      expect(ERRORS[kind!].status).toBe(def.status)
    }
  })
})

function randomUUIDish(): string {
  return '00000000-0000-4000-8000-' + randomBytes(6).toString('hex')
}
