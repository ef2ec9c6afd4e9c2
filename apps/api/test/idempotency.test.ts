import { randomBytes, randomUUID } from 'node:crypto'
import { EngineQueues } from '@opensym/engine'
import Fastify, { type FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest'
import { buildApp } from '../src/app.js'
import { ABANDONED_CLAIM_MS, IDEMPOTENCY_KEY_TTL_MS, requestHash } from '../src/plugins/idempotency.js'
import auth from '../src/plugins/auth.js'
import dbPlugin from '../src/plugins/db.js'
import errors from '../src/plugins/errors.js'
import idempotency, { type IdempotencyOptions } from '../src/plugins/idempotency.js'
import { bodies } from './graph.js'
import { call, useApi } from './helpers.js'

const h = useApi()

type ErrorResponse = { code: string; message: string; status_code: number; is_retryable: boolean; errors: { field: string; message: string }[] }

const slackBody = (slug: string) => ({ ...bodies.slack, slug })
const withKey = (key: string, body: unknown, token?: string) => ({ body, headers: { 'idempotency-key': key }, ...(token ? { token } : {}) })
const integrationsNamed = (slug: string) => h.db.integration.count({ where: { orgId: h.a.id, slug } })
const keyRow = async (key: string, userType: 'bot' | 'normal' = 'bot') => {
  const user = await h.db.user.findFirstOrThrow({ where: { orgId: h.a.id, type: userType, ...(userType === 'normal' ? { role: 'admin' } : {}) } })
  return { user, row: await h.db.idempotencyKey.findUnique({ where: { orgId_userId_key: { orgId: h.a.id, userId: user.id, key } } }) }
}

describe('Idempotency-Key on POST', () => {
  it('a retried create replays the first response and creates one row', async () => {
    const key = randomUUID()
    const first = await call(h, 'POST', 'entities/integrations', withKey(key, slackBody('idem-once')))
    expect(first.status).toBe(201)
    expect(first.headers['idempotent-replayed']).toBeUndefined()
    const retry = await call(h, 'POST', 'entities/integrations', withKey(key, slackBody('idem-once')))
    expect(retry.status).toBe(201)
    expect(retry.headers['idempotent-replayed']).toBe('true')
    expect(retry.headers['content-type']).toMatch(/^application\/json/)
    expect(retry.body).toEqual(first.body)
    expect(await integrationsNamed('idem-once')).toBe(1)
    const { row } = await keyRow(key)
    expect(row).toMatchObject({ method: 'POST', path: '/api/v1/entities/integrations', responseStatus: 201, responseBody: first.body })
    expect(row!.requestHash).toBe(requestHash('POST', '/api/v1/entities/integrations', JSON.stringify(slackBody('idem-once'))))
  })

  it('hashes the raw body: the same JSON spelled differently is a different request', async () => {
    const key = randomUUID()
    const url = '/api/v1/entities/integrations'
    const headers = { authorization: `Bearer ${h.a.tokens.bot}`, 'content-type': 'application/json', 'idempotency-key': key }
    const text = JSON.stringify(slackBody('idem-raw'))
    expect((await h.app.inject({ method: 'POST', url, headers, payload: text })).statusCode).toBe(201)
    expect((await h.app.inject({ method: 'POST', url, headers, payload: text })).headers['idempotent-replayed']).toBe('true')
    expect((await h.app.inject({ method: 'POST', url, headers, payload: ` ${text}` })).statusCode).toBe(422)
  })

  it('the same key with another body or path is a 422 that changes nothing', async () => {
    const key = randomUUID()
    expect((await call(h, 'POST', 'entities/integrations', withKey(key, slackBody('idem-a')))).status).toBe(201)
    const otherBody = await call(h, 'POST', 'entities/integrations', withKey(key, slackBody('idem-b')))
    expect(otherBody.status).toBe(422)
    expect(otherBody.body as ErrorResponse).toMatchObject({
      code: 'API:IDEMPOTENCY_KEY_REUSED',
      status_code: 422,
      is_retryable: false,
      message: expect.stringContaining('was already used for a different request (POST /api/v1/entities/integrations)'),
    })
    const otherPath = await call(h, 'POST', 'entities/environments', withKey(key, { slug: 'idem-env' }))
    expect(otherPath.status).toBe(422)
    expect(await integrationsNamed('idem-b')).toBe(0)
    expect(await h.db.environment.count({ where: { orgId: h.a.id, slug: 'idem-env' } })).toBe(0)
  })

  it('keys are per user: another user’s key of the same name is independent', async () => {
    const key = randomUUID()
    expect((await call(h, 'POST', 'entities/integrations', withKey(key, slackBody('idem-bot')))).status).toBe(201)
    const admin = await call(h, 'POST', 'entities/integrations', withKey(key, slackBody('idem-admin'), h.a.tokens.admin))
    expect(admin.status).toBe(201)
    expect(admin.headers['idempotent-replayed']).toBeUndefined()
  })

  it('two parallel requests with one key: exactly one creates, the other waits its turn or replays', async () => {
    const key = randomUUID()
    const results = await Promise.all(Array.from({ length: 5 }, () => call(h, 'POST', 'entities/integrations', withKey(key, slackBody('idem-race')))))
    const created = results.filter((r) => r.status === 201 && r.headers['idempotent-replayed'] === undefined)
    expect(created).toHaveLength(1)
    for (const r of results) {
      if (r.status === 201) expect(r.body).toEqual(created[0]!.body)
      else expect(r.body as ErrorResponse).toMatchObject({ status_code: 409, code: 'API:IDEMPOTENCY_KEY_IN_PROGRESS', is_retryable: true })
    }
    expect(await integrationsNamed('idem-race')).toBe(1)
    const retry = await call(h, 'POST', 'entities/integrations', withKey(key, slackBody('idem-race')))
    expect(retry.headers['idempotent-replayed']).toBe('true')
    expect(retry.body).toEqual(created[0]!.body)
  })

  it('a retry while the first request is in progress is a retryable 409; a claim abandoned for minutes is taken over', async () => {
    const key = randomUUID()
    const { user } = await keyRow(key)
    const hash = requestHash('POST', '/api/v1/entities/integrations', JSON.stringify(slackBody('idem-slow')))
    const claim = { orgId: h.a.id, userId: user.id, key, method: 'POST', path: '/api/v1/entities/integrations', requestHash: hash }
    await h.db.idempotencyKey.create({ data: claim })
    const busy = await call(h, 'POST', 'entities/integrations', withKey(key, slackBody('idem-slow')))
    expect(busy.status).toBe(409)
    expect(busy.body as ErrorResponse).toMatchObject({ code: 'API:IDEMPOTENCY_KEY_IN_PROGRESS', is_retryable: true, message: expect.stringContaining('still in progress') })
    // The process that claimed it died: after ABANDONED_CLAIM_MS the same request may run.
    await h.db.idempotencyKey.update({ where: { orgId_userId_key: { orgId: h.a.id, userId: user.id, key } }, data: { createdAt: new Date(Date.now() - ABANDONED_CLAIM_MS - 1000) } })
    expect((await call(h, 'POST', 'entities/integrations', withKey(key, slackBody('idem-other')))).status).toBe(422)
    const taken = await call(h, 'POST', 'entities/integrations', withKey(key, slackBody('idem-slow')))
    expect(taken.status).toBe(201)
    expect(taken.headers['idempotent-replayed']).toBeUndefined()
  })

  it('keys expire after 24 hours, and expired rows are swept', async () => {
    const key = randomUUID()
    expect((await call(h, 'POST', 'entities/integrations', withKey(key, slackBody('idem-old')))).status).toBe(201)
    const { user } = await keyRow(key)
    const pk = { orgId_userId_key: { orgId: h.a.id, userId: user.id, key } }
    await h.db.idempotencyKey.update({ where: pk, data: { createdAt: new Date(Date.now() - IDEMPOTENCY_KEY_TTL_MS - 1000) } })
    // Expired: the key is free for a new request.
    const reused = await call(h, 'POST', 'entities/integrations', withKey(key, slackBody('idem-new')))
    expect(reused.status).toBe(201)
    expect(reused.headers['idempotent-replayed']).toBeUndefined()
    expect((await h.db.idempotencyKey.findUniqueOrThrow({ where: pk })).responseBody).toEqual(reused.body)

    // A separate app instance sweeps on its first claim.
    const stale = { orgId: h.a.id, userId: user.id, method: 'POST', path: '/x', requestHash: 'h', createdAt: new Date(Date.now() - IDEMPOTENCY_KEY_TTL_MS - 1000) }
    await h.db.idempotencyKey.create({ data: { ...stale, key: `stale-${key}` } })
    const app = await miniApp()
    try {
      await app.inject({ method: 'POST', url: '/echo', headers: { authorization: `Bearer ${h.a.tokens.bot}`, 'idempotency-key': randomUUID() }, payload: { a: 1 } })
      await vi.waitFor(async () => expect(await h.db.idempotencyKey.count({ where: { key: `stale-${key}` } })).toBe(0))
    } finally {
      await app.close()
    }
  })

  it('a request the schema rejects does not use up the key; a stored 4xx is replayed', async () => {
    const key = randomUUID()
    const bad = await call(h, 'POST', 'entities/integrations', withKey(key, { slug: 'idem-bad' }))
    expect(bad.status).toBe(400)
    expect((await keyRow(key)).row).toBeNull()
    expect((await call(h, 'POST', 'entities/integrations', withKey(key, slackBody('idem-fixed')))).status).toBe(201)

    // A member may not write: the 403 comes from the handler, so it is the stored answer for this key.
    const memberKey = randomUUID()
    const denied = await call(h, 'POST', 'entities/integrations', withKey(memberKey, slackBody('idem-member'), h.a.tokens.member))
    expect(denied.status).toBe(403)
    const again = await call(h, 'POST', 'entities/integrations', withKey(memberKey, slackBody('idem-member'), h.a.tokens.member))
    expect(again.status).toBe(403)
    expect(again.headers['idempotent-replayed']).toBe('true')
    expect(again.body).toEqual(denied.body)
  })

  it.each([
    ['too long', 'k'.repeat(256)],
    ['not printable ASCII', 'clé-1'],
    ['a control character', 'a\u0001b'],
  ])('a key that is %s is a 400 naming the header', async (_what, key) => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/api/v1/entities/integrations',
      headers: { authorization: `Bearer ${h.a.tokens.bot}`, 'content-type': 'application/json', 'idempotency-key': Buffer.from(key, 'utf8').toString('latin1') },
      payload: JSON.stringify(slackBody('idem-badkey')),
    })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toMatchObject({ code: 'EntityAPI:INVALID_REQUEST', errors: [{ field: 'headers.idempotency-key', message: 'must be 1 to 255 printable ASCII characters' }] })
    expect(await integrationsNamed('idem-badkey')).toBe(0)
  })

  it('is ignored without the header and on other methods', async () => {
    const created = await call(h, 'POST', 'entities/integrations', { body: slackBody('idem-none') })
    expect(created.status).toBe(201)
    const dup = await call(h, 'POST', 'entities/integrations', { body: slackBody('idem-none') })
    expect(dup.status).toBe(409)
    const id = (created.body as { id: string }).id
    const key = randomUUID()
    const patch = { ...slackBody('idem-none'), id, label: 'Patched' }
    expect((await call(h, 'PATCH', `entities/integrations/${id}`, withKey(key, patch))).status).toBe(200)
    expect((await keyRow(key)).row).toBeNull()
  })
})

