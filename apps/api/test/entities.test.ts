import { describe, expect, it, beforeAll } from 'vitest'
import { bodies, createGraph, type Graph } from './graph.js'
import { b64, call, ok, useApi, type Entity } from './helpers.js'

const h = useApi()
let g: Graph
beforeAll(async () => {
  g = await createGraph(h)
})

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

describe('create returns the stored object with its id', () => {
  it('stores slugs lower-cased and echoes every field in the API shape', () => {
    expect(g.slack).toMatchObject({ type: 'slack', slug: 'main-slack', external_id: 'T123ABC', label: 'Slack', settings: {} })
    expect(g.slack.id).toMatch(UUID)
    expect(g.context).not.toHaveProperty('label')
    expect(g.runtime).toMatchObject({ slug: 'main', context_id: g.context.id })
    expect(g.secretSource).toMatchObject({ type: 'aws_secrets_manager', settings: { context_id: g.context.id } })
    expect(g.secret).toMatchObject({ slug: 'sym-main-okta-api-key', path: 'sym/main/okta-api-key', source_id: g.secretSource.id })
    expect(g.okta).toMatchObject({ settings: { api_token_secret: g.secret.id } })
    expect(g.errorLogger).toMatchObject({ slug: 'sym-errors', integration_id: g.slack.id, destination: '#sym-errors' })
    expect(g.firehose).toMatchObject({ slug: 'syms3reportinglogsmain', integration_id: g.context.id })
    expect(g.httpLog).toMatchObject({ type: 'http', settings: { url: 'https://logs.example.com/sym' } })
    expect(g.httpLog).not.toHaveProperty('integration_id')
    expect(g.environment).toMatchObject({
      slug: 'main',
      runtime_id: g.runtime.id,
      error_logger_id: g.errorLogger.id,
      integrations: { okta_id: g.okta.id, slack_id: g.slack.id },
      log_destination_ids: [g.firehose.id, g.httpLog.id],
    })
    expect(g.strategy).toMatchObject({ type: 'okta', integration_id: g.okta.id, targets: [g.oktaTarget.id] })
    expect(g.flow.created_at).toEqual(expect.any(String))
  })

  it('round-trips a flow: base64 implementation, params with strategy_id and prompt fields in order', () => {
    const sent = bodies.flow(g.environment.id, g.strategy.id)
    expect(g.flow).toMatchObject({
      slug: 'okta_access',
      label: 'Okta access',
      implementation: sent.implementation,
      environment_id: g.environment.id,
      vars: { request_channel: '#sym-requests' },
      params: {
        strategy_id: g.strategy.id,
        allow_revoke: true,
        schedule_deescalation: true,
        allowed_sources: ['slack', 'api'],
        prompt_fields: [
          { name: 'reason', type: 'string', required: true, label: 'Reason', allowed_values: [] },
          { name: 'duration', type: 'duration', allowed_values: ['30m', '1h', '1d'], on_change: sent.params.prompt_fields[1]!.on_change },
        ],
      },
    })
    // "" means unset: it is not stored and not echoed.
    const params = g.flow.params as { additional_header_text?: string; prompt_fields: { default?: string }[] }
    expect(params.additional_header_text).toBeUndefined()
    expect(params.prompt_fields[0]!.default).toBeUndefined()
  })

  it('stores a minimal approval-only flow as sent; defaults are documented, not filled in', async () => {
    const flow = await ok(h, 'POST', 'entities/flows', {
      body: { slug: 'approval', implementation: b64('export {}'), environment_id: g.environment.id, params: { prompt_fields: [{ name: 'reason', type: 'string' }] } },
    })
    expect(flow).toMatchObject({ vars: {}, params: { prompt_fields: [{ name: 'reason', type: 'string' }] } })
    expect(Object.keys(flow.params as object)).toEqual(['prompt_fields'])
    const bare = await ok(h, 'POST', 'entities/flows', { body: { slug: 'bare', implementation: b64('x'), environment_id: g.environment.id, params: {} } })
    expect(bare.params).toEqual({})
  })
})

/** One case per kind: where it lives, how to find it, and a full-object update. */
const kinds: { name: string; path: string; entity: () => Entity; find: () => string; update: (e: Entity) => Record<string, unknown>; expectAfter: () => Record<string, unknown> }[] = [
  { name: 'integration', path: 'integrations', entity: () => g.slack, find: () => '?slug=MAIN-SLACK&type=slack', update: (e) => ({ ...bodies.slack, id: e.id, label: 'Slack (renamed)' }), expectAfter: () => ({ label: 'Slack (renamed)' }) },
  { name: 'target', path: 'access-targets', entity: () => g.ssoTarget, find: () => '?slug=prod-admin&type=aws_sso_permission_set', update: () => ({ ...bodies.ssoTarget, label: 'Production admin' }), expectAfter: () => ({ label: 'Production admin' }) },
  { name: 'strategy', path: 'access-strategies', entity: () => g.strategy, find: () => '?slug=main-okta&type=okta', update: () => bodies.strategy(g.okta.id, [g.ssoTarget.id, g.oktaTarget.id]), expectAfter: () => ({ targets: [g.ssoTarget.id, g.oktaTarget.id] }) },
  { name: 'flow', path: 'flows', entity: () => g.flow, find: () => '?slug=okta_access', update: () => ({ ...bodies.flow(g.environment.id, g.strategy.id), params: {} }), expectAfter: () => ({ params: {} }) },
  { name: 'environment', path: 'environments', entity: () => g.environment, find: () => '?slug=main', update: () => ({ slug: 'main', integrations: { slack_id: g.slack.id } }), expectAfter: () => ({ integrations: { slack_id: g.slack.id } }) },
  { name: 'runtime', path: 'runtimes', entity: () => g.runtime, find: () => '?slug=main', update: () => ({ slug: 'main' }), expectAfter: () => ({ slug: 'main' }) },
  { name: 'secret source', path: 'secret-sources', entity: () => g.secretSource, find: () => '?slug=main-sym-secrets&type=aws_secrets_manager', update: () => ({ ...bodies.secretSource(g.context.id), label: 'Secrets' }), expectAfter: () => ({ label: 'Secrets' }) },
  { name: 'secret', path: 'secrets', entity: () => g.secret, find: () => '?slug=sym-main-okta-api-key', update: () => ({ ...bodies.secret(g.secretSource.id), settings: { json_key: 'token' } }), expectAfter: () => ({ settings: { json_key: 'token' } }) },
  { name: 'error logger', path: 'error-loggers', entity: () => g.errorLogger, find: () => '?slug=sym-errors', update: () => ({ integration_id: g.slack.id, destination: '#sym-alerts' }), expectAfter: () => ({ destination: '#sym-alerts', slug: 'sym-alerts' }) },
  { name: 'log destination', path: 'log-destinations', entity: () => g.httpLog, find: () => '?slug=logs-example-com-sym&type=http', update: () => ({ ...bodies.httpLog, settings: { url: 'https://other.example.com/in' } }), expectAfter: () => ({ slug: 'other-example-com-in' }) },
]

