import { issueToken, revokeToken } from '@opensym/db'
import { beforeAll, describe, expect, it } from 'vitest'
import { bodies, createGraph, type Graph } from './graph.js'
import { b64, call, ok, useApi } from './helpers.js'

const h = useApi()
let g: Graph
beforeAll(async () => {
  g = await createGraph(h)
})

type ErrorResponse = { error: true; message: string; errors: { field: string; message: string }[]; code: string; status_code: number; is_retryable: boolean }
const err = (res: { body: unknown }) => res.body as ErrorResponse

describe('400: a bad body names the field and changes nothing', () => {
  it('a missing required field', async () => {
    const res = await call(h, 'POST', 'entities/flows', { body: { implementation: b64('x'), environment_id: g.environment.id } })
    expect(res.status).toBe(400)
    expect(err(res)).toMatchObject({ error: true, code: 'EntityAPI:INVALID_REQUEST', status_code: 400, is_retryable: false, errors: [{ field: 'slug', message: 'is required' }] })
  })

  it('an unknown type lists the valid ones', async () => {
    const res = await call(h, 'POST', 'entities/integrations', { body: { ...bodies.slack, slug: 'x', type: 'slak' } })
    expect(res.status).toBe(400)
    expect(err(res).errors).toEqual([{ field: 'type', message: expect.stringContaining('must be one of: slack, permission_context, okta') }])
  })

  it('nested fields are named by path', async () => {
    const flow = bodies.flow(g.environment.id, g.strategy.id)
    const body = { ...flow, slug: 'nested', params: { ...flow.params, prompt_fields: [{ ...flow.params.prompt_fields[0], type: 'text' }] } }
    const res = await call(h, 'POST', 'entities/flows', { body })
    expect(err(res).errors).toEqual([{ field: 'params.prompt_fields[0].type', message: expect.stringContaining('must be one of: string, int') }])
  })

  it('several problems are reported together; unknown fields and wrong types too', async () => {
    const res = await call(h, 'POST', 'entities/access-targets', { body: { type: 'okta_group', slug: 'bad slug!', settings: { group_id: 5 }, lable: 'typo' } })
    expect(res.status).toBe(400)
    expect(err(res).errors).toEqual(
      expect.arrayContaining([
        { field: 'lable', message: 'is not a known field' },
        { field: 'slug', message: expect.stringContaining('letters, digits') },
        { field: 'settings.group_id', message: 'must be a string' },
      ]),
    )
  })

  it('a reference to a missing or foreign entity is a 400 on that field', async () => {
    const foreign = await ok(h, 'POST', 'entities/environments', { token: h.b.tokens.bot, body: { slug: 'theirs' } })
    const missing = '00000000-0000-4000-8000-000000000000'
    const res = await call(h, 'POST', 'entities/flows', { body: { ...bodies.flow(foreign.id, missing), slug: 'refs' } })
    expect(res.status).toBe(400)
    expect(err(res).errors).toEqual([
      { field: 'environment_id', message: `no environment with id ${foreign.id} in this organization` },
      { field: 'params.strategy_id', message: `no access strategy with id ${missing} in this organization` },
    ])
    const targets = await call(h, 'POST', 'entities/access-strategies', { body: { ...bodies.strategy(g.okta.id, [g.oktaTarget.id, missing]), slug: 'two' } })
    expect(err(targets).errors).toEqual([{ field: 'targets[1]', message: `no access target with id ${missing} in this organization` }])
    expect((await call(h, 'GET', 'entities/access-strategies?slug=two')).body).toEqual([])
  })

  it('type rules and settings are checked', async () => {
    const noIntegration = await call(h, 'POST', 'entities/access-strategies', { body: { type: 'okta', slug: 'x', integration_id: '<null>', targets: [] } })
    expect(err(noIntegration).errors).toEqual([{ field: 'integration_id', message: 'this strategy type requires an integration; set integration_id' }])
    const http = await call(h, 'POST', 'entities/access-strategies', { body: { type: 'http', slug: 'web', integration_id: '<null>', targets: [g.oktaTarget.id], settings: { url: 'https://access.example.com/sym' } } })
    expect(http.status).toBe(201)
    // A URL naming a cloud metadata address is refused when it is configured, not at the first escalation.
    const metadata = await call(h, 'POST', 'entities/access-strategies', { body: { type: 'http', slug: 'meta', integration_id: '<null>', targets: [g.oktaTarget.id], settings: { url: 'http://169.254.169.254/latest/meta-data/' } } })
    expect(err(metadata).errors).toEqual([{ field: 'settings.url', message: 'must not point at a link-local, metadata or reserved address (169.254.169.254)' }])
    const logs = await call(h, 'POST', 'entities/log-destinations', { body: { type: 'http', integration_id: '<null>', settings: { url: 'logs.example.com/sym' } } })
    expect(err(logs).errors).toEqual([{ field: 'settings.url', message: 'must be an absolute http:// or https:// URL' }])
    expect((await call(h, 'GET', 'entities/access-strategies?slug=meta')).body).toEqual([])
    const setting = await call(h, 'POST', 'entities/access-targets', { body: { type: 'okta_group', slug: 'x', settings: {} } })
    expect(err(setting).errors).toEqual([{ field: 'settings.group_id', message: 'is required for type "okta_group"' }])
    const keys = await call(h, 'POST', 'entities/environments', { body: { slug: 'e2', integrations: { Slack: g.slack.id } } })
    expect(err(keys).errors).toEqual([{ field: 'integrations.Slack', message: 'is not an allowed key' }])
  })

  it('malformed JSON, a non-UUID id and a body id that contradicts the path', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/api/v1/entities/flows', headers: { authorization: `Bearer ${h.a.tokens.bot}`, 'content-type': 'application/json' }, payload: '{"slug":' })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toMatchObject({ code: 'EntityAPI:INVALID_REQUEST' })
    const badId = await call(h, 'GET', 'entities/flows/not-a-uuid')
    expect(err(badId)).toMatchObject({ status_code: 400, errors: [{ field: 'params.id', message: 'must be a UUID' }] })
    const mismatch = await call(h, 'PATCH', `entities/integrations/${g.slack.id}`, { body: { ...bodies.slack, id: g.context.id } })
    expect(err(mismatch).errors).toEqual([{ field: 'id', message: 'does not match the id in the path' }])
  })

  it('a failed update leaves the entity as it was', async () => {
    const before = await ok(h, 'GET', `entities/access-strategies/${g.strategy.id}`)
    const res = await call(h, 'PATCH', `entities/access-strategies/${g.strategy.id}`, {
      body: { ...bodies.strategy(g.okta.id, [g.ssoTarget.id, '00000000-0000-4000-8000-000000000000']), label: 'changed' },
    })
    expect(res.status).toBe(400)
    expect(await ok(h, 'GET', `entities/access-strategies/${g.strategy.id}`)).toEqual(before)
  })
})

