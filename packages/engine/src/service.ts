/**
 * The run service the Events API calls: start a run, approve or deny it, revoke its access, and read runs and
 * events. Each write is atomic (one statement for a request or a decision, one transaction for a revoke) and records
 * a pending event, then a job is enqueued to process it (if enqueueing fails, the reconciler adds the job later). The
 * rules are `@opensym/domain`'s.
 *
 * Requests and decisions are what every run goes through, so they run as few plain statements as they can over
 * `db.sql` (pg), not the Prisma client: a request reads everything it is checked against in one statement and writes
 * the run with its event in another; a decision reads the run in one and appends its event in another.
 */
import { randomUUID } from 'node:crypto'
import { isUniqueViolation, Prisma, type Db, type Run, type RunEvent, type Sql } from '@opensym/db'
import {
  decisionRefusal,
  parseFlowRef,
  requestExpiresAt,
  revokeRefusal,
  sourceRefusal,
  transition,
  validateFlowInputs,
  DEFAULT_REQUEST_EXPIRY_SECONDS,
  DEFAULT_REQUEST_PERMISSION,
  RUN_STATUSES,
  type Actor,
  type Principal,
  type RunSource,
  type RunStatus,
} from '@opensym/domain'
import { EngineError, invalidRequest, type EngineErrorKind } from './errors.js'
import { bindTargetSettings, flowParams, readSnapshot, resolveTarget, snapshotOf, type FlowForRequest, type TargetRow } from './flows.js'
import type { EngineQueues, EventStep } from './queues.js'
import { defaultPermissions, silentLogger, systemClock, type Clock, type EngineLogger, type PermissionResolver } from './seams.js'
import { appendEvent, insertEventFrom, lockRun, runColumns, runEventColumns } from './store.js'
import { runSummaryView, runView, USER_SELECT, type RunSummaryView, type RunView, type UserRow } from './views.js'

export interface RunServiceDeps {
  readonly db: Db
  readonly queues: EngineQueues
  readonly clock?: Clock
  readonly logger?: EngineLogger
  /** How long a request waits for a decision before it expires. Default a day. */
  readonly requestExpirySeconds?: number
  readonly permissions?: PermissionResolver
}

/** `POST /events/request`. */
export interface RequestInput {
  readonly flow_srn: string
  readonly flow_inputs: Readonly<Record<string, unknown>>
  readonly context?: Readonly<Record<string, unknown>>
  /** The requester, when not the caller (bots and admins only). */
  readonly user_email?: string
  readonly user_id?: string
}

export interface DecisionInput {
  readonly run_id: string
  readonly decision_message?: string
}

export interface ListRunsQuery {
  /** A flow slug or id. */
  readonly flow?: string
  readonly status?: RunStatus
  /** A requester's id or email. */
  readonly requester?: string
  readonly cursor?: string
  readonly limit?: number
}

export interface EventStatusView {
  readonly run_id: string
  readonly name: string
  readonly timestamp: string
  readonly status: 'pending' | 'success' | 'error'
  readonly error?: string
}

export const DEFAULT_LIST_LIMIT = 50
export const MAX_LIST_LIMIT = 200

const { sql } = Prisma

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const INVALID_RUN: Record<'approve' | 'deny' | 'deescalate', EngineErrorKind> = {
  approve: 'APPROVE_INVALID_RUN',
  deny: 'DENY_INVALID_RUN',
  deescalate: 'DEESCALATE_INVALID_RUN',
}

/** The columns of a run that a decision or a revoke checks. */
type RunToDecide = Pick<Run, 'id' | 'status' | 'requesterId' | 'snapshot' | 'permission'>

const actorOf = (p: Principal): Actor => ({ userId: p.userId, userType: p.userType, role: p.role })

export class RunService {
  private readonly db: Db
  private readonly queues: EngineQueues
  private readonly clock: Clock
  private readonly logger: EngineLogger
  private readonly requestExpirySeconds: number
  private readonly permissions: PermissionResolver

  constructor(deps: RunServiceDeps) {
    this.db = deps.db
    this.queues = deps.queues
    this.clock = deps.clock ?? systemClock
    this.logger = deps.logger ?? silentLogger
    this.requestExpirySeconds = deps.requestExpirySeconds ?? DEFAULT_REQUEST_EXPIRY_SECONDS
    this.permissions = deps.permissions ?? defaultPermissions
  }

