/**
 * Apply-time checks of flow code: an implementation that does not compile is refused (400 naming
 * `implementation`, with the compiler's message and line), on create and on update; Python (Sym's impl.py) is
 * stored, to fail when it runs.
 */
import { beforeAll, describe, expect, it } from 'vitest'
import { createGraph, type Graph } from './graph.js'
import { b64, call, ok, useApi } from './helpers.js'

const h = useApi()
let g: Graph
beforeAll(async () => {
  g = await createGraph(h)
})

type ErrorResponse = { message: string; errors: { field: string; message: string }[]; code: string; status_code: number }

const flowBody = (slug: string, implementation: string) => ({ slug, implementation: b64(implementation), environment_id: g.environment.id, params: {} })

const BROKEN = `import { slack, type Event } from '@opensym/sdk'

export function getRequestNotifications(event: Event) {
  return [{ destinations: [slack.channel('#x')] timeout: null }]
}
`

const PYTHON = `from sym.sdk.annotations import reducer
from sym.sdk.integrations import slack


@reducer
def get_approvers(event):
    return slack.channel("#access-requests", allow_self=True)
`

describe('flow implementations at apply time', () => {
  it('refuses one that does not compile, with the compiler’s message and line', async () => {
    const res = await call(h, 'POST', 'entities/flows', { body: flowBody('broken', BROKEN) })
    expect(res.status).toBe(400)
    const body = res.body as ErrorResponse
    expect(body).toMatchObject({ code: 'EntityAPI:INVALID_REQUEST', status_code: 400 })
    expect(body.errors).toEqual([{ field: 'implementation', message: 'does not compile: impl.ts:4:49: Expected "}" but found "timeout"' }])
    expect(body.message).toBe('implementation: does not compile: impl.ts:4:49: Expected "}" but found "timeout"')
    expect(await h.db.flow.count({ where: { orgId: h.a.id, slug: 'broken' } })).toBe(0)
  })

  it('refuses imports other than the SDK, naming them', async () => {
    const res = await call(h, 'POST', 'entities/flows', { body: flowBody('imports', "import axios from 'axios'\nexport const getPermissions = () => axios\n") })
    expect(res.status).toBe(400)
    expect((res.body as ErrorResponse).errors).toEqual([
      { field: 'implementation', message: expect.stringMatching(/^does not compile: impl\.ts:1:19: Import "axios" is not allowed: a flow implementation may import only @opensym\/sdk/) },
    ])
  })

  it('refuses an update that breaks a stored flow, and keeps the stored version', async () => {
    const flow = await ok(h, 'POST', 'entities/flows', { body: flowBody('updatable', 'export const getPermissions = () => ({ webappView: "member", approveDeny: "member" })\n') })
    const res = await call(h, 'PATCH', `entities/flows/${flow.id}`, { body: flowBody('updatable', 'export const getPermissions = () => ({ webappView: "member", \n') })
    expect(res.status).toBe(400)
    expect((res.body as ErrorResponse).errors[0]).toMatchObject({ field: 'implementation', message: expect.stringContaining('impl.ts:2:') })
    const stored = await ok(h, 'GET', `entities/flows/${flow.id}`)
    expect(stored.implementation).toBe(flow.implementation)
  })

  it('accepts one written with the SDK', async () => {
    const source = "import { ApprovalTemplate, slack, type Event } from '@opensym/sdk'\nexport const getRequestNotifications = () => [{ destinations: [slack.channel('#x')], timeout: null }]\nexport const onRequest = (e: Event) => (e.payload.fields.auto ? ApprovalTemplate.approve() : undefined)\n"
    const flow = await ok(h, 'POST', 'entities/flows', { body: flowBody('sdk', source) })
    expect(flow.implementation).toBe(b64(source))
  })

  it('stores a Python implementation as sent (it fails when it runs)', async () => {
    const flow = await ok(h, 'POST', 'entities/flows', { body: flowBody('python', PYTHON) })
    expect(flow.implementation).toBe(b64(PYTHON))
  })

  it('checks the flows filter’s implementation too', async () => {
    const res = await call(h, 'POST', 'entities/flows-filter', { body: { implementation: b64('export function getFlows(user, flows) { return flows.filter(f => ) }\n') } })
    expect(res.status).toBe(400)
    expect((res.body as ErrorResponse).errors[0]).toMatchObject({ field: 'implementation', message: expect.stringContaining('impl.ts:1:') })
  })

  it('checks a custom strategy’s implementation, and only a custom one’s', async () => {
    const integration = await ok(h, 'POST', 'entities/integrations', { body: { type: 'custom', slug: 'backoffice', external_id: 'bo-1', settings: {} } })
    const target = await ok(h, 'POST', 'entities/access-targets', { body: { type: 'custom', slug: 'bo-refunds', settings: { role: 'refunds' } } })
    const strategyBody = (slug: string, implementation: string, type = 'custom') => ({ type, slug, integration_id: integration.id, targets: [target.id], implementation: b64(implementation) })
    const res = await call(h, 'POST', 'entities/access-strategies', { body: strategyBody('broken-custom', 'export async function escalate(targetId: string {\n}\n') })
    expect(res.status).toBe(400)
    expect((res.body as ErrorResponse).errors).toEqual([{ field: 'implementation', message: expect.stringMatching(/^does not compile: impl\.ts:1:/) }])

    const source = "import { RetryableError, type AccessStrategy, type Event } from '@opensym/sdk'\nexport async function escalate(targetId: string, event: Event, strategy: AccessStrategy) { if (!targetId) throw new RetryableError('later'); return { id: await strategy.getRequesterIdentity(event) } }\nexport async function deescalate() {}\n"
    const strategy = await ok(h, 'POST', 'entities/access-strategies', { body: strategyBody('backoffice', source) })
    expect(strategy.implementation).toBe(b64(source))
  })

  it('leaves the graph’s flow untouched', () => {
    expect(g.flow.slug).toBe('okta_access')
  })
})
