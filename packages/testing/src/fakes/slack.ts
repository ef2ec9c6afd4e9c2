/**
 * A local fake of the Slack Web API as `@slack/web-api` 8.2 uses it (reference saas-apis.md §7), and a driver that
 * sends what Slack sends to the platform, signed. The client's `slackApiUrl` is `fake.apiUrl` (`<url>/api/`).
 *
 * - Every method is `POST /api/<method>` with a form body (nested `blocks`/`view` JSON-encoded) or JSON; `ok:false`
 *   with Slack's error strings (`not_authed`, `invalid_auth`, `token_revoked`, `channel_not_found`,
 *   `not_in_channel`, `user_not_found`, `users_not_found`, `message_not_found`, `expired_trigger_id`,
 *   `invalid_trigger_id`, `exchanged_trigger_id`, `view_too_large`, `hash_conflict`, `not_found`, `invalid_code`,
 *   `bad_client_secret`, `invalid_blocks` with Slack's `errors`/`response_metadata` shape, `msg_too_long`,
 *   `no_such_subteam`, `invalid_cursor`, `invalid_limit`, `invalid_types`, `missing_scope` with `needed`/`provided`).
 * - Directory methods: `users.list`, `conversations.list` (public channels, and private ones, DMs and group DMs the
 *   bot is in), `conversations.members` and `usergroups.users.list`. The first three page with Slack's cursors
 *   (`limit`, `cursor`, `response_metadata.next_cursor` empty on the last page); `maxPageSize` caps a page below
 *   `limit`, as Slack may return fewer items than asked.
 * - Bearer tokens map to a team and its bot; `oauth.v2.access` (client id/secret, no bearer) exchanges codes from
 *   `authorizeCode()`; `apps.uninstall` and `revokeTeam()` revoke the team's tokens. A token given `scopes`
 *   (`botToken(team, { scopes })`) gets `missing_scope` from the directory methods it lacks a scope for; other
 *   tokens have every scope.
 * - State: users (with team, email, guest and Slack Connect flags), channels (public/private, members), DMs and
 *   group DMs (`conversations.open`), user groups with members, messages with increasing `ts`, ephemerals, views
 *   with `hash`, single-use trigger ids that expire after 3 s on the injectable clock.
 * - Size limits of §7.3 are enforced on messages and views.
 * - Faults: `rateLimit()` (429 with or without `Retry-After`), `failMethod()` (any `ok:false` error), and the
 *   generic faults of core.ts (HTTP 500, delays, resets).
 */
import { createHmac } from 'node:crypto'
import { startFakeServer, type FakeRequest, type FakeResponse, type FakeServer } from './core.js'

export interface FakeSlackUser {
  readonly id: string
  /** The user's home workspace: another team than the installation's for Slack Connect users. */
  readonly teamId: string
  readonly name: string
  email: string | null
  isBot: boolean
  /** Slack guests (single- and multi-channel). */
  isRestricted: boolean
  deleted: boolean
}

export interface FakeSlackChannel {
  readonly id: string
  readonly name: string | null
  readonly teamId: string
  readonly kind: 'public' | 'private' | 'im' | 'mpim'
  readonly members: Set<string>
  archived: boolean
}

/** A user group (`S…`), as `usergroups.users.list` lists it. */
export interface FakeSlackUsergroup {
  readonly id: string
  readonly teamId: string
  readonly handle: string
  readonly users: Set<string>
}

export interface FakeSlackMessage {
  readonly channel: string
  readonly ts: string
  text: string
  blocks: unknown[]
  readonly threadTs: string | null
  /** Every update, oldest first. */
  readonly updates: Array<{ text: string; blocks: unknown[] }>
  deleted: boolean
}

export interface FakeSlackEphemeral {
  readonly channel: string
  readonly user: string
  readonly text: string
  readonly blocks: unknown[]
}

export interface FakeSlackView {
  readonly id: string
  readonly teamId: string
  readonly user: string | null
  view: Record<string, unknown>
  hash: string
  readonly stack: string
}

export interface FakeSlackTeam {
  readonly id: string
  readonly name: string
  readonly botUserId: string
  readonly appId: string
}

export interface FakeSlackOptions {
  readonly now?: () => number
  readonly clientId?: string
  readonly clientSecret?: string
  /** Total text of a message's blocks above which `msg_blocks_too_long` is returned. Default 13,000. */
  readonly maxBlocksText?: number
  /** Most items one page of `users.list`, `conversations.list` or `conversations.members` holds, whatever `limit` asks. Default 1000. */
  readonly maxPageSize?: number
}

/** A request as Slack would send it to the platform: path, headers (signed) and the raw body. */
export interface SlackInbound {
  readonly path: string
  readonly headers: Record<string, string>
  readonly body: string
}

