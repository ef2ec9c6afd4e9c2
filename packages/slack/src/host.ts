/**
 * The engine's `SlackHost`: what `slack.*` calls from flow code (`slack.sendMessage`, `slack.getUserInfo`, …) do,
 * with the bot token of the workspace the call's flow uses and the same clients as the notifier. The workspace is
 * the installation of the environment's `slack_id` integration (for a flows filter, which has no environment, its
 * own `slack` integration), and only if it belongs to the call's org. Slack's errors reach the flow as an
 * `IntegrationError` with Slack's error string; tokens never appear in messages.
 */
import type { Db } from '@opensym/db'
import { HostCallError, USER_WITH_IDENTITIES, userData, type SlackHost } from '@opensym/engine'
import type { JsonObject, SlackMessageTargetData, UserData, UserRefData } from '@opensym/sdk/flow'
import type { WebClient } from '@slack/web-api'
import { slackError, TOKEN_DEAD, UNDELIVERABLE, type SlackClients } from './client.js'
import type { Installation, Installations } from './installations.js'
import { lookupByEmail, SLACK_SERVICE, slackIdOf } from './users.js'

export interface SlackHostDeps {
  readonly db: Db
  readonly installations: Installations
  readonly clients: SlackClients
}

type Ctx = Parameters<NonNullable<SlackHost['slack.sendMessage']>>[1]

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const SLACK_USER_ID = /^[UW][A-Z0-9]{2,}$/
const SLACK_CHANNEL_ID = /^[CGD][A-Z0-9]{6,}$/
/** Pages of `users.list` / `conversations.list` / members read at most (200 each): a bound on one call's work. */
const MAX_PAGES = 25
/** Channel members looked up with `users.info` per call, when not already known by their Slack identity. */
const MAX_LOOKUPS = 200

/** Runs one Web API call; Slack's error string becomes the flow's `IntegrationError` (with a code to branch on). */
async function slackCall<T>(method: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (e) {
    const code = slackError(e)
    if (code) throw new HostCallError(`slack ${method}: ${code}`, UNDELIVERABLE.has(code) ? 'not_found' : TOKEN_DEAD.has(code) ? 'not_configured' : 'failed')
    throw new HostCallError(`slack ${method}: ${e instanceof Error ? e.message : String(e)}`, 'unavailable')
  }
}

