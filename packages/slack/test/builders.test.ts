/** The pure parts: signatures, token encryption, the modals for every field type, reading a form back, cards. */
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  ACTION_APPROVE,
  ACTION_DENY,
  ACTION_REVOKE,
  DECISION_MESSAGE_BLOCK,
  fieldActionId,
  flowSelectionModal,
  inputState,
  formatDuration,
  modalErrors,
  readRequestForm,
  requestCard,
  requesterDm,
  requestModal,
  slackManifest,
  slackSignature,
  TokenCipher,
  verifySlackSignature,
  type Block,
  type CardRun,
  type ModalFlow,
} from '../src/index.js'

const NOW = Date.UTC(2026, 11, 6, 12, 0, 0)
const secret = 'shh-signing-secret'

describe('verifySlackSignature', () => {
  const body = Buffer.from('token=x&command=%2Fsym&text=req')
  const ts = String(NOW / 1000)
  it('accepts Slack’s v0 HMAC of the raw body within five minutes', () => {
    expect(verifySlackSignature(secret, { timestamp: ts, signature: slackSignature(secret, ts, body), rawBody: body }, NOW + 299_000)).toEqual({ ok: true })
  })
  it('refuses a stale or future timestamp, another secret, a changed body and missing headers', () => {
    expect(verifySlackSignature(secret, { timestamp: ts, signature: slackSignature(secret, ts, body), rawBody: body }, NOW + 301_000)).toEqual({ ok: false, reason: 'stale timestamp' })
    expect(verifySlackSignature(secret, { timestamp: ts, signature: slackSignature(secret, ts, body), rawBody: body }, NOW - 301_000)).toEqual({ ok: false, reason: 'stale timestamp' })
    expect(verifySlackSignature(secret, { timestamp: ts, signature: slackSignature('other', ts, body), rawBody: body }, NOW)).toEqual({ ok: false, reason: 'signature mismatch' })
    expect(verifySlackSignature(secret, { timestamp: ts, signature: slackSignature(secret, ts, body), rawBody: Buffer.from(`${body.toString()}x`) }, NOW).ok).toBe(false)
    expect(verifySlackSignature(secret, { timestamp: undefined, signature: 'v0=00', rawBody: body }, NOW).ok).toBe(false)
    expect(verifySlackSignature(secret, { timestamp: 'abc', signature: 'v0=00', rawBody: body }, NOW)).toEqual({ ok: false, reason: 'malformed timestamp' })
  })
})

describe('TokenCipher', () => {
  const cipher = new TokenCipher(randomBytes(32))
  it('round-trips a token bound to its row, and the ciphertext does not contain it', () => {
    const stored = cipher.encrypt('xoxb-secret-token', 'integration-1')
    expect(stored).toMatch(/^v1\./)
    expect(stored).not.toContain('xoxb')
    expect(cipher.decrypt(stored, 'integration-1')).toBe('xoxb-secret-token')
    expect(cipher.encrypt('xoxb-secret-token', 'integration-1')).not.toBe(stored) // a fresh IV each time
  })
  it('refuses another row, another key and a tampered ciphertext', () => {
    const stored = cipher.encrypt('xoxb-secret-token', 'integration-1')
    expect(() => cipher.decrypt(stored, 'integration-2')).toThrow()
    expect(() => new TokenCipher(randomBytes(32)).decrypt(stored, 'integration-1')).toThrow()
    const parts = stored.split('.')
    parts[3] = Buffer.from('xoxb-other').toString('base64url')
    expect(() => cipher.decrypt(parts.join('.'), 'integration-1')).toThrow()
  })
  it('takes its key as hex or base64, 32 bytes only', () => {
    const key = randomBytes(32)
    const a = TokenCipher.fromConfig(key.toString('hex'))
    expect(TokenCipher.fromConfig(key.toString('base64')).decrypt(a.encrypt('t', 'x'), 'x')).toBe('t')
    expect(() => TokenCipher.fromConfig(randomBytes(16).toString('base64'))).toThrow(/32 bytes/)
  })
  it('MACs the OAuth state', () => {
    expect(cipher.checkMac('abc', cipher.mac('abc'))).toBe(true)
    expect(cipher.checkMac('abd', cipher.mac('abc'))).toBe(false)
  })
})

