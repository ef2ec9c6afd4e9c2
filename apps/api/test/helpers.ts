import { createDb, type Db } from '@opensym/db'
import { createTestOrg, type TestOrg } from '@opensym/testing'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, inject } from 'vitest'
import { buildApp } from '../src/app.js'

export interface Harness {
  app: FastifyInstance
  db: Db
  redis: Redis
  /** Two orgs, so cross-org access can be tested. */
  a: TestOrg
  b: TestOrg
}

export interface CallOptions {
  token?: string | null
  body?: unknown
  headers?: Record<string, string>
}

/** The API on the per-run test database, built like production but without a port. */
export function useApi(): Harness {
  const h = {} as Harness
  beforeAll(async () => {
    h.db = createDb(inject('databaseUrl'), { poolSize: 4 })
    h.redis = new Redis(inject('redisUrl'), { lazyConnect: true, keyPrefix: `${inject('redisPrefix')}:` })
    await h.redis.connect()
    h.app = await buildApp({ config: { logLevel: 'silent' }, db: h.db, redis: h.redis })
    h.a = await createTestOrg(h.db, 'a')
    h.b = await createTestOrg(h.db, 'b')
  })
  afterAll(async () => {
    await h.app?.close()
    await h.db?.$disconnect()
    h.redis?.disconnect()
  })
  return h
}

/** Calls the API the way Sym's Go client does: JSON content type, and a JSON body even on GET/DELETE (`null`). */
export async function call(h: Harness, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, opts: CallOptions = {}) {
  const token = opts.token === undefined ? h.a.tokens.bot : opts.token
  const res = await h.app.inject({
    method,
    url: url.startsWith('/') ? url : `/api/v1/${url}`,
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...opts.headers,
    },
    payload: JSON.stringify(opts.body ?? null),
  })
  const text = res.body
  return { status: res.statusCode, headers: res.headers, body: (text ? JSON.parse(text) : undefined) as unknown }
}

export type Entity = { id: string } & Record<string, unknown>

/** The body of a successful create/read/update, failing the test with the API's error when it is not one. */
export async function ok(h: Harness, method: 'GET' | 'POST' | 'PATCH', url: string, opts: CallOptions = {}): Promise<Entity> {
  const res = await call(h, method, url, opts)
  if (res.status !== (method === 'POST' ? 201 : 200)) throw new Error(`${method} ${url} → ${res.status}: ${JSON.stringify(res.body)}`)
  return res.body as Entity
}

export { b64 } from '@opensym/testing'
