/**
 * The `custom` strategy end to end: a request through the engine (PostgreSQL, Redis, an in-process worker) to
 * escalation by the strategy's own implementation in the sandbox — `fetchRemoteIdentity` finding the requester in
 * a local back-office API through `strategy.fetch` (identity stored under service `custom`), `escalate` granting
 * the role with the integration's secret — and the automatic de-escalation; a `RetryableError` is retried; an
 * implementation that throws fails the escalate with its message, nothing granted, the error logger told.
 */
import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import { createDb, type Db } from '@opensym/db'
import { createSandbox, type Sandbox } from '@opensym/sandbox'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { EngineQueues } from '../src/queues.js'
import type { EngineFailure } from '../src/seams.js'
import { createSecretResolver } from '../src/secrets.js'
import { RunService } from '../src/service.js'
import { builtinStrategies } from '../src/strategies/index.js'
import { startEngineWorker, type EngineWorker } from '../src/worker.js'
import { eventually, orgWithPrincipals, queuePrefix, redisClient, type OrgPrincipals } from './fixtures.js'

const STRATEGY = readFileSync(new URL('../../sdk/test/fixtures/strategy.ts', import.meta.url), 'utf8')
const API_KEY = `bo-key-${randomBytes(6).toString('hex')}`

let db: Db
let redis: Redis
let queues: EngineQueues
let service: RunService
let worker: EngineWorker
let sandbox: Sandbox
let o: OrgPrincipals
let backOffice: Server
let baseUrl: string
const reported: EngineFailure[] = []

/** The back-office: users by email, roles per user; `failNext` answers the next role change with a status. */
const bo = { users: new Map([['member@example.com', 'u-member']]), roles: new Map<string, Set<string>>(), calls: [] as string[], failNext: [] as number[] }

beforeAll(async () => {
  backOffice = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    bo.calls.push(`${req.method} ${url.pathname}${url.search}`)
    if (req.headers.authorization !== `Bearer ${API_KEY}`) return void res.writeHead(401).end('unauthorized')
    if (req.method === 'GET' && url.pathname === '/users') {
      const id = bo.users.get(url.searchParams.get('email') ?? '')
      return void (id ? res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id })) : res.writeHead(404).end())
    }
    const m = /^\/users\/([^/]+)\/roles\/([^/]+)$/.exec(url.pathname)
    if (!m) return void res.writeHead(404).end()
    const status = bo.failNext.shift()
    if (status) return void res.writeHead(status, { 'retry-after': '0' }).end('busy')
    const held = bo.roles.get(m[1]!) ?? new Set<string>()
    bo.roles.set(m[1]!, held)
    if (req.method === 'PUT') held.add(m[2]!)
    else if (!held.delete(m[2]!)) return void res.writeHead(404).end()
    res.writeHead(204).end()
  })
  await new Promise<void>((resolve) => backOffice.listen(0, '127.0.0.1', resolve))
  baseUrl = `http://127.0.0.1:${(backOffice.address() as AddressInfo).port}`

  db = createDb(inject('databaseUrl'), { poolSize: 10 })
  redis = redisClient()
  const prefix = queuePrefix('custom')
  queues = new EngineQueues({ connection: redis, prefix, attempts: 3, backoffMs: 50 })
  service = new RunService({ db, queues })
  o = await orgWithPrincipals(db, 'custom')
  sandbox = createSandbox({ timeoutMs: 5000 })
  worker = await startEngineWorker({
    db,
    connection: redis,
    prefix,
    strategies: builtinStrategies({ sandbox, env: { OPENSYM_ALLOW_PRIVATE_NETWORKS: 'true' } }), // the back-office listens on 127.0.0.1
    secrets: (orgId, dbOrTx) => createSecretResolver({ db: dbOrTx, orgId, env: { OPENSYM_SECRET_BACKOFFICE: API_KEY } }),
    reporter: (f) => void reported.push(f),
    attempts: 3,
    backoffMs: 50,
    reconcileIntervalMs: 0,
    concurrency: 5,
  })
})
afterAll(async () => {
  await worker?.close()
  await queues?.close()
  await sandbox?.close()
  redis?.disconnect()
  await db?.$disconnect()
  await new Promise((resolve) => backOffice?.close(resolve))
})

const uid = () => randomBytes(3).toString('hex')