export interface FakeSlack extends FakeServer {
  /** `slackApiUrl` for WebClient: `<url>/api/`. */
  readonly apiUrl: string
  readonly clientId: string
  readonly clientSecret: string
  readonly teams: Map<string, FakeSlackTeam>
  readonly users: Map<string, FakeSlackUser>
  readonly channels: Map<string, FakeSlackChannel>
  readonly usergroups: Map<string, FakeSlackUsergroup>
  readonly messages: FakeSlackMessage[]
  readonly ephemerals: FakeSlackEphemeral[]
  readonly views: Map<string, FakeSlackView>
  addTeam(opts?: { id?: string; name?: string }): FakeSlackTeam
  addUser(opts: { teamId: string; email?: string | null; name?: string; id?: string; isRestricted?: boolean; isBot?: boolean }): FakeSlackUser
  addChannel(opts: { teamId: string; name: string; private?: boolean; members?: readonly string[]; id?: string }): FakeSlackChannel
  addUsergroup(opts: { teamId: string; handle: string; users?: readonly string[]; id?: string }): FakeSlackUsergroup
  /** A bot token of the team (what an install yields), without the OAuth dance; with `scopes`, only those are granted. */
  botToken(teamId: string, opts?: { scopes?: readonly string[] }): string
  /** A code for `oauth.v2.access`, as Slack's authorize page redirects with after the user approves. */
  authorizeCode(teamId: string, opts?: { redirectUri?: string; installer?: string }): string
  /** Revokes every token of the team (`token_revoked` from then on). */
  revokeTeam(teamId: string): void
  /** A fresh trigger id, valid 3 s on the clock, usable once. */
  triggerId(): string
  /** Messages in a channel (not deleted), oldest first. */
  messagesIn(channel: string): FakeSlackMessage[]
  /** The DM channel between the bot and a user (created as `conversations.open` would). */
  dmChannel(teamId: string, userId: string): string
  /** The next `times` calls (of `method`, or any) get 429, with `Retry-After: retryAfter` unless it is null. */
  rateLimit(opts?: { method?: string; times?: number; retryAfter?: number | null }): void
  /** The next `times` calls of `method` answer `{ok:false, error}`. */
  failMethod(method: string, error: string, times?: number): void
  /** Calls of one method, with their parsed arguments. */
  callsOf(method: string): Array<{ args: Record<string, unknown>; status: number; token: string | null }>
  /** Builds signed inbound requests for the platform (see {@link SlackDriver}). */
  driver(signingSecret: string): SlackDriver
}

export interface SlackUserRef {
  readonly id: string
  readonly teamId: string
  readonly name?: string
}

/** What Slack sends to the app, signed with the signing secret at the fake's clock (or `timestamp`). */
export interface SlackDriver {
  command(opts: { team: string; user: SlackUserRef; channel?: string; text?: string; command?: string; timestamp?: number }): SlackInbound
  blockActions(opts: {
    team: string
    user: SlackUserRef
    channel: string
    messageTs: string
    actionId: string
    value: string
    blockId?: string
    actionTs?: string
    stateValues?: Record<string, unknown>
    timestamp?: number
  }): SlackInbound
  viewSubmission(opts: { team: string; user: SlackUserRef; view: FakeSlackView | Record<string, unknown>; values: Record<string, Record<string, unknown>>; timestamp?: number }): SlackInbound
  viewClosed(opts: { team: string; user: SlackUserRef; view: Record<string, unknown> }): SlackInbound
  blockSuggestion(opts: { team: string; user: SlackUserRef; view: Record<string, unknown>; blockId: string; actionId: string; value: string }): SlackInbound
  event(opts: { team: string; event: Record<string, unknown>; eventId?: string; retryNum?: number }): SlackInbound
  urlVerification(challenge: string): SlackInbound
  /** Signs any body at `timestamp` (seconds); `secret` overrides the driver's (to forge a bad signature). */
  sign(path: string, body: string, contentType: string, opts?: { timestamp?: number; secret?: string }): SlackInbound
}

const TRIGGER_TTL_MS = 3000
const MAX_VIEW_BYTES = 250_000

let idCounter = 0
const nextId = (prefix: string, len = 9) => `${prefix}${(Date.now().toString(36) + (++idCounter).toString(36)).toUpperCase().replace(/[^A-Z0-9]/g, '').slice(-len).padStart(len, '0')}`

const ok = (body: Record<string, unknown> = {}): FakeResponse => ({ status: 200, body: { ok: true, ...body } })
const err = (error: string, extra: Record<string, unknown> = {}): FakeResponse => ({ status: 200, body: { ok: false, error, ...extra } })

/** Arguments of a Web API call: form fields (JSON-looking nested values parsed) or a JSON body. */
function argsOf(req: FakeRequest): Record<string, unknown> {
  const type = req.headers['content-type'] ?? ''
  if (type.startsWith('application/json')) return req.json && typeof req.json === 'object' ? (req.json as Record<string, unknown>) : {}
  const out: Record<string, unknown> = {}
  for (const [k, v] of new URLSearchParams(req.body)) {
    if (k === 'blocks' || k === 'view' || k === 'attachments') {
      try {
        out[k] = JSON.parse(v)
      } catch {
        out[k] = v
      }
      continue
    }
    out[k] = v
  }
  return out
}

interface LimitError {
  readonly message: string
  readonly pointer: string
}