describe('401: missing, invalid, expired or revoked tokens', () => {
  it('rejects each with the same error and no detail about why', async () => {
    const expired = await issueToken(h.db, { org: h.a.slug, bot: 'terraform', expiresInSeconds: 1, now: new Date(Date.now() - 10_000) })
    const revoked = await issueToken(h.db, { org: h.a.slug, bot: 'terraform' })
    expect((await call(h, 'GET', 'entities/flows', { token: revoked.secret })).status).toBe(200)
    await revokeToken(h.db, revoked.token.id)
    for (const token of [null, 'sym_not-a-real-token', expired.secret, revoked.secret]) {
      const res = await call(h, 'GET', 'entities/flows', { token })
      expect(res.status, String(token)).toBe(401)
      expect(err(res)).toMatchObject({ code: 'Auth:UNAUTHENTICATED', status_code: 401 })
    }
    const basic = await h.app.inject({ method: 'GET', url: '/api/v1/entities/flows', headers: { authorization: 'Basic abc' } })
    expect(basic.statusCode).toBe(401)
  })
})

describe('token use', () => {
  it('is recorded on the token, without a write per request', async () => {
    const used = await issueToken(h.db, { org: h.a.slug, bot: 'terraform' })
    expect(used.token.lastUsedAt).toBeNull()
    await Promise.all([1, 2, 3].map(() => call(h, 'GET', 'entities/flows', { token: used.secret })))
    // The update is fire-and-forget; poll briefly for it.
    let lastUsedAt: Date | null = null
    for (let i = 0; i < 50 && !lastUsedAt; i++) {
      lastUsedAt = (await h.db.apiToken.findUniqueOrThrow({ where: { id: used.token.id } })).lastUsedAt
      if (!lastUsedAt) await new Promise((r) => setTimeout(r, 20))
    }
    expect(lastUsedAt).toBeInstanceOf(Date)
  })
})

