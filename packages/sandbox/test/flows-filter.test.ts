/**
 * Flows filters (`sym_flows_filter`'s `getFlows`) in the sandbox: the SDK's sample filter gives the same answers
 * here as in its author's tests, its integration calls reach the sandbox's handlers with the event given, and it can
 * only hide flows, never add one.
 */
import { readFileSync } from 'node:fs'
import { fakeEventData, fakeFlows, fakeUser } from '@opensym/sdk/testing'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { createSandbox, type LoadFlowsFilterResult } from '../src/index.js'
import { expectFailure, key } from './helpers.js'

const SAMPLE = readFileSync(new URL('../../sdk/test/fixtures/flows-filter.ts', import.meta.url), 'utf8')

let incidents: unknown[] = []
const getIncidents = vi.fn(async () => incidents as never)
const sandbox = createSandbox<{ orgId: string }>({ memoryLimitMb: 32, timeoutMs: 2000, host: { 'pagerduty.getIncidents': getIncidents } })
afterAll(() => sandbox.close())

function ready<C>(r: LoadFlowsFilterResult<C>) {
  if (!r.ok) throw new Error(`load failed: ${r.error.kind}: ${r.error.message}`)
  return r.filter
}

const flows = fakeFlows('okta-access', { name: 'break-glass-db', environment: 'prod' }, 'aws-access')
const member = fakeUser().toJSON()
const context = fakeEventData({ name: 'prompt', user: member, flow: { environment: { integrations: { pagerduty: { type: 'pagerduty', externalId: 'acme', settings: {} } } } } })

describe('flows filters', () => {
  it('runs the sample filter: break-glass flows only during an incident, asking PagerDuty through the host', async () => {
    const filter = ready(await sandbox.loadFlowsFilter(key('filter'), SAMPLE))
    expect(filter.exports.handlers).toEqual(['getFlows'])
    incidents = []
    const quiet = await filter.getFlows(member, flows, {}, context, { context: { orgId: 'o1' } })
    expect(quiet).toMatchObject({ ok: true, value: [flows[0]!.id, flows[2]!.id], hostCalls: 1 })
    expect(getIncidents).toHaveBeenLastCalledWith({}, expect.objectContaining({ handler: 'getFlows', context: { orgId: 'o1' }, event: context }))
    incidents = [{ id: 'P1' }]
    const busy = await filter.getFlows(member, flows, {}, context)
    expect(busy).toMatchObject({ ok: true, value: flows.map((f) => f.id) })
  })

  it('cannot add flows: IDs it was not given are dropped', async () => {
    const source = `export function getFlows(user, flows) { return ['00000000-0000-4000-8000-000000000000', ...flows.slice(1)] }`
    const filter = ready(await sandbox.loadFlowsFilter(key('filter'), source))
    expect(await filter.getFlows(member, flows, {}, context)).toMatchObject({ ok: true, value: [flows[1]!.id, flows[2]!.id] })
  })

  it('a module without getFlows does not load; one that throws or loops fails typed', async () => {
    expectFailure(await sandbox.loadFlowsFilter(key('filter'), 'export const x = 1'), 'not_defined', /getFlows/)
    const throws = ready(await sandbox.loadFlowsFilter(key('filter'), `export function getFlows() { throw new Error('nope') }`))
    expectFailure(await throws.getFlows(member, flows, {}, context), 'error', /getFlows threw Error: nope/)
    const loops = ready(await sandbox.loadFlowsFilter(key('filter'), `export function getFlows() { for (;;) {} }`))
    expectFailure(await loops.getFlows(member, flows, {}, context), 'timeout')
    const wrong = ready(await sandbox.loadFlowsFilter(key('filter'), `export function getFlows() { return 'all' }`))
    expectFailure(await wrong.getFlows(member, flows, {}, context), 'invalid_result', /array/)
  })

  it('keeps filters apart from flows of the same key', async () => {
    const k = key('shared')
    const asFlow = await sandbox.load(k, 'export function getPermissions() { return { webappView: "member", approveDeny: "member", allowSelfApproval: false } }')
    expect(asFlow.ok).toBe(true)
    expectFailure(await sandbox.loadFlowsFilter(k, 'export function getPermissions() {}'), 'not_defined')
    expect((await sandbox.loadFlowsFilter(k, 'export const getFlows = (u, f) => f')).ok).toBe(true)
  })
})
