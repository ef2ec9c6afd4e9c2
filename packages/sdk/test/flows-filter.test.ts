/** How an author tests a flows filter (`sym_flows_filter`'s `getFlows`) with @opensym/sdk/testing. */
import type { FlowsFilterImplementation } from '@opensym/sdk'
import { fakeFlows, fakeUser, InvalidResultError, NotDefinedError, runGetFlows } from '@opensym/sdk/testing'
import { describe, expect, it, vi } from 'vitest'
import * as filter from './fixtures/flows-filter.js'

filter satisfies FlowsFilterImplementation

const flows = fakeFlows('okta-access', { name: 'break-glass-db', environment: 'prod' }, { name: 'break-glass-db', environment: 'staging' }, 'aws-access')

describe('a flows filter, tested by its author', () => {
  it('hides break-glass flows from members while no incident is open, asking PagerDuty', async () => {
    const getIncidents = vi.fn(async () => [])
    const shown = await runGetFlows(filter, fakeUser(), flows, { host: { 'pagerduty.getIncidents': getIncidents } })
    expect(shown.map((f) => f.name)).toEqual(['okta-access', 'aws-access'])
    expect(getIncidents).toHaveBeenCalledWith({}, expect.objectContaining({ handler: 'getFlows' }))
  })

  it('keeps flows returned by name in every environment, in the order given', async () => {
    const shown = await runGetFlows(filter, fakeUser(), flows, { host: { 'pagerduty.getIncidents': async () => [{ id: 'P1' }] } })
    expect(shown).toEqual(flows)
  })

  it('passes vars, and the user as a User', async () => {
    const shown = await runGetFlows(filter, fakeUser({ role: 'admin' }), flows, { vars: { break_glass_prefix: 'okta' } })
    expect(shown).toHaveLength(4)
    const noOkta = await runGetFlows(filter, fakeUser(), flows, { vars: { break_glass_prefix: 'okta' }, host: { 'pagerduty.getIncidents': async () => [] } })
    expect(noOkta.map((f) => f.name)).toEqual(['break-glass-db', 'break-glass-db', 'aws-access'])
  })

  it('cannot add flows it was not given, and fails clearly on a wrong shape or a missing getFlows', async () => {
    const sneaky: FlowsFilterImplementation = { getFlows: () => ['not-a-flow', { id: 'f0', name: 'x', label: null, environment: 'prod' }] }
    expect(await runGetFlows(sneaky, fakeUser(), flows)).toEqual([])
    const wrong = { getFlows: () => 'okta-access' } as unknown as FlowsFilterImplementation
    await expect(runGetFlows(wrong, fakeUser(), flows)).rejects.toBeInstanceOf(InvalidResultError)
    await expect(runGetFlows({} as FlowsFilterImplementation, fakeUser(), flows)).rejects.toBeInstanceOf(NotDefinedError)
  })

  it('rethrows what getFlows throws', async () => {
    const broken: FlowsFilterImplementation = { getFlows: () => { throw new Error('boom') } }
    await expect(runGetFlows(broken, fakeUser(), flows)).rejects.toThrow('boom')
  })
})
