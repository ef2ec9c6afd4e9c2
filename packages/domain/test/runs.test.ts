import { describe, expect, it } from 'vitest'
import {
  accessExpiresAt,
  decisionRefusal,
  DEFAULT_REQUEST_PERMISSION,
  failureStatus,
  isFinished,
  nextStep,
  requestExpiresAt,
  revokeRefusal,
  RUN_STATUSES,
  sourceRefusal,
  STEPS,
  transition,
  type Actor,
  type RequestPermission,
  type RunStatus,
  type Step,
} from '../src/index.js'

describe('the run state machine', () => {
  it.each<[RunStatus, Step, RunStatus]>([
    ['requested', 'approve', 'approved'],
    ['requested', 'deny', 'denied'],
    ['requested', 'expire', 'expired'],
    ['approved', 'escalate', 'escalated'],
    ['escalated', 'deescalate', 'deescalated'],
  ])('%s --%s--> %s', (from, step, to) => {
    expect(transition(from, step)).toEqual({ ok: true, to })
  })

  it("refuses a de-escalation of a requested run in Sym's words", () => {
    expect(transition('requested', 'deescalate')).toEqual({ ok: false, reason: "Cannot de-escalate a run with status 'requested'. Status must be 'escalated'." })
  })

  it('only moves forward: every other pair is refused with a reason naming both statuses', () => {
    const allowed = new Set(['requested/approve', 'requested/deny', 'requested/expire', 'approved/escalate', 'escalated/deescalate'])
    for (const status of RUN_STATUSES) {
      for (const step of STEPS) {
        const r = transition(status, step)
        if (allowed.has(`${status}/${step}`)) continue
        expect(r.ok, `${status}/${step}`).toBe(false)
        if (!r.ok && step !== 'prompt' && step !== 'request') expect(r.reason).toContain(`status '${status}'`)
      }
    }
  })

  it('never leaves a terminal status: a denied run cannot be approved, a de-escalated one not de-escalated again', () => {
    expect(transition('denied', 'approve')).toMatchObject({ ok: false, reason: "Cannot approve a run with status 'denied'. Status must be 'requested'." })
    expect(transition('deescalated', 'deescalate')).toMatchObject({ ok: false })
    expect(transition('expired', 'deny')).toMatchObject({ ok: false })
    expect(transition('errored', 'escalate')).toMatchObject({ ok: false })
  })

  it('request and prompt start runs; they are not steps of an existing run', () => {
    expect(transition('requested', 'request')).toMatchObject({ ok: false, reason: expect.stringMatching(/start a new run/) })
  })

  it('escalates after approve for access flows only', () => {
    expect(nextStep('approve', true)).toBe('escalate')
    expect(nextStep('approve', false)).toBeUndefined()
    expect(nextStep('escalate', true)).toBeUndefined()
    expect(nextStep('deny', true)).toBeUndefined()
  })

  it('a failed escalate errors the run; a failed de-escalate leaves it escalated (the access is still there)', () => {
    expect(failureStatus('approved', 'escalate')).toBe('errored')
    expect(failureStatus('escalated', 'deescalate')).toBeUndefined()
    expect(failureStatus('requested', 'approve')).toBeUndefined()
  })

  it('an approval-only flow is finished once approved', () => {
    expect(isFinished('approved', false)).toBe(true)
    expect(isFinished('approved', true)).toBe(false)
    expect(isFinished('escalated', true)).toBe(false)
    for (const s of ['denied', 'expired', 'deescalated', 'errored'] as const) expect(isFinished(s, true)).toBe(true)
  })
})

describe('expiry arithmetic', () => {
  const t = new Date('2026-03-01T10:00:00.000Z')
  it('access ends duration seconds after escalation, unless de-escalation is not scheduled', () => {
    expect(accessExpiresAt(t, 3600, true)).toEqual(new Date('2026-03-01T11:00:00.000Z'))
    expect(accessExpiresAt(t, 2, true)).toEqual(new Date('2026-03-01T10:00:02.000Z'))
    expect(accessExpiresAt(t, 3600, false)).toBeNull()
    expect(accessExpiresAt(t, null, true)).toBeNull()
  })
  it('an unanswered request expires after a day by default, or the deployment’s period', () => {
    expect(requestExpiresAt(t)).toEqual(new Date('2026-03-02T10:00:00.000Z'))
    expect(requestExpiresAt(t, 60)).toEqual(new Date('2026-03-01T10:01:00.000Z'))
  })
})