  /**
   * Starts a run: validates the request against the flow, records the run and its `request` event, enqueues.
   * `via` is where the caller came from (the Slack app passes `slack`), checked against `allowed_sources`; it is an
   * argument, not part of the body, so an API caller cannot claim to be Slack.
   */
  async createRequest(p: Principal, input: RequestInput, via: RunSource = 'api'): Promise<{ run_id: string; event_id: string }> {
    const ref = parseFlowRef(input.flow_srn)
    if (!ref.ok) throw invalidRequest([{ field: 'flow_srn', message: ref.reason }])
    const loaded = await loadRequestContext(this.db.sql, p, ref.value.slug, requesterLookup(p, input))
    const orgSlug = loaded.orgSlug
    if (ref.value.org !== null && ref.value.org !== orgSlug) {
      throw invalidRequest([{ field: 'flow_srn', message: `names org "${ref.value.org}", but this token belongs to org "${orgSlug}"` }])
    }
    const flow = loaded.flow
    if (!flow) throw invalidRequest([{ field: 'flow_srn', message: `no flow "${ref.value.slug}" in this organization` }])
    if (ref.value.version !== 'latest' && ref.value.version !== flow.version) {
      throw invalidRequest([{ field: 'flow_srn', message: `flow "${flow.slug}" is at version ${flow.version}; use "latest" or ${flow.version}` }])
    }
    const params = flowParams(flow.params)
    const refusal = sourceRefusal(params.allowed_sources, via, flow.slug)
    if (refusal) throw new EngineError('SOURCE_NOT_ALLOWED', refusal)

    const requester = checkRequester(p, input, loaded.requester)
    const inputs = validateFlowInputs(
      { promptFields: params.prompt_fields, hasStrategy: flow.strategy !== null, scheduleDeescalation: params.schedule_deescalation },
      input.flow_inputs,
    )
    if (!inputs.ok) throw invalidRequest(inputs.errors.map((e) => ({ field: `flow_inputs.${e.field}`, message: e.message })))
    const { fields, durationSeconds, target: targetRef } = inputs.value

    let target: TargetRow | undefined
    let targetSettings: Record<string, string> = {}
    if (targetRef) {
      const resolved = resolveTarget(flow, orgSlug, targetRef)
      if ('error' in resolved) throw invalidRequest([{ field: `flow_inputs.${resolved.error.field}`, message: resolved.error.message }])
      target = resolved.target
      const bound = bindTargetSettings(target, fields)
      if ('errors' in bound) throw invalidRequest(bound.errors.map((e) => ({ field: `flow_inputs.${e.field}`, message: e.message })))
      targetSettings = bound.settings
    }

    const snapshot = snapshotOf(orgSlug, flow, params, target, targetSettings)
    const now = this.clock()
    const expiresAt = requestExpiresAt(now, this.requestExpirySeconds)
    const runId = randomUUID()
    const eventId = randomUUID()
    // The run and its `request` event in one statement (a CTE), hence atomic without a transaction of our own.
    const inserted = await this.db.sql.execute(sql`
      WITH r AS (
        INSERT INTO "Run" ("id", "orgId", "flowId", "flowSlug", "flowVersion", "environmentId", "requesterId", "targetId", "durationSeconds",
                           "fields", "context", "snapshot", "status", "requestExpiresAt", "createdAt", "updatedAt")
        VALUES (${runId}::uuid, ${p.orgId}::uuid, ${flow.id}::uuid, ${flow.slug}, ${flow.version}::int, ${flow.environmentId}::uuid, ${requester.id}::uuid,
                ${target?.id ?? null}::uuid, ${durationSeconds ?? null}::int,
                ${JSON.stringify({ ...fields, ...(target ? { target_id: target.id } : {}) })}::jsonb, ${JSON.stringify(input.context ?? {})}::jsonb,
                ${JSON.stringify(snapshot)}::jsonb, 'requested', ${expiresAt}::timestamptz, ${now}::timestamptz, ${new Date()}::timestamptz)
        RETURNING "id", "orgId")
      ${insertEventFrom(eventId, { id: sql`r."id"`, orgId: sql`r."orgId"` }, { name: 'request', actorId: requester.id, submittedById: requester.id === p.userId ? null : p.userId, channel: via }, new Date(), { from: sql`FROM r` })}`)
    if (inserted !== 1) throw new Error(`could not record the request event of run ${runId}`)
    await this.enqueue('request', eventId, () => this.queues.scheduleExpiry(runId, expiresAt))
    return { run_id: runId, event_id: eventId }
  }

