/**
 * How a flow author tests an implementation: plain vitest, fake events, answers for integration calls.
 */
import { fakeEvent, fakeUser, InvalidResultError, runGetIdentity, runHook, runPrefetch, runReducer } from '@opensym/sdk/testing'
import { describe, expect, it, vi } from 'vitest'
import * as impl from './fixtures/impl.js'

describe('a flow implementation, tested by its author', () => {
  it('auto-approves break-glass requests without asking PagerDuty', async () => {
    const isOnCall = vi.fn(async () => false)
    const event = fakeEvent({ name: 'request', payload: { fields: { break_glass: true } } })
    const result = await runHook(impl, 'onRequest', event, { host: { 'pagerduty.isOnCall': isOnCall } })
    expect(result).toEqual({ type: 'transition', transition: 'approve', fields: { reason: 'Break-glass request', urgency: 'urgent' } })
    expect(isOnCall).not.toHaveBeenCalled()
  })

  it('auto-approves on-call engineers, asking PagerDuty about the requester', async () => {
    const requester = fakeUser({ email: 'oncall@example.com' })
    const isOnCall = vi.fn(async ({ user }: { user: unknown }) => typeof user === 'object' && (user as { email: string }).email === 'oncall@example.com')
    const result = await runHook(impl, 'onRequest', fakeEvent({ user: requester }), { host: { 'pagerduty.isOnCall': isOnCall } })
    expect(result).toMatchObject({ type: 'transition', transition: 'approve', fields: { reason: 'On call' } })
    expect(isOnCall).toHaveBeenCalledWith({ user: { id: requester.id, email: 'oncall@example.com' }, scheduleName: 'Primary' }, expect.objectContaining({ handler: 'onRequest' }))
  })

  it('lets other requests go to a human', async () => {
    const result = await runHook(impl, 'onRequest', fakeEvent(), { host: { 'pagerduty.isOnCall': async () => false } })
    expect(result).toEqual({ type: 'proceed' })
  })

  it('fails clearly when the test gives no answer for an integration call', async () => {
    await expect(runHook(impl, 'onRequest', fakeEvent())).rejects.toThrow(/pagerduty\.isOnCall has no answer in this test/)
  })

  it('routes urgent requests to on-call first, then to the channel and the requester', async () => {
    const requester = fakeUser()
    const event = fakeEvent({ user: requester, payload: { fields: { urgency: 'urgent' } }, flow: { vars: { request_channel: '#access' } } })
    expect(await runReducer(impl, 'getRequestNotifications', event)).toEqual([
      { destinations: [{ type: 'slack_channel', channel: '#on-call' }], timeout: 300 },
      { destinations: [{ type: 'slack_channel', channel: '#access' }, { type: 'user', userId: requester.id }], timeout: null },
    ])
    expect(await runReducer(impl, 'getRequestNotifications', fakeEvent())).toEqual([{ destinations: [{ type: 'slack_channel', channel: '#sym-requests' }], timeout: null }])
  })

  it('lets the Okta group decide when the flow names one', async () => {
    const [a, b] = [fakeUser(), fakeUser()]
    const usersInGroup = vi.fn(async () => [a.toJSON(), b.toJSON()])
    const event = fakeEvent({ flow: { vars: { approvers_group: '00gAPPROVERS' } } })
    expect(await runReducer(impl, 'getPermissions', event, { host: { 'okta.usersInGroup': usersInGroup } })).toEqual({
      webappView: 'member',
      approveDeny: [a.id, b.id],
      allowSelfApproval: false,
    })
    expect(usersInGroup).toHaveBeenCalledWith({ groupId: '00gAPPROVERS' }, expect.anything())
    expect(await runReducer(impl, 'getPermissions', fakeEvent())).toMatchObject({ approveDeny: 'admin' })
  })

  it('asks approvers for a decision message when the flow requires one', async () => {
    const vars = { require_decision_message: 'true' }
    const approver = fakeUser({ role: 'admin' })
    const bare = fakeEvent({ name: 'approve', user: approver, flow: { vars } })
    expect(await runHook(impl, 'onApprove', bare)).toEqual({ type: 'ignore', message: 'Please add a decision message before approving.' })
    const explained = fakeEvent({ name: 'approve', user: approver, flow: { vars }, payload: { fields: { decision_message: 'ok for the incident' } } })
    expect(await runHook(impl, 'onApprove', explained)).toEqual({ type: 'proceed' })
  })

  it('notes approvals in #audit', async () => {
    const requester = fakeUser({ email: 'dev@example.com' })
    const approver = fakeUser({ email: 'lead@example.com', role: 'admin' })
    const sendMessage = vi.fn(async () => null)
    const event = fakeEvent({ name: 'approve', user: approver, run: { id: 'run-1', actors: { request: requester } } })
    expect(await runHook(impl, 'afterApprove', event, { host: { 'slack.sendMessage': sendMessage } })).toEqual({ type: 'proceed' })
    expect(sendMessage).toHaveBeenCalledWith({ to: { channel: '#audit' }, message: 'lead@example.com approved access for dev@example.com (run-1)' }, expect.anything())
  })

  it('maps users to GitHub logins, and to nothing elsewhere', async () => {
    const user = fakeUser({ email: 'octo@example.com' })
    expect(await runGetIdentity(impl, fakeEvent(), { service: 'github', externalId: 'acme', user })).toBe('octo')
    expect(await runGetIdentity(impl, fakeEvent(), { service: 'okta', externalId: 'acme.okta.com', user })).toBeNull()
  })

  it('prefetches the repositories for the form', async () => {
    const options = await runPrefetch(impl, 'repo', fakeEvent({ flow: { vars: { repos: 'api,web' } } }))
    expect(options).toEqual([
      { value: 'api', label: 'github.com/acme/api' },
      { value: 'web', label: 'github.com/acme/web' },
    ])
  })

  it('is refused, as the platform would refuse it, when a result is invalid', async () => {
    const broken = { getRequestNotifications: () => [{ destinations: [], timeout: 60 }] }
    await expect(runReducer(broken, 'getRequestNotifications', fakeEvent())).rejects.toThrow(InvalidResultError)
    await expect(runReducer(broken, 'getRequestNotifications', fakeEvent())).rejects.toThrow(/\/0\/destinations must not have fewer than 1 items/)
  })
})
