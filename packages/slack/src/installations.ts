/**
 * Which org a Slack workspace belongs to: the org's `sym_integration` of type `slack` whose `external_id` is the
 * workspace's `team_id`, installed through OAuth (a `SlackInstallation` with the encrypted bot token). A team
 * without a live installation is unknown: nothing it sends is acted on.
 */
import type { Db } from '@opensym/db'
import type { TokenCipher } from './crypto.js'

export interface Installation {
  readonly id: string
  readonly orgId: string
  readonly integrationId: string
  readonly teamId: string
  readonly botUserId: string
  /** Decrypted bot token: keep it in memory only. */
  readonly token: string
}

type Row = { id: string; orgId: string; integrationId: string; teamId: string; botUserId: string; botToken: string }

function open(cipher: TokenCipher, row: Row): Installation {
  return { id: row.id, orgId: row.orgId, integrationId: row.integrationId, teamId: row.teamId, botUserId: row.botUserId, token: cipher.decrypt(row.botToken, row.integrationId) }
}

const SELECT = { id: true, orgId: true, integrationId: true, teamId: true, botUserId: true, botToken: true } as const

export class Installations {
  constructor(
    private readonly db: Db,
    private readonly cipher: TokenCipher,
  ) {}

  /** The live installation of a workspace whose slack integration still names it. */
  async byTeam(teamId: string): Promise<Installation | undefined> {
    const rows = await this.db.slackInstallation.findMany({ where: { teamId, revokedAt: null }, select: SELECT, orderBy: { updatedAt: 'desc' } })
    for (const row of rows) {
      const integration = await this.db.integration.findFirst({ where: { id: row.integrationId, orgId: row.orgId, type: 'slack', externalId: teamId }, select: { id: true } })
      if (integration) return open(this.cipher, row)
    }
    return undefined
  }

  /** The orgs with a live installation of this workspace (one whose slack integration still names it). */
  async liveOrgs(teamId: string): Promise<Set<string>> {
    const rows = await this.db.slackInstallation.findMany({ where: { teamId, revokedAt: null }, select: { orgId: true, integrationId: true } })
    const live = await this.db.integration.findMany({ where: { id: { in: rows.map((r) => r.integrationId) }, type: 'slack', externalId: teamId }, select: { orgId: true } })
    return new Set(live.map((i) => i.orgId))
  }

  /** The installation of the Slack integration an environment uses (`integrations.slack_id`). */
  async byEnvironment(environmentId: string): Promise<Installation | undefined> {
    const link = await this.db.environmentIntegration.findUnique({ where: { environmentId_key: { environmentId, key: 'slack_id' } }, select: { integrationId: true } })
    return link ? this.byIntegration(link.integrationId) : undefined
  }

  async byIntegration(integrationId: string): Promise<Installation | undefined> {
    const row = await this.db.slackInstallation.findFirst({ where: { integrationId, revokedAt: null }, select: SELECT })
    if (!row) return undefined
    const integration = await this.db.integration.findUnique({ where: { id: integrationId }, select: { externalId: true, type: true } })
    return integration && integration.type === 'slack' && integration.externalId === row.teamId ? open(this.cipher, row) : undefined
  }

  /** Stores (or replaces) the installation of an integration after OAuth. */
  async save(i: { orgId: string; integrationId: string; teamId: string; teamName?: string | null; appId?: string | null; botUserId: string; token: string; scopes: string; installedBy?: string | null }): Promise<void> {
    const data = {
      orgId: i.orgId,
      teamId: i.teamId,
      teamName: i.teamName ?? null,
      appId: i.appId ?? null,
      botUserId: i.botUserId,
      botToken: this.cipher.encrypt(i.token, i.integrationId),
      scopes: i.scopes,
      installedBy: i.installedBy ?? null,
      revokedAt: null,
    }
    await this.db.slackInstallation.upsert({ where: { integrationId: i.integrationId }, create: { integrationId: i.integrationId, ...data }, update: data })
  }

  /** Uninstalled or tokens revoked: the token is erased, the workspace becomes unknown. */
  async revoke(teamId: string, at: Date): Promise<number> {
    const { count } = await this.db.slackInstallation.updateMany({ where: { teamId, revokedAt: null }, data: { revokedAt: at, botToken: 'revoked' } })
    return count
  }
}
