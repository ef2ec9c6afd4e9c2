/**
 * The sandbox running well-behaved flows: the SDK's sample implementation (the one its author tests with
 * @opensym/sdk/testing) gives the same answers here, integration calls reach the host handlers, logs come back,
 * flow versions are compiled once.
 */
import { readFileSync } from 'node:fs'
import { fakeUser } from '@opensym/sdk/testing'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { createSandbox, legacyRouting, type HostHandlers } from '../src/index.js'
import { event, expectFailure, key, loaded } from './helpers.js'

const SAMPLE = readFileSync(new URL('../../sdk/test/fixtures/impl.ts', import.meta.url), 'utf8')

const usersInGroup = vi.fn<NonNullable<HostHandlers['okta.usersInGroup']>>(async () => [])
const isOnCall = vi.fn<NonNullable<HostHandlers['pagerduty.isOnCall']>>(async () => false)
const sendMessage = vi.fn<NonNullable<HostHandlers['slack.sendMessage']>>(async () => null)
const sandbox = createSandbox<{ runId: string }>({
  memoryLimitMb: 32,
  timeoutMs: 2000,
  host: { 'okta.usersInGroup': usersInGroup, 'pagerduty.isOnCall': isOnCall, 'slack.sendMessage': sendMessage },
})
afterAll(() => sandbox.close())

describe('the sample implementation in the sandbox', () => {
  it('lists its reducers, hooks and prefetch fields', async () => {
    const flow = loaded(await sandbox.load(key('sample'), SAMPLE))
    expect(flow.exports).toEqual({
      handlers: ['afterApprove', 'getIdentity', 'getPermissions', 'getRequestNotifications', 'onApprove', 'onRequest'],
      prefetch: ['repo'],
    })
    expect(flow.has('onRequest')).toBe(true)
    expect(flow.has('onDeny')).toBe(false)
  })

  it('auto-approves break-glass requests and proceeds otherwise', async () => {
    const flow = loaded(await sandbox.load(key('sample'), SAMPLE))
    const glass = await flow.callHook('onRequest', event({ payload: { fields: { break_glass: true } } }))
    expect(glass).toMatchObject({ ok: true, defined: true, value: { type: 'transition', transition: 'approve', fields: { reason: 'Break-glass request', urgency: 'urgent' } } })
    const plain = await flow.callHook('onRequest', event())
    expect(plain).toMatchObject({ ok: true, value: { type: 'proceed' }, hostCalls: 1 })
  })

  it('makes integration calls through the host handlers, with the call context', async () => {
    const flow = loaded(await sandbox.load(key('sample'), SAMPLE))
    const requester = fakeUser({ email: 'oncall@example.com' })
    isOnCall.mockImplementationOnce(async ({ user }) => typeof user === 'object' && user.email === 'oncall@example.com')
    const r = await flow.callHook('onRequest', event({ user: requester }), { context: { runId: 'run-7' } })
    expect(r).toMatchObject({ ok: true, value: { type: 'transition', transition: 'approve', fields: { reason: 'On call' } } })
    expect(isOnCall).toHaveBeenLastCalledWith(
      { user: { id: requester.id, email: 'oncall@example.com' }, scheduleName: 'Primary' },
      expect.objectContaining({ handler: 'onRequest', context: { runId: 'run-7' }, flowKey: flow.key }),
    )
  })

  it('computes permissions from an Okta group, and the notification chain', async () => {
    const flow = loaded(await sandbox.load(key('sample'), SAMPLE))
    const [a, b] = [fakeUser(), fakeUser()]
    usersInGroup.mockResolvedValueOnce([a.toJSON(), b.toJSON()])
    const perms = await flow.callReducer('getPermissions', event({ flow: { vars: { approvers_group: '00g1' } } }))
    expect(perms).toMatchObject({ ok: true, value: { webappView: 'member', approveDeny: [a.id, b.id], allowSelfApproval: false } })
    const requester = fakeUser()
    const chain = await flow.callReducer('getRequestNotifications', event({ user: requester, payload: { fields: { urgency: 'urgent' } } }))
    expect(chain).toMatchObject({
      ok: true,
      value: [
        { destinations: [{ type: 'slack_channel', channel: '#on-call' }], timeout: 300 },
        { destinations: [{ type: 'slack_channel', channel: '#sym-requests' }, { type: 'user', userId: requester.id }], timeout: null },
      ],
    })
  })

  it('runs ignore, after-hooks, identities and prefetch', async () => {
    const flow = loaded(await sandbox.load(key('sample'), SAMPLE))
    const approve = event({ name: 'approve', flow: { vars: { require_decision_message: 'true' } } })
    expect(await flow.callHook('onApprove', approve)).toMatchObject({ ok: true, value: { type: 'ignore', message: 'Please add a decision message before approving.' } })
    expect(await flow.callHook('afterApprove', approve)).toMatchObject({ ok: true, value: { type: 'proceed' }, hostCalls: 1 })
    expect(sendMessage).toHaveBeenLastCalledWith(expect.objectContaining({ to: { channel: '#audit' } }), expect.anything())
    const user = fakeUser({ email: 'octo@example.com' }).toJSON()
    expect(await flow.callIdentity(event(), { service: 'github', externalId: 'acme', user })).toMatchObject({ ok: true, value: 'octo' })
    expect(await flow.callPrefetch('repo', event({ flow: { vars: { repos: 'api' } } }))).toMatchObject({ ok: true, value: [{ value: 'api', label: 'github.com/acme/api' }] })
    expectFailure(await flow.callPrefetch('nope', event()), 'not_defined', /no prefetch reducer for the field "nope"/)
    expect(await flow.callHook('onDeescalate', event())).toMatchObject({ ok: true, defined: false, value: { type: 'proceed' } })
    expectFailure(await flow.callReducer('getApprovers', event()), 'not_defined')
  })
})

