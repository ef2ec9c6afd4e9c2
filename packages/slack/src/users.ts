/**
 * Slack users as platform users (reference §3.6, §5): matched by the email Slack has for them (`users.info`) and
 * remembered as a `UserIdentity` (service `slack`, service id = the workspace's team id). A person not yet known is
 * created just in time: as a member when their email domain is one of the org's (the domains of its admins and
 * members), otherwise as a guest. Slack Connect users (another home team) and Slack guests act as guests whatever
 * their stored role, and are looked up every time (their status can change). A stored identity is trusted for
 * {@link SLACK_REVERIFY_MS}, then checked with Slack again at the person's next action; Slack's `user_change` event
 * (a member made a guest, or deactivated) drops it at once ({@link forgetSlackUser}). A Slack Connect account whose
 * email is that of a member or admin of the org is refused: its email is vouched for by another workspace only.
 */
import { isUniqueViolation, type Db } from '@opensym/db'
import type { Principal } from '@opensym/domain'
import type { WebClient } from '@slack/web-api'
import type { Installation } from './installations.js'

export const SLACK_SERVICE = 'slack'

export interface SlackActor {
  readonly principal: Principal
  readonly email: string | null
  readonly name: string
}

export type ActorResult = { readonly ok: true; readonly actor: SlackActor } | { readonly ok: false; readonly reason: string }

export interface SlackProfile {
  readonly id?: string
  readonly team_id?: string
  readonly deleted?: boolean
  readonly is_bot?: boolean
  readonly is_restricted?: boolean
  readonly is_ultra_restricted?: boolean
  readonly real_name?: string
  readonly name?: string
  readonly profile?: { readonly email?: string; readonly real_name?: string; readonly display_name?: string }
}

/** How long a stored Slack identity stands before Slack is asked again whether the person is still a full member. */
export const SLACK_REVERIFY_MS = 60 * 60_000

const USER_FIELDS = { id: true, orgId: true, role: true, type: true, email: true, username: true, firstName: true, lastName: true, deactivatedAt: true } as const

export async function resolveSlackActor(db: Db, client: WebClient, inst: Installation, slackUserId: string, now: Date = new Date()): Promise<ActorResult> {
  const stored = await db.userIdentity.findUnique({
    where: { orgId_service_serviceId_externalUserId: { orgId: inst.orgId, service: SLACK_SERVICE, serviceId: inst.teamId, externalUserId: slackUserId } },
    select: { id: true, updatedAt: true, user: { select: USER_FIELDS } },
  })
  const lookUp = async () => ((await client.users.info({ user: slackUserId })) as { user?: SlackProfile }).user
  let profile: SlackProfile | undefined
  if (stored) {
    const u = stored.user
    if (u.deactivatedAt) return { ok: false, reason: 'Your Sym user is deactivated.' }
    const actor: SlackActor = { principal: { orgId: u.orgId, userId: u.id, userType: u.type, role: u.role }, email: u.email, name: displayName(u) }
    if (now.getTime() - stored.updatedAt.getTime() < SLACK_REVERIFY_MS) return { ok: true, actor }
    // Time to ask Slack again: still a full member of this workspace with the same email, the identity stands.
    profile = await lookUp()
    if (profile && isFullMember(profile, inst.teamId) && emailOf(profile) === u.email) {
      await db.userIdentity.update({ where: { id: stored.id }, data: { updatedAt: now } })
      return { ok: true, actor }
    }
    // Made a guest, deactivated, or another email: forgotten, and resolved afresh below.
    await db.userIdentity.deleteMany({ where: { id: stored.id } })
  }

  profile ??= await lookUp()
  if (!profile || profile.deleted || profile.is_bot) return { ok: false, reason: 'This Slack user cannot use Sym.' }
  const email = emailOf(profile)
  if (!email) return { ok: false, reason: 'Sym could not read your email address from Slack, so it cannot tell who you are.' }
  const external = isExternal(profile, inst.teamId)
  const slackGuest = !isFullMember(profile, inst.teamId)

  let user = await db.user.findFirst({ where: { orgId: inst.orgId, email }, select: USER_FIELDS })
  if (!user) {
    const role = slackGuest || !(await orgDomains(db, inst.orgId)).has(domainOf(email)) ? 'guest' : 'member'
    const name = profile.profile?.real_name ?? profile.real_name ?? ''
    const [first, ...rest] = name.trim().split(/\s+/)
    try {
      user = await db.user.create({ data: { orgId: inst.orgId, email, username: email, role, firstName: first || null, lastName: rest.join(' ') || null }, select: USER_FIELDS })
    } catch (e) {
      if (!isUniqueViolation(e)) throw e
      user = await db.user.findFirstOrThrow({ where: { orgId: inst.orgId, email }, select: USER_FIELDS })
    }
  }
  if (user.deactivatedAt) return { ok: false, reason: 'Your Sym user is deactivated.' }
  // Another workspace vouches for an external account's email, not ours: it must not act as (and be audited as) a
  // member or admin of this org who has that email. Only people who are guests here anyway are matched.
  if (external && user.role !== 'guest') return { ok: false, reason: 'Your Slack account belongs to another workspace, and its email is that of a Sym user of this organization. Use your account in this workspace.' }
  if (!slackGuest) {
    await db.userIdentity
      .create({ data: { orgId: inst.orgId, userId: user.id, service: SLACK_SERVICE, serviceId: inst.teamId, externalUserId: slackUserId } })
      .catch((e: unknown) => {
        if (!isUniqueViolation(e)) throw e // a concurrent click stored it first, or the user has another Slack id here
      })
  }
  return { ok: true, actor: { principal: { orgId: user.orgId, userId: user.id, userType: user.type, role: slackGuest ? 'guest' : user.role }, email: user.email, name: displayName(user) } }
}