describe('403: roles', () => {
  it('members may read but not write; guests may do neither; admins and bots may write', async () => {
    expect((await call(h, 'GET', 'entities/flows', { token: h.a.tokens.member })).status).toBe(200)
    const write = await call(h, 'POST', 'entities/runtimes', { token: h.a.tokens.member, body: { slug: 'm' } })
    expect(write.status).toBe(403)
    expect(err(write)).toMatchObject({ code: 'Auth:FORBIDDEN', status_code: 403 })
    expect((await call(h, 'DELETE', `entities/flows/${g.flow.id}`, { token: h.a.tokens.member })).status).toBe(403)
    expect((await call(h, 'GET', 'entities/flows', { token: h.a.tokens.guest })).status).toBe(403)
    expect((await call(h, 'POST', 'entities/runtimes', { token: h.a.tokens.admin, body: { slug: 'by-admin' } })).status).toBe(201)
  })
})

describe('404: other orgs\' entities do not exist', () => {
  it('for read, find, update and delete', async () => {
    const b = h.b.tokens.bot
    expect((await call(h, 'GET', `entities/flows/${g.flow.id}`, { token: b })).status).toBe(404)
    expect((await call(h, 'GET', 'entities/flows?slug=okta_access', { token: b })).body).toEqual([])
    const patch = await call(h, 'PATCH', `entities/integrations/${g.slack.id}`, { token: b, body: bodies.slack })
    expect(err(patch)).toMatchObject({ code: 'EntityAPI:NOT_FOUND', status_code: 404 })
    expect((await call(h, 'DELETE', `entities/integrations/${g.slack.id}`, { token: b })).status).toBe(404)
    expect(await ok(h, 'GET', `entities/integrations/${g.slack.id}`)).toMatchObject({ slug: 'main-slack' })
  })
})