  /** Approves or denies a requested run, as the caller, from the API or Slack (`via`, the event's channel). */
  async decide(p: Principal, decision: 'approve' | 'deny', input: DecisionInput, via: RunSource = 'api'): Promise<{ run_id: string; event_id: string }> {
    const run = await this.findRunToDecide(p, input.run_id)
    const snapshot = readSnapshot(run.snapshot)
    const params = flowParams(snapshot.flow.params)
    const allowed = transition(run.status, decision)
    if (!allowed.ok) throw new EngineError(INVALID_RUN[decision], allowed.reason)
    const permission = await this.permissions({ id: run.id, requesterId: run.requesterId, snapshot, permission: run.permission })
    const refusal = decisionRefusal(actorOf(p), run.requesterId, permission, { allowGuestInteraction: params.allow_guest_interaction })
    if (refusal) throw new EngineError('FORBIDDEN', refusal)
    const message = input.decision_message?.trim()
    const eventId = await appendDecision(this.db.sql, run.id, decision, { actorId: p.userId, channel: via, fields: message ? { decision_message: message } : {} })
    await this.enqueue(decision, eventId)
    return { run_id: run.id, event_id: eventId }
  }

  /**
   * De-escalates (revokes) an escalated run now, as the caller. A de-escalation already in progress is returned
   * instead of starting a second one.
   */
  async revoke(p: Principal, runId: string, via: RunSource = 'api'): Promise<{ event_id: string; request_body: { run_id: string } }> {
    const run = await this.findRunToDecide(p, runId)
    const snapshot = readSnapshot(run.snapshot)
    const params = flowParams(snapshot.flow.params)
    const allowed = transition(run.status, 'deescalate')
    if (!allowed.ok) throw new EngineError('DEESCALATE_INVALID_RUN', allowed.reason)
    // An escalated run was routed; one from before permissions were stored had Sym's default.
    const permission = await this.permissions({ id: run.id, requesterId: run.requesterId, snapshot, permission: run.permission ?? DEFAULT_REQUEST_PERMISSION })
    const refusal = revokeRefusal(actorOf(p), run.requesterId, permission, { allowRevoke: params.allow_revoke, allowGuestInteraction: params.allow_guest_interaction })
    if (refusal) throw new EngineError('FORBIDDEN', refusal)
    const event = await this.db.sql.transaction(async (tx) => {
      const locked = await this.lockForStep(tx, run.id, 'deescalate')
      // Read after the lock: a de-escalation appended by whoever held it is seen.
      const [inProgress] = await tx.query<RunEvent>(sql`
        SELECT ${runEventColumns()} FROM "RunEvent" WHERE "runId" = ${run.id}::uuid AND "name" = 'deescalate' AND "status" = 'pending' LIMIT 1`)
      return inProgress ?? appendEvent(tx, locked, { name: 'deescalate', actorId: p.userId, channel: via, fields: { deescalate_type: 'manual' } })
    })
    await this.enqueue('deescalate', event.id)
    return { event_id: event.id, request_body: { run_id: run.id } }
  }

  /** `GET /events/{id}`, in Sym's shape: `error` only on failed events. */
  async getEvent(p: Principal, eventId: string): Promise<EventStatusView> {
    const [event] = UUID.test(eventId)
      ? await this.db.sql.query<Pick<RunEvent, 'runId' | 'name' | 'status' | 'error' | 'createdAt' | 'completedAt'> & { requesterId: string }>(sql`
          SELECT e."runId", e."name", e."status", e."error", e."createdAt", e."completedAt", r."requesterId"
          FROM "RunEvent" e JOIN "Run" r ON r."id" = e."runId"
          WHERE e."id" = ${eventId.toLowerCase()}::uuid AND e."orgId" = ${p.orgId}::uuid`)
      : []
    if (!event || !this.mayRead(p, event.requesterId)) throw new EngineError('NOT_FOUND', `no event with id ${eventId}`)
    return {
      run_id: event.runId,
      name: event.name,
      timestamp: (event.completedAt ?? event.createdAt).toISOString(),
      status: event.status,
      ...(event.status === 'error' ? { error: event.error ?? 'the event failed' } : {}),
    }
  }

  async getRun(p: Principal, runId: string): Promise<RunView> {
    const run = await this.findRun(p, runId)
    const events = await this.db.sql.query<RunEvent & { actor: UserRow | null; submittedBy: UserRow | null }>(sql`
      SELECT ${runEventColumns('e')}, ${userJson('a')} AS "actor", ${userJson('s')} AS "submittedBy"
      FROM "RunEvent" e LEFT JOIN "User" a ON a."id" = e."actorId" LEFT JOIN "User" s ON s."id" = e."submittedById"
      WHERE e."runId" = ${run.id}::uuid
      ORDER BY e."seq"`)
    return runView(run, run.org.slug, events)
  }