describe('errors the client may retry', () => {
  let app: FastifyInstance
  beforeAll(async () => {
    app = await miniApp()
  })
  afterAll(async () => {
    await app.close()
  })
  const post = (url: string, key: string) =>
    app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${h.a.tokens.bot}`, 'idempotency-key': key }, payload: { n: 1 } })

  it('a 5xx is not stored: the key is released and the retry runs again', async () => {
    const key = randomUUID()
    expect((await post('/flaky', key)).statusCode).toBe(500)
    expect((await keyRow(key)).row).toBeNull()
    const ok = await post('/flaky', key)
    expect(ok.statusCode).toBe(201)
    expect(ok.json()).toEqual({ attempt: 2 })
    const replay = await post('/flaky', key)
    expect(replay.headers['idempotent-replayed']).toBe('true')
    expect(replay.json()).toEqual({ attempt: 2 })
  })

  it('nor is an error marked is_retryable', async () => {
    const key = randomUUID()
    expect((await post('/busy', key)).statusCode).toBe(409)
    expect((await keyRow(key)).row).toBeNull()
  })
})

describe('a request that takes longer than a claim lasts unrenewed', () => {
  const ABANDONED_MS = 400
  let app: FastifyInstance
  beforeAll(async () => {
    app = await miniApp({ abandonedClaimMs: ABANDONED_MS })
  })
  afterAll(async () => {
    await app.close()
  })

  it('keeps its claim while it runs: a retry meanwhile is a 409, never a second run, and then gets the answer', async () => {
    const key = randomUUID()
    const request = () => app.inject({ method: 'POST', url: '/slow', headers: { authorization: `Bearer ${h.a.tokens.bot}`, 'idempotency-key': key }, payload: { n: 1 } })
    const first = request()
    await vi.waitFor(async () => expect((await keyRow(key)).row).not.toBeNull())
    // Well past the time after which an unrenewed claim is taken over.
    await new Promise((r) => setTimeout(r, 3 * ABANDONED_MS))
    const meanwhile = await request()
    expect(meanwhile.statusCode).toBe(409)
    expect(meanwhile.json<ErrorResponse>()).toMatchObject({ code: 'API:IDEMPOTENCY_KEY_IN_PROGRESS', is_retryable: true })
    slow.finish()
    expect((await first).json()).toEqual({ run: 1 })
    const after = await request()
    expect(after.headers['idempotent-replayed']).toBe('true')
    expect(after.json()).toEqual({ run: 1 })
    expect(slow.runs).toBe(1)
  })
})

describe('on the Events API', () => {
  it('a retried POST /events/request starts one run', async () => {
    // BullMQ needs a Redis client without keyPrefix: an app of its own, with queues under a prefix of this test's.
    const redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null })
    const queues = new EngineQueues({ connection: redis, prefix: `${inject('redisPrefix')}-idem-${randomBytes(3).toString('hex')}` })
    const app = await buildApp({ config: { logLevel: 'silent' }, db: h.db, redis, queues })
    const post = (url: string, body: unknown, key?: string) =>
      app.inject({
        method: 'POST',
        url: `/api/v1/${url}`,
        headers: { authorization: `Bearer ${h.b.tokens.bot}`, 'content-type': 'application/json', ...(key ? { 'idempotency-key': key } : {}) },
        payload: JSON.stringify(body),
      })
    try {
      const env = (await post('entities/environments', { slug: 'idem' })).json<{ id: string }>()
      const flow = {
        slug: 'idem-approval',
        implementation: Buffer.from('export {}').toString('base64'),
        environment_id: env.id,
        params: { prompt_fields: [{ name: 'reason', type: 'string', required: true }] },
      }
      expect((await post('entities/flows', flow)).statusCode).toBe(201)
      const key = randomUUID()
      const body = { flow_srn: `${h.b.slug}:flow:idem-approval:latest`, flow_inputs: { reason: 'deploy' }, user_email: 'member@example.com' }
      const first = await post('events/request', body, key)
      expect(first.statusCode).toBe(200)
      const retry = await post('events/request', body, key)
      expect(retry.statusCode).toBe(200)
      expect(retry.headers['idempotent-replayed']).toBe('true')
      expect(retry.json()).toEqual(first.json())
      expect(await h.db.run.count({ where: { orgId: h.b.id, flowSlug: 'idem-approval' } })).toBe(1)
    } finally {
      await app.close()
      await queues.close()
      redis.disconnect()
    }
  })
})

describe('OpenAPI', () => {
  it('documents the header on every POST, and only on POSTs', async () => {
    const doc = (await call(h, 'GET', '/api/v1/openapi.json', { token: null })).body as {
      paths: Record<string, Record<string, { parameters?: { in: string; name: string; schema: { maxLength?: number } }[] }>>
    }
    let posts = 0
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const header = op.parameters?.find((p) => p.in === 'header' && p.name === 'idempotency-key')
        if (method === 'post') {
          posts++
          expect(header, `POST ${path}`).toMatchObject({ schema: { maxLength: 255 } })
        } else expect(header, `${method} ${path}`).toBeUndefined()
      }
    }
    expect(posts).toBeGreaterThan(10)
  })
})

/** What `/slow` did: how often it ran; the first run answers once `finish` is called, later ones at once. */
const slow = { runs: 0, finish: () => {} }

/** The plugin on its own, behind the real auth, with routes that fail the way real ones can. */
async function miniApp(options: IdempotencyOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  await app.register(errors)
  await app.register(dbPlugin, { db: h.db, redis: h.redis })
  let attempts = 0
  await app.register(async (scope) => {
    await scope.register(auth)
    await scope.register(idempotency, options)
    scope.post('/slow', async (_req, reply) => {
      const run = ++slow.runs
      if (run === 1) await new Promise<void>((resolve) => (slow.finish = resolve))
      return reply.code(201).send({ run })
    })
    scope.post('/echo', async (req, reply) => reply.code(201).send(req.body))
    scope.post('/flaky', async (_req, reply) => {
      if (++attempts === 1) throw new Error('database went away')
      return reply.code(201).send({ attempt: attempts })
    })
    scope.post('/busy', async (_req, reply) => reply.code(409).send({ error: true, message: 'try again', code: 'X', status_code: 409, is_retryable: true }))
  })
  return app
}
