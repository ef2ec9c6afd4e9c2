/**
 * The two calls every run makes, `POST /events/request` and `POST /events/approve` (bot token, Idempotency-Key),
 * go to PostgreSQL as a few plain statements over `db.sql` and never through the Prisma client: each statement is a
 * round trip, and the client costs several times pg's CPU per statement. The app here gets a Db that records every
 * statement and every use of the Prisma client; the queues do nothing (no worker runs here).
 */
import { randomUUID } from 'node:crypto'
import { createDb, type Db, type Sql, type SqlPool, type Statement } from '@opensym/db'
import type { EngineQueues } from '@opensym/engine'
import { createTestOrg, type TestOrg } from '@opensym/testing'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, expect, inject, it, vi } from 'vitest'
import { buildApp } from '../src/app.js'

let db: Db
let redis: Redis
let app: FastifyInstance
let org: TestOrg
let flowSlug: string
let targetId: string
/** The statements sent through `db.sql`, in order; BEGIN and COMMIT stand for a transaction's own round trips. */
const statements: string[] = []
/** Properties of the Prisma client used (`run`, `$queryRaw`, …). */
const prismaUsed: string[] = []

function recorded(sql: Sql): Sql {
  return {
    query: <T>(s: Statement) => (statements.push(s.text), sql.query<T>(s)),
    execute: (s: Statement) => (statements.push(s.text), sql.execute(s)),
  }
}

/** `db`, with its statements recorded (see above). */
function recording(db: Db): Db {
  const pool: SqlPool = {
    ...recorded(db.sql),
    transaction: async (fn, options) => {
      statements.push('BEGIN')
      const result = await db.sql.transaction((tx) => fn(recorded(tx)), options)
      statements.push('COMMIT')
      return result
    },
  }
  return new Proxy(db, {
    get: (target, key) => {
      if (key === 'sql') return pool
      prismaUsed.push(String(key))
      return Reflect.get(target, key) as unknown
    },
  })
}

/**
 * A statement as its first keyword and its main table, the last one it reads or writes (`INSERT "IdempotencyKey"`;
 * the outer query's FROM and a CTE's final INSERT come last).
 */
const kind = (text: string) => {
  if (text === 'BEGIN' || text === 'COMMIT') return text
  const verb = /^\s*(\w+)/.exec(text)![1]
  const table = [...text.matchAll(/(?:FROM|INTO|UPDATE) "(\w+)"/g)].at(-1)?.[1]
  return table ? `${verb} "${table}"` : verb
}

const queues = { prefix: 'hot-path', enqueueEvent: async () => {}, scheduleExpiry: async () => {}, close: async () => {} } as unknown as EngineQueues

beforeAll(async () => {
  db = createDb(inject('databaseUrl'), { poolSize: 4 })
  redis = new Redis(inject('redisUrl'), { lazyConnect: true })
  app = await buildApp({ config: { logLevel: 'silent', metricsEnabled: false }, db: recording(db), redis, queues })
  org = await createTestOrg(db, 'hot')
  const orgId = org.id
  const env = await db.environment.create({ data: { orgId, slug: 'main' } })
  const strategy = await db.strategy.create({ data: { orgId, type: 'http', slug: 'grant', settings: { url: 'http://127.0.0.1:1/unused' } } })
  const target = await db.target.create({ data: { orgId, type: 'custom', slug: 'db', settings: { identifier: 'db' } } })
  await db.strategyTarget.create({ data: { strategyId: strategy.id, targetId: target.id, position: 0 } })
  flowSlug = 'access'
  targetId = target.id
  await db.flow.create({
    data: {
      orgId,
      slug: flowSlug,
      implementation: 'export {}',
      environmentId: env.id,
      strategyId: strategy.id,
      params: { prompt_fields: [{ name: 'reason', type: 'string', required: true }, { name: 'duration', type: 'duration', required: true }] },
    },
  })
})

afterAll(async () => {
  await app?.close()
  await db?.$disconnect()
  redis?.disconnect()
})

async function post(url: string, body: unknown) {
  statements.length = 0
  prismaUsed.length = 0
  const res = await app.inject({
    method: 'POST',
    url: `/api/v1/${url}`,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${org.tokens.bot}`, 'idempotency-key': randomUUID() },
    payload: JSON.stringify(body),
  })
  expect(res.statusCode, res.body).toBe(200)
  return { body: res.json<{ run_id: string; event_id: string }>(), statements: statements.map(kind), prismaUsed: [...prismaUsed] }
}

it('requests and approves in a few statements, none through the Prisma client', async () => {
  // Out of the way first: the token's first use records lastUsedAt (then at most once a minute), and the first
  // claimed key sweeps expired keys (then every 5 minutes). A decision on no run is a 404 that claims its key.
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/events/deny',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${org.tokens.bot}`, 'idempotency-key': randomUUID() },
    payload: JSON.stringify({ run_id: randomUUID() }),
  })
  expect(res.statusCode).toBe(404)
  await vi.waitFor(() => expect(statements.map(kind)).toEqual(expect.arrayContaining(['UPDATE "ApiToken"', 'DELETE "IdempotencyKey"'])))

  const requested = await post('events/request', {
    flow_srn: `${org.slug}:flow:${flowSlug}:latest`,
    flow_inputs: { reason: 'incident 42', duration: '1h', target_id: targetId },
    user_email: 'member@example.com',
  })
  expect(requested.prismaUsed).toEqual([])
  expect(requested.statements).toEqual([
    'SELECT "ApiToken"', // auth
    'INSERT "IdempotencyKey"', // the key's claim
    'SELECT "Organization"', // org, flow with strategy, targets and environment, requester
    'WITH "RunEvent"', // the run and its request event
    'UPDATE "IdempotencyKey"', // the stored response
  ])

  const approved = await post('events/approve', { run_id: requested.body.run_id })
  expect(approved.prismaUsed).toEqual([])
  expect(approved.statements).toEqual([
    'SELECT "ApiToken"',
    'INSERT "IdempotencyKey"',
    'SELECT "Run"', // what the decision checks: status, requester, snapshot, permission
    'WITH "RunEvent"', // the decision appended if the locked run's status still allows it
    'UPDATE "IdempotencyKey"',
  ])
  const events = await db.runEvent.findMany({ where: { runId: requested.body.run_id }, orderBy: { seq: 'asc' } })
  expect(events.map((e) => [e.name, e.status])).toEqual([
    ['request', 'pending'],
    ['approve', 'pending'],
  ])
})