describe('the sandbox', () => {
  it('compiles a flow version once and caches it by key', async () => {
    const k = key('cache')
    const first = loaded(await sandbox.load(k, 'export const getPermissions = () => ({ webappView: "member", approveDeny: "member" })'))
    const again = loaded(await sandbox.load(k, 'export const getPermissions = () => ({ webappView: "member", approveDeny: "member" })'))
    expect(again).toBe(first)
    const changed = loaded(await sandbox.load(k, 'export const getPermissions = () => ({ webappView: "admin", approveDeny: "admin" })'))
    expect(changed).not.toBe(first)
    expect(await changed.callReducer('getPermissions', event())).toMatchObject({ ok: true, value: { approveDeny: 'admin' } })
  })

  it('returns console output with the call, set-up lines first', async () => {
    const flow = loaded(await sandbox.load(key('logs'), 'console.info("loaded")\nexport function onRequest(e) { console.log("user", e.user.role, { a: 1 }); console.error(new Error("bad")) }'))
    const r = await flow.callHook('onRequest', event())
    expect(r.logs.slice(0, 2)).toEqual([
      { level: 'info', message: 'loaded' },
      { level: 'log', message: 'user member {"a":1}' },
    ])
    expect(r.logs[2]).toMatchObject({ level: 'error', message: expect.stringContaining('Error: bad') })
  })

  it('fails an integration call that has no host handler clearly, as an error of the hook', async () => {
    const flow = loaded(await sandbox.load(key('nohandler'), 'import { awsLambda } from "@opensym/sdk"\nexport async function afterRequest() { await awsLambda.invoke("arn:aws:lambda:x", { a: 1 }) }'))
    expectFailure(await flow.callHook('afterRequest', event()), 'error', /IntegrationError: awsLambda\.invoke is not available: this worker has no handler for it/)
  })

  it('lets a flow catch an integration failure', async () => {
    const flow = loaded(
      await sandbox.load(
        key('catch'),
        'import { okta, IntegrationError, ApprovalTemplate } from "@opensym/sdk"\nexport async function onApprove(e) { try { await okta.isUserInGroup(e.user, { groupId: "g" }) } catch (err) { if (err instanceof IntegrationError && err.code === "not_available") return ApprovalTemplate.ignore({ message: "Okta is not set up" }) } }',
      ),
    )
    expect(await flow.callHook('onApprove', event())).toMatchObject({ ok: true, value: { type: 'ignore', message: 'Okta is not set up' } })
  })

  it('refuses integration calls with invalid arguments before the handler sees them', async () => {
    const flow = loaded(await sandbox.load(key('badargs'), 'import { callHost } from "@opensym/sdk"\nexport async function afterRequest() { await callHost("slack.sendMessage", { to: { channel: "" }, message: "x" }) }'))
    const before = sendMessage.mock.calls.length
    expectFailure(await flow.callHook('afterRequest', event()), 'error', /invalid arguments/)
    expect(sendMessage.mock.calls.length).toBe(before)
  })

  it('turns a legacy getApprovers destination into permissions and a notification', async () => {
    const flow = loaded(await sandbox.load(key('legacy'), 'import { slack } from "@opensym/sdk"\nexport const getApprovers = () => slack.channel("#approvals", { allowSelf: true, timeout: 600 })'))
    const r = await flow.callReducer('getApprovers', event())
    if (!r.ok) throw new Error(r.error.message)
    expect(legacyRouting(r.value)).toEqual({
      permission: { webappView: 'member', approveDeny: 'member', allowSelfApproval: true },
      notifications: [{ destinations: [{ type: 'slack_channel', channel: '#approvals', allowSelf: true, timeout: 600 }], timeout: 600 }],
    })
  })

  it('fails calls after close', async () => {
    const other = createSandbox()
    const flow = loaded(await other.load(key('closed'), 'export const onRequest = () => {}'))
    await other.close()
    expectFailure(await flow.callHook('onRequest', event()), 'closed')
    expectFailure(await other.load(key('closed'), 'export {}'), 'closed')
  })
})