const flow: ModalFlow = {
  id: '00000000-0000-4000-8000-000000000001',
  slug: 'db-access',
  label: 'Database access',
  environmentSlug: 'prod',
  hasStrategy: true,
  scheduleDeescalation: true,
  additionalHeaderText: 'Ask *#dba* first.',
  targets: [
    { id: 't1', label: 'Staging DB' },
    { id: 't2', label: 'Prod DB' },
  ],
  fields: [
    { name: 'reason', type: 'string', required: true, label: 'Why?' },
    { name: 'duration', type: 'duration', allowed_values: ['30m', '1h', '1d'], default: '1h' },
    { name: 'ticket', type: 'int', required: false },
    { name: 'urgent', type: 'bool', default: 'true' },
    { name: 'tables', type: 'str_list', required: false },
    { name: 'shards', type: 'int_list', allowed_values: ['1', '2', '3'], required: false },
    { name: 'buddy', type: 'slack_user', required: false },
    { name: 'watchers', type: 'slack_user_list', required: false },
    { name: 'level', type: 'string', allowed_values: ['read', 'write'], default: 'read' },
    { name: 'repo', type: 'string', prefetch: true, required: false },
    { name: 'secret_flag', type: 'string', visible: false, default: 'x', required: false },
  ],
}

const byId = (blocks: readonly Block[], id: string) => blocks.find((b) => b.block_id === id) as Record<string, any> | undefined // eslint-disable-line @typescript-eslint/no-explicit-any

describe('requestModal', () => {
  const view = requestModal(flow, { channelId: 'C1' })
  it('renders the label, header text, target select and every field with its widget, in order', () => {
    expect(view.title.text).toBe('Database access')
    expect(view.submit?.text).toBe('Request')
    expect(JSON.parse(view.private_metadata!)).toEqual({ channelId: 'C1', flowId: flow.id })
    expect(byId(view.blocks, 'header')!.text.text).toContain('*Database access*')
    expect(byId(view.blocks, 'additional_header')!.text.text).toBe('Ask *#dba* first.')
    const inputs = view.blocks.filter((b) => b.type === 'input').map((b) => [b.block_id, (b.element as { type: string }).type, b.optional])
    expect(inputs).toEqual([
      ['target_id', 'static_select', undefined],
      ['field:reason', 'plain_text_input', false],
      ['field:duration', 'static_select', false],
      ['field:ticket', 'number_input', true],
      ['field:urgent', 'checkboxes', true],
      ['field:tables', 'plain_text_input', true],
      ['field:shards', 'multi_static_select', true],
      ['field:buddy', 'users_select', true],
      ['field:watchers', 'multi_users_select', true],
      ['field:level', 'static_select', false],
      ['field:repo', 'external_select', true],
    ])
    expect(byId(view.blocks, 'target_id')!.element.options.map((o: { text: { text: string }; value: string }) => [o.text.text, o.value])).toEqual([
      ['Staging DB', 't1'],
      ['Prod DB', 't2'],
    ])
    expect(byId(view.blocks, 'field:reason')!.label.text).toBe('Why?')
    expect(byId(view.blocks, 'field:reason')!.element.multiline).toBe(true)
    expect(byId(view.blocks, 'field:duration')!.element.initial_option.value).toBe('1h')
    expect(byId(view.blocks, 'field:urgent')!.element.initial_options).toHaveLength(1)
    expect(byId(view.blocks, 'field:level')!.element.initial_option.value).toBe('read')
    expect(byId(view.blocks, 'field:secret_flag')).toBeUndefined()
  })
  it('adds a duration select when an access flow that de-escalates declares none; none for approval-only flows', () => {
    const noDuration = requestModal({ ...flow, fields: [{ name: 'reason', type: 'string' }] }, {})
    expect(byId(noDuration.blocks, 'field:duration')!.element.options.map((o: { value: string }) => o.value)).toEqual(['30m', '1h', '4h', '1d'])
    const approvalOnly = requestModal({ ...flow, hasStrategy: false, fields: [{ name: 'reason', type: 'string' }] }, {})
    expect(approvalOnly.blocks.map((b) => b.block_id)).not.toContain('target_id')
    expect(approvalOnly.blocks.map((b) => b.block_id)).not.toContain('field:duration')
  })
  it('truncates a long label to Slack’s 24-character title', () => {
    expect(requestModal({ ...flow, label: 'A very long flow label that Slack would refuse' }, {}).title.text).toHaveLength(24)
  })
  it('gives every input an action_id of its own (unique within the view, as Slack requires), read back by block', () => {
    const ids = view.blocks.filter((b) => b.type === 'input').map((b) => (b.element as { action_id: string }).action_id)
    expect(new Set(ids).size).toBe(ids.length)
    expect(byId(view.blocks, 'field:repo')!.element.action_id).toBe(fieldActionId('repo'))
    const state = { 'field:repo': { [fieldActionId('repo')]: { type: 'external_select', selected_option: { value: 'acme/api' } } } }
    expect(inputState(state, 'field:repo')).toEqual({ type: 'external_select', selected_option: { value: 'acme/api' } })
    expect(inputState(state, 'field:other')).toBeUndefined()
  })
})