/** §7.3 checks over blocks (messages or views); returns the first problems found. */
function checkBlocks(blocks: unknown, base: string, maxBlocks: number): LimitError[] {
  const errors: LimitError[] = []
  if (!Array.isArray(blocks)) return [{ message: 'must be an array', pointer: base }]
  if (blocks.length > maxBlocks) errors.push({ message: `no more than ${maxBlocks} items allowed`, pointer: base })
  const actionIds = new Set<string>()
  const text = (v: unknown, max: number, p: string) => {
    const t = v && typeof v === 'object' ? (v as { text?: unknown }).text : undefined
    if (typeof t === 'string' && t.length > max) errors.push({ message: `must be less than ${max + 1} characters`, pointer: `${p}/text` })
  }
  const element = (el: unknown, p: string) => {
    if (!el || typeof el !== 'object') return
    const e = el as Record<string, unknown>
    if (typeof e.action_id === 'string') {
      if (e.action_id.length > 255) errors.push({ message: 'must be less than 256 characters', pointer: `${p}/action_id` })
      if (actionIds.has(e.action_id)) errors.push({ message: `action_id "${e.action_id}" is already used`, pointer: `${p}/action_id` })
      actionIds.add(e.action_id)
    }
    if (e.type === 'button') {
      text(e.text, 75, `${p}/text`)
      if (typeof e.value === 'string' && e.value.length > 2000) errors.push({ message: 'must be less than 2001 characters', pointer: `${p}/value` })
    }
    const options = e.options
    if (Array.isArray(options)) {
      const max = e.type === 'checkboxes' || e.type === 'radio_buttons' ? 10 : 100
      if (options.length > max) errors.push({ message: `no more than ${max} items allowed`, pointer: `${p}/options` })
      options.forEach((o: unknown, i) => {
        const opt = o as { text?: unknown; value?: unknown }
        text(opt.text, 75, `${p}/options/${i}/text`)
        if (typeof opt.value === 'string' && opt.value.length > 150) errors.push({ message: 'must be less than 151 characters', pointer: `${p}/options/${i}/value` })
      })
    }
  }
  blocks.forEach((b: unknown, i) => {
    const p = `${base}/${i}`
    if (!b || typeof b !== 'object' || typeof (b as { type?: unknown }).type !== 'string') {
      errors.push({ message: 'must provide a block type', pointer: p })
      return
    }
    const block = b as Record<string, unknown>
    if (typeof block.block_id === 'string' && block.block_id.length > 255) errors.push({ message: 'must be less than 256 characters', pointer: `${p}/block_id` })
    switch (block.type) {
      case 'section':
        text(block.text, 3000, `${p}/text`)
        if (Array.isArray(block.fields)) {
          if (block.fields.length > 10) errors.push({ message: 'no more than 10 items allowed', pointer: `${p}/fields` })
          block.fields.forEach((f: unknown, j) => text(f, 2000, `${p}/fields/${j}`))
        }
        if (block.accessory) element(block.accessory, `${p}/accessory`)
        break
      case 'header':
        text(block.text, 150, `${p}/text`)
        break
      case 'actions':
        if (Array.isArray(block.elements)) {
          if (block.elements.length > 25) errors.push({ message: 'no more than 25 items allowed', pointer: `${p}/elements` })
          block.elements.forEach((e: unknown, j) => element(e, `${p}/elements/${j}`))
        }
        break
      case 'context':
        if (Array.isArray(block.elements) && block.elements.length > 10) errors.push({ message: 'no more than 10 items allowed', pointer: `${p}/elements` })
        break
      case 'input':
        text(block.label, 2000, `${p}/label`)
        if (!block.element) errors.push({ message: 'must provide an element', pointer: `${p}/element` })
        element(block.element, `${p}/element`)
        break
      case 'divider':
      case 'image':
      case 'markdown':
      case 'rich_text':
        break
      default:
        errors.push({ message: `unknown block type "${String(block.type)}"`, pointer: `${p}/type` })
    }
  })
  return errors
}

function invalidBlocks(errors: LimitError[]): FakeResponse {
  const lines = errors.map((e) => `${e.message} [json-pointer:${e.pointer}]`)
  return err('invalid_blocks', { errors: lines, response_metadata: { messages: lines.map((l) => `[ERROR] ${l}`) } })
}

function blockText(blocks: unknown): number {
  let n = 0
  const walk = (v: unknown) => {
    if (typeof v === 'string') n += v.length
    else if (Array.isArray(v)) v.forEach(walk)
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) if (k === 'text' || typeof x === 'object') walk(x)
  }
  walk(blocks)
  return n
}

function checkView(view: unknown): FakeResponse | undefined {
  if (!view || typeof view !== 'object') return err('invalid_arguments')
  const v = view as Record<string, unknown>
  const errors: LimitError[] = []
  if (v.type !== 'modal') errors.push({ message: 'must be "modal"', pointer: '/view/type' })
  for (const k of ['title', 'submit', 'close'] as const) {
    const t = (v[k] as { text?: unknown } | undefined)?.text
    if (k === 'title' && typeof t !== 'string') errors.push({ message: 'is required', pointer: '/view/title' })
    if (typeof t === 'string' && t.length > 24) errors.push({ message: 'must be less than 25 characters', pointer: `/view/${k}/text` })
  }
  if (typeof v.private_metadata === 'string' && v.private_metadata.length > 3000) errors.push({ message: 'must be less than 3001 characters', pointer: '/view/private_metadata' })
  if (typeof v.callback_id === 'string' && v.callback_id.length > 255) errors.push({ message: 'must be less than 256 characters', pointer: '/view/callback_id' })
  errors.push(...checkBlocks(v.blocks, '/view/blocks', 100))
  if (Array.isArray(v.blocks) && v.blocks.some((b: unknown) => (b as { type?: unknown }).type === 'input') && !v.submit) {
    errors.push({ message: 'submit is required when the view has input blocks', pointer: '/view/submit' })
  }
  if (errors.length) return invalidBlocks(errors)
  if (JSON.stringify(view).length > MAX_VIEW_BYTES) return err('view_too_large')
  return undefined
}

/**
 * One page of a cursor-paginated method. Cursors look like Slack's (base64 of `<kind>:<id of the next item>`);
 * one that does not decode to an item of the list is `invalid_cursor`. `next_cursor` is "" on the last page.
 */