describe.each(kinds)('$name', ({ path, entity, find, update, expectAfter }) => {
  it('reads by id, finds by slug (an array), updates the full object and deletes', async () => {
    const e = entity()
    expect(await ok(h, 'GET', `entities/${path}/${e.id}`)).toEqual(e)
    const found = await call(h, 'GET', `entities/${path}${find()}`)
    expect(found.status).toBe(200)
    expect(found.body).toEqual([e])

    const updated = await ok(h, 'PATCH', `entities/${path}/${e.id}`, { body: update(e) })
    expect(updated).toMatchObject({ ...expectAfter(), id: e.id, created_at: e.created_at })
    expect(await ok(h, 'GET', `entities/${path}/${e.id}`)).toEqual(updated)
  })
})

describe('find', () => {
  it('returns an empty array when nothing matches and every entity without filters', async () => {
    expect((await call(h, 'GET', 'entities/flows?slug=nope')).body).toEqual([])
    const all = (await call(h, 'GET', 'entities/access-targets')).body as Entity[]
    expect(all.map((t) => t.slug).sort()).toEqual(['okta-admins', 'prod-admin'])
    expect((await call(h, 'GET', 'entities/access-targets?type=okta_group')).body).toHaveLength(1)
  })
})

describe('the flows filter singleton', () => {
  it('is created, read, replaced and deleted without an id in the path', async () => {
    const pd = await ok(h, 'POST', 'entities/integrations', { body: { type: 'pagerduty', slug: 'pd', external_id: 'acme.pagerduty.com', settings: {} } })
    expect((await call(h, 'GET', 'entities/flows-filter')).status).toBe(404)
    const created = await ok(h, 'POST', 'entities/flows-filter', { body: bodies.flowsFilter(pd.id) })
    expect(created).toMatchObject({ vars: { team: 'platform' }, integrations: { pagerduty_id: pd.id }, implementation: bodies.flowsFilter(pd.id).implementation })
    const again = await call(h, 'POST', 'entities/flows-filter', { body: bodies.flowsFilter(pd.id) })
    expect(again.status).toBe(409)
    expect(await ok(h, 'GET', 'entities/flows-filter')).toEqual(created)
    const replaced = await ok(h, 'PATCH', 'entities/flows-filter', { body: { ...bodies.flowsFilter(pd.id), vars: {} } })
    expect(replaced).toMatchObject({ id: created.id, vars: {} })
    expect((await call(h, 'DELETE', `entities/integrations/${pd.id}`)).status).toBe(409)
    expect((await call(h, 'DELETE', 'entities/flows-filter')).status).toBe(204)
    expect((await call(h, 'GET', 'entities/flows-filter')).status).toBe(404)
    expect((await call(h, 'DELETE', `entities/integrations/${pd.id}`)).status).toBe(204)
  })
})

describe('delete', () => {
  it('removes everything in reverse dependency order, and each is gone afterwards', async () => {
    const order: [string, Entity][] = [
      ['flows', g.flow],
      ['access-strategies', g.strategy],
      ['access-targets', g.oktaTarget],
      ['access-targets', g.ssoTarget],
      ['environments', g.environment],
      ['log-destinations', g.firehose],
      ['log-destinations', g.httpLog],
      ['error-loggers', g.errorLogger],
      ['integrations', g.okta],
      ['secrets', g.secret],
      ['secret-sources', g.secretSource],
      ['runtimes', g.runtime],
      ['integrations', g.context],
      ['integrations', g.slack],
    ]
    // The approval-only flows of the defaults test use the environment too.
    for (const f of (await call(h, 'GET', 'entities/flows')).body as Entity[]) {
      if (f.id !== g.flow.id) expect((await call(h, 'DELETE', `entities/flows/${f.id}`)).status).toBe(204)
    }
    for (const [path, e] of order) {
      const res = await call(h, 'DELETE', `entities/${path}/${e.id}`)
      expect(res.status, `${path} ${JSON.stringify(res.body)}`).toBe(204)
      expect((await call(h, 'GET', `entities/${path}/${e.id}`)).status).toBe(404)
    }
    expect((await call(h, 'DELETE', `entities/flows/${g.flow.id}`)).status).toBe(404)
  })
})
