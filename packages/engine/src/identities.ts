/**
 * How a user is known in a target service (reference §3.10), resolved when a step needs it and kept in
 * `UserIdentity` per (user, service, service id): service = the strategy's `identityService` (`okta`, `aws_sso`,
 * `aws_iam`, `github`, …), service id = the integration's `external_id` (the Okta domain, the Identity Center
 * instance ARN, the AWS account, the GitHub organization).
 *
 * Order: 1. the stored identity; 2. the flow's `getIdentity` reducer ({@link IdentityReducer}, a seam the sandbox
 * wires in; not for `custom` strategies, whose `identity` is their own `fetchRemoteIdentity` and whose identities
 * are stored under service `custom` + the integration's `external_id`); 3. discovery by email in the target service
 * (`Strategy.identity`); 4. an error naming the user, the service and how to fix it (`npm run -s admin -- identities
 * set …`). What 2 or 3 finds is stored, so the next run uses it; an admin lists, sets and deletes identities with the
 * functions at the end of this file.
 */
import { isUniqueViolation, type Db, type DbOrTx } from '@opensym/db'
import type { RunSnapshot } from './snapshot.js'
import { RetryableStrategyError, StrategyError, type Strategy, type StrategyCall, type Subject } from './strategy.js'

/** What the `getIdentity` reducer is asked (the SDK's `IdentityRequest`, plus the run it is for). */
export interface IdentityRequest {
  readonly orgId: string
  readonly runId: string
  readonly snapshot: RunSnapshot
  /** The service type, e.g. `okta`. */
  readonly service: string
  /** Which instance of it: the integration's `external_id`. */
  readonly serviceId: string
  readonly user: Subject
  readonly signal: AbortSignal
}

/**
 * The flow's `getIdentity` reducer: the user's id in the service, or null/undefined to fall back to discovery by
 * email. The sandbox issue supplies it (`StepRunnerDeps.getIdentity`); by default there is none. Throwing a
 * {@link StrategyError} fails the step; a {@link RetryableStrategyError} retries it.
 */
export type IdentityReducer = (request: IdentityRequest) => Promise<string | null | undefined>

export interface IdentityCall extends Omit<StrategyCall, 'identity' | 'payload'> {
  readonly orgId: string
  readonly runId: string
  readonly snapshot: RunSnapshot
}

export interface IdentityDeps {
  readonly db: Db
  readonly getIdentity?: IdentityReducer
}

/** Where an identity came from. */
export type IdentitySource = 'stored' | 'reducer' | 'discovered'

const who = (user: Subject) => user.email ?? user.username

/** The command that fixes an identity by hand, for messages. */
export function identitySetCommand(orgSlug: string, user: Subject, service: string, serviceId: string): string {
  return `npm run -s admin -- identities set --org ${orgSlug} --user ${who(user)} --service ${service} --service-id ${serviceId} --external-id <id>`
}

/**
 * The user's identity for a strategy call, resolved in the reference's order and stored when found. Throws a
 * {@link StrategyError} naming the user and the service when nothing resolves it; a database failure is a
 * {@link RetryableStrategyError}.
 */
export async function resolveIdentity(deps: IdentityDeps, strategy: Strategy, call: IdentityCall): Promise<string> {
  return (await resolveIdentityWithSource(deps, strategy, call)).identity
}

export async function resolveIdentityWithSource(deps: IdentityDeps, strategy: Strategy, call: IdentityCall): Promise<{ identity: string; source: IdentitySource }> {
  const service = strategy.identityService
  const integration = call.strategy.integration
  if (!service || !integration) {
    const found = await strategy.identity(call)
    if (!found) throw new StrategyError(`the ${call.strategy.type} strategy found no identity for user ${who(call.subject)}`)
    return { identity: found, source: 'discovered' }
  }
  const serviceId = integration.externalId
  const key = { userId: call.subject.userId, service, serviceId }

  const stored = await db(`read the ${service} identity of ${who(call.subject)}`, () =>
    deps.db.userIdentity.findUnique({ where: { userId_service_serviceId: key }, select: { externalUserId: true } }),
  )
  if (stored) return { identity: stored.externalUserId, source: 'stored' }

  let reducerTried = false
  // Custom strategies find users with their own fetchRemoteIdentity (their `identity`), never the reducer (§3.10).
  if (deps.getIdentity && strategy.type !== 'custom') {
    reducerTried = true
    const fromReducer = await deps.getIdentity({ orgId: call.orgId, runId: call.runId, snapshot: call.snapshot, service, serviceId, user: call.subject, signal: call.signal })
    if (typeof fromReducer === 'string' && fromReducer.trim() !== '') {
      return { identity: await persist(deps.db, call, service, serviceId, fromReducer.trim(), 'the getIdentity reducer'), source: 'reducer' }
    }
  }

  const discovered = await strategy.identity(call)
  if (discovered) return { identity: await persist(deps.db, call, service, serviceId, discovered, `discovery by email in ${service}`), source: 'discovered' }

  const tried = [
    'none is stored',
    ...(reducerTried ? ["the flow's getIdentity reducer returned none"] : []),
    call.subject.email ? `no ${service} user was found with the email ${call.subject.email}` : 'the user has no email to discover it by',
  ]
  throw new StrategyError(
    `cannot resolve the ${service} identity of user ${who(call.subject)} (${service} ${serviceId}): ${tried.join(', ')}. An admin can set it: ${identitySetCommand(call.snapshot.orgSlug, call.subject, service, serviceId)}`,
  )
}