/** A custom strategy with `implementation`, its integration (API URL, the key as its first secret), one target. */
async function customFlow(implementation: string) {
  const orgId = o.org.id
  const source = await db.secretSource.create({ data: { orgId, type: 'env', slug: `src-${uid()}`, settings: {} } })
  const secret = await db.secret.create({ data: { orgId, slug: `bo-key-${uid()}`, path: 'OPENSYM_SECRET_BACKOFFICE', sourceId: source.id, settings: {} } })
  const integration = await db.integration.create({
    data: { orgId, type: 'custom', slug: `bo-${uid()}`, externalId: 'bo-1', settings: { api_url: baseUrl, secret_ids_json: JSON.stringify([secret.id]) } },
  })
  const envRow = await db.environment.upsert({ where: { orgId_slug: { orgId, slug: 'main' } }, update: {}, create: { orgId, slug: 'main' } })
  const strategy = await db.strategy.create({ data: { orgId, type: 'custom', slug: `bo-${uid()}`, integrationId: integration.id, settings: {}, implementation } })
  const target = await db.target.create({ data: { orgId, type: 'custom', slug: `refunds-${uid()}`, label: 'Refunds', settings: { role: 'refunds' } } })
  await db.strategyTarget.create({ data: { strategyId: strategy.id, targetId: target.id, position: 0 } })
  const flow = await db.flow.create({
    data: {
      orgId,
      slug: `bo-access-${uid()}`,
      implementation: 'export {}',
      environmentId: envRow.id,
      strategyId: strategy.id,
      params: { allow_revoke: true, prompt_fields: [{ name: 'reason', type: 'string', required: true }, { name: 'duration', type: 'duration', required: true }] },
    },
  })
  return { slug: flow.slug, targetId: target.id }
}

async function runOf(runId: string) {
  return db.run.findUniqueOrThrow({ where: { id: runId }, include: { events: { orderBy: { seq: 'asc' } }, leases: true } })
}

const until = (runId: string, status: string) =>
  eventually(async () => {
    const r = await runOf(runId)
    return r.status === status && r.events.every((e) => e.status !== 'pending') && r
  }, 20_000, `run ${runId} to be ${status}`)

async function requestAndApprove(flow: { slug: string; targetId: string }) {
  const { run_id } = await service.createRequest(o.bot, { flow_srn: flow.slug, flow_inputs: { reason: 'ticket 42', duration: 1, target_id: flow.targetId }, user_email: 'member@example.com' })
  await service.decide(o.admin, 'approve', { run_id })
  return run_id
}

describe('custom strategy, end to end', () => {
  it('request → approve → escalate by the implementation → automatic de-escalation', async () => {
    const flow = await customFlow(STRATEGY)
    bo.calls.length = 0
    const runId = await requestAndApprove(flow)
    const escalated = await until(runId, 'escalated')
    expect(escalated.events.at(-1)).toMatchObject({
      name: 'escalate',
      status: 'success',
      verified: null,
      output: { body: { user_id: 'u-member', role: 'refunds', target_id: flow.targetId, reason: 'ticket 42' }, errors: [] },
    })
    expect(bo.roles.get('u-member')).toEqual(new Set(['refunds']))
    const identity = await db.userIdentity.findUnique({ where: { userId_service_serviceId: { userId: o.member.userId, service: 'custom', serviceId: 'bo-1' } } })
    expect(identity?.externalUserId).toBe('u-member')

    const done = await until(runId, 'deescalated')
    expect(done.events.map((e) => [e.name, e.status])).toEqual([
      ['request', 'success'],
      ['approve', 'success'],
      ['escalate', 'success'],
      ['deescalate', 'success'],
    ])
    expect(done.events[3]).toMatchObject({ fields: { deescalate_type: 'scheduled' }, output: { body: { user_id: 'u-member', role: 'refunds', already_removed: false }, errors: [] } })
    expect(bo.roles.get('u-member')?.size).toBe(0)
    expect(bo.calls).toEqual(['GET /users?email=member%40example.com', 'PUT /users/u-member/roles/refunds', 'DELETE /users/u-member/roles/refunds'])
    expect(JSON.stringify(done)).not.toContain(API_KEY)
  })

  it('a RetryableError (the back-office answered 503) is retried; the stored identity is used', async () => {
    const flow = await customFlow(STRATEGY)
    bo.calls.length = 0
    bo.failNext.push(503)
    const runId = await requestAndApprove(flow)
    const escalated = await until(runId, 'escalated')
    expect(escalated.events.at(-1)).toMatchObject({ name: 'escalate', status: 'success', attempts: 2, error: null })
    expect(bo.calls).toEqual(['PUT /users/u-member/roles/refunds', 'PUT /users/u-member/roles/refunds'])
    await until(runId, 'deescalated')
  })

  it('an implementation that throws fails the escalate with its message: no grant, the error logger told', async () => {
    const flow = await customFlow(`export const fetchRemoteIdentity = () => 'u-member'
export async function escalate() { throw new Error('the back-office refuses refunds for contractors') }
export async function deescalate() {}`)
    const runId = await requestAndApprove(flow)
    const r = await until(runId, 'errored')
    const message = expect.stringMatching(/^custom strategy "bo-\w+": escalate threw Error: the back-office refuses refunds for contractors$/)
    expect(r.events.at(-1)).toMatchObject({ name: 'escalate', status: 'error', attempts: 1, error: message })
    expect(r.leases).toHaveLength(0)
    expect(await db.grant.count({ where: { orgId: o.org.id, strategyType: 'custom', applied: true } })).toBe(0)
    expect(reported.find((f) => f.runId === runId)).toMatchObject({ step: 'escalate', message: expect.stringContaining('the back-office refuses refunds for contractors') })
  })
})
