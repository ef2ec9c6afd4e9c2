import { resources } from '@opensym/provider-schema'
import { decodeMsgpack, encodeMsgpack } from '@opensym/tfplugin/cty'
import { describe, expect, it } from 'vitest'
import { UNKNOWN, type TfConfigObject } from '../src/resources.js'
import { blockType, fromPlain, toPlain } from '../src/values.js'

describe('cty ↔ plain values', () => {
  const flowType = blockType(resources.flow.attributes, resources.flow.blocks)

  it('round-trips a flow through msgpack, unknowns included', () => {
    const plain: TfConfigObject = {
      id: UNKNOWN,
      name: 'sso',
      label: null,
      implementation: 'export {}',
      environment_id: UNKNOWN,
      vars: { a: '1' },
      params: [
        {
          strategy_id: null,
          allow_revoke: true,
          schedule_deescalation: true,
          include_decision_message: false,
          allowed_sources: ['slack'],
          additional_header_text: null,
          allow_guest_interaction: false,
          prompt_field: [],
        },
      ],
    }
    const bytes = encodeMsgpack(fromPlain(plain, flowType), flowType)
    expect(toPlain(decodeMsgpack(bytes, flowType))).toEqual(plain)
  })

  it('keeps __proto__ map keys as data', () => {
    const type = blockType(resources.integration.attributes, undefined)
    const settings = JSON.parse('{"__proto__":"x","ok":"y"}') as TfConfigObject
    const back = toPlain(fromPlain({ type: 'custom', name: 'c', external_id: 'e', settings }, type)) as TfConfigObject
    expect(Object.keys(back.settings as object)).toEqual(['__proto__', 'ok'])
    expect(({} as Record<string, unknown>).x).toBeUndefined()
  })
})
