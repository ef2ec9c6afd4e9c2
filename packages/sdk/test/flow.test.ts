/**
 * The flow SDK's pieces: the event model, ApprovalTemplate, destinations, the host door and the boundary checks.
 */
import {
  ApprovalTemplate,
  callHost,
  createEvent,
  HOOK_RETURNS,
  IntegrationError,
  PermissionLevel,
  Secret,
  slack,
  userIds,
  type EventData,
  type FlowImplementation,
} from '@opensym/sdk'
import { fakeEvent, fakeEventData, fakeUser, InvalidResultError, NotDefinedError, runHook, runReducer } from '@opensym/sdk/testing'
import { checkHookResult, checkHostArgs, checkReducerResult } from '@opensym/sdk/validation'
import { describe, expect, it } from 'vitest'

describe('the event model', () => {
  const requester = fakeUser({ email: 'dev@example.com', identities: [{ service: 'slack', serviceId: 'T1', userId: 'U1' }, { service: 'slack', serviceId: 'T2', userId: 'U2' }] })
  const approver = fakeUser({ email: 'lead@example.com', role: 'admin' })
  const data: EventData = fakeEventData({
    name: 'escalate',
    user: approver,
    payload: { fields: { reason: 'deploy', duration: 3600, target: { name: 'prod', type: 'aws_sso_permission_set', settings: { account_id: '1' } } } },
    flow: {
      name: 'access',
      vars: { channel: '#x' },
      environment: { integrations: { circleci: { type: 'custom', externalId: 'acme', settings: { url: 'https://ci', secrets: [{ $secret: 's1' }], token: { $secret: 's2' } } } } },
    },
    run: { actors: { request: requester, approve: approver }, contexts: { request: { 'diff.txt': '+1' } }, stepOutputs: { escalate: { body: { url: 'https://console' }, errors: [] } } },
  })
  const event = createEvent(data)

  it('reads users, actors, fields, vars, contexts and step outputs', () => {
    expect(event.name).toBe('escalate')
    expect(event.user.email).toBe('lead@example.com')
    expect(event.getActor('request')?.email).toBe('dev@example.com')
    expect(event.getActor('request')?.equals(requester)).toBe(true)
    expect(event.user.equals(requester)).toBe(false)
    expect(event.getActor('deny')).toBeUndefined()
    expect(event.payload.fields.target?.name).toBe('prod')
    expect(event.fields.duration).toBe(3600)
    expect(event.flow.vars.channel).toBe('#x')
    expect(event.getContext('request')['diff.txt']).toBe('+1')
    expect(event.getContext('approve')).toEqual({})
    expect(event.getStepOutput()).toEqual({ body: { url: 'https://console' }, errors: [] })
    expect(event.getStepOutput('deescalate')).toBeUndefined()
  })

  it('finds identities per service and instance', () => {
    const dev = event.getActor('request')!
    expect(dev.identity('slack')?.userId).toBe('U1')
    expect(dev.identity('slack', 'T2')?.userId).toBe('U2')
    expect(dev.identity('okta')).toBeUndefined()
  })

  it('gives integration settings, with secrets as Secret objects', () => {
    const ci = event.flow.environment.integrations.circleci!
    expect(ci.externalId).toBe('acme')
    expect(ci.settings.url).toBe('https://ci')
    expect(ci.settings.token).toBeInstanceOf(Secret)
    expect((ci.settings.secrets as Secret[]).map((s) => s.id)).toEqual(['s1'])
  })

  it('serializes back to its data', () => {
    expect(JSON.parse(JSON.stringify(event))).toEqual(JSON.parse(JSON.stringify(data)))
  })
})

/** An implementation the types would refuse: the runtime checks must refuse it too (plain JavaScript has no types). */
const untyped = (impl: object) => impl as FlowImplementation