export function createSlackHost(deps: SlackHostDeps): SlackHost {
  const { db, installations, clients } = deps

  async function workspace(ctx: Ctx): Promise<{ inst: Installation; client: WebClient }> {
    const c = ctx.context
    if (!c) throw new HostCallError('slack calls need the engine context', 'internal')
    let inst: Installation | undefined
    if (c.environmentId) inst = await installations.byEnvironment(c.environmentId)
    else {
      const all = ctx.event.flow.environment.integrations
      const slack = all.slack?.type === 'slack' ? all.slack : Object.values(all).find((i) => i.type === 'slack')
      if (slack) inst = await installations.byTeam(slack.externalId)
    }
    // An installation of another org's integration is never used, whatever the data says.
    if (!inst || inst.orgId !== c.orgId) {
      throw new HostCallError("the flow's environment has no installed Slack workspace (add slack_id to sym_environment.integrations and install the app)", 'not_configured')
    }
    return { inst, client: clients.forToken(inst.token) }
  }

  /** A Slack user ID from a Slack ID, an email, a platform user ID or a platform user; undefined when there is none. */
  async function slackUser(client: WebClient, inst: Installation, ref: UserRefData): Promise<string | undefined> {
    if (typeof ref !== 'string') {
      const user = await db.user.findFirst({ where: { id: ref.id, orgId: inst.orgId }, select: { id: true, email: true } })
      if (user) return slackUserOf(client, inst, user)
      return ref.email ? slackCall('users.lookupByEmail', () => lookupByEmail(client, ref.email!)) : undefined
    }
    const text = ref.trim()
    if (SLACK_USER_ID.test(text)) return text
    if (UUID.test(text)) {
      const user = await db.user.findFirst({ where: { id: text.toLowerCase(), orgId: inst.orgId }, select: { id: true, email: true } })
      return user ? slackUserOf(client, inst, user) : undefined
    }
    if (text.includes('@')) {
      const user = await db.user.findFirst({ where: { orgId: inst.orgId, email: text.toLowerCase() }, select: { id: true, email: true } })
      return user ? slackUserOf(client, inst, user) : slackCall('users.lookupByEmail', () => lookupByEmail(client, text))
    }
    return undefined
  }

  const slackUserOf = (client: WebClient, inst: Installation, user: { id: string; email: string | null }) => slackCall('users.lookupByEmail', () => slackIdOf(db, client, inst, user))

  async function requireUser(client: WebClient, inst: Installation, ref: UserRefData): Promise<string> {
    const id = await slackUser(client, inst, ref)
    if (!id) throw new HostCallError(`slack: no Slack user for ${typeof ref === 'string' ? ref : ref.email ?? ref.id} in this workspace`, 'not_found')
    return id
  }

  /** A channel ID from `#name`, a name or an ID. */
  async function channelId(client: WebClient, channel: string): Promise<string> {
    const text = channel.trim()
    if (SLACK_CHANNEL_ID.test(text)) return text
    const name = text.replace(/^#/, '').toLowerCase()
    let cursor: string | undefined
    for (let page = 0; page < MAX_PAGES; page++) {
      const res = (await slackCall('conversations.list', () => client.conversations.list({ types: 'public_channel,private_channel', exclude_archived: true, limit: 200, ...(cursor ? { cursor } : {}) }))) as {
        channels?: Array<{ id?: string; name?: string }>
        response_metadata?: { next_cursor?: string }
      }
      const found = res.channels?.find((c) => c.name?.toLowerCase() === name)
      if (found?.id) return found.id
      cursor = res.response_metadata?.next_cursor || undefined
      if (!cursor) break
    }
    throw new HostCallError(`slack: no channel ${text} (or the app is not in it)`, 'not_found')
  }

  /** Platform users of the org for these Slack user IDs: by stored identity, else by the email Slack has (not stored). */
  async function platformUsers(client: WebClient, inst: Installation, slackIds: readonly string[], emailsKnown: ReadonlyMap<string, string> = new Map()): Promise<UserData[]> {
    const linked = await db.userIdentity.findMany({
      where: { orgId: inst.orgId, service: SLACK_SERVICE, serviceId: inst.teamId, externalUserId: { in: [...slackIds] } },
      select: { userId: true, externalUserId: true },
    })
    const known = new Set(linked.map((l) => l.externalUserId))
    const emails: string[] = []
    let lookups = 0
    for (const id of slackIds) {
      if (known.has(id)) continue
      let email = emailsKnown.get(id)
      if (email === undefined && lookups < MAX_LOOKUPS) {
        lookups++
        const info = (await slackCall('users.info', () => client.users.info({ user: id }))) as { user?: { deleted?: boolean; is_bot?: boolean; profile?: { email?: string } } }
        if (!info.user?.deleted && !info.user?.is_bot) email = info.user?.profile?.email
      }
      if (email) emails.push(email.toLowerCase())
    }
    const rows = await db.user.findMany({
      where: { orgId: inst.orgId, deactivatedAt: null, OR: [{ id: { in: linked.map((l) => l.userId) } }, { email: { in: emails } }] },
      select: USER_WITH_IDENTITIES,
      orderBy: { email: 'asc' },
    })
    return rows.map(userData)
  }

  async function destination(client: WebClient, inst: Installation, to: SlackMessageTargetData): Promise<string> {
    if ('channel' in to) return to.channel
    const user = await requireUser(client, inst, to.user)
    const res = (await slackCall('conversations.open', () => client.conversations.open({ users: user }))) as { channel?: { id?: string } }
    return res.channel?.id ?? user
  }

  return {
    'slack.sendMessage': async ({ to, message }, ctx) => {
      const { inst, client } = await workspace(ctx)
      const channel = await destination(client, inst, to)
      await slackCall('chat.postMessage', () => client.chat.postMessage({ channel, text: message, unfurl_links: false }))
      return null
    },

    'slack.sendThreadMessage': async ({ message }, ctx) => {
      const { inst, client } = await workspace(ctx)
      const runId = ctx.context?.runId
      // The first copy of the request card is "the request message" whose thread the reply goes in.
      const card = runId ? await db.slackMessage.findFirst({ where: { runId, teamId: inst.teamId }, orderBy: [{ link: 'asc' }, { createdAt: 'asc' }] }) : null
      if (!card) throw new HostCallError('slack.sendThreadMessage: this run has no request message in Slack (yet)', 'not_found')
      await slackCall('chat.postMessage', () => client.chat.postMessage({ channel: card.channel, thread_ts: card.ts, text: message, unfurl_links: false }))
      return null
    },

    'slack.getUserInfo': async ({ user }, ctx) => {
      const { inst, client } = await workspace(ctx)
      const id = await requireUser(client, inst, user)
      const res = (await slackCall('users.info', () => client.users.info({ user: id }))) as { user?: JsonObject }
      if (!res.user) throw new HostCallError(`slack users.info: no user ${id}`, 'not_found')
      return res.user
    },

    'slack.listUsers': async ({ activeOnly }, ctx) => {
      const { inst, client } = await workspace(ctx)
      const ids: string[] = []
      const emails = new Map<string, string>()
      let cursor: string | undefined
      for (let page = 0; page < MAX_PAGES; page++) {
        const res = (await slackCall('users.list', () => client.users.list({ limit: 200, ...(cursor ? { cursor } : {}) }))) as {
          members?: Array<{ id?: string; deleted?: boolean; is_bot?: boolean; profile?: { email?: string } }>
          response_metadata?: { next_cursor?: string }
        }
        for (const m of res.members ?? []) {
          if (!m.id || m.is_bot || (activeOnly && m.deleted)) continue
          ids.push(m.id)
          emails.set(m.id, m.profile?.email ?? '')
        }
        cursor = res.response_metadata?.next_cursor || undefined
        if (!cursor) break
      }
      return platformUsers(client, inst, ids, emails)
    },

    'slack.usersInChannel': async ({ channel }, ctx) => {
      const { inst, client } = await workspace(ctx)
      const id = await channelId(client, channel)
      const members: string[] = []
      let cursor: string | undefined
      for (let page = 0; page < MAX_PAGES; page++) {
        const res = (await slackCall('conversations.members', () => client.conversations.members({ channel: id, limit: 200, ...(cursor ? { cursor } : {}) }))) as {
          members?: string[]
          response_metadata?: { next_cursor?: string }
        }
        members.push(...(res.members ?? []))
        cursor = res.response_metadata?.next_cursor || undefined
        if (!cursor) break
      }
      return platformUsers(client, inst, members.filter((m) => m !== inst.botUserId))
    },

    'slack.isUserInGroup': async ({ user, groupId }, ctx) => {
      const { inst, client } = await workspace(ctx)
      const id = await slackUser(client, inst, user)
      if (!id) return false
      const res = (await slackCall('usergroups.users.list', () => client.usergroups.users.list({ usergroup: groupId }))) as { users?: string[] }
      return (res.users ?? []).includes(id)
    },

    'slack.mention': async ({ to }, ctx) => {
      const { inst, client } = await workspace(ctx)
      if ('channel' in to) return `<#${await channelId(client, to.channel)}>`
      return `<@${await requireUser(client, inst, to.user)}>`
    },
  }
}