describe('allowed_sources', () => {
  it('unset allows everything; a list allows its members; an empty list allows nothing', () => {
    expect(sourceRefusal(undefined, 'api', 'f')).toBeUndefined()
    expect(sourceRefusal(['api'], 'api', 'f')).toBeUndefined()
    expect(sourceRefusal(['slack'], 'api', 'deploy')).toBe("Flow 'deploy' cannot be started from the API (allowed_sources: slack).")
    expect(sourceRefusal([], 'slack', 'deploy')).toBe("Flow 'deploy' cannot be started from Slack (allowed_sources: none).")
  })
})

describe('who may approve, deny and revoke', () => {
  // A small cast: an admin, two members, a guest, and the CI bot.
  const requester = 'u-requester'
  const actor = (userId: string, role: Actor['role'], userType: Actor['userType'] = 'normal'): Actor => ({ userId, role, userType })
  const admin = actor('u-admin', 'admin')
  const alice = actor('u-alice', 'member')
  const guest = actor('u-guest', 'guest')
  const ci = actor('u-ci', 'member', 'bot')
  const self = actor(requester, 'member')
  const options = { allowGuestInteraction: false }

  it('by default (no getPermissions reducer) only admins and bots decide, and nobody approves their own request', () => {
    expect(decisionRefusal(admin, requester, DEFAULT_REQUEST_PERMISSION, options)).toBeUndefined()
    expect(decisionRefusal(ci, requester, DEFAULT_REQUEST_PERMISSION, options)).toBeUndefined()
    expect(decisionRefusal(alice, requester, DEFAULT_REQUEST_PERMISSION, options)).toBe('You are not an approver of this request.')
    expect(decisionRefusal(actor(requester, 'admin'), requester, DEFAULT_REQUEST_PERMISSION, options)).toBe('You cannot approve or deny your own request.')
  })

  it('self-approval when the flow allows it', () => {
    const p: RequestPermission = { approveDeny: 'member', allowSelfApproval: true }
    expect(decisionRefusal(self, requester, p, options)).toBeUndefined()
  })

  it('levels: member lets members in; all_users lets guests in only with guest interaction', () => {
    expect(decisionRefusal(alice, requester, { approveDeny: 'member', allowSelfApproval: false }, options)).toBeUndefined()
    expect(decisionRefusal(guest, requester, { approveDeny: 'member', allowSelfApproval: false }, { allowGuestInteraction: true })).toBe('You are not an approver of this request.')
    expect(decisionRefusal(guest, requester, { approveDeny: 'all_users', allowSelfApproval: false }, options)).toBe('Guests cannot act on requests of this flow.')
    expect(decisionRefusal(guest, requester, { approveDeny: 'all_users', allowSelfApproval: false }, { allowGuestInteraction: true })).toBeUndefined()
  })

  it('a list of user ids names the approvers; admins always may', () => {
    const p: RequestPermission = { approveDeny: ['u-alice'], allowSelfApproval: false }
    expect(decisionRefusal(alice, requester, p, options)).toBeUndefined()
    expect(decisionRefusal(actor('u-bob', 'member'), requester, p, options)).toBe('You are not an approver of this request.')
    expect(decisionRefusal(admin, requester, p, options)).toBeUndefined()
  })

  it('revoke needs allow_revoke, then the requester, a bot or an approver', () => {
    const on = { allowRevoke: true, allowGuestInteraction: false }
    expect(revokeRefusal(self, requester, DEFAULT_REQUEST_PERMISSION, { ...on, allowRevoke: false })).toBe('This flow does not allow revoking access (allow_revoke is false).')
    expect(revokeRefusal(ci, requester, DEFAULT_REQUEST_PERMISSION, { ...on, allowRevoke: false })).toMatch(/allow_revoke is false/)
    expect(revokeRefusal(self, requester, DEFAULT_REQUEST_PERMISSION, on)).toBeUndefined()
    expect(revokeRefusal(ci, requester, DEFAULT_REQUEST_PERMISSION, on)).toBeUndefined()
    expect(revokeRefusal(admin, requester, DEFAULT_REQUEST_PERMISSION, on)).toBeUndefined()
    expect(revokeRefusal(alice, requester, DEFAULT_REQUEST_PERMISSION, on)).toBe('Only the requester or an approver can revoke this access.')
    expect(revokeRefusal(alice, requester, { approveDeny: 'member', allowSelfApproval: false }, on)).toBeUndefined()
  })
})
