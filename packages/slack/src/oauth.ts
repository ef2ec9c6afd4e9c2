/**
 * Installing the app into a workspace (OAuth v2): `/install?integration_id=…` redirects to Slack's authorize page
 * with a `state` that names the slack integration and expires (MAC'd with a key derived from SLACK_TOKEN_KEY);
 * the callback exchanges the code (`oauth.v2.access`), checks that the workspace is the integration's
 * `external_id`, and stores the bot token encrypted. The token is never logged or echoed.
 */
import type { Db } from '@opensym/db'
import { systemClock, type Clock } from '@opensym/engine'
import { slackError, type SlackClients } from './client.js'
import type { TokenCipher } from './crypto.js'
import type { Installations } from './installations.js'
import { BOT_SCOPES } from './manifest.js'

export const DEFAULT_AUTHORIZE_URL = 'https://slack.com/oauth/v2/authorize'
const STATE_TTL_MS = 10 * 60_000

export interface OAuthDeps {
  readonly db: Db
  readonly installations: Installations
  readonly clients: SlackClients
  readonly cipher: TokenCipher
  readonly clientId: string
  readonly clientSecret: string
  /** The callback URL registered with Slack (`<public url>/api/v1/slack/oauth/callback`). */
  readonly redirectUri: string
  readonly authorizeUrl?: string
  readonly clock?: Clock
}

export type OAuthResult = { readonly ok: true; readonly teamId: string; readonly orgId: string } | { readonly ok: false; readonly status: number; readonly message: string }

export class SlackOAuth {
  private readonly clock: Clock

  constructor(private readonly deps: OAuthDeps) {
    this.clock = deps.clock ?? systemClock
  }

  /** Where to send the installer's browser, or why not. */
  async authorizeUrl(integrationId: string): Promise<{ ok: true; url: string } | { ok: false; status: number; message: string }> {
    const integration = await this.deps.db.integration.findFirst({ where: { id: integrationId, type: 'slack' }, select: { id: true } })
    if (!integration) return { ok: false, status: 404, message: 'no slack integration with this id' }
    const payload = Buffer.from(JSON.stringify({ i: integration.id, e: this.clock().getTime() + STATE_TTL_MS })).toString('base64url')
    const state = `${payload}.${this.deps.cipher.mac(payload)}`
    const url = new URL(this.deps.authorizeUrl ?? DEFAULT_AUTHORIZE_URL)
    url.searchParams.set('client_id', this.deps.clientId)
    url.searchParams.set('scope', BOT_SCOPES.join(','))
    url.searchParams.set('redirect_uri', this.deps.redirectUri)
    url.searchParams.set('state', state)
    return { ok: true, url: url.toString() }
  }

  async callback(q: { code?: string; state?: string; error?: string }): Promise<OAuthResult> {
    if (q.error) return { ok: false, status: 400, message: `Slack did not authorize the installation (${q.error}).` }
    const integrationId = this.checkState(q.state)
    if (!integrationId) return { ok: false, status: 400, message: 'The install link is invalid or expired; start again from /api/v1/slack/install.' }
    if (!q.code) return { ok: false, status: 400, message: 'Slack sent no code.' }
    const integration = await this.deps.db.integration.findFirst({ where: { id: integrationId, type: 'slack' }, select: { id: true, orgId: true, externalId: true } })
    if (!integration) return { ok: false, status: 404, message: 'The slack integration no longer exists.' }
    let res: { access_token?: string; scope?: string; bot_user_id?: string; app_id?: string; team?: { id?: string; name?: string } | null; authed_user?: { id?: string } }
    try {
      res = (await this.deps.clients.anonymous().oauth.v2.access({ client_id: this.deps.clientId, client_secret: this.deps.clientSecret, code: q.code, redirect_uri: this.deps.redirectUri }))
    } catch (e) {
      return { ok: false, status: 502, message: `Slack refused the code (${slackError(e) ?? 'unreachable'}).` }
    }
    const teamId = res.team?.id
    if (!res.access_token || !teamId || !res.bot_user_id) return { ok: false, status: 502, message: 'Slack answered without a bot token.' }
    if (teamId !== integration.externalId) {
      return { ok: false, status: 409, message: `This integration is for workspace ${integration.externalId}, but the app was installed in ${teamId}. Install it in the right workspace, or set the integration's external_id.` }
    }
    // A workspace acts for one org. Otherwise any org declaring this team as its integration's external_id could,
    // with one click by the workspace's admin, take over its /sym and Approve clicks (byTeam picks the newest).
    const others = [...(await this.deps.installations.liveOrgs(teamId))].filter((o) => o !== integration.orgId)
    if (others.length) return { ok: false, status: 409, message: `The workspace ${teamId} is already connected to another Sym org. Uninstall the app from the workspace first.` }
    await this.deps.installations.save({
      orgId: integration.orgId,
      integrationId: integration.id,
      teamId,
      teamName: res.team?.name ?? null,
      appId: res.app_id ?? null,
      botUserId: res.bot_user_id,
      token: res.access_token,
      scopes: res.scope ?? '',
      installedBy: res.authed_user?.id ?? null,
    })
    return { ok: true, teamId, orgId: integration.orgId }
  }

  private checkState(state: string | undefined): string | undefined {
    const [payload, mac] = (state ?? '').split('.')
    if (!payload || !mac || !this.deps.cipher.checkMac(payload, mac)) return undefined
    try {
      const v = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { i?: unknown; e?: unknown }
      return typeof v.i === 'string' && typeof v.e === 'number' && v.e > this.clock().getTime() ? v.i : undefined
    } catch {
      return undefined
    }
  }
}
