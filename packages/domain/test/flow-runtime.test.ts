import { describe, expect, it } from 'vitest'
import {
  afterLink,
  chainExpires,
  decisionRefusal,
  hookFailureStatus,
  hookNames,
  interpretHookReply,
  linkDueAt,
  parseRequestPermission,
  UNROUTED_PERMISSION,
  type Actor,
} from '../src/index.js'

const approve = (fields: Record<string, unknown> = {}) => ({ type: 'transition' as const, transition: 'approve' as const, fields })
const deny = (fields: Record<string, unknown> = {}) => ({ type: 'transition' as const, transition: 'deny' as const, fields })
const deescalate = { type: 'transition' as const, transition: 'deescalate' as const, fields: { reason: 'not today' } }
const ignore = { type: 'ignore' as const, message: 'Only on-call engineers can approve.' }

describe('hook replies', () => {
  it('nothing returned: the event proceeds', () => {
    expect(interpretHookReply('approve', { type: 'proceed' })).toEqual({ kind: 'proceed', fields: {} })
  })

  it('onRequest may approve or deny: the request is replaced, kwargs become fields', () => {
    expect(interpretHookReply('request', approve({ reason: 'auto' }))).toEqual({ kind: 'replace', step: 'approve', fields: { reason: 'auto' } })
    expect(interpretHookReply('request', deny())).toEqual({ kind: 'replace', step: 'deny', fields: {} })
  })

  it('a hook returning its own event is processed once, as the event, with its fields', () => {
    expect(interpretHookReply('approve', approve({ note: 'ok' }))).toEqual({ kind: 'proceed', fields: { note: 'ok' } })
    expect(interpretHookReply('request', { type: 'transition', transition: 'request', fields: {} })).toEqual({ kind: 'proceed', fields: {} })
  })

  it('forward only: onDeny cannot approve, onEscalate cannot ignore', () => {
    expect(interpretHookReply('deny', approve())).toMatchObject({ kind: 'refuse', reason: expect.stringMatching(/onDeny cannot return ApprovalTemplate.approve/) })
    expect(interpretHookReply('escalate', ignore)).toMatchObject({ kind: 'refuse', reason: expect.stringMatching(/only move forward/) })
    expect(interpretHookReply('deescalate', approve())).toMatchObject({ kind: 'refuse' })
  })

  it('ignore blocks a person’s action, but never a scheduled de-escalation', () => {
    expect(interpretHookReply('approve', ignore)).toEqual({ kind: 'ignore', message: ignore.message })
    expect(interpretHookReply('deescalate', ignore)).toEqual({ kind: 'ignore', message: ignore.message })
    expect(interpretHookReply('deescalate', ignore, { scheduled: true })).toEqual({ kind: 'proceed', fields: {} })
  })

  it('onApprove may turn an approval into a denial; onEscalate may end the access', () => {
    expect(interpretHookReply('approve', deny({ reason: 'no' }))).toEqual({ kind: 'replace', step: 'deny', fields: { reason: 'no' } })
    expect(interpretHookReply('escalate', deescalate)).toEqual({ kind: 'replace', step: 'deescalate', fields: { reason: 'not today' } })
  })

  it('names the hooks of a step', () => {
    expect(hookNames('deescalate')).toEqual({ on: 'onDeescalate', after: 'afterDeescalate' })
  })

  it('a request whose hook failed ends errored; an ignored approval keeps the request open', () => {
    expect(hookFailureStatus('requested', 'request')).toBe('errored')
    expect(hookFailureStatus('approved', 'escalate')).toBe('errored')
    expect(hookFailureStatus('requested', 'approve')).toBeUndefined()
    expect(hookFailureStatus('escalated', 'deescalate')).toBeUndefined()
  })
})

describe('stored permissions', () => {
  it('reads what the worker stored, and nothing else', () => {
    expect(parseRequestPermission({ webappView: 'member', approveDeny: ['u1'], allowSelfApproval: true })).toEqual({ webappView: 'member', approveDeny: ['u1'], allowSelfApproval: true })
    expect(parseRequestPermission({ approveDeny: 'member' })).toEqual({ approveDeny: 'member', allowSelfApproval: false })
    expect(parseRequestPermission(null)).toBeUndefined()
    expect(parseRequestPermission({ approveDeny: 'everyone' })).toBeUndefined()
    expect(parseRequestPermission({ approveDeny: [1] })).toBeUndefined()
  })

  it('before routing, only the rules that hold for every flow apply', () => {
    const member: Actor = { userId: 'm', userType: 'normal', role: 'member' }
    const guest: Actor = { userId: 'g', userType: 'normal', role: 'guest' }
    expect(decisionRefusal(member, 'r', UNROUTED_PERMISSION, { allowGuestInteraction: false })).toBeUndefined()
    expect(decisionRefusal(member, 'm', UNROUTED_PERMISSION, { allowGuestInteraction: false })).toMatch(/own request/)
    expect(decisionRefusal(guest, 'r', UNROUTED_PERMISSION, { allowGuestInteraction: false })).toMatch(/Guests/)
  })
})

describe('notification chains', () => {
  it('a link is due its timeout after it was posted; without one, never', () => {
    expect(linkDueAt(new Date('2026-01-01T00:00:00Z'), 90)).toEqual(new Date('2026-01-01T00:01:30Z'))
    expect(linkDueAt(new Date('2026-01-01T00:00:00Z'), null)).toBeNull()
  })

  it('moves on to the next link, and after the last the request expires', () => {
    expect(afterLink(0, 2)).toEqual({ next: 1 })
    expect(afterLink(1, 2)).toEqual({ expire: true })
  })

  it('the chain decides the expiry when its last link has a timeout', () => {
    expect(chainExpires([60, 60])).toBe(true)
    expect(chainExpires([60, null])).toBe(false)
    expect(chainExpires([])).toBe(false)
  })
})