describe('409', () => {
  it('a duplicate slug (case-insensitive, per type where typed)', async () => {
    const dup = await call(h, 'POST', 'entities/integrations', { body: { ...bodies.slack, slug: 'MAIN-slack' } })
    expect(dup.status).toBe(409)
    expect(err(dup)).toMatchObject({ code: 'EntityAPI:DUPLICATE', errors: [{ field: 'slug' }] })
    const otherType = await call(h, 'POST', 'entities/integrations', { body: { ...bodies.slack, type: 'custom', slug: 'main-slack' } })
    expect(otherType.status).toBe(201)
    expect((await call(h, 'POST', 'entities/integrations', { token: h.b.tokens.bot, body: bodies.slack })).status).toBe(201)
    const renamed = await call(h, 'PATCH', `entities/access-targets/${g.ssoTarget.id}`, { body: { ...bodies.ssoTarget, type: 'okta_group', slug: 'okta-admins', settings: { group_id: 'g' } } })
    expect(renamed.status).toBe(409)
  })

  it('deleting an entity still in use names the referrer', async () => {
    const env = await call(h, 'DELETE', `entities/environments/${g.environment.id}`)
    expect(env.status).toBe(409)
    expect(err(env)).toMatchObject({ code: 'EntityAPI:IN_USE', status_code: 409 })
    expect(err(env).errors).toContainEqual({ field: 'id', message: `in use by flow "okta_access" (${g.flow.id})` })
    const target = await call(h, 'DELETE', `entities/access-targets/${g.oktaTarget.id}`)
    expect(target.status).toBe(409)
    expect(err(target).message).toContain('access strategy "main-okta"')
    const slack = await call(h, 'DELETE', `entities/integrations/${g.slack.id}`)
    expect(err(slack).errors.map((e) => e.message)).toEqual(
      expect.arrayContaining([expect.stringContaining('environment "main"'), expect.stringContaining('error logger "sym-errors"')]),
    )
    expect(await ok(h, 'GET', `entities/environments/${g.environment.id}`)).toMatchObject({ id: g.environment.id })
  })

  it('a secret named in settings is in use: deleting it would break the integration, strategy or destination', async () => {
    const secret = await call(h, 'DELETE', `entities/secrets/${g.secret.id}`)
    expect(secret.status).toBe(409)
    expect(err(secret)).toMatchObject({ code: 'EntityAPI:IN_USE', errors: [{ field: 'id', message: `in use by integration "main-okta" (${g.okta.id})` }] })
    // Also inside a JSON list (a custom integration's secret_ids_json), whatever the case of the id.
    const spare = await ok(h, 'POST', 'entities/secrets', { body: { ...bodies.secret(g.secretSource.id), path: 'sym/main/spare' } })
    const custom = await ok(h, 'POST', 'entities/integrations', { body: { type: 'custom', slug: 'uses-spare', external_id: 'x', settings: { secret_ids_json: JSON.stringify([spare.id.toUpperCase()]) } } })
    expect((await call(h, 'DELETE', `entities/secrets/${spare.id}`)).status).toBe(409)
    expect(await ok(h, 'GET', `entities/secrets/${spare.id}`)).toMatchObject({ id: spare.id })
    expect((await call(h, 'DELETE', `entities/integrations/${custom.id}`)).status).toBe(204)
    expect((await call(h, 'DELETE', `entities/secrets/${spare.id}`)).status).toBe(204)
  })
})

describe('transport', () => {
  it('echoes a safe X-Sym-Request-ID and generates one otherwise', async () => {
    const given = await call(h, 'GET', 'entities/flows', { headers: { 'x-sym-request-id': 'f0e1d2c3-b4a5-4697-8899-aabbccddeeff' } })
    expect(given.headers['x-sym-request-id']).toBe('f0e1d2c3-b4a5-4697-8899-aabbccddeeff')
    const unsafe = await call(h, 'GET', 'entities/flows', { headers: { 'x-sym-request-id': 'evil\u0007id with spaces' } })
    expect(unsafe.headers['x-sym-request-id']).toMatch(/^[0-9a-f-]{36}$/)
    const error = await call(h, 'GET', 'entities/flows', { token: null })
    expect(error.headers['x-sym-request-id']).toEqual(expect.any(String))
  })

  it('accepts GET and DELETE with no body at all, as curl sends them', async () => {
    const tmp = await ok(h, 'POST', 'entities/runtimes', { body: { slug: 'tmp' } })
    const get = await h.app.inject({ method: 'GET', url: `/api/v1/entities/runtimes/${tmp.id}`, headers: { authorization: `Bearer ${h.a.tokens.bot}` } })
    expect(get.statusCode).toBe(200)
    const del = await h.app.inject({ method: 'DELETE', url: `/api/v1/entities/runtimes/${tmp.id}`, headers: { authorization: `Bearer ${h.a.tokens.bot}`, 'content-type': 'application/json' } })
    expect(del.statusCode).toBe(204)
  })

  it('unknown routes are a 404 in the same error shape', async () => {
    const res = await call(h, 'GET', 'entities/widgets')
    expect(res.status).toBe(404)
    expect(err(res)).toMatchObject({ error: true, code: 'API:ROUTE_NOT_FOUND' })
  })
})

