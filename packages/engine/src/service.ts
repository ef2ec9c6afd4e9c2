/**
 * The run service the Events API calls: start a run, approve or deny it, revoke its access, and read runs and
 * events. Each write is one transaction that records a pending event, then a job is enqueued to process it (if
 * enqueueing fails, the reconciler adds the job later). The rules are `@opensym/domain`'s.
 */
import type { Db, Prisma, Run, Tx } from '@opensym/db'
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
  type Actor,
  type Principal,
  type RunSource,
  type RunStatus,
} from '@opensym/domain'
import { EngineError, invalidRequest, type EngineErrorKind } from './errors.js'
import { bindTargetSettings, FLOW_FOR_REQUEST, flowParams, readSnapshot, resolveTarget, snapshotOf, type TargetRow } from './flows.js'
import type { EngineQueues, EventStep } from './queues.js'
import { defaultPermissions, silentLogger, systemClock, type Clock, type EngineLogger, type PermissionResolver } from './seams.js'
import { appendEvent, lockRun, runColumns } from './store.js'
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

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const INVALID_RUN: Record<'approve' | 'deny' | 'deescalate', EngineErrorKind> = {
  approve: 'APPROVE_INVALID_RUN',
  deny: 'DENY_INVALID_RUN',
  deescalate: 'DEESCALATE_INVALID_RUN',
}

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
    const org = await this.db.organization.findUniqueOrThrow({ where: { id: p.orgId }, select: { slug: true } })
    if (ref.value.org !== null && ref.value.org !== org.slug) {
      throw invalidRequest([{ field: 'flow_srn', message: `names org "${ref.value.org}", but this token belongs to org "${org.slug}"` }])
    }
    const flow = await this.db.flow.findUnique({ where: { orgId_slug: { orgId: p.orgId, slug: ref.value.slug } }, include: FLOW_FOR_REQUEST })
    if (!flow) throw invalidRequest([{ field: 'flow_srn', message: `no flow "${ref.value.slug}" in this organization` }])
    if (ref.value.version !== 'latest' && ref.value.version !== flow.version) {
      throw invalidRequest([{ field: 'flow_srn', message: `flow "${flow.slug}" is at version ${flow.version}; use "latest" or ${flow.version}` }])
    }
    const params = flowParams(flow.params)
    const refusal = sourceRefusal(params.allowed_sources, via, flow.slug)
    if (refusal) throw new EngineError('SOURCE_NOT_ALLOWED', refusal)

    const requester = await this.resolveRequester(p, input)
    const inputs = validateFlowInputs(
      { promptFields: params.prompt_fields, hasStrategy: flow.strategy !== null, scheduleDeescalation: params.schedule_deescalation },
      input.flow_inputs,
    )
    if (!inputs.ok) throw invalidRequest(inputs.errors.map((e) => ({ field: `flow_inputs.${e.field}`, message: e.message })))
    const { fields, durationSeconds, target: targetRef } = inputs.value

    let target: TargetRow | undefined
    let targetSettings: Record<string, string> = {}
    if (targetRef) {
      const resolved = resolveTarget(flow, org.slug, targetRef)
      if ('error' in resolved) throw invalidRequest([{ field: `flow_inputs.${resolved.error.field}`, message: resolved.error.message }])
      target = resolved.target
      const bound = bindTargetSettings(target, fields)
      if ('errors' in bound) throw invalidRequest(bound.errors.map((e) => ({ field: `flow_inputs.${e.field}`, message: e.message })))
      targetSettings = bound.settings
    }

    const snapshot = snapshotOf(org.slug, flow, params, target, targetSettings)
    const now = this.clock()
    const expiresAt = requestExpiresAt(now, this.requestExpirySeconds)
    const { runId, eventId } = await this.db.$transaction(async (tx) => {
      const run = await tx.run.create({
        data: {
          orgId: p.orgId,
          flowId: flow.id,
          flowSlug: flow.slug,
          flowVersion: flow.version,
          environmentId: flow.environmentId,
          requesterId: requester.id,
          targetId: target?.id ?? null,
          durationSeconds: durationSeconds ?? null,
          fields: { ...fields, ...(target ? { target_id: target.id } : {}) },
          context: (input.context ?? {}) as Prisma.InputJsonValue,
          snapshot: snapshot as unknown as Prisma.InputJsonValue,
          status: 'requested',
          requestExpiresAt: expiresAt,
          createdAt: now,
        },
      })
      const event = await appendEvent(tx, run, {
        name: 'request',
        actorId: requester.id,
        submittedById: requester.id === p.userId ? null : p.userId,
        channel: via,
      })
      return { runId: run.id, eventId: event.id }
    })
    await this.enqueue('request', eventId, () => this.queues.scheduleExpiry(runId, expiresAt))
    return { run_id: runId, event_id: eventId }
  }

  /** Approves or denies a requested run, as the caller, from the API or Slack (`via`, the event's channel). */
  async decide(p: Principal, decision: 'approve' | 'deny', input: DecisionInput, via: RunSource = 'api'): Promise<{ run_id: string; event_id: string }> {
    const run = await this.findRun(p, input.run_id)
    const snapshot = readSnapshot(run.snapshot)
    const params = flowParams(snapshot.flow.params)
    const allowed = transition(run.status, decision)
    if (!allowed.ok) throw new EngineError(INVALID_RUN[decision], allowed.reason)
    const permission = await this.permissions({ id: run.id, requesterId: run.requesterId, snapshot, permission: run.permission })
    const refusal = decisionRefusal(actorOf(p), run.requesterId, permission, { allowGuestInteraction: params.allow_guest_interaction })
    if (refusal) throw new EngineError('FORBIDDEN', refusal)
    const message = input.decision_message?.trim()
    const event = await this.db.$transaction(async (tx) => {
      const locked = await this.lockForStep(tx, run.id, decision)
      return appendEvent(tx, locked, { name: decision, actorId: p.userId, channel: via, fields: message ? { decision_message: message } : {} })
    })
    await this.enqueue(decision, event.id)
    return { run_id: run.id, event_id: event.id }
  }

  /**
   * De-escalates (revokes) an escalated run now, as the caller. A de-escalation already in progress is returned
   * instead of starting a second one.
   */
  async revoke(p: Principal, runId: string, via: RunSource = 'api'): Promise<{ event_id: string; request_body: { run_id: string } }> {
    const run = await this.findRun(p, runId)
    const snapshot = readSnapshot(run.snapshot)
    const params = flowParams(snapshot.flow.params)
    const allowed = transition(run.status, 'deescalate')
    if (!allowed.ok) throw new EngineError('DEESCALATE_INVALID_RUN', allowed.reason)
    // An escalated run was routed; one from before permissions were stored had Sym's default.
    const permission = await this.permissions({ id: run.id, requesterId: run.requesterId, snapshot, permission: run.permission ?? DEFAULT_REQUEST_PERMISSION })
    const refusal = revokeRefusal(actorOf(p), run.requesterId, permission, { allowRevoke: params.allow_revoke, allowGuestInteraction: params.allow_guest_interaction })
    if (refusal) throw new EngineError('FORBIDDEN', refusal)
    const event = await this.db.$transaction(async (tx) => {
      const locked = await this.lockForStep(tx, run.id, 'deescalate')
      const inProgress = await tx.runEvent.findFirst({ where: { runId: run.id, name: 'deescalate', status: 'pending' } })
      return inProgress ?? appendEvent(tx, locked, { name: 'deescalate', actorId: p.userId, channel: via, fields: { deescalate_type: 'manual' } })
    })
    await this.enqueue('deescalate', event.id)
    return { event_id: event.id, request_body: { run_id: run.id } }
  }

  /** `GET /events/{id}`, in Sym's shape: `error` only on failed events. */
  async getEvent(p: Principal, eventId: string): Promise<EventStatusView> {
    const event = UUID.test(eventId)
      ? await this.db.runEvent.findFirst({ where: { id: eventId, orgId: p.orgId }, include: { run: { select: { requesterId: true } } } })
      : null
    if (!event || !this.mayRead(p, event.run.requesterId)) throw new EngineError('NOT_FOUND', `no event with id ${eventId}`)
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
    const events = await this.db.runEvent.findMany({
      where: { runId: run.id },
      orderBy: { seq: 'asc' },
      include: { actor: { select: USER_SELECT }, submittedBy: { select: USER_SELECT } },
    })
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

  /** The run with its requester and org slug, in one round trip. */
  private async findRun(p: Principal, runId: string): Promise<Run & { requester: UserRow; org: { slug: string } }> {
    const [run] = UUID.test(runId)
      ? await this.db.$queryRaw<Array<Run & { requester: UserRow; org: { slug: string } }>>`
          SELECT ${runColumns('r')}, json_build_object('id', u."id", 'type', u."type", 'username', u."username", 'email', u."email", 'firstName', u."firstName", 'lastName', u."lastName") AS "requester",
                 json_build_object('slug', o."slug") AS "org"
          FROM "Run" r JOIN "User" u ON u."id" = r."requesterId" JOIN "Organization" o ON o."id" = r."orgId"
          WHERE r."id" = ${runId.toLowerCase()}::uuid AND r."orgId" = ${p.orgId}::uuid`
      : []
    if (!run || !this.mayRead(p, run.requesterId)) throw new EngineError('NOT_FOUND', `no run with id ${runId}`)
    return run
  }

  /** Members, admins and bots see every run of their org; guests only their own. */
  private mayRead(p: Principal, requesterId: string): boolean {
    return p.userType === 'bot' || p.role !== 'guest' || requesterId === p.userId
  }

  /** Locks the run and checks the step again on what is committed now (a concurrent step may have moved it). */
  private async lockForStep(tx: Tx, runId: string, step: 'approve' | 'deny' | 'deescalate'): Promise<Run> {
    const locked = await lockRun(tx, runId)
    const allowed = transition(locked.status, step)
    if (!allowed.ok) throw new EngineError(INVALID_RUN[step], allowed.reason)
    return locked
  }

  private async resolveRequester(p: Principal, input: RequestInput): Promise<UserRow> {
    if (input.user_email !== undefined && input.user_id !== undefined) {
      throw invalidRequest([{ field: 'user_email', message: 'give user_email or user_id, not both' }])
    }
    let user: (UserRow & { deactivatedAt: Date | null }) | null
    let field: 'user_email' | 'user_id' | undefined
    if (input.user_email !== undefined) {
      field = 'user_email'
      user = await this.db.user.findFirst({ where: { orgId: p.orgId, email: input.user_email.trim().toLowerCase() }, select: { ...USER_SELECT, deactivatedAt: true } })
    } else if (input.user_id !== undefined) {
      field = 'user_id'
      user = UUID.test(input.user_id)
        ? await this.db.user.findFirst({ where: { orgId: p.orgId, id: input.user_id.toLowerCase() }, select: { ...USER_SELECT, deactivatedAt: true } })
        : null
    } else {
      user = await this.db.user.findUnique({ where: { id: p.userId }, select: { ...USER_SELECT, deactivatedAt: true } })
    }
    if (!user || user.deactivatedAt) {
      throw invalidRequest([{ field: field ?? 'user_id', message: user ? 'this user is deactivated' : 'no such user in this organization' }])
    }
    if (user.id !== p.userId && p.userType !== 'bot' && p.role !== 'admin') {
      throw new EngineError('FORBIDDEN', 'Only bots and admins can request access for another user.')
    }
    return user
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

