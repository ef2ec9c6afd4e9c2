import { createClient, SymApiError } from '@opensym/sdk'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bodies } from './graph.js'
import { b64, useApi } from './helpers.js'

const h = useApi()
let baseUrl: string
beforeAll(async () => {
  // A real socket this time: the SDK client speaks HTTP with fetch.
  baseUrl = `${await h.app.listen({ port: 0, host: '127.0.0.1' })}/api/v1`
})
afterAll(async () => {
  await h.app.close()
})

describe('the SDK client against a listening API', () => {
  it('creates, finds, reads, replaces and deletes with typed bodies', async () => {
    const sym = createClient({ baseUrl, token: h.a.tokens.bot })
    const slack = await sym.entities.integration.create(bodies.slack)
    expect(slack).toMatchObject({ slug: 'main-slack', external_id: 'T123ABC' })
    const env = await sym.entities.environment.create({ slug: 'prod', integrations: { slack_id: slack.id } })
    const flow = await sym.entities.flow.create({ slug: 'approve', implementation: b64('export {}'), environment_id: env.id, params: { allow_revoke: false } })
    expect(flow.params).toEqual({ allow_revoke: false })
    expect(await sym.entities.flow.find({ slug: 'APPROVE' })).toEqual([flow])
    expect(await sym.entities.flow.get(flow.id)).toEqual(flow)
    const renamed = await sym.entities.flow.update(flow.id, { slug: 'approve', label: 'Approve', implementation: b64('export {}'), environment_id: env.id })
    expect(renamed.label).toBe('Approve')
    await sym.entities.flow.delete(flow.id)
    await expect(sym.entities.flow.get(flow.id)).rejects.toMatchObject({ status: 404, code: 'EntityAPI:NOT_FOUND' })
    const filter = await sym.entities.flows_filter.create({ implementation: b64('export const getFlows = (u, f) => f') })
    expect(await sym.entities.flows_filter.get()).toEqual(filter)
    await sym.entities.flows_filter.delete()
  })

  it('turns error responses into SymApiError with the field errors and request id', async () => {
    const sym = createClient({ baseUrl, token: h.a.tokens.bot })
    const err = await sym.entities.target.create({ type: 'okta_group', slug: 'g', settings: {} }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(SymApiError)
    expect(err).toMatchObject({ status: 400, code: 'EntityAPI:INVALID_REQUEST', errors: [{ field: 'settings.group_id' }], isRetryable: false })
    expect((err as SymApiError).requestId).toMatch(/^[0-9a-f-]{36}$/)
    const anonymous = createClient({ baseUrl, token: 'nope' })
    await expect(anonymous.entities.runtime.find()).rejects.toMatchObject({ status: 401, code: 'Auth:UNAUTHENTICATED' })
  })
})