  /** Runs of the caller's org, newest first, `limit` at a time; `next_cursor` continues the list. */
  async listRuns(p: Principal, q: ListRunsQuery): Promise<{ runs: RunSummaryView[]; next_cursor: string | null }> {
    const limit = Math.min(Math.max(q.limit ?? DEFAULT_LIST_LIMIT, 1), MAX_LIST_LIMIT)
    const where: Prisma.RunWhereInput[] = [{ orgId: p.orgId }]
    if (q.flow) where.push(UUID.test(q.flow) ? { flowId: q.flow.toLowerCase() } : { flowSlug: q.flow.toLowerCase() })
    if (q.status) where.push({ status: q.status })
    if (q.requester) where.push(UUID.test(q.requester) ? { requesterId: q.requester.toLowerCase() } : { requester: { email: q.requester.trim().toLowerCase() } })
    if (p.role === 'guest' && p.userType === 'normal') where.push({ requesterId: p.userId })
    if (q.cursor) {
      const c = decodeCursor(q.cursor)
      where.push({ OR: [{ createdAt: { lt: c.createdAt } }, { createdAt: c.createdAt, id: { lt: c.id } }] })
    }
    const [org, rows] = await Promise.all([
      this.db.organization.findUniqueOrThrow({ where: { id: p.orgId }, select: { slug: true } }),
      this.db.run.findMany({
        where: { AND: where },
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        take: limit + 1,
        include: { requester: { select: USER_SELECT } },
      }),
    ])
    const page = rows.slice(0, limit)
    const last = page.at(-1)
    return { runs: page.map((r) => runSummaryView(r, org.slug)), next_cursor: rows.length > limit && last ? encodeCursor(last) : null }
  }

  /**
   * What a decision or a revoke checks before it writes, in one statement: only the columns they read, since every
   * run's approval reads it (the run's other columns, its requester and org are {@link findRun}'s, for `getRun`), and
   * its snapshot without the flow's and strategy's implementation sources, which can be large and no check reads.
   */
  private async findRunToDecide(p: Principal, runId: string): Promise<RunToDecide> {
    const [run] = UUID.test(runId)
      ? await this.db.sql.query<RunToDecide>(sql`
          SELECT "id", "status", "requesterId", "snapshot" #- '{flow,implementation}' #- '{strategy,implementation}' AS "snapshot", "permission" FROM "Run"
          WHERE "id" = ${runId.toLowerCase()}::uuid AND "orgId" = ${p.orgId}::uuid`)
      : []
    if (!run || !this.mayRead(p, run.requesterId)) throw new EngineError('NOT_FOUND', `no run with id ${runId}`)
    return run
  }

  /** The run with its requester and org slug, in one statement. */
  private async findRun(p: Principal, runId: string): Promise<Run & { requester: UserRow; org: { slug: string } }> {
    const [run] = UUID.test(runId)
      ? await this.db.sql.query<Run & { requester: UserRow; org: { slug: string } }>(sql`
          SELECT ${runColumns('r')}, ${userJson('u')} AS "requester", json_build_object('slug', o."slug") AS "org"
          FROM "Run" r JOIN "User" u ON u."id" = r."requesterId" JOIN "Organization" o ON o."id" = r."orgId"
          WHERE r."id" = ${runId.toLowerCase()}::uuid AND r."orgId" = ${p.orgId}::uuid`)
      : []
    if (!run || !this.mayRead(p, run.requesterId)) throw new EngineError('NOT_FOUND', `no run with id ${runId}`)
    return run
  }

  /** Members, admins and bots see every run of their org; guests only their own. */
  private mayRead(p: Principal, requesterId: string): boolean {
    return p.userType === 'bot' || p.role !== 'guest' || requesterId === p.userId
  }

  /** Locks the run and checks the step again on what is committed now (a concurrent step may have moved it). */
  private async lockForStep(tx: Sql, runId: string, step: 'deescalate'): Promise<Run> {
    const locked = await lockRun(tx, runId)
    const allowed = transition(locked.status, step)
    if (!allowed.ok) throw new EngineError(INVALID_RUN[step], allowed.reason)
    return locked
  }

