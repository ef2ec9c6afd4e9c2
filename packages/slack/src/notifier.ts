/**
 * The engine's `RunNotifier` on Slack: posts the request card where the run's notification chain says, records
 * every copy (`SlackMessage`), updates all of them when an event completes, DMs the requester, and tells an actor
 * whose decision was refused after the click (a hook's `ignore`) privately. Both methods are idempotent: card posts,
 * DMs and ephemerals are claimed once in `SlackDelivery`, card updates rewrite the same state.
 */
import type { Db } from '@opensym/db'
import { NotificationUndeliverable, silentLogger, type EngineLogger, type EventNotice, type RequestNotice, type RunNotifier } from '@opensym/engine'
import type { DestinationData, SlackDestinationData } from '@opensym/sdk/flow'
import type { WebClient } from '@slack/web-api'
import { escapeMrkdwn } from './blocks.js'
import { loadCard } from './card-data.js'
import { requestCard, requesterDm, type DmKind } from './cards.js'
import { slackError, TOKEN_DEAD, UNDELIVERABLE, type SlackClients } from './client.js'
import { once } from './deliveries.js'
import type { Installation, Installations } from './installations.js'
import { lookupByEmail, slackIdOf } from './users.js'

export interface SlackNotifierDeps {
  readonly db: Db
  readonly installations: Installations
  readonly clients: SlackClients
  readonly logger?: EngineLogger
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const SLACK_ID = /^[UW][A-Z0-9]{2,}$/

/** A destination that cannot be delivered to (unknown channel or user): not retried. */
class Undeliverable extends Error {}

const DM_FOR: Record<string, { success?: DmKind; error?: DmKind }> = {
  approve: { success: 'approved' },
  deny: { success: 'denied' },
  expire: { success: 'expired' },
  escalate: { error: 'escalation_failed' },
  deescalate: { success: 'deescalated' },
}

export class SlackNotifier implements RunNotifier {
  private readonly db: Db
  private readonly installations: Installations
  private readonly clients: SlackClients
  private readonly log: EngineLogger

  constructor(deps: SlackNotifierDeps) {
    this.db = deps.db
    this.installations = deps.installations
    this.clients = deps.clients
    this.log = deps.logger ?? silentLogger
  }

  async notifyRequest(notice: RequestNotice): Promise<void> {
    const inst = await this.installations.byEnvironment(notice.environmentId)
    if (!inst) throw new NotificationUndeliverable(`the environment has no installed Slack workspace (run ${notice.runId})`)
    const ctx = await loadCard(this.db, inst, notice.runId)
    if (!ctx || ctx.card.status !== 'requested') return // decided (or gone) before this link came due
    const client = this.clients.forToken(inst.token)
    const card = requestCard(ctx.card)
    let delivered = 0
    const failures: string[] = []
    for (const [i, dest] of notice.destinations.entries()) {
      try {
        await once(this.db, `card:${notice.runId}:${notice.index}:${i}`, { orgId: notice.orgId, runId: notice.runId, teamId: inst.teamId }, async () => {
          const channel = await this.deliverCard(client, inst, dest, card)
          await this.db.slackMessage.create({ data: { orgId: notice.orgId, runId: notice.runId, teamId: inst.teamId, link: notice.index, channel: channel.channel, ts: channel.ts } })
        })
        delivered++
      } catch (e) {
        if (!(e instanceof Undeliverable)) throw this.fatal(e, inst)
        failures.push(e.message)
      }
    }
    if (delivered === 0 && failures.length) throw new NotificationUndeliverable(`no destination of link ${notice.index} could be reached: ${failures.join('; ')}`)
    // A decision that landed while posting would have updated only the copies known then: bring ours up to date.
    const now = await this.db.run.findUnique({ where: { id: notice.runId }, select: { status: true } })
    if (now && now.status !== 'requested') await this.updateCards(inst, notice.runId)
  }

  async notifyEvent(notice: EventNotice): Promise<void> {
    const event = await this.db.runEvent.findUnique({ where: { id: notice.eventId }, select: { id: true, name: true, status: true, error: true, runId: true } })
    if (!event || event.status === 'pending') return
    const inst = await this.installations.byEnvironment(notice.environmentId)
    if (!inst) return // no Slack here: nothing to update or tell
    const ctx = await this.updateCards(inst, notice.runId)
    if (!ctx) return
    const client = this.clients.forToken(inst.token)

    if (event.status === 'error' && ['approve', 'deny', 'deescalate'].includes(event.name)) {
      const click = await this.db.slackDelivery.findFirst({ where: { eventId: event.id, key: { startsWith: 'click:' } } })
      if (click?.channel && click.slackUser) {
        await once(this.db, `refused:${event.id}`, { orgId: notice.orgId, runId: notice.runId, eventId: event.id }, async () => {
          await this.ephemeral(client, click.channel!, click.slackUser!, `:no_entry: ${event.error ? escapeMrkdwn(event.error) : 'Your action was not accepted.'}`)
        })
      }
    }

    const kind = DM_FOR[event.name]?.[event.status]
    if (kind) {
      const slackId = await slackIdOf(this.db, client, inst, ctx.requester)
      if (!slackId) {
        this.log.info({ runId: notice.runId, eventId: event.id }, 'requester has no Slack identity here; not DMed')
        return
      }
      await once(this.db, `dm:${event.id}`, { orgId: notice.orgId, runId: notice.runId, eventId: event.id, teamId: inst.teamId, slackUser: slackId }, async () => {
        const { channel } = (await client.conversations.open({ users: slackId })) as { channel?: { id?: string } }
        const dm = requesterDm(kind, ctx.card)
        await client.chat.postMessage({ channel: channel?.id ?? slackId, text: dm.text, blocks: dm.blocks })
      })
    }
  }