describe('readRequestForm', () => {
  it('turns each widget’s state into flow_inputs, leaving out empty and hidden fields', () => {
    const inputs = readRequestForm(flow, {
      target_id: { value: { type: 'static_select', selected_option: { value: 't2' } } },
      'field:reason': { value: { type: 'plain_text_input', value: '  incident 42 ' } },
      'field:duration': { value: { type: 'static_select', selected_option: { value: '30m' } } },
      'field:ticket': { value: { type: 'number_input', value: '1234' } },
      'field:urgent': { value: { type: 'checkboxes', selected_options: [] } },
      'field:tables': { value: { type: 'plain_text_input', value: 'users\norders, items' } },
      'field:shards': { value: { type: 'multi_static_select', selected_options: [{ value: '1' }, { value: '3' }] } },
      'field:buddy': { value: { type: 'users_select', selected_user: 'U123' } },
      'field:watchers': { value: { type: 'multi_users_select', selected_users: ['U1', 'U2'] } },
      'field:level': { value: { type: 'static_select', selected_option: null } },
      'field:repo': { value: { type: 'external_select', selected_option: { value: 'org/repo' } } },
      'field:secret_flag': { value: { type: 'plain_text_input', value: 'forged' } },
    })
    expect(inputs).toEqual({
      target_id: 't2',
      reason: 'incident 42',
      duration: '30m',
      ticket: '1234',
      urgent: false,
      tables: ['users', 'orders', 'items'],
      shards: ['1', '3'],
      buddy: 'U123',
      watchers: ['U1', 'U2'],
      repo: 'org/repo',
    })
  })
})

describe('modalErrors', () => {
  it('puts each field error on its block, and errors of fields without one on the first input', () => {
    const view = requestModal(flow, {})
    expect(
      modalErrors(view, [
        { field: 'flow_inputs.reason', message: 'is required' },
        { field: 'flow_inputs.target_srn', message: 'is not a target' },
        { field: 'flow_inputs.secret_flag', message: 'is odd' },
      ]),
    ).toEqual({ 'field:reason': 'is required', target_id: 'is not a target; secret_flag: is odd' })
  })
})

describe('flowSelectionModal', () => {
  it('lists flows (with environments when several), with a note', () => {
    const v = flowSelectionModal(
      [
        { id: 'f1', slug: 'a', label: 'A', environmentSlug: 'prod' },
        { id: 'f2', slug: 'b', label: null, environmentSlug: 'staging' },
      ],
      { channelId: 'C1' },
      'No flow "zzz"',
    )
    expect(v.blocks[0]!.text).toMatchObject({ text: ':warning: No flow "zzz"' })
    expect((v.blocks[1]!.element as { options: Array<{ text: { text: string } }> }).options.map((o) => o.text.text)).toEqual(['A (prod)', 'b (staging)'])
    expect(flowSelectionModal([], {}).submit).toBeUndefined()
  })
})

const card = (over: Partial<CardRun> = {}): CardRun => ({
  runId: '11111111-1111-4111-8111-111111111111',
  flowTitle: 'Database access',
  environmentSlug: 'prod',
  requester: { name: 'Mia Member', slackUserId: 'UMIA' },
  status: 'requested',
  target: 'Prod DB',
  durationSeconds: 5400,
  fields: [{ label: 'Why?', value: 'incident <42>' }],
  includeDecisionMessage: true,
  revocable: true,
  ...over,
})

const actionIds = (blocks: readonly Block[]) => blocks.flatMap((b) => (b.type === 'actions' ? (b.elements as Array<{ action_id: string }>).map((e) => e.action_id) : []))