/** Stores a found identity; a concurrent run that stored one first wins. */
async function persist(database: Db, call: IdentityCall, service: string, serviceId: string, externalUserId: string, how: string): Promise<string> {
  const data = { orgId: call.orgId, userId: call.subject.userId, service, serviceId, externalUserId }
  try {
    await database.userIdentity.create({ data })
    return externalUserId
  } catch (e) {
    if (!isUniqueViolation(e)) throw new RetryableStrategyError(`could not store the ${service} identity of ${who(call.subject)}: ${e instanceof Error ? e.message : String(e)}`, undefined, { cause: e })
  }
  const [mine, other] = await db(`read the ${service} identities`, () =>
    Promise.all([
      database.userIdentity.findUnique({ where: { userId_service_serviceId: { userId: call.subject.userId, service, serviceId } } }),
      database.userIdentity.findFirst({ where: { orgId: call.orgId, service, serviceId, externalUserId }, include: { user: { select: { email: true, username: true } } } }),
    ]),
  )
  if (mine) return mine.externalUserId
  if (other) {
    throw new StrategyError(
      `the ${service} identity ${externalUserId} found for user ${who(call.subject)} by ${how} is already the identity of user ${other.user.email ?? other.user.username} (${service} ${serviceId}); an admin can fix it with npm run -s admin -- identities list/set/delete`,
    )
  }
  throw new RetryableStrategyError(`could not store the ${service} identity of ${who(call.subject)}: a concurrent change; retrying`)
}

async function db<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (e) {
    throw new RetryableStrategyError(`could not ${what}: ${e instanceof Error ? e.message : String(e)}`, undefined, { cause: e })
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Admin: list, set and delete identities (apps/admin `identities …`).

export interface IdentityRow {
  readonly id: string
  readonly userId: string
  readonly user: string
  readonly service: string
  readonly serviceId: string
  readonly externalUserId: string
  readonly createdAt: Date
  readonly updatedAt: Date
}

/** An org's stored identities, optionally of one user or one service, ordered by user, service, service id. */
export async function listIdentities(database: DbOrTx, filter: { orgId: string; userId?: string; service?: string }): Promise<IdentityRow[]> {
  const rows = await database.userIdentity.findMany({
    where: { orgId: filter.orgId, ...(filter.userId ? { userId: filter.userId } : {}), ...(filter.service ? { service: filter.service } : {}) },
    include: { user: { select: { email: true, username: true } } },
    orderBy: [{ user: { username: 'asc' } }, { service: 'asc' }, { serviceId: 'asc' }],
  })
  return rows.map((r) => ({
    id: r.id,
    userId: r.userId,
    user: r.user.email ?? r.user.username,
    service: r.service,
    serviceId: r.serviceId,
    externalUserId: r.externalUserId,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  }))
}

export class IdentityConflictError extends Error {
  override readonly name = 'IdentityConflictError'
}

/**
 * Sets (creates or replaces) a user's identity in a service. Refuses an external id that is already another user's
 * in the same service ({@link IdentityConflictError}). Returns the previous external id, if any.
 */
export async function setIdentity(
  database: Db,
  input: { orgId: string; userId: string; service: string; serviceId: string; externalUserId: string },
): Promise<{ previous: string | null }> {
  const { orgId, userId, service, serviceId, externalUserId } = input
  return database.$transaction(async (tx) => {
    const other = await tx.userIdentity.findFirst({ where: { orgId, service, serviceId, externalUserId, NOT: { userId } }, include: { user: { select: { email: true, username: true } } } })
    if (other) throw new IdentityConflictError(`${service} ${serviceId} identity ${externalUserId} already belongs to ${other.user.email ?? other.user.username}; delete that one first`)
    const key = { userId_service_serviceId: { userId, service, serviceId } }
    const before = await tx.userIdentity.findUnique({ where: key, select: { externalUserId: true } })
    await tx.userIdentity.upsert({ where: key, create: { orgId, userId, service, serviceId, externalUserId }, update: { externalUserId } })
    return { previous: before?.externalUserId ?? null }
  })
}

/** Deletes a user's identities in a service (one service id, or all of them). Returns how many were deleted. */
export async function deleteIdentities(database: DbOrTx, input: { orgId: string; userId: string; service: string; serviceId?: string }): Promise<number> {
  const { count } = await database.userIdentity.deleteMany({
    where: { orgId: input.orgId, userId: input.userId, service: input.service, ...(input.serviceId ? { serviceId: input.serviceId } : {}) },
  })
  return count
}