  /** Enqueues an event's job (and any extra scheduling). If Redis fails, the run stands: the reconciler retries. */
  private async enqueue(step: EventStep, eventId: string, extra?: () => Promise<void>): Promise<void> {
    try {
      await Promise.all([this.queues.enqueueEvent(step, eventId), extra?.()])
    } catch (err) {
      this.logger.warn({ err, eventId, step }, 'could not enqueue; the reconciler will')
    }
  }
}

/** Attempts of {@link appendDecision} whose `seq` was taken by an event appended while it waited for the run. */
const DECISION_ATTEMPTS = 5

/**
 * Appends a decision's pending event to the run, checking the step again on the run as locked now (a concurrent step,
 * e.g. an expiry, may have moved it since it was read), and returns the event's id. One statement instead of a
 * transaction (BEGIN, lock, insert, COMMIT: four round trips): the CTE's `FOR UPDATE` holds the run until the
 * statement ends, so decisions on one run still happen one after the other, and the insert only happens from a
 * status the step may start from (`transition`'s table). Its snapshot, though, predates the wait for the lock: if
 * whoever held the run appended an event meanwhile, the `seq` computed here is taken (seqs have no gaps), the unique
 * (runId, seq) index refuses the insert, and the statement runs again with a fresh snapshot.
 */
async function appendDecision(db: Sql, runId: string, step: 'approve' | 'deny', event: { actorId: string; channel: RunSource; fields: Record<string, string> }): Promise<string> {
  // The statuses the step may start from, for the guard in SQL; the refusal's message is transition's.
  const from = RUN_STATUSES.filter((s) => transition(s, step).ok)
  for (let attempt = 1; ; attempt++) {
    const eventId = randomUUID()
    try {
      const [row] = await db.query<{ status: RunStatus; appended: string | null }>(sql`
        WITH locked AS (SELECT "id", "orgId", "status" FROM "Run" WHERE "id" = ${runId}::uuid FOR UPDATE),
             appended AS (${insertEventFrom(eventId, { id: sql`locked."id"`, orgId: sql`locked."orgId"` }, { name: step, actorId: event.actorId, channel: event.channel, fields: event.fields }, new Date(), {
               from: sql`FROM locked WHERE locked."status" = ANY(${from}::"RunStatus"[])`,
             })})
        SELECT locked."status", (SELECT "id" FROM appended) AS "appended" FROM locked`)
      if (!row) throw new Error(`run ${runId} not found`)
      if (row.appended !== null) return row.appended
      // Not appended: the locked run is in a status the step may not start from.
      const refused = transition(row.status, step)
      if (refused.ok) throw new Error(`run ${runId}: ${step} is allowed from ${row.status}, yet no event was appended`)
      throw new EngineError(INVALID_RUN[step], refused.reason)
    } catch (e) {
      if (attempt < DECISION_ATTEMPTS && isUniqueViolation(e, 'RunEvent_runId_seq_key')) continue
      throw e
    }
  }
}

/** A user as `UserRow` (json), or null when the left-joined `alias` found nobody. */
function userJson(alias: string): Prisma.Sql {
  const u = Prisma.raw(alias)
  return sql`CASE WHEN ${u}."id" IS NULL THEN NULL ELSE json_build_object('id', ${u}."id", 'type', ${u}."type", 'username', ${u}."username", 'email', ${u}."email", 'firstName', ${u}."firstName", 'lastName', ${u}."lastName") END`
}

/** The requester as the request's statement reads it; `deactivatedAt` is ISO text (json). */
type RequesterRow = UserRow & { readonly deactivatedAt: string | null }

/**
 * Which user a request is for, as a condition on `"User" u`: `user_email` or `user_id` (in the caller's org), else the
 * caller. Undefined when there is nobody to look up (both given, or an id that is no UUID): `checkRequester` says why.
 */
function requesterLookup(p: Principal, input: RequestInput): Prisma.Sql | undefined {
  if (input.user_email !== undefined && input.user_id !== undefined) return undefined
  if (input.user_email !== undefined) return sql`u."orgId" = ${p.orgId}::uuid AND u."email" = ${input.user_email.trim().toLowerCase()}`
  if (input.user_id !== undefined) return UUID.test(input.user_id) ? sql`u."orgId" = ${p.orgId}::uuid AND u."id" = ${input.user_id.toLowerCase()}::uuid` : undefined
  return sql`u."id" = ${p.userId}::uuid`
}

