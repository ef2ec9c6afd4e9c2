import { describe, expect, it } from 'vitest'
import { durationSeconds, validateFlowInputs, type FlowInputRules, type PromptField } from '../src/index.js'

const reason: PromptField = { name: 'reason', type: 'string', required: true }
const duration: PromptField = { name: 'duration', type: 'duration', required: true, allowed_values: ['30m', '1h', '1d'] }
const access = (promptFields: PromptField[], scheduleDeescalation = true): FlowInputRules => ({ promptFields, hasStrategy: true, scheduleDeescalation })
const approvalOnly = (promptFields: PromptField[]): FlowInputRules => ({ promptFields, hasStrategy: false, scheduleDeescalation: true })

describe('durations', () => {
  it.each<[unknown, number | undefined]>([
    [3600, 3600],
    ['3600', 3600],
    ['1h', 3600],
    ['30m', 1800],
    ['1d', 86_400],
    [1.5, undefined],
    ['1.5h', undefined],
    ['soon', undefined],
    [true, undefined],
  ])('%j is %s seconds', (value, seconds) => {
    expect(durationSeconds(value)).toBe(seconds)
  })
})

describe('an access request', () => {
  it('is valid with its prompt fields, a target and a duration in seconds', () => {
    const r = validateFlowInputs(access([reason, duration]), { reason: 'incident 42', duration: '1h', target_id: 't1' })
    expect(r).toEqual({ ok: true, value: { fields: { reason: 'incident 42', duration: 3600 }, durationSeconds: 3600, target: { by: 'id', value: 't1' } } })
  })

  it('accepts a target SRN instead of an id', () => {
    const r = validateFlowInputs(access([reason, duration]), { reason: 'x', duration: 3600, target_srn: 'o:access_target:custom:db:latest' })
    expect(r).toMatchObject({ ok: true, value: { target: { by: 'srn', value: 'o:access_target:custom:db:latest' } } })
  })

  it('names every missing field', () => {
    const r = validateFlowInputs(access([reason, duration]), {})
    expect(r).toEqual({
      ok: false,
      errors: [
        { field: 'reason', message: 'is required' },
        { field: 'duration', message: 'is required' },
        { field: 'target_id', message: 'is required for an access flow (the target to grant)' },
      ],
    })
  })

  it('enforces allowed_values, naming the field and the values', () => {
    const r = validateFlowInputs(access([reason, duration]), { reason: 'x', duration: '2h', target_id: 't' })
    expect(r).toEqual({ ok: false, errors: [{ field: 'duration', message: 'must be one of "30m", "1h", "1d"' }] })
    const urgency: PromptField = { name: 'urgency', type: 'string', required: false, allowed_values: ['Low', 'High'] }
    expect(validateFlowInputs(approvalOnly([urgency]), { urgency: 'Urgent' })).toEqual({ ok: false, errors: [{ field: 'urgency', message: 'must be one of "Low", "High"' }] })
  })

  it('rejects unknown fields, naming the flow’s fields', () => {
    const r = validateFlowInputs(approvalOnly([reason]), { reason: 'x', reasn: 'typo' })
    expect(r).toEqual({ ok: false, errors: [{ field: 'reasn', message: 'is not a prompt field of this flow (fields: reason)' }] })
  })

  it('rejects out-of-range and unknown durations', () => {
    const free: PromptField = { name: 'duration', type: 'duration' }
    expect(validateFlowInputs(access([free]), { duration: 0, target_id: 't' })).toMatchObject({ ok: false, errors: [{ field: 'duration', message: expect.stringMatching(/between 1 second and 365 days/) }] })
    expect(validateFlowInputs(access([free]), { duration: '2y', target_id: 't' })).toMatchObject({ ok: false, errors: [{ field: 'duration', message: expect.stringMatching(/must be a duration/) }] })
    expect(validateFlowInputs(access([free]), { duration: 400 * 86_400, target_id: 't' })).toMatchObject({ ok: false, errors: [{ field: 'duration' }] })
  })

  it('needs a duration even when the flow declares none (and reads it as seconds or "1h")', () => {
    expect(validateFlowInputs(access([reason]), { reason: 'x', target_id: 't' })).toEqual({ ok: false, errors: [{ field: 'duration', message: 'is required' }] })
    expect(validateFlowInputs(access([reason]), { reason: 'x', target_id: 't', duration: '30m' })).toMatchObject({ ok: true, value: { durationSeconds: 1800 } })
  })

  it('reads a duration declared as int seconds or as a string like "1h"', () => {
    const asInt: PromptField = { name: 'duration', type: 'int' }
    expect(validateFlowInputs(access([asInt]), { duration: '120', target_id: 't' })).toMatchObject({ ok: true, value: { durationSeconds: 120, fields: { duration: 120 } } })
    const asString: PromptField = { name: 'duration', type: 'string', allowed_values: ['1h', '4h'] }
    expect(validateFlowInputs(access([asString]), { duration: '4h', target_id: 't' })).toMatchObject({ ok: true, value: { durationSeconds: 14_400, fields: { duration: 14_400 } } })
    expect(validateFlowInputs(access([asString]), { duration: '5h', target_id: 't' })).toMatchObject({ ok: false, errors: [{ field: 'duration' }] })
  })

  it('needs no duration when de-escalation is not scheduled', () => {
    expect(validateFlowInputs(access([reason], false), { reason: 'x', target_id: 't' })).toMatchObject({ ok: true, value: { durationSeconds: undefined } })
  })

  it('applies defaults of optional fields, and converts types', () => {
    const fields: PromptField[] = [
      { name: 'urgency', type: 'string', required: false, default: 'Normal' },
      { name: 'count', type: 'int' },
      { name: 'page', type: 'bool' },
      { name: 'repos', type: 'str_list', allowed_values: ['a', 'b'] },
      { name: 'ports', type: 'int_list' },
      { name: 'buddy', type: 'slack_user' },
    ]
    const r = validateFlowInputs(approvalOnly(fields), { count: '3', page: 'true', repos: ['a'], ports: ['22', 443], buddy: 'U0123ABCD' })
    expect(r).toEqual({ ok: true, value: { fields: { urgency: 'Normal', count: 3, page: true, repos: ['a'], ports: [22, 443], buddy: 'U0123ABCD' }, durationSeconds: undefined, target: undefined } })
  })

  it('names each field of the wrong type', () => {
    const fields: PromptField[] = [
      { name: 'count', type: 'int' },
      { name: 'page', type: 'bool' },
      { name: 'repos', type: 'str_list', allowed_values: ['a'] },
      { name: 'buddy', type: 'slack_user' },
      { name: 'odd', type: 'date' },
    ]
    const r = validateFlowInputs(approvalOnly(fields), { count: 1.5, page: 'yes', repos: ['a', 'z'], buddy: 'bob', odd: 'x' })
    expect(r).toEqual({
      ok: false,
      errors: [
        { field: 'count', message: 'must be an integer' },
        { field: 'page', message: 'must be true or false' },
        { field: 'repos', message: 'has "z", which is not one of "a"' },
        { field: 'buddy', message: 'must be a Slack user ID such as U0123ABCD' },
        { field: 'odd', message: 'has an unknown field type "date"' },
      ],
    })
  })

  it('treats an empty list as missing for a required list field', () => {
    expect(validateFlowInputs(approvalOnly([{ name: 'repos', type: 'str_list' }]), { repos: [] })).toEqual({ ok: false, errors: [{ field: 'repos', message: 'is required' }] })
  })

  it('refuses both target_id and target_srn, a non-string target, and targets on an approval-only flow', () => {
    const rules = access([], false)
    expect(validateFlowInputs(rules, { target_id: 'a', target_srn: 'b' })).toEqual({ ok: false, errors: [{ field: 'target_id', message: 'give target_id or target_srn, not both' }] })
    expect(validateFlowInputs(rules, { target_srn: 42 })).toEqual({ ok: false, errors: [{ field: 'target_srn', message: 'must be a string' }] })
    expect(validateFlowInputs(approvalOnly([]), { target_id: 'a' })).toEqual({ ok: false, errors: [{ field: 'target_id', message: 'this is an approval-only flow: it has no targets' }] })
  })

  it('ignores a prompt field named target_id (the strategy’s targets answer it)', () => {
    const r = validateFlowInputs(access([{ name: 'target_id', type: 'string' }], false), { target_id: 't' })
    expect(r).toMatchObject({ ok: true, value: { target: { by: 'id', value: 't' }, fields: {} } })
  })
})