const emailOf = (profile: SlackProfile) => profile.profile?.email?.trim().toLowerCase() || undefined
/** A Slack Connect user: their home is another workspace. */
const isExternal = (profile: SlackProfile, teamId: string) => profile.team_id !== undefined && profile.team_id !== teamId
/** A person of this workspace who is neither a Slack guest nor deactivated nor a bot. */
const isFullMember = (profile: SlackProfile, teamId: string) =>
  !isExternal(profile, teamId) && profile.is_restricted !== true && profile.is_ultra_restricted !== true && profile.deleted !== true && profile.is_bot !== true

/**
 * Slack's `user_change` event: a person who is no longer a full member of the workspace (made a guest, deactivated)
 * loses their stored identity at once, so their next action is looked up again (as a guest, or refused). Returns
 * how many identities were dropped.
 */
export async function forgetSlackUser(db: Db, teamId: string, profile: SlackProfile & { id: string }): Promise<number> {
  if (isFullMember(profile, teamId)) return 0
  const { count } = await db.userIdentity.deleteMany({ where: { service: SLACK_SERVICE, serviceId: teamId, externalUserId: profile.id } })
  return count
}

/** The Slack user id of a platform user in a workspace: stored, else found by email (and stored). */
export async function slackIdOf(db: Db, client: WebClient, inst: Installation, user: { id: string; email: string | null }): Promise<string | undefined> {
  const stored = await db.userIdentity.findUnique({ where: { userId_service_serviceId: { userId: user.id, service: SLACK_SERVICE, serviceId: inst.teamId } }, select: { externalUserId: true } })
  if (stored) return stored.externalUserId
  if (!user.email) return undefined
  const found = await lookupByEmail(client, user.email)
  if (!found) return undefined
  await db.userIdentity.create({ data: { orgId: inst.orgId, userId: user.id, service: SLACK_SERVICE, serviceId: inst.teamId, externalUserId: found } }).catch((e: unknown) => {
    if (!isUniqueViolation(e)) throw e
  })
  return found
}

/** A Slack user id by email, or undefined when Slack has nobody with it. */
export async function lookupByEmail(client: WebClient, email: string): Promise<string | undefined> {
  try {
    const res = (await client.users.lookupByEmail({ email })) as { user?: { id?: string } }
    return res.user?.id
  } catch (e) {
    if ((e as { data?: { error?: unknown } }).data?.error === 'users_not_found') return undefined
    throw e
  }
}

const domainOf = (email: string) => email.slice(email.lastIndexOf('@') + 1)

async function orgDomains(db: Db, orgId: string): Promise<Set<string>> {
  const rows = await db.user.findMany({ where: { orgId, type: 'normal', role: { in: ['admin', 'member'] }, email: { not: null } }, select: { email: true }, take: 1000 })
  return new Set(rows.map((r) => domainOf(r.email!)))
}

export function displayName(u: { firstName: string | null; lastName: string | null; email: string | null; username: string }): string {
  const full = [u.firstName, u.lastName].filter(Boolean).join(' ')
  return full || u.email || u.username
}