  /** Rewrites every posted copy of the run's card with its current state. */
  async updateCards(inst: Installation, runId: string) {
    const ctx = await loadCard(this.db, inst, runId)
    if (!ctx) return undefined
    const copies = await this.db.slackMessage.findMany({ where: { runId, teamId: inst.teamId } })
    if (!copies.length) return ctx
    const client = this.clients.forToken(inst.token)
    const card = requestCard(ctx.card)
    await Promise.all(
      copies.map(async (m) => {
        try {
          await client.chat.update({ channel: m.channel, ts: m.ts, text: card.text, blocks: card.blocks })
        } catch (e) {
          const code = slackError(e)
          if (code === 'message_not_found' || code === 'channel_not_found' || code === 'cant_update_message') {
            this.log.info({ runId, channel: m.channel, error: code }, 'a copy of the card is gone; skipped')
            return
          }
          throw this.fatal(e, inst)
        }
      }),
    )
    return ctx
  }

  private async ephemeral(client: WebClient, channel: string, user: string, text: string): Promise<void> {
    try {
      await client.chat.postEphemeral({ channel, user, text })
    } catch (e) {
      const code = slackError(e)
      if (code && UNDELIVERABLE.has(code)) return // nowhere to say it; nothing to retry
      throw e
    }
  }

  /** Posts the card to one destination; returns where it landed. */
  private async deliverCard(client: WebClient, inst: Installation, dest: DestinationData, card: { text: string; blocks: unknown[] }): Promise<{ channel: string; ts: string }> {
    if (dest.type === 'fallback') {
      const reasons: string[] = []
      for (const d of dest.destinations) {
        try {
          return await this.deliverCard(client, inst, d, card)
        } catch (e) {
          if (!(e instanceof Undeliverable)) throw e
          reasons.push(e.message)
        }
      }
      throw new Undeliverable(`fallback: ${reasons.join('; ') || 'no destinations'}`)
    }
    const channel = await this.channelOf(client, inst, dest)
    try {
      const res = (await client.chat.postMessage({ channel, text: card.text, blocks: card.blocks as never, unfurl_links: false })) as { channel?: string; ts?: string }
      return { channel: res.channel ?? channel, ts: res.ts! }
    } catch (e) {
      const code = slackError(e)
      if (code && UNDELIVERABLE.has(code)) throw new Undeliverable(`${describe(dest)}: ${code}`)
      throw e
    }
  }

  /** The channel id (or name) to post a destination's card to; DMs and group DMs are opened. */
  private async channelOf(client: WebClient, inst: Installation, dest: SlackDestinationData | { type: 'user'; userId: string }): Promise<string> {
    if (dest.type === 'slack_channel') return dest.channel
    const refs = dest.type === 'slack_group' ? dest.users : dest.type === 'slack_user' ? [dest.user] : [dest.userId]
    const ids: string[] = []
    for (const ref of refs) {
      const id = await this.slackUser(client, inst, ref)
      if (!id) throw new Undeliverable(`${describe(dest)}: no Slack user for ${ref}`)
      ids.push(id)
    }
    try {
      const res = (await client.conversations.open({ users: ids.join(',') })) as { channel?: { id?: string } }
      return res.channel!.id!
    } catch (e) {
      const code = slackError(e)
      if (code && UNDELIVERABLE.has(code)) throw new Undeliverable(`${describe(dest)}: ${code}`)
      throw e
    }
  }

  /** A Slack user id from a Slack id, an email or a platform user id. */
  private async slackUser(client: WebClient, inst: Installation, ref: string): Promise<string | undefined> {
    if (SLACK_ID.test(ref)) return ref
    if (UUID.test(ref)) {
      const user = await this.db.user.findFirst({ where: { id: ref.toLowerCase(), orgId: inst.orgId }, select: { id: true, email: true } })
      return user ? slackIdOf(this.db, client, inst, user) : undefined
    }
    if (ref.includes('@')) {
      const user = await this.db.user.findFirst({ where: { orgId: inst.orgId, email: ref.trim().toLowerCase() }, select: { id: true, email: true } })
      return user ? slackIdOf(this.db, client, inst, user) : lookupByEmail(client, ref.trim())
    }
    return undefined
  }

  /** A dead token means the workspace is gone: say so instead of retrying forever. */
  private fatal(e: unknown, inst: Installation): unknown {
    const code = slackError(e)
    if (code && TOKEN_DEAD.has(code)) return new NotificationUndeliverable(`the Slack installation of team ${inst.teamId} no longer works (${code})`)
    return e
  }
}

function describe(dest: DestinationData): string {
  switch (dest.type) {
    case 'slack_channel':
      return `channel ${dest.channel}`
    case 'slack_user':
      return `user ${dest.user}`
    case 'slack_group':
      return `group ${dest.users.join(', ')}`
    case 'user':
      return `user ${dest.userId}`
    case 'fallback':
      return 'fallback'
  }
}