describe('requestCard', () => {
  it('shows requester, flow, target, duration and fields, with Approve/Deny and the decision message input', () => {
    const { blocks, text } = requestCard(card())
    const all = JSON.stringify(blocks)
    expect(all).toContain('<@UMIA>')
    expect(all).toContain('Prod DB')
    expect(all).toContain('1 hour 30 minutes')
    expect(all).toContain('incident &lt;42&gt;')
    expect(actionIds(blocks)).toEqual([ACTION_APPROVE, ACTION_DENY])
    expect(byId(blocks, DECISION_MESSAGE_BLOCK)).toBeDefined()
    expect(text).toBe('Mia Member requests Prod DB via Database access')
  })
  it('escapes names in the notification text, so a requester called <!channel> pings nobody', () => {
    const { text, blocks } = requestCard(card({ requester: { name: '<!channel> Mallory' }, target: '<!here>', flowTitle: '<https://evil.example|Click>' }))
    expect(text).not.toMatch(/<[!@#h]/)
    expect(text).toBe('&lt;!channel&gt; Mallory requests &lt;!here&gt; via &lt;https://evil.example|Click&gt;')
    expect(JSON.stringify(blocks)).not.toMatch(/<!channel>|<!here>/)
  })
  it('after a decision: who and when, the message, no buttons; Revoke once escalated; de-escalated after', () => {
    const at = new Date(NOW)
    const approved = card({ status: 'approved', decision: { approved: true, by: { name: 'Ada', slackUserId: 'UADA' }, at, message: 'go ahead' } })
    expect(actionIds(requestCard(approved).blocks)).toEqual([])
    expect(JSON.stringify(requestCard(approved).blocks)).toContain('Approved by <@UADA> <!date^')
    expect(JSON.stringify(requestCard(approved).blocks)).toContain('*Decision message:* go ahead')
    expect(byId(requestCard(approved).blocks, DECISION_MESSAGE_BLOCK)).toBeUndefined()
    expect(actionIds(requestCard({ ...approved, status: 'escalated', expiresAt: at }).blocks)).toEqual([ACTION_REVOKE])
    expect(actionIds(requestCard({ ...approved, status: 'escalated', revocable: false }).blocks)).toEqual([])
    const done = requestCard({ ...approved, status: 'deescalated', deescalation: { at, by: { name: 'Mia' }, manual: true } })
    expect(actionIds(done.blocks)).toEqual([])
    expect(JSON.stringify(done.blocks)).toContain('revoked by Mia')
    expect(JSON.stringify(done.blocks)).toContain('de-escalated')
    expect(JSON.stringify(requestCard(card({ status: 'denied', decision: { approved: false, by: null, at } })).blocks)).toContain(':x: Denied by Sym')
    expect(JSON.stringify(requestCard(card({ status: 'expired' })).blocks)).toContain('expired')
  })
  it('DMs the requester for each outcome', () => {
    const c = card({ decision: { approved: true, by: { name: 'Ada' }, at: new Date(NOW) } })
    expect(requesterDm('approved', c).text).toContain('was approved by Ada')
    expect(requesterDm('denied', c).text).toContain('was denied')
    expect(requesterDm('expired', c).text).toContain('expired without a decision')
    expect(requesterDm('escalation_failed', { ...c, error: 'boom' }).text).toContain('could not be granted: boom')
    expect(requesterDm('deescalated', c).text).toContain('has ended')
  })
  it('formats durations', () => {
    expect(formatDuration(60)).toBe('1 minute')
    expect(formatDuration(90_061)).toBe('1 day 1 hour')
  })
})

describe('slackManifest', () => {
  it('points the command, interactivity and events at this deployment with the bot scopes', () => {
    const m = slackManifest({ publicUrl: 'https://sym.example.com/' }) as Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(m.features.slash_commands[0]).toMatchObject({ command: '/sym', url: 'https://sym.example.com/api/v1/slack/commands' })
    expect(m.settings.interactivity.request_url).toBe('https://sym.example.com/api/v1/slack/interactions')
    expect(m.settings.event_subscriptions).toEqual({ request_url: 'https://sym.example.com/api/v1/slack/events', bot_events: ['app_uninstalled', 'tokens_revoked', 'user_change'] })
    expect(m.oauth_config.redirect_urls).toEqual(['https://sym.example.com/api/v1/slack/oauth/callback'])
    expect(m.oauth_config.scopes.bot).toEqual(expect.arrayContaining(['commands', 'chat:write', 'im:write', 'users:read.email']))
  })
})