function pageOf<T>(
  items: readonly T[],
  idOf: (x: T) => string,
  args: Record<string, unknown>,
  opts: { kind: string; defaultLimit: number; maxLimit: number; maxPageSize: number },
): { items: T[]; nextCursor: string } | FakeResponse {
  let limit = opts.defaultLimit
  if (args.limit !== undefined && args.limit !== '') {
    const n = Number(args.limit)
    if (!Number.isInteger(n) || n < 0 || n > opts.maxLimit) return err('invalid_limit')
    if (n > 0) limit = n
  }
  let start = 0
  if (typeof args.cursor === 'string' && args.cursor !== '') {
    const decoded = Buffer.from(args.cursor, 'base64').toString('utf8')
    const id = decoded.startsWith(`${opts.kind}:`) ? decoded.slice(opts.kind.length + 1) : undefined
    start = id === undefined ? -1 : items.findIndex((x) => idOf(x) === id)
    if (start < 0) return err('invalid_cursor')
  }
  const end = Math.min(items.length, start + Math.min(limit, opts.maxPageSize))
  const next = items[end]
  return { items: items.slice(start, end), nextCursor: next === undefined ? '' : Buffer.from(`${opts.kind}:${idOf(next)}`).toString('base64') }
}

const isPage = <T>(p: { items: T[]; nextCursor: string } | FakeResponse): p is { items: T[]; nextCursor: string } => 'nextCursor' in p
const flag = (v: unknown) => v === true || v === 'true' || v === '1' || v === 1

/** Scopes a conversation type needs to be read (`conversations.list` types and `conversations.members`). */
const READ_SCOPE = { public_channel: 'channels:read', private_channel: 'groups:read', mpim: 'mpim:read', im: 'im:read' } as const
const TYPE_OF = { public: 'public_channel', private: 'private_channel', mpim: 'mpim', im: 'im' } as const

function formBody(fields: Record<string, string>): string {
  return new URLSearchParams(fields).toString()
}