describe('ApprovalTemplate', () => {
  it('passes keyword arguments through as fields, apart from targetSrn and duration', () => {
    const impl = { onPrompt: () => ApprovalTemplate.approve({ reason: 'auto', ticket: 42, targetSrn: 'srn:x', duration: 600, skipped: undefined }) }
    return expect(runHook(impl, 'onPrompt', fakeEvent({ name: 'prompt' }))).resolves.toEqual({
      type: 'transition',
      transition: 'approve',
      fields: { reason: 'auto', ticket: 42 },
      targetSrn: 'srn:x',
      duration: 600,
    })
  })

  it('only moves runs forward', async () => {
    expect(HOOK_RETURNS.onEscalate).toEqual(['deescalate'])
    await expect(runHook(untyped({ onEscalate: () => ApprovalTemplate.ignore({ message: 'no' }) }), 'onEscalate', fakeEvent())).rejects.toThrow(/onEscalate cannot return ApprovalTemplate\.ignore/)
    await expect(runHook(untyped({ onApprove: () => ApprovalTemplate.request() }), 'onApprove', fakeEvent())).rejects.toThrow(/runs only move forward/)
    expect(checkHookResult('onDeny', { type: 'transition', transition: 'approve', fields: {} })).toMatchObject({ ok: false })
  })

  it('ignores what after-hooks return', async () => {
    expect(await runHook({ afterRequest: () => ApprovalTemplate.deny() }, 'afterRequest', fakeEvent())).toEqual({ type: 'proceed' })
  })

  it('refuses hook results that are not ApprovalTemplate results', async () => {
    await expect(runHook(untyped({ onRequest: () => ({ transition: 'approve' }) }), 'onRequest', fakeEvent())).rejects.toThrow(InvalidResultError)
    await expect(runHook(untyped({ onRequest: () => true }), 'onRequest', fakeEvent())).rejects.toThrow(/must return nothing or one of/)
  })

  it('proceeds when the hook is not exported, and lets what a hook throws through', async () => {
    expect(await runHook({}, 'onDeny', fakeEvent())).toEqual({ type: 'proceed' })
    await expect(runHook({ onDeny: () => { throw new RangeError('boom') } }, 'onDeny', fakeEvent())).rejects.toThrow(RangeError)
    await expect(runReducer({}, 'getPermissions', fakeEvent())).rejects.toThrow(NotDefinedError)
  })
})

describe('permissions and destinations', () => {
  it('accepts users in permission lists and gives their IDs', async () => {
    const a = fakeUser()
    const impl = { getPermissions: () => ({ webappView: PermissionLevel.ALL_USERS, approveDeny: [a, 'other-id'] }) }
    expect(await runReducer(impl, 'getPermissions', fakeEvent())).toEqual({ webappView: 'all_users', approveDeny: [a.id, 'other-id'], allowSelfApproval: false })
    expect(userIds([a])).toEqual([a.id])
  })

  it('builds Slack destinations and fallbacks', () => {
    const u = fakeUser()
    expect(slack.channel('#ops', { allowSelf: true })).toEqual({ type: 'slack_channel', channel: '#ops', allowSelf: true })
    expect(slack.user(u)).toEqual({ type: 'slack_user', user: u.id })
    expect(slack.user('someone@example.com')).toEqual({ type: 'slack_user', user: 'someone@example.com' })
    expect(slack.group([u, 'U123'])).toEqual({ type: 'slack_group', users: [u.id, 'U123'] })
    expect(slack.fallback([slack.channel('C0123'), slack.channel('#backup')])).toEqual({
      type: 'fallback',
      destinations: [{ type: 'slack_channel', channel: 'C0123' }, { type: 'slack_channel', channel: '#backup' }],
      continueOnDeliveryFailure: true,
      continueOnTimeout: false,
    })
  })

  it('allows one Slack destination per notification', () => {
    const r = checkReducerResult('getRequestNotifications', [{ destinations: [{ type: 'slack_channel', channel: '#a' }, { type: 'slack_channel', channel: '#b' }], timeout: null }])
    expect(r).toEqual({ ok: false, message: expect.stringContaining('more than one Slack destination') })
  })

  it('accepts the legacy getApprovers destinations', async () => {
    const impl = { getApprovers: () => slack.channel('#approvals', { allowSelf: true, timeout: 3600 }) }
    expect(await runReducer(impl, 'getApprovers', fakeEvent())).toEqual({ type: 'slack_channel', channel: '#approvals', allowSelf: true, timeout: 3600 })
  })
})

describe('integration calls', () => {
  it('fail with an IntegrationError outside the platform', async () => {
    await expect(callHost('slack.listUsers', { activeOnly: true })).rejects.toThrow(IntegrationError)
  })

  it('check their arguments at the boundary', () => {
    expect(checkHostArgs('okta.isUserInGroup', { user: 'a@example.com', groupId: '00g' })).toMatchObject({ ok: true })
    expect(checkHostArgs('okta.isUserInGroup', { user: 'a@example.com' })).toMatchObject({ ok: false, message: expect.stringContaining('groupId') })
    expect(checkHostArgs('slack.sendMessage', { to: { channel: '#x' }, message: '' })).toMatchObject({ ok: false })
  })

  it('read secrets through the platform', async () => {
    const event = fakeEvent({ flow: { environment: { integrations: { ci: { type: 'custom', externalId: 'x', settings: { token: { $secret: 'sec-1' } } } } } } })
    const impl = {
      async onRequest(e: typeof event) {
        const token = await (e.flow.environment.integrations.ci!.settings.token as Secret).retrieveValue()
        return token === 'hunter2' ? ApprovalTemplate.approve() : undefined
      },
    }
    expect(await runHook(impl, 'onRequest', event, { host: { 'secrets.retrieve': async ({ secretId }) => (secretId === 'sec-1' ? 'hunter2' : '') } })).toMatchObject({ transition: 'approve' })
  })
})