/** The requester found by {@link requesterLookup}, or the 400/403 naming the input. */
function checkRequester(p: Principal, input: RequestInput, user: RequesterRow | null): RequesterRow {
  if (input.user_email !== undefined && input.user_id !== undefined) {
    throw invalidRequest([{ field: 'user_email', message: 'give user_email or user_id, not both' }])
  }
  const field = input.user_email !== undefined ? 'user_email' : 'user_id'
  if (!user || user.deactivatedAt) {
    throw invalidRequest([{ field, message: user ? 'this user is deactivated' : 'no such user in this organization' }])
  }
  if (user.id !== p.userId && p.userType !== 'bot' && p.role !== 'admin') {
    throw new EngineError('FORBIDDEN', 'Only bots and admins can request access for another user.')
  }
  return user
}

export interface RequestContext {
  readonly orgSlug: string
  /** The flow with what `FLOW_FOR_REQUEST` includes; undefined when the org has no flow of that slug. */
  readonly flow: FlowForRequest | undefined
  readonly requester: RequesterRow | null
}

/**
 * Everything a request is checked against, in one statement: the org's slug, the flow as `FLOW_FOR_REQUEST`
 * includes it (environment, strategy with its integration and its targets in `position` order) and the requester
 * (`lookup`, see {@link requesterLookup}). Rows are `to_jsonb` of the whole row, so the flow has every column the
 * Prisma type has; json carries timestamps as text, turned back into Dates here.
 */
export async function loadRequestContext(db: Sql, p: Principal, flowSlug: string, lookup: Prisma.Sql | undefined): Promise<RequestContext> {
  const [row] = await db.query<{ orgSlug: string; flow: FlowForRequest | null; requester: RequesterRow | null }>(sql`
    SELECT o."slug" AS "orgSlug",
           (SELECT to_jsonb(f) || jsonb_build_object(
                     'environment', (SELECT to_jsonb(e) FROM "Environment" e WHERE e."id" = f."environmentId"),
                     'strategy', (SELECT to_jsonb(s) || jsonb_build_object(
                                           'integration', (SELECT to_jsonb(i) FROM "Integration" i WHERE i."id" = s."integrationId"),
                                           'targets', COALESCE((SELECT jsonb_agg(to_jsonb(st) || jsonb_build_object('target', to_jsonb(t)) ORDER BY st."position")
                                                                FROM "StrategyTarget" st JOIN "Target" t ON t."id" = st."targetId"
                                                                WHERE st."strategyId" = s."id"), '[]'::jsonb))
                                  FROM "Strategy" s WHERE s."id" = f."strategyId"))
            FROM "Flow" f WHERE f."orgId" = o."id" AND f."slug" = ${flowSlug}) AS "flow",
           ${lookup ? sql`(SELECT json_build_object('id', u."id", 'type', u."type", 'username', u."username", 'email', u."email", 'firstName', u."firstName", 'lastName', u."lastName", 'deactivatedAt', u."deactivatedAt") FROM "User" u WHERE ${lookup})` : sql`NULL::json`} AS "requester"
    FROM "Organization" o WHERE o."id" = ${p.orgId}::uuid`)
  if (!row) throw new Error(`organization ${p.orgId} not found`)
  return { orgSlug: row.orgSlug, flow: row.flow ? flowFromJson(row.flow) : undefined, requester: row.requester }
}

type Timestamped = { readonly createdAt: Date; readonly updatedAt: Date }
const dated = <T extends Timestamped>(row: T): T => ({ ...row, createdAt: new Date(row.createdAt), updatedAt: new Date(row.updatedAt) })

/** The flow as json gives it, with its rows' timestamps (text) as Dates, as Prisma returns them. */
function flowFromJson(flow: FlowForRequest): FlowForRequest {
  const s = flow.strategy
  return {
    ...dated(flow),
    environment: dated(flow.environment),
    strategy: s
      ? { ...dated(s), integration: s.integration ? dated(s.integration) : null, targets: s.targets.map((st) => ({ ...st, target: dated(st.target) })) }
      : null,
  }
}

function encodeCursor(run: { createdAt: Date; id: string }): string {
  return Buffer.from(JSON.stringify([run.createdAt.toISOString(), run.id]), 'utf8').toString('base64url')
}

function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [unknown, unknown]
    if (typeof createdAt === 'string' && typeof id === 'string' && UUID.test(id) && !Number.isNaN(Date.parse(createdAt))) {
      return { createdAt: new Date(createdAt), id }
    }
  } catch {
    // fall through
  }
  throw invalidRequest([{ field: 'cursor', message: 'is not a cursor returned by this API' }])
}

