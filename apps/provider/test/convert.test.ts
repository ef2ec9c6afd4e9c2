import { resources } from '@opensym/provider-schema'
import { describe, expect, it } from 'vitest'
import { formatPath, fromApiView, terraformPath, toApiBody, type TfObject } from '../src/convert.js'

const U1 = '60c49c8c-f181-41e4-8696-99cc0b0ffc4f'
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64')

const flowConfig: TfObject = {
  id: null,
  name: 'SSO_Access',
  label: null,
  implementation: 'export {}\n',
  environment_id: U1,
  vars: { channel: '#access' },
  params: [
    {
      strategy_id: null,
      allow_revoke: true,
      schedule_deescalation: true,
      include_decision_message: false,
      allowed_sources: null,
      additional_header_text: null,
      allow_guest_interaction: false,
      prompt_field: [{ name: 'reason', type: 'string', required: true, label: 'Reason', default: null, visible: true, allowed_values: null, prefetch: false, on_change: null }],
    },
  ],
}

describe('toApiBody', () => {
  it('renames, encodes and reshapes blocks as the API expects', () => {
    expect(toApiBody(resources.flow, flowConfig)).toEqual({
      slug: 'SSO_Access',
      implementation: b64('export {}\n'),
      environment_id: U1,
      vars: { channel: '#access' },
      params: {
        allow_revoke: true,
        schedule_deescalation: true,
        include_decision_message: false,
        allow_guest_interaction: false,
        prompt_fields: [{ name: 'reason', type: 'string', required: true, label: 'Reason', visible: true, prefetch: false }],
      },
    })
  })

  it('keeps base64 attributes as text when asked (for validation), in blocks too', () => {
    const config = { ...flowConfig, params: [{ ...(flowConfig.params as TfObject[])[0]!, prompt_field: [{ name: 'reason', type: 'string', on_change: 'export {}' }] }] }
    const body = toApiBody(resources.flow, config, { base64AsText: true })
    expect(body.implementation).toBe('export {}\n')
    expect((body.params as { prompt_fields: Record<string, unknown>[] }).prompt_fields[0]!.on_change).toBe('export {}')
    expect(toApiBody(resources.flow, config).implementation).toBe(b64('export {}\n'))
  })

  it('sends {} for an absent params block, "<null>" for a strategy without integration, and [] when configured empty', () => {
    expect(toApiBody(resources.flow, { ...flowConfig, params: [] }).params).toEqual({})
    const http = toApiBody(resources.strategy, { id: null, type: 'http', name: 'web', label: null, integration_id: null, targets: [], settings: {}, implementation: null })
    expect(http).toEqual({ type: 'http', slug: 'web', integration_id: '<null>', targets: [], settings: {} })
    const none = toApiBody(resources.flow, { ...flowConfig, params: [{ ...(flowConfig.params as TfObject[])[0]!, allowed_sources: [] }] })
    expect((none.params as { allowed_sources?: unknown }).allowed_sources).toEqual([])
  })
})

describe('fromApiView', () => {
  it('inverts toApiBody, keeping the configured case of the slug', () => {
    const view = { id: U1, ...toApiBody(resources.flow, flowConfig), slug: 'sso_access', created_at: 'x', updated_at: 'y' }
    expect(fromApiView(resources.flow, view, flowConfig)).toEqual({ ...flowConfig, id: U1 })
  })

  it('takes the API\'s case when the configuration changed more than case', () => {
    const view = { id: U1, ...toApiBody(resources.flow, flowConfig), slug: 'other' }
    expect(fromApiView(resources.flow, view, flowConfig).name).toBe('other')
  })

  it('reads {} params as no block, drops null settings keys, fills map defaults and keeps [] for omitted lists', () => {
    const flow = fromApiView(resources.flow, { id: U1, slug: 'f', implementation: b64('x'), environment_id: U1, params: {} })
    expect(flow.params).toEqual([])
    expect(flow.vars).toEqual({})
    const target = fromApiView(
      resources.target,
      { id: U1, type: 'okta_group', slug: 't', settings: { group_id: 'g', account_id: null } },
      { field_bindings: [] },
    )
    expect(target).toEqual({ id: U1, type: 'okta_group', name: 't', label: null, settings: { group_id: 'g' }, field_bindings: [] })
    expect(fromApiView(resources.target, { id: U1, type: 'okta_group', slug: 't', settings: {} }).field_bindings).toBeNull()
    expect(fromApiView(resources.strategy, { id: U1, type: 'http', slug: 's', targets: [], integration_id: '<null>' }).integration_id).toBeNull()
  })
})

describe('terraformPath', () => {
  it.each([
    ['slug', 'name'],
    ['params.prompt_fields[1].type', 'params[0].prompt_field[1].type'],
    ['params.strategy_id', 'params[0].strategy_id'],
    ['settings.group_id', 'settings["group_id"]'],
    ['targets[2]', 'targets[2]'],
    ['integrations.slack_id', 'integrations["slack_id"]'],
    ['params', 'params[0]'],
    ['nonsense.deep', ''],
  ])('%s → %s', (field, expected) => {
    const r = field.startsWith('targets') ? resources.strategy : field.startsWith('integrations') ? resources.environment : field.startsWith('settings') ? resources.target : resources.flow
    expect(formatPath(terraformPath(r, field))).toBe(expected)
  })
})