/** Starts the fake on 127.0.0.1. */
export async function startFakeSlack(options: FakeSlackOptions = {}): Promise<FakeSlack> {
  const now = options.now ?? Date.now
  const clientId = options.clientId ?? `${Math.floor(Math.random() * 1e12)}.${Math.floor(Math.random() * 1e12)}`
  const clientSecret = options.clientSecret ?? `secret${Math.random().toString(36).slice(2)}`
  const maxBlocksText = options.maxBlocksText ?? 13_000
  const maxPageSize = options.maxPageSize ?? 1000
  const teams = new Map<string, FakeSlackTeam>()
  const users = new Map<string, FakeSlackUser>()
  const channels = new Map<string, FakeSlackChannel>()
  const usergroups = new Map<string, FakeSlackUsergroup>()
  const messages: FakeSlackMessage[] = []
  const ephemerals: FakeSlackEphemeral[] = []
  const views = new Map<string, FakeSlackView>()
  /** token → team, whether revoked, and its scopes (null: every scope). */
  const tokens = new Map<string, { teamId: string; revoked: boolean; scopes: ReadonlySet<string> | null }>()
  const codes = new Map<string, { teamId: string; redirectUri?: string; installer?: string }>()
  const triggers = new Map<string, { expiresAt: number; used: boolean }>()
  const rateLimits: Array<{ method?: string; left: number; retryAfter: number | null }> = []
  const failures: Array<{ method: string; error: string; left: number }> = []
  let lastTs = 0

  const nextTs = () => {
    const micros = Math.max(now() * 1000, lastTs + 1)
    lastTs = micros
    return `${Math.floor(micros / 1e6)}.${String(micros % 1e6).padStart(6, '0')}`
  }

  const userView = (u: FakeSlackUser) => ({
    id: u.id,
    team_id: u.teamId,
    name: u.name,
    real_name: u.name,
    deleted: u.deleted,
    is_bot: u.isBot,
    is_restricted: u.isRestricted,
    is_ultra_restricted: false,
    tz: 'UTC',
    profile: { email: u.email ?? undefined, real_name: u.name, display_name: u.name },
  })

  /** A conversation as `conversations.list` lists it. */
  const channelView = (c: FakeSlackChannel, team: FakeSlackTeam) => ({
    id: c.id,
    ...(c.kind === 'im'
      ? { user: [...c.members].find((m) => m !== team.botUserId) ?? team.botUserId }
      : { name: c.name, name_normalized: c.name, is_channel: c.kind === 'public', is_group: c.kind === 'private', is_general: false, num_members: c.members.size }),
    is_im: c.kind === 'im',
    is_mpim: c.kind === 'mpim',
    is_private: c.kind !== 'public',
    is_archived: c.archived,
    is_member: c.members.has(team.botUserId),
    is_shared: false,
    is_ext_shared: false,
    is_org_shared: false,
    context_team_id: c.teamId,
  })

  /** `missing_scope` (Slack's shape) when the token was given scopes and lacks one of `needed`. */
  function lackingScope(tok: { scopes: ReadonlySet<string> | null }, needed: readonly string[]): FakeResponse | undefined {
    if (!tok.scopes) return undefined
    const missing = needed.filter((s) => !tok.scopes!.has(s))
    return missing.length ? err('missing_scope', { needed: missing.join(','), provided: [...tok.scopes].join(',') }) : undefined
  }

  /** The channel a `channel` argument names: an id, `#name`, or a user id (the bot's DM with them). */
  function resolveChannel(teamId: string, ref: string): FakeSlackChannel | undefined {
    const byId = channels.get(ref)
    if (byId) return byId.teamId === teamId || byId.kind === 'public' ? byId : undefined
    const name = ref.replace(/^#/, '')
    const byName = [...channels.values()].find((c) => c.teamId === teamId && c.name === name)
    if (byName) return byName
    if (/^[UW]/.test(ref) && users.has(ref)) return channels.get(dmChannel(teamId, ref))
    return undefined
  }

  function dmChannel(teamId: string, userId: string): string {
    const existing = [...channels.values()].find((c) => c.kind === 'im' && c.teamId === teamId && c.members.has(userId))
    if (existing) return existing.id
    const id = nextId('D')
    channels.set(id, { id, name: null, teamId, kind: 'im', members: new Set([userId, teams.get(teamId)?.botUserId ?? 'UBOT']), archived: false })
    return id
  }

  function mpimChannel(teamId: string, userIds: string[]): string {
    const key = [...userIds].sort().join(',')
    const existing = [...channels.values()].find((c) => c.kind === 'mpim' && c.teamId === teamId && [...c.members].filter((m) => m !== teams.get(teamId)?.botUserId).sort().join(',') === key)
    if (existing) return existing.id
    const id = nextId('G')
    channels.set(id, { id, name: `mpdm-${userIds.join('--')}`, teamId, kind: 'mpim', members: new Set([...userIds, teams.get(teamId)?.botUserId ?? 'UBOT']), archived: false })
    return id
  }

  const method = (req: FakeRequest) => req.pathname.replace(/^\/api\//, '')

  function classify(req: FakeRequest): void {
    req.service = 'slack'
    req.operation = req.pathname.startsWith('/api/') ? method(req) : `${req.method} ${req.pathname}`
  }

  function takeRateLimit(m: string): FakeResponse | undefined {
    const r = rateLimits.find((x) => x.left > 0 && (x.method === undefined || x.method === m))
    if (!r) return undefined
    r.left--
    return { status: 429, headers: r.retryAfter === null ? {} : { 'retry-after': String(r.retryAfter) }, body: { ok: false, error: 'ratelimited' } }
  }

  function takeFailure(m: string): FakeResponse | undefined {
    const f = failures.find((x) => x.left > 0 && x.method === m)
    if (!f) return undefined
    f.left--
    return err(f.error)
  }

  function handle(req: FakeRequest): FakeResponse {
    if (req.method !== 'POST' || !req.pathname.startsWith('/api/')) return { status: 404, body: 'Not Found' }
    const m = method(req)
    const args = argsOf(req)
    const limited = takeRateLimit(m)
    if (limited) return limited

    if (m === 'oauth.v2.access') {
      req.principal = typeof args.client_id === 'string' ? `client:${args.client_id}` : null
      if (args.client_id !== clientId) return err('invalid_client_id')
      if (args.client_secret !== clientSecret) return err('bad_client_secret')
      const code = typeof args.code === 'string' ? codes.get(args.code) : undefined
      if (!code) return err('invalid_code')
      codes.delete(args.code as string)
      if (code.redirectUri !== undefined && args.redirect_uri !== code.redirectUri) return err('bad_redirect_uri')
      const team = teams.get(code.teamId)!
      const token = issueToken(team.id)
      return ok({
        access_token: token,
        token_type: 'bot',
        scope: 'commands,chat:write,users:read,users:read.email,im:write,mpim:write',
        bot_user_id: team.botUserId,
        app_id: team.appId,
        team: { id: team.id, name: team.name },
        enterprise: null,
        is_enterprise_install: false,
        authed_user: { id: code.installer ?? 'UINSTALLER' },
      })
    }

    const auth = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')
    const given = auth?.[1] ?? (typeof args.token === 'string' ? args.token : undefined)
    if (!given) return err('not_authed')
    const tok = tokens.get(given)
    if (!tok) return err('invalid_auth')
    req.principal = `team:${tok.teamId}`
    if (tok.revoked) return err('token_revoked')
    const failure = takeFailure(m)
    if (failure) return failure
    const team = teams.get(tok.teamId)!

    switch (m) {
      case 'auth.test':
        return ok({ url: `https://${team.name}.slack.com/`, team: team.name, user: 'sym', team_id: team.id, user_id: team.botUserId, bot_id: `B${team.botUserId.slice(1)}` })
      case 'apps.uninstall':
        if (args.client_id !== clientId) return err('invalid_client_id')
        if (args.client_secret !== clientSecret) return err('bad_client_secret')
        revokeTeam(team.id)
        return ok()
      case 'users.info': {
        const u = typeof args.user === 'string' ? users.get(args.user) : undefined
        return u ? ok({ user: userView(u) }) : err('user_not_found')
      }
      case 'users.lookupByEmail': {
        const email = typeof args.email === 'string' ? args.email.toLowerCase() : ''
        const u = [...users.values()].find((x) => x.email?.toLowerCase() === email && x.teamId === team.id && !x.deleted)
        return u ? ok({ user: userView(u) }) : err('users_not_found')
      }
      case 'conversations.open': {
        if (typeof args.channel === 'string') {
          const c = resolveChannel(team.id, args.channel)
          return c ? ok({ channel: { id: c.id }, already_open: true }) : err('channel_not_found')
        }
        const ids = typeof args.users === 'string' ? args.users.split(',').map((s) => s.trim()).filter(Boolean) : []
        if (ids.length === 0 || ids.length > 8) return err('invalid_arguments')
        for (const id of ids) {
          const u = users.get(id)
          if (!u) return err('user_not_found')
          if (u.deleted) return err('user_disabled')
        }
        return ok({ channel: { id: ids.length === 1 ? dmChannel(team.id, ids[0]!) : mpimChannel(team.id, ids) } })
      }
      case 'users.list': {
        const missing = lackingScope(tok, ['users:read'])
        if (missing) return missing
        const page = pageOf([...users.values()].filter((u) => u.teamId === team.id), (u) => u.id, args, { kind: 'user', defaultLimit: Infinity, maxLimit: Infinity, maxPageSize })
        if (!isPage(page)) return page
        return ok({ members: page.items.map(userView), cache_ts: Math.floor(now() / 1000), response_metadata: { next_cursor: page.nextCursor } })
      }
      case 'conversations.list': {
        const types = (typeof args.types === 'string' && args.types.trim() ? args.types : 'public_channel').split(',').map((t) => t.trim())
        if (!types.every((t): t is keyof typeof READ_SCOPE => t in READ_SCOPE)) return err('invalid_types')
        const missing = lackingScope(tok, [...new Set(types.map((t) => READ_SCOPE[t]))])
        if (missing) return missing
        const listed = [...channels.values()].filter(
          (c) => c.teamId === team.id && types.includes(TYPE_OF[c.kind]) && (c.kind === 'public' || c.members.has(team.botUserId)) && !(c.archived && flag(args.exclude_archived)),
        )
        const page = pageOf(listed, (c) => c.id, args, { kind: 'channel', defaultLimit: 100, maxLimit: 1000, maxPageSize })
        if (!isPage(page)) return page
        return ok({ channels: page.items.map((c) => channelView(c, team)), response_metadata: { next_cursor: page.nextCursor } })
      }
      case 'conversations.members': {
        const c = typeof args.channel === 'string' ? channels.get(args.channel) : undefined
        // Private conversations the bot is not in are invisible to it.
        if (!c || c.teamId !== team.id || (c.kind !== 'public' && !c.members.has(team.botUserId))) return err('channel_not_found')
        const missing = lackingScope(tok, [READ_SCOPE[TYPE_OF[c.kind]]])
        if (missing) return missing
        const page = pageOf([...c.members], (m) => m, args, { kind: 'user', defaultLimit: 100, maxLimit: 1000, maxPageSize })
        if (!isPage(page)) return page
        return ok({ members: page.items, response_metadata: { next_cursor: page.nextCursor } })
      }
      case 'usergroups.users.list': {
        const missing = lackingScope(tok, ['usergroups:read'])
        if (missing) return missing
        const g = typeof args.usergroup === 'string' ? usergroups.get(args.usergroup) : undefined
        if (!g || g.teamId !== team.id) return err('no_such_subteam')
        return ok({ users: [...g.users] })
      }
      case 'conversations.info': {
        const c = typeof args.channel === 'string' ? resolveChannel(team.id, args.channel) : undefined
        if (!c) return err('channel_not_found')
        return ok({ channel: { id: c.id, name: c.name, is_channel: c.kind === 'public', is_private: c.kind === 'private', is_im: c.kind === 'im', is_mpim: c.kind === 'mpim', is_member: c.members.has(team.botUserId), is_archived: c.archived } })
      }
      case 'chat.postMessage': {
        const c = typeof args.channel === 'string' ? resolveChannel(team.id, args.channel) : undefined
        if (!c) return err('channel_not_found')
        if (c.archived) return err('is_archived')
        if (c.kind === 'private' && !c.members.has(team.botUserId)) return err('not_in_channel')
        const text = typeof args.text === 'string' ? args.text : ''
        if (text.length > 40_000) return err('msg_too_long')
        const blocks = args.blocks ?? []
        if (!text && !(Array.isArray(blocks) && blocks.length)) return err('no_text')
        const problems = checkBlocks(blocks, '/blocks', 50)
        if (problems.length) return invalidBlocks(problems)
        if (blockText(blocks) > maxBlocksText) return err('msg_blocks_too_long')
        const msg: FakeSlackMessage = { channel: c.id, ts: nextTs(), text, blocks: blocks as unknown[], threadTs: typeof args.thread_ts === 'string' ? args.thread_ts : null, updates: [], deleted: false }
        messages.push(msg)
        return ok({ channel: c.id, ts: msg.ts, message: { text, blocks, ts: msg.ts, bot_id: `B${team.botUserId.slice(1)}` } })
      }
      case 'chat.update': {
        const msg = messages.find((x) => x.channel === args.channel && x.ts === args.ts && !x.deleted)
        if (!msg) return channels.has(String(args.channel)) ? err('message_not_found') : err('channel_not_found')
        const blocks = args.blocks ?? msg.blocks
        const problems = checkBlocks(blocks, '/blocks', 50)
        if (problems.length) return invalidBlocks(problems)
        msg.text = typeof args.text === 'string' ? args.text : msg.text
        msg.blocks = blocks as unknown[]
        msg.updates.push({ text: msg.text, blocks: msg.blocks })
        return ok({ channel: msg.channel, ts: msg.ts, text: msg.text, message: { text: msg.text, blocks: msg.blocks } })
      }
      case 'chat.delete': {
        const msg = messages.find((x) => x.channel === args.channel && x.ts === args.ts && !x.deleted)
        if (!msg) return err('message_not_found')
        msg.deleted = true
        return ok({ channel: msg.channel, ts: msg.ts })
      }
      case 'chat.postEphemeral': {
        const c = typeof args.channel === 'string' ? resolveChannel(team.id, args.channel) : undefined
        if (!c) return err('channel_not_found')
        const user = typeof args.user === 'string' ? args.user : ''
        if (!users.has(user)) return err('user_not_found')
        if (c.kind !== 'public' && !c.members.has(user)) return err('user_not_in_channel')
        const blocks = (args.blocks ?? []) as unknown[]
        const problems = checkBlocks(blocks, '/blocks', 50)
        if (problems.length) return invalidBlocks(problems)
        ephemerals.push({ channel: c.id, user, text: typeof args.text === 'string' ? args.text : '', blocks })
        return ok({ message_ts: nextTs() })
      }
      case 'views.open':
      case 'views.push': {
        const t = typeof args.trigger_id === 'string' ? triggers.get(args.trigger_id) : undefined
        if (!t) return err('invalid_trigger_id')
        if (t.used) return err('exchanged_trigger_id')
        if (now() > t.expiresAt) return err('expired_trigger_id')
        const invalid = checkView(args.view)
        if (invalid) return invalid
        t.used = true
        const id = nextId('V')
        const v: FakeSlackView = { id, teamId: team.id, user: null, view: args.view as Record<string, unknown>, hash: `${Math.floor(now() / 1000)}.${nextId('', 8)}`, stack: id }
        views.set(id, v)
        return ok({ view: { ...v.view, id, hash: v.hash, root_view_id: id, previous_view_id: null, team_id: team.id, state: { values: {} } } })
      }
      case 'views.update': {
        const v = typeof args.view_id === 'string' ? views.get(args.view_id) : undefined
        if (!v) return err('not_found')
        if (typeof args.hash === 'string' && args.hash !== v.hash) return err('hash_conflict')
        const invalid = checkView(args.view)
        if (invalid) return invalid
        v.view = args.view as Record<string, unknown>
        v.hash = `${Math.floor(now() / 1000)}.${nextId('', 8)}`
        return ok({ view: { ...v.view, id: v.id, hash: v.hash } })
      }
      default:
        return err('unknown_method')
    }
  }

  function issueToken(teamId: string, scopes?: readonly string[]): string {
    const token = `xoxb-${teamId}-${Math.random().toString(36).slice(2, 12)}`
    tokens.set(token, { teamId, revoked: false, scopes: scopes ? new Set(scopes) : null })
    return token
  }

  function revokeTeam(teamId: string): void {
    for (const t of tokens.values()) if (t.teamId === teamId) t.revoked = true
  }

  const server = await startFakeServer({
    classify,
    handle,
    commonHeaders: () => ({ 'x-slack-req-id': nextId('', 12).toLowerCase() }),
    onReset: () => {
      rateLimits.length = 0
      failures.length = 0
    },
  })

  const sign = (secret: string, path: string, body: string, contentType: string, timestamp?: number): SlackInbound => {
    const ts = String(timestamp ?? Math.floor(now() / 1000))
    const signature = `v0=${createHmac('sha256', secret).update(`v0:${ts}:${body}`).digest('hex')}`
    return { path, body, headers: { 'content-type': contentType, 'x-slack-request-timestamp': ts, 'x-slack-signature': signature } }
  }

  const form = 'application/x-www-form-urlencoded'
  const interactive = (secret: string, payload: Record<string, unknown>, timestamp?: number) => sign(secret, '/api/v1/slack/interactions', formBody({ payload: JSON.stringify(payload) }), form, timestamp)
  const userOf = (u: SlackUserRef) => ({ id: u.id, username: u.name ?? u.id, name: u.name ?? u.id, team_id: u.teamId })
  const teamOf = (id: string) => ({ id, domain: teams.get(id)?.name ?? id.toLowerCase() })

  const api: FakeSlack = {
    ...server,
    apiUrl: `${server.url}/api/`,
    clientId,
    clientSecret,
    teams,
    users,
    channels,
    usergroups,
    messages,
    ephemerals,
    views,
    addTeam: (opts = {}) => {
      const id = opts.id ?? nextId('T')
      const team: FakeSlackTeam = { id, name: opts.name ?? `team-${id.toLowerCase()}`, botUserId: nextId('U'), appId: nextId('A') }
      teams.set(id, team)
      users.set(team.botUserId, { id: team.botUserId, teamId: id, name: 'sym', email: null, isBot: true, isRestricted: false, deleted: false })
      return team
    },
    addUser: (opts) => {
      const id = opts.id ?? nextId('U')
      const u: FakeSlackUser = { id, teamId: opts.teamId, name: opts.name ?? id.toLowerCase(), email: opts.email ?? null, isBot: opts.isBot ?? false, isRestricted: opts.isRestricted ?? false, deleted: false }
      users.set(id, u)
      return u
    },
    addChannel: (opts) => {
      const id = opts.id ?? nextId('C')
      const c: FakeSlackChannel = { id, name: opts.name.replace(/^#/, ''), teamId: opts.teamId, kind: opts.private ? 'private' : 'public', members: new Set(opts.members ?? []), archived: false }
      channels.set(id, c)
      return c
    },
    addUsergroup: (opts) => {
      const id = opts.id ?? nextId('S')
      const g: FakeSlackUsergroup = { id, teamId: opts.teamId, handle: opts.handle.replace(/^@/, ''), users: new Set(opts.users ?? []) }
      usergroups.set(id, g)
      return g
    },
    botToken: (teamId, opts = {}) => issueToken(teamId, opts.scopes),
    authorizeCode: (teamId, opts = {}) => {
      const code = `code-${Math.random().toString(36).slice(2)}`
      codes.set(code, { teamId, ...(opts.redirectUri !== undefined ? { redirectUri: opts.redirectUri } : {}), ...(opts.installer ? { installer: opts.installer } : {}) })
      return code
    },
    revokeTeam,
    triggerId: () => {
      const id = `${Math.floor(now() / 1000)}.${Math.floor(Math.random() * 1e12)}.${Math.random().toString(16).slice(2, 34)}`
      triggers.set(id, { expiresAt: now() + TRIGGER_TTL_MS, used: false })
      return id
    },
    messagesIn: (channel) => messages.filter((x) => x.channel === channel && !x.deleted),
    dmChannel,
    rateLimit: (opts = {}) => {
      rateLimits.push({ ...(opts.method ? { method: opts.method } : {}), left: opts.times ?? 1, retryAfter: opts.retryAfter === undefined ? 1 : opts.retryAfter })
    },
    failMethod: (m, error, times = 1) => {
      failures.push({ method: m, error, left: times })
    },
    callsOf: (m) =>
      server.calls('slack', m).map((r) => ({ args: argsOf(r), status: r.status, token: /^Bearer (\S+)$/.exec(r.headers.authorization ?? '')?.[1] ?? null })),
    driver: (secret) => ({
      sign: (path, body, contentType, opts = {}) => sign(opts.secret ?? secret, path, body, contentType, opts.timestamp),
      command: (o) =>
        sign(
          secret,
          '/api/v1/slack/commands',
          formBody({
            token: 'deprecated',
            command: o.command ?? '/sym',
            text: o.text ?? '',
            response_url: `${server.url}/response/${nextId('R')}`,
            trigger_id: api.triggerId(),
            user_id: o.user.id,
            user_name: o.user.name ?? o.user.id,
            team_id: o.team,
            team_domain: teamOf(o.team).domain,
            channel_id: o.channel ?? 'C0NONE',
            channel_name: channels.get(o.channel ?? '')?.name ?? 'directmessage',
            api_app_id: teams.get(o.team)?.appId ?? 'A0',
            is_enterprise_install: 'false',
          }),
          form,
          o.timestamp,
        ),
      blockActions: (o) =>
        interactive(
          secret,
          {
            type: 'block_actions',
            user: userOf(o.user),
            team: teamOf(o.team),
            api_app_id: teams.get(o.team)?.appId ?? 'A0',
            token: 'deprecated',
            trigger_id: api.triggerId(),
            container: { type: 'message', message_ts: o.messageTs, channel_id: o.channel, is_ephemeral: false },
            channel: { id: o.channel, name: channels.get(o.channel)?.name ?? o.channel },
            message: { ts: o.messageTs, type: 'message' },
            state: { values: o.stateValues ?? {} },
            response_url: `${server.url}/response/${nextId('R')}`,
            actions: [{ type: 'button', block_id: o.blockId ?? 'sym_actions', action_id: o.actionId, value: o.value, action_ts: o.actionTs ?? `${(now() / 1000).toFixed(6)}`, text: { type: 'plain_text', text: o.actionId } }],
          },
          o.timestamp,
        ),
      viewSubmission: (o) => {
        const base = 'view' in o.view && typeof (o.view as FakeSlackView).id === 'string' && 'hash' in o.view ? { ...(o.view as FakeSlackView).view, id: (o.view as FakeSlackView).id, hash: (o.view as FakeSlackView).hash } : o.view
        return interactive(
          secret,
          {
            type: 'view_submission',
            team: teamOf(o.team),
            user: userOf(o.user),
            api_app_id: teams.get(o.team)?.appId ?? 'A0',
            token: 'deprecated',
            trigger_id: api.triggerId(),
            view: { ...base, team_id: o.team, type: 'modal', state: { values: o.values } },
            response_urls: [],
          },
          o.timestamp,
        )
      },
      viewClosed: (o) => interactive(secret, { type: 'view_closed', team: teamOf(o.team), user: userOf(o.user), view: o.view, api_app_id: 'A0', token: 'deprecated', is_cleared: false }),
      blockSuggestion: (o) =>
        interactive(secret, { type: 'block_suggestion', team: teamOf(o.team), user: userOf(o.user), view: o.view, api_app_id: 'A0', token: 'deprecated', container: { type: 'view', view_id: o.view.id }, block_id: o.blockId, action_id: o.actionId, value: o.value }),
      event: (o) => {
        const inbound = sign(
          secret,
          '/api/v1/slack/events',
          JSON.stringify({
            token: 'deprecated',
            team_id: o.team,
            api_app_id: teams.get(o.team)?.appId ?? 'A0',
            event: { event_ts: `${(now() / 1000).toFixed(6)}`, ...o.event },
            type: 'event_callback',
            event_id: o.eventId ?? nextId('Ev'),
            event_time: Math.floor(now() / 1000),
            authorizations: [{ team_id: o.team, user_id: teams.get(o.team)?.botUserId ?? 'U0', is_bot: true, is_enterprise_install: false }],
            is_ext_shared_channel: false,
          }),
          'application/json',
        )
        return o.retryNum ? { ...inbound, headers: { ...inbound.headers, 'x-slack-retry-num': String(o.retryNum), 'x-slack-retry-reason': 'http_timeout' } } : inbound
      },
      urlVerification: (challenge) => sign(secret, '/api/v1/slack/events', JSON.stringify({ token: 'deprecated', challenge, type: 'url_verification' }), 'application/json'),
    }),
  }
  return api
}
