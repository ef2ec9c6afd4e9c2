/**
 * The processors: what happens when a job says "look at this event/run now". Each re-reads PostgreSQL and does
 * nothing when the work is already done, so duplicated, retried or re-added jobs are harmless. Every change of a
 * run is one transaction: lock the run, compare-and-set its status on its version, complete the event, audit.
 *
 * Escalate and de-escalate follow the grant ledger (README "The grant ledger"): lock the grant row, add or end the
 * run's lease, call the strategy only when the grant goes from no lease to one or from one to none — inside that
 * transaction, so calls for one grant never overlap and a crash before commit leaves nothing recorded (the retry
 * calls the idempotent strategy again and records it once) — and read the target back where it can tell.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Db, DbOrTx, Prisma, Run, RunEvent, Tx } from '@opensym/db'
import {
  accessExpiresAt,
  decisionRefusal,
  DEFAULT_REQUEST_PERMISSION,
  failureStatus,
  hookFailureStatus,
  hookNames,
  interpretHookReply,
  isFinished,
  nextStep,
  parseRequestPermission,
  transition,
  type HookDecision,
  type HookStep,
  type Step,
} from '@opensym/domain'
import { buildLogEntry, loadEntryInput } from './audit.js'
import { flowParams, readSnapshot } from './flows.js'
import { grantKey, lockGrant, lockGrantByKey } from './grants.js'
import { resolveIdentity, type IdentityReducer } from './identities.js'
import { createSecretResolver } from './secrets.js'
import { storeChain } from './notifications.js'
import type { EngineQueues, EventStep } from './queues.js'
import { DEFAULT_PERMISSION_DATA, defaultNotifications, type EventCall, type FlowRuntime, type Routing } from './runtime.js'
import { logReporter, silentLogger, systemClock, type Clock, type EngineLogger, type ErrorReporter } from './seams.js'
import type { RunSnapshot } from './snapshot.js'
import { appendEvent, casRun, completeEvent, lockRun, runColumns, runEventColumns } from './store.js'
import { RetryableStrategyError, StrategyError, type SecretResolver, type Strategy, type StrategyCall, type StrategyOutput, type StrategyRegistry, type Subject } from './strategy.js'

/** Where a job stands in its retries. */
export interface StepContext {
  /** 1 for the first attempt. */
  readonly attempt: number
  readonly maxAttempts: number
}

/** The job came too early (its run is not due, or an earlier event of the run is still pending): run it later. */
export class NotYet extends Error {
  override readonly name = 'NotYet'
  constructor(readonly delayMs: number) {
    super(`not yet: retry in ${delayMs} ms`)
  }
}

/** A strategy refused or failed in a way retrying will not fix (any error but RetryableStrategyError). */
export class StrategyFailure extends Error {
  override readonly name = 'StrategyFailure'
  constructor(
    message: string,
    readonly output?: StrategyOutput,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }
}

/** The target read back does not show the change yet: retried; still unverified after every attempt, it fails. */
export class UnverifiedChange extends RetryableStrategyError {
  override readonly name = 'UnverifiedChange'
  constructor(
    message: string,
    readonly output: StrategyOutput,
  ) {
    super(message)
  }
}

export type StepResult = 'done' | 'noop' | 'refused' | 'failed'

export interface StepRunnerDeps {
  readonly db: Db
  readonly queues: EngineQueues
  readonly strategies: StrategyRegistry
  /**
   * Reads an org's `sym_secret` values for strategies, through `db` (the step's transaction when the call happens
   * inside one). Default: `createSecretResolver` (env sources).
   */
  readonly secrets?: SecretsFor
  /** The flow's `getIdentity` reducer (identities.ts). Default: the flow runtime's, when there is one. */
  readonly getIdentity?: IdentityReducer
  /**
   * Runs flow implementations (hooks, routing reducers). Default: none — every flow behaves with the defaults
   * (admins decide; the request goes to the flow var `request_channel` or #sym-requests).
   */
  readonly flows?: FlowRuntime
  readonly reporter?: ErrorReporter
  readonly logger?: EngineLogger
  readonly clock?: Clock
  /** Budget of each strategy phase (identity; call + read-back). Default 30 s. */
  readonly strategyTimeoutMs?: number
  /** How long a transaction may wait for a connection. Default 10 s. */
  readonly maxWaitMs?: number
}

/** The secret resolver of an org, reading through `db`. */
export type SecretsFor = (orgId: string, db: DbOrTx) => SecretResolver
const defaultSecrets: SecretsFor = (orgId, db) => createSecretResolver({ db, orgId })
/**
 * A step waiting for an earlier event of its run (an approval arriving while its request is still being processed)
 * looks again after each of these pauses, in process, before it gives its slot up and comes back later.
 */
const ORDER_WAITS_MS = [5, 10, 20, 40] as const
/** Then how soon the job comes back. */
const ORDER_RETRY_MS = 100

/** A run as the escalate and de-escalate steps read it first: with its requester's names and its lease, if any. */
type RunToChange = Run & { requesterEmail: string | null; requesterUsername: string; leaseId: string | null; leaseGrantId: string | null }

const message = (e: unknown) => (e instanceof Error ? e.message : String(e))

export class StepRunner {
  private readonly db: Db
  private readonly queues: EngineQueues
  private readonly strategies: StrategyRegistry
  private readonly secrets: SecretsFor
  private readonly getIdentity: IdentityReducer | undefined
  private readonly flows: FlowRuntime | undefined
  private readonly reporter: ErrorReporter
  private readonly logger: EngineLogger
  private readonly clock: Clock
  private readonly strategyTimeoutMs: number
  private readonly txOptions: { timeout: number; maxWait: number }

  constructor(deps: StepRunnerDeps) {
    this.db = deps.db
    this.queues = deps.queues
    this.strategies = deps.strategies
    this.secrets = deps.secrets ?? defaultSecrets
    this.flows = deps.flows
    this.getIdentity = deps.getIdentity ?? deps.flows?.getIdentity
    this.logger = deps.logger ?? silentLogger
    this.reporter = deps.reporter ?? logReporter(this.logger)
    this.clock = deps.clock ?? systemClock
    this.strategyTimeoutMs = deps.strategyTimeoutMs ?? 30_000
    this.txOptions = { timeout: this.strategyTimeoutMs + 15_000, maxWait: deps.maxWaitMs ?? 10_000 }
  }

  /** Processes the pending event `eventId`, whatever its step. */
  async processEvent(eventId: string, ctx: StepContext): Promise<StepResult> {
    // The event and how many earlier events of its run are still pending, in one round trip.
    const [row] = await this.db.$queryRaw<Array<RunEvent & { earlier: number }>>`
      SELECT ${runEventColumns('e')}, (SELECT count(*)::int FROM "RunEvent" p WHERE p."runId" = e."runId" AND p."seq" < e."seq" AND p."status" = 'pending') AS "earlier"
      FROM "RunEvent" e WHERE e."id" = ${eventId}::uuid`
    if (!row || row.status !== 'pending') return 'noop'
    const { earlier, ...event } = row
    if (earlier > 0) await this.waitForEarlier(event, true)
    switch (event.name as Step) {
      case 'request':
        return this.request(event, ctx)
      case 'approve':
      case 'deny':
        return this.decision(event, event.name as 'approve' | 'deny', ctx)
      case 'escalate':
        return this.escalate(event, ctx)
      case 'deescalate':
        return this.deescalate(event, ctx)
      default:
        throw new Error(`event ${event.id} has step "${event.name}", which no job processes`)
    }
  }

  /** The run's de-escalation is due (`expiresAt`): records the scheduled de-escalate event, then processes it. */
  async scheduledDeescalation(runId: string, ctx: StepContext): Promise<StepResult> {
    const [run] = await this.db.$queryRaw<Array<Pick<Run, 'status' | 'expiresAt'>>>`SELECT "status"::text AS "status", "expiresAt" FROM "Run" WHERE "id" = ${runId}::uuid`
    if (!run || run.status !== 'escalated' || !run.expiresAt) return 'noop'
    const due = run.expiresAt.getTime() - this.clock().getTime()
    if (due > 0) throw new NotYet(due)
    const event = await this.db.$transaction(async (tx) => {
      const locked = await lockRun(tx, runId)
      if (locked.status !== 'escalated') return null
      // A de-escalation in progress (a revoke, or this job's earlier attempt) is the one to finish; otherwise the
      // scheduled one is the approver's.
      const [found] = await tx.$queryRaw<Array<{ inProgressId: string | null; approverId: string | null }>>`
        SELECT (SELECT "id" FROM "RunEvent" WHERE "runId" = ${runId}::uuid AND "name" = 'deescalate' AND "status" = 'pending' ORDER BY "seq" LIMIT 1) AS "inProgressId",
               (SELECT "actorId" FROM "RunEvent" WHERE "runId" = ${runId}::uuid AND "name" = 'approve' AND "status" = 'success' LIMIT 1) AS "approverId"`
      if (found?.inProgressId) return tx.runEvent.findUniqueOrThrow({ where: { id: found.inProgressId } })
      return appendEvent(tx, locked, { name: 'deescalate', actorId: found?.approverId ?? null, channel: 'internal', fields: { deescalate_type: 'scheduled' } })
    }, this.txOptions)
    if (!event) return 'noop'
    await this.waitForEarlier(event)
    // This job is the scheduled de-escalation: there is no other one to cancel afterwards.
    return this.deescalate(event, ctx, { scheduled: true })
  }

  /** The request has waited its time for a decision: it expires. */
  async expireRequest(runId: string, _ctx: StepContext): Promise<StepResult> {
    const run = await this.db.run.findUnique({ where: { id: runId } })
    if (!run || run.status !== 'requested' || !run.requestExpiresAt) return 'noop'
    const due = run.requestExpiresAt.getTime() - this.clock().getTime()
    if (due > 0) throw new NotYet(due)
    return this.db.$transaction(async (tx) => {
      const locked = await lockRun(tx, runId)
      const allowed = transition(locked.status, 'expire')
      if (!allowed.ok) return 'noop'
      const now = this.clock()
      const event = await appendEvent(tx, locked, { name: 'expire', actorId: null, channel: 'internal' })
      await casRun(tx, locked, allowed.to, { endedAt: now })
      await completeEvent(tx, event.id, { status: 'success', completedAt: now, attempts: 1 })
      return event.id
    }, this.txOptions).then(async (eventId) => {
      if (eventId === 'noop') return 'noop'
      // The requester is told through the expire event.
      await this.announce(eventId)
      return 'done'
    })
  }

  /**
   * Routes a request: `onRequest` (which may approve, deny or ignore it), then who may decide it (`getPermissions`,
   * stored on the run) and where it goes (`getRequestNotifications`, stored as the run's chain, whose first link is
   * posted next). A hook's approve or deny replaces the routing: the request is done and the decision follows.
   */
  private async request(event: RunEvent, ctx: StepContext): Promise<StepResult> {
    const call = await this.eventCall(event)
    const decided = await this.onHook(call, 'request', event)
    if (decided.kind === 'failed') return this.hookFailed(event, 'request', decided.message, ctx, call)
    if (decided.kind === 'ignore') return this.ignored(event, 'request', decided.message, ctx)
    const routed = call ? await call.route() : { ok: true as const, routing: undefined }
    if (!routed.ok) return this.hookFailed(event, 'request', routed.message, ctx, call)
    const routing = routed.routing ?? (await this.defaultRouting(event.runId))
    const warning = call?.warning
    if (warning) this.logger.warn({ runId: event.runId, flow: call.snapshot.flow.slug }, warning)

    const outcome = await this.db.$transaction(async (tx) => {
      const run = await lockRun(tx, event.runId)
      if (!(await stillPending(tx, event.id))) return undefined
      await tx.run.update({ where: { id: run.id }, data: { permission: routing.permission as unknown as Prisma.InputJsonValue } })
      const now = this.clock()
      if (decided.kind === 'replace') {
        // Auto-approved or -denied: nobody needs to be asked.
        await completeEvent(tx, event.id, { status: 'success', completedAt: now, attempts: ctx.attempt, warning: warning ?? null })
        const next = await appendEvent(tx, run, { name: decided.step, actorId: event.actorId, channel: 'sdk', fields: decided.fields })
        return { next: { step: decided.step as EventStep, id: next.id }, chainExpires: false }
      }
      const chainExpires = await storeChain(tx, run, routing.notifications)
      await completeEvent(tx, event.id, { status: 'success', completedAt: now, attempts: ctx.attempt, warning: warning ?? null, addFields: decided.fields })
      return { next: undefined, chainExpires }
    }, this.txOptions)
    if (!outcome) return 'noop'
    this.logger.debug({ runId: event.runId, routing: routing.source }, 'request routed')
    await Promise.all([
      this.announce(event.id),
      outcome.next ? this.queues.enqueueEvent(outcome.next.step, outcome.next.id) : this.bestEffort('post the request', () => this.queues.enqueueNotifyRequest(event.runId, 0)),
      outcome.chainExpires ? this.bestEffort('cancel the default expiry', () => this.queues.cancelExpiry(event.runId)) : undefined,
    ])
    await this.afterHook(call, 'request', event)
    return 'done'
  }

  private async decision(event: RunEvent, step: 'approve' | 'deny', ctx: StepContext): Promise<StepResult> {
    // The worker is the authority on who may decide: the API checked before the request was routed, maybe.
    if (event.channel !== 'sdk') {
      const refusal = await this.decisionRefusal(event)
      if (refusal) return this.refuse(event, refusal, ctx)
    }
    const call = await this.eventCall(event)
    const decided = await this.onHook(call, step, event)
    if (decided.kind === 'failed') return this.hookFailed(event, step, decided.message, ctx, call)
    if (decided.kind === 'ignore') return this.ignored(event, step, decided.message, ctx)
    if (decided.kind === 'replace') return this.replaced(event, step, decided, ctx)
    const outcome = await this.db.$transaction(async (tx) => {
      const run = await lockRun(tx, event.runId)
      if (!(await stillPending(tx, event.id))) return { result: 'noop' as const }
      const now = this.clock()
      const allowed = transition(run.status, step)
      if (!allowed.ok) {
        await completeEvent(tx, event.id, { status: 'error', error: allowed.reason, completedAt: now, attempts: ctx.attempt })
        return { result: 'refused' as const }
      }
      const hasStrategy = readSnapshot(run.snapshot).strategy !== null
      await casRun(tx, run, allowed.to, { decidedAt: now, ...(isFinished(allowed.to, hasStrategy) ? { endedAt: now } : {}) })
      await completeEvent(tx, event.id, { status: 'success', completedAt: now, attempts: ctx.attempt, addFields: decided.fields })
      const next = nextStep(step, hasStrategy)
      // Escalate is the approver's too (Sym: its actor is the approve actor).
      const nextEvent = next ? await appendEvent(tx, run, { name: next, actorId: event.actorId, channel: event.channel }) : undefined
      return { result: 'done' as const, next: nextEvent && { step: next as EventStep, id: nextEvent.id } }
    }, this.txOptions)
    if (outcome.result !== 'noop') await this.announce(event.id)
    if (outcome.result === 'done') {
      const next = outcome.next
      await Promise.all([
        this.bestEffort('cancel the request expiry', () => this.queues.cancelExpiry(event.runId)),
        next ? this.queues.enqueueEvent(next.step, next.id) : undefined,
      ])
      await this.afterHook(call, step, event)
    }
    return outcome.result
  }

  /** Why the event's actor may not make this decision, as the run's stored permission says (domain rules). */
  private async decisionRefusal(event: RunEvent): Promise<string | undefined> {
    const [row] = await this.db.$queryRaw<Array<{ requesterId: string; permission: unknown; snapshot: unknown; userId: string | null; userType: 'normal' | 'bot' | null; role: 'admin' | 'member' | 'guest' | null }>>`
      SELECT r."requesterId", r."permission", r."snapshot", u."id" AS "userId", u."type"::text AS "userType", u."role"::text AS "role"
      FROM "Run" r LEFT JOIN "User" u ON u."id" = ${event.actorId}::uuid WHERE r."id" = ${event.runId}::uuid`
    if (!row) return undefined
    if (!row.userId || !row.userType || !row.role) return 'The user who made this decision no longer exists.'
    const params = flowParams(readSnapshot(row.snapshot).flow.params)
    const permission = parseRequestPermission(row.permission) ?? DEFAULT_REQUEST_PERMISSION
    return decisionRefusal({ userId: row.userId, userType: row.userType, role: row.role }, row.requesterId, permission, { allowGuestInteraction: params.allow_guest_interaction })
  }

  /** Who decides and where a request goes when no flow code says: Sym's defaults (runtime.ts). */
  private async defaultRouting(runId: string): Promise<Routing> {
    const run = await this.db.run.findUniqueOrThrow({ where: { id: runId }, select: { snapshot: true } })
    return { permission: DEFAULT_PERMISSION_DATA, notifications: defaultNotifications(readSnapshot(run.snapshot).flow.vars), source: 'default' }
  }

  // -------------------------------------------------------------------------------------------------------------
  // Hooks

  /** The flow's calls for this event, when the engine runs flow code. */
  private async eventCall(event: RunEvent): Promise<EventCall | undefined> {
    return this.flows ? this.flows.forEvent(event.id) : undefined
  }

  /** Calls the step's `on…` hook and says what it means (domain `interpretHookReply`); without flow code, proceed. */
  private async onHook(call: EventCall | undefined, step: HookStep, event: RunEvent, options: { scheduled?: boolean } = {}): Promise<Exclude<HookDecision, { kind: 'refuse' }> | { kind: 'failed'; message: string }> {
    if (!call) return { kind: 'proceed', fields: {} }
    const out = await call.hook(hookNames(step).on as 'onRequest')
    if (!out.ok) return { kind: 'failed', message: out.message }
    const decided = interpretHookReply(step, out.reply, options)
    if (decided.kind === 'refuse') return { kind: 'failed', message: decided.reason }
    if (out.defined) this.logger.debug({ eventId: event.id, hook: hookNames(step).on, decided: decided.kind }, 'hook decided')
    return decided
  }

  /**
   * Calls the step's `after…` hook once the step committed (side effects; its value is ignored, §3.3). A failure
   * cannot undo the step: it is noted on the event and reported. Not retried with the step: at most once.
   */
  private async afterHook(call: EventCall | undefined, step: HookStep, event: RunEvent): Promise<void> {
    if (!call?.flow?.has(hookNames(step).after as 'afterRequest')) return
    try {
      // Read again: the hook sees what the step recorded (getStepOutput after escalate).
      const fresh = await this.eventCall(event)
      const out = await fresh!.hook(hookNames(step).after as 'afterRequest')
      if (out.ok) return
      await this.db.$executeRaw`UPDATE "RunEvent" SET "warning" = ${out.message} WHERE "id" = ${event.id}::uuid`
      await this.report(event, step, `The flow's ${hookNames(step).after} hook failed (the ${step} itself is done): ${out.message}`, new Error(out.message))
    } catch (err) {
      this.logger.error({ err, eventId: event.id }, `${hookNames(step).after} could not run`)
    }
  }

  /**
   * A hook threw, timed out, ran out of memory or returned what it may not: the event records why, nothing is
   * granted, the run goes where domain `hookFailureStatus` says (a request ends errored), and it is reported.
   */
  private async hookFailed(event: RunEvent, step: HookStep, message: string, ctx: StepContext, call: EventCall | undefined): Promise<StepResult> {
    const detail = `The flow's implementation failed: ${message}`
    const done = await this.db.$transaction(async (tx) => {
      const run = await lockRun(tx, event.runId)
      if (!(await stillPending(tx, event.id))) return false
      const now = this.clock()
      const to = hookFailureStatus(run.status, step)
      if (to) await casRun(tx, run, to, { endedAt: now })
      await completeEvent(tx, event.id, { status: 'error', error: detail, completedAt: now, attempts: ctx.attempt })
      return true
    }, this.txOptions)
    if (!done) return 'noop'
    await this.announce(event.id)
    await this.report(event, step, `${step} of run ${event.runId} (flow ${call?.snapshot.flow.slug ?? '-'}) failed: ${detail}. Nothing was granted.`, new Error(message))
    return 'failed'
  }

  /** `ApprovalTemplate.ignore({message})`: the event is an error with the message; the run stays (a request ends). */
  private async ignored(event: RunEvent, step: HookStep, message: string, ctx: StepContext): Promise<StepResult> {
    const done = await this.db.$transaction(async (tx) => {
      const run = await lockRun(tx, event.runId)
      if (!(await stillPending(tx, event.id))) return false
      const now = this.clock()
      const to = hookFailureStatus(run.status, step)
      if (to) await casRun(tx, run, to, { endedAt: now })
      await completeEvent(tx, event.id, { status: 'error', error: message, completedAt: now, attempts: ctx.attempt })
      return true
    }, this.txOptions)
    if (!done) return 'noop'
    await this.announce(event.id)
    return 'refused'
  }

  /** The hook returned another transition: this event does not take effect; that one (channel `sdk`) follows. */
  private async replaced(event: RunEvent, step: HookStep, decided: Extract<HookDecision, { kind: 'replace' }>, ctx: StepContext): Promise<StepResult> {
    const next = await this.db.$transaction(async (tx) => {
      const run = await lockRun(tx, event.runId)
      if (!(await stillPending(tx, event.id))) return undefined
      const why = `${hookNames(step).on} replaced this ${step} with ${decided.step}`
      await completeEvent(tx, event.id, { status: 'error', error: why, completedAt: this.clock(), attempts: ctx.attempt })
      return appendEvent(tx, run, { name: decided.step, actorId: event.actorId, channel: 'sdk', fields: decided.fields })
    }, this.txOptions)
    if (!next) return 'noop'
    await Promise.all([this.announce(event.id), this.queues.enqueueEvent(decided.step, next.id)])
    return 'done'
  }

  /** The RunNotifier hears about a completed event (best effort: the reconciler re-drives `notifiedAt IS NULL`). */
  private async announce(eventId: string): Promise<void> {
    await this.bestEffort('announce the event', () => this.queues.enqueueNotifyEvent(eventId))
  }

  private async report(event: RunEvent, step: string, messageText: string, cause: unknown): Promise<void> {
    try {
      const run = await this.db.run.findUnique({ where: { id: event.runId }, select: { orgId: true, environmentId: true, snapshot: true } })
      await this.reporter({
        orgId: event.orgId,
        runId: event.runId,
        eventId: event.id,
        step,
        environmentId: run?.environmentId ?? (run ? readSnapshot(run.snapshot).flow.environmentId : null),
        message: messageText,
        cause,
      })
    } catch (err) {
      this.logger.error({ err, eventId: event.id }, 'the error reporter failed')
    }
  }

  private async escalate(event: RunEvent, ctx: StepContext): Promise<StepResult> {
    const run = await this.readRun(event.runId)
    const snapshot = readSnapshot(run.snapshot)
    const allowed = transition(run.status, 'escalate')
    if (!allowed.ok) return this.refuse(event, allowed.reason, ctx)
    // onEscalate runs before anything is granted (on every attempt of the step: it may be a policy check).
    const call = await this.eventCall(event)
    const decided = await this.onHook(call, 'escalate', event)
    if (decided.kind === 'failed') return this.hookFailed(event, 'escalate', decided.message, ctx, call)
    if (decided.kind === 'ignore') return this.ignored(event, 'escalate', decided.message, ctx)
    if (decided.kind === 'replace') return this.endBeforeGrant(event, decided.fields, ctx)
    try {
      const { strategy: config, target } = snapshot
      if (!config || !target) throw new StrategyFailure('this run has no strategy or target to escalate with')
      const strategy = this.strategyFor(config.type)
      const subject: Subject = { userId: run.requesterId, email: run.requesterEmail, username: run.requesterUsername }
      const base = { strategy: config, target, subject }
      // Stored → getIdentity reducer → discovery by email → an error naming the user and service (identities.ts).
      const identity = await this.callStrategy('identity', (signal) =>
        resolveIdentity({ db: this.db, getIdentity: this.getIdentity }, strategy, { ...base, secrets: this.secrets(run.orgId, this.db), signal, orgId: run.orgId, runId: run.id, snapshot }),
      )
      const key = grantKey(config, target, identity)
      const scheduleDeescalation = flowParams(snapshot.flow.params).schedule_deescalation

      const done = await this.db.$transaction(async (tx) => {
        const grant = await lockGrantByKey(tx, run.orgId, key, config.type, identity)
        const locked = await lockRun(tx, run.id)
        if (!(await stillPending(tx, event.id))) return undefined
        const now0 = this.clock()
        const again = transition(locked.status, 'escalate')
        if (!again.ok) {
          await completeEvent(tx, event.id, { status: 'error', error: again.reason, completedAt: now0, attempts: ctx.attempt })
          return undefined
        }
        let output: StrategyOutput
        let verified: boolean | null = null
        if (!grant.applied) {
          // First lease: grant the access, then read it back where the target can tell.
          const payload = await this.payload(tx, event.id)
          output = await this.callStrategy('escalate', async (signal) => {
            const call: StrategyCall = { ...base, identity, payload, secrets: this.secrets(run.orgId, tx), signal }
            const out = await strategy.escalate(call)
            if (out.errors.length) throw new StrategyFailure(`the strategy reported: ${out.errors.join('; ')}`, out)
            if (strategy.isGranted) {
              verified = await strategy.isGranted(call)
              if (!verified) throw new UnverifiedChange('the access does not show in the target after escalating', out)
            }
            return out
          })
          await tx.grant.update({ where: { id: grant.id }, data: { applied: true, appliedAt: this.clock(), removedAt: null } })
        } else {
          output = { body: { strategy_called: false, reason: 'the access is already granted: another run holds it' }, errors: [] }
        }
        const now = this.clock()
        const expiresAt = accessExpiresAt(now, locked.durationSeconds, scheduleDeescalation)
        await tx.grantLease.create({ data: { grantId: grant.id, runId: run.id, startedAt: now, expiresAt } })
        await casRun(tx, locked, again.to, { escalatedAt: now, expiresAt })
        await completeEvent(tx, event.id, { status: 'success', output, verified, completedAt: now, attempts: ctx.attempt, addFields: decided.fields })
        return { expiresAt }
      }, this.txOptions)
      if (!done) return 'noop'
      await Promise.all([done.expiresAt ? this.queues.scheduleDeescalation(run.id, done.expiresAt) : undefined, this.announce(event.id)])
      await this.afterHook(call, 'escalate', event)
      return 'done'
    } catch (e) {
      if (!this.isFinal(e, ctx)) {
        await this.noteRetry(event.id, e, ctx)
        throw e
      }
      return this.fail(event, 'escalate', e, ctx, snapshot, 'Nothing was recorded as granted; if the target applied part of it, remove it by hand.')
    }
  }

  private async deescalate(event: RunEvent, ctx: StepContext, opts: { scheduled?: boolean } = {}): Promise<StepResult> {
    const run = await this.readRun(event.runId)
    const snapshot = readSnapshot(run.snapshot)
    const allowed = transition(run.status, 'deescalate')
    if (!allowed.ok) return this.refuse(event, allowed.reason, ctx)
    // onDeescalate may block a person's de-escalation (ignore), never a scheduled one (access ends on time) nor one
    // the flow itself asked for (channel sdk); a failing hook then only leaves a warning (domain interpretHookReply).
    const scheduled = opts.scheduled === true || event.channel === 'internal' || event.channel === 'sdk'
    const call = await this.eventCall(event)
    const decided = await this.onHook(call, 'deescalate', event, { scheduled })
    let warning: string | undefined
    if (decided.kind === 'failed') {
      if (!scheduled) return this.hookFailed(event, 'deescalate', decided.message, ctx, call)
      warning = `The flow's onDeescalate hook failed; the scheduled de-escalation went ahead: ${decided.message}`
      await this.report(event, 'deescalate', warning, new Error(decided.message))
    } else if (decided.kind === 'ignore') {
      return this.ignored(event, 'deescalate', decided.message, ctx)
    }
    const addFields = decided.kind === 'proceed' ? decided.fields : {}
    const leaseId = run.leaseId
    try {
      const done = await this.db.$transaction(async (tx) => {
        const grant = leaseId && run.leaseGrantId ? await lockGrant(tx, run.leaseGrantId) : undefined
        const locked = await lockRun(tx, run.id)
        if (!(await stillPending(tx, event.id))) return false
        const now0 = this.clock()
        const again = transition(locked.status, 'deescalate')
        if (!again.ok) {
          await completeEvent(tx, event.id, { status: 'error', error: again.reason, completedAt: now0, attempts: ctx.attempt })
          return false
        }
        let output: StrategyOutput | null = null
        let verified: boolean | null = null
        // End the run's lease if it still holds one, and count the other active leases of the grant (the grant is
        // locked: leases only start and end under its lock, so the count is current).
        const [ended] =
          grant && leaseId
            ? await tx.$queryRaw<Array<{ others: number }>>`
                UPDATE "GrantLease" SET "endedAt" = ${now0}::timestamptz WHERE "id" = ${leaseId}::uuid AND "endedAt" IS NULL
                RETURNING (SELECT count(*)::int FROM "GrantLease" o WHERE o."grantId" = ${grant.id}::uuid AND o."endedAt" IS NULL AND o."id" <> ${leaseId}::uuid) AS "others"`
            : []
        if (grant && ended) {
          const others = ended.others
          if (others === 0 && grant.applied) {
            // Last lease: remove the access, then read back that it is gone.
            const { strategy: config, target } = snapshot
            if (!config || !target) throw new StrategyFailure('this run has no strategy or target to de-escalate with')
            const strategy = this.strategyFor(config.type)
            const payload = await this.payload(tx, event.id)
            const subject: Subject = { userId: run.requesterId, email: run.requesterEmail, username: run.requesterUsername }
            output = await this.callStrategy('deescalate', async (signal) => {
              const call: StrategyCall = { strategy: config, target, subject, identity: grant.identity, payload, secrets: this.secrets(run.orgId, tx), signal }
              const out = await strategy.deescalate(call)
              if (out.errors.length) throw new StrategyFailure(`the strategy reported: ${out.errors.join('; ')}`, out)
              if (strategy.isGranted) {
                verified = !(await strategy.isGranted(call))
                if (!verified) throw new UnverifiedChange('the access still shows in the target after de-escalating', out)
              }
              return out
            })
            await tx.grant.update({ where: { id: grant.id }, data: { applied: false, removedAt: this.clock() } })
          } else {
            const reason = others > 0 ? `the access stays: ${others} other run(s) still hold it` : 'the access was not in place'
            output = { body: { strategy_called: false, reason }, errors: [] }
          }
        }
        const now = this.clock()
        await casRun(tx, locked, again.to, { deescalatedAt: now, endedAt: now })
        await completeEvent(tx, event.id, { status: 'success', output, verified, completedAt: now, attempts: ctx.attempt, addFields, ...(warning ? { warning } : {}) })
        return true
      }, this.txOptions)
      if (!done) return 'noop'
      await Promise.all([
        opts.scheduled ? undefined : this.bestEffort('cancel the scheduled de-escalation', () => this.queues.cancelDeescalation(run.id)),
        this.announce(event.id),
      ])
      await this.afterHook(call, 'deescalate', event)
      return 'done'
    } catch (e) {
      if (!this.isFinal(e, ctx)) {
        await this.noteRetry(event.id, e, ctx)
        throw e
      }
      return this.fail(event, 'deescalate', e, ctx, snapshot, 'The access may still be in place: it stays recorded as escalated and the removal will be retried.')
    }
  }

  /** The step may not happen now (the run moved on): the event ends in error with the state machine's reason. */
  private async refuse(event: RunEvent, reason: string, ctx: StepContext): Promise<StepResult> {
    const done = await this.db.$transaction(async (tx) => {
      await lockRun(tx, event.runId)
      if (!(await stillPending(tx, event.id))) return false
      await completeEvent(tx, event.id, { status: 'error', error: reason, completedAt: this.clock(), attempts: ctx.attempt })
      return true
    }, this.txOptions)
    // A refused actor is told privately (RunNotifier.notifyEvent of an event in error).
    if (done) await this.announce(event.id)
    return 'refused'
  }

  /**
   * `onEscalate` returned `ApprovalTemplate.deescalate(…)`: nothing is granted. The escalate event records that the
   * strategy was not called, and a de-escalation (channel `sdk`, the hook's fields) ends the run right after, so the
   * run still moves forward only (approved → escalated → deescalated) and its trail says why.
   */
  private async endBeforeGrant(event: RunEvent, fields: Readonly<Record<string, unknown>>, ctx: StepContext): Promise<StepResult> {
    const next = await this.db.$transaction(async (tx) => {
      const run = await lockRun(tx, event.runId)
      if (!(await stillPending(tx, event.id))) return undefined
      const allowed = transition(run.status, 'escalate')
      const now = this.clock()
      if (!allowed.ok) {
        await completeEvent(tx, event.id, { status: 'error', error: allowed.reason, completedAt: now, attempts: ctx.attempt })
        return null
      }
      await casRun(tx, run, allowed.to, { escalatedAt: now, expiresAt: null })
      const output: StrategyOutput = { body: { strategy_called: false, reason: 'the flow\'s onEscalate hook ended the access before it was granted' }, errors: [] }
      await completeEvent(tx, event.id, { status: 'success', output, completedAt: now, attempts: ctx.attempt })
      return appendEvent(tx, run, { name: 'deescalate', actorId: event.actorId, channel: 'sdk', fields: { deescalate_type: 'hook', ...fields } })
    }, this.txOptions)
    if (next === undefined) return 'noop'
    await this.announce(event.id)
    if (next === null) return 'refused'
    await this.queues.enqueueEvent('deescalate', next.id)
    return 'done'
  }

  /** Records a step that failed for good on its event (and the run, for escalate), then reports it. */
  private async fail(event: RunEvent, step: 'escalate' | 'deescalate', e: unknown, ctx: StepContext, snapshot: RunSnapshot, advice: string): Promise<StepResult> {
    const output = e instanceof StrategyFailure || e instanceof UnverifiedChange ? e.output : undefined
    const verified = e instanceof UnverifiedChange ? false : undefined
    const detail = e instanceof StrategyFailure || e instanceof UnverifiedChange ? e.message : `${message(e)} (after ${ctx.attempt} attempts)`
    const recorded = await this.db.$transaction(async (tx) => {
      const run = await lockRun(tx, event.runId)
      if (!(await stillPending(tx, event.id))) return undefined
      const now = this.clock()
      const to = failureStatus(run.status, step)
      if (to) await casRun(tx, run, to, { endedAt: now })
      await completeEvent(tx, event.id, { status: 'error', error: detail, output: output ?? undefined, verified, completedAt: now, attempts: ctx.attempt })
      return run
    }, this.txOptions)
    if (!recorded) return 'noop'
    await this.announce(event.id)
    try {
      await this.reporter({
        orgId: recorded.orgId,
        runId: recorded.id,
        eventId: event.id,
        step,
        environmentId: recorded.environmentId ?? snapshot.flow.environmentId,
        message: `${step === 'escalate' ? 'Escalation' : 'De-escalation'} of run ${recorded.id} (flow ${snapshot.flow.slug}, target ${snapshot.target?.slug ?? '-'}) failed: ${detail}. ${advice}`,
        cause: e,
      })
    } catch (err) {
      this.logger.error({ err, eventId: event.id }, 'the error reporter failed')
    }
    return 'failed'
  }

  /** Runs a strategy phase with its time budget; anything but a RetryableStrategyError fails the step for good. */
  private async callStrategy<T>(what: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const signal = AbortSignal.timeout(this.strategyTimeoutMs)
    try {
      const result = await fn(signal)
      const warnings = (result as Partial<StrategyOutput> | undefined)?.warnings
      if (warnings?.length) this.logger.warn({ warnings }, `${what}: the strategy succeeded with warnings`)
      return result
    } catch (e) {
      if (e instanceof RetryableStrategyError || e instanceof StrategyFailure) throw e
      if (signal.aborted) throw new RetryableStrategyError(`${what} timed out after ${this.strategyTimeoutMs} ms`, undefined, { cause: e })
      if (e instanceof StrategyError) throw new StrategyFailure(e.message, e.output, { cause: e })
      throw new StrategyFailure(`${what} failed: ${message(e)}`, undefined, { cause: e })
    }
  }

  private strategyFor(type: string): Strategy {
    const strategy = this.strategies.get(type)
    if (!strategy) throw new StrategyFailure(`no strategy implementation for type "${type}" is installed`)
    return strategy
  }

  /** The §7.2 log entry of the event, as strategies receive it (state "processing"). */
  private async payload(tx: Tx, eventId: string): Promise<Record<string, unknown>> {
    return buildLogEntry(await loadEntryInput(tx, eventId)) as unknown as Record<string, unknown>
  }

  /** Whether this failure ends the step: a strategy's refusal at once, anything else on the last attempt. */
  private isFinal(e: unknown, ctx: StepContext): boolean {
    if (e instanceof StrategyFailure) return true
    if (ctx.attempt < ctx.maxAttempts) {
      this.logger.warn({ err: e, attempt: ctx.attempt, maxAttempts: ctx.maxAttempts }, 'step failed; retrying')
      return false
    }
    return true
  }

  /**
   * While a step is being retried its event shows why (`error`, `attempts`; the error is cleared when the step
   * succeeds). Only on the failure path.
   */
  private async noteRetry(eventId: string, e: unknown, ctx: StepContext): Promise<void> {
    const why = `attempt ${ctx.attempt} of ${ctx.maxAttempts} failed, retrying: ${message(e)}`
    await this.bestEffort('note the retry on its event', () => this.db.$executeRaw`UPDATE "RunEvent" SET "error" = ${why}, "attempts" = ${ctx.attempt} WHERE "id" = ${eventId}::uuid AND "status" = 'pending'`)
  }

  /** The run with its requester's names and its lease (one round trip), for escalate and de-escalate. */
  private async readRun(runId: string): Promise<RunToChange> {
    const [run] = await this.db.$queryRaw<RunToChange[]>`
      SELECT ${runColumns('r')}, u."email" AS "requesterEmail", u."username" AS "requesterUsername", l."id" AS "leaseId", l."grantId" AS "leaseGrantId"
      FROM "Run" r JOIN "User" u ON u."id" = r."requesterId" LEFT JOIN "GrantLease" l ON l."runId" = r."id"
      WHERE r."id" = ${runId}::uuid`
    if (!run) throw new Error(`run ${runId} not found`)
    return run
  }

  /**
   * Steps of a run happen in order: a later event waits until the earlier ones are done — briefly in process (the
   * earlier step is usually being processed right now), then by coming back later.
   */
  private async waitForEarlier(event: RunEvent, knownPending = false): Promise<void> {
    const pendingEarlier = async () => {
      const [row] = await this.db.$queryRaw<Array<{ n: number }>>`
        SELECT count(*)::int AS "n" FROM "RunEvent" WHERE "runId" = ${event.runId}::uuid AND "seq" < ${event.seq} AND "status" = 'pending'`
      return row?.n ?? 0
    }
    if (!knownPending && (await pendingEarlier()) === 0) return
    for (const ms of ORDER_WAITS_MS) {
      await sleep(ms)
      if ((await pendingEarlier()) === 0) return
    }
    throw new NotYet(ORDER_RETRY_MS)
  }

  private async bestEffort(what: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn()
    } catch (err) {
      this.logger.warn({ err }, `could not ${what}`)
    }
  }
}

async function stillPending(tx: Tx, eventId: string): Promise<boolean> {
  const [e] = await tx.$queryRaw<Array<{ status: string }>>`SELECT "status"::text AS "status" FROM "RunEvent" WHERE "id" = ${eventId}::uuid`
  return e?.status === 'pending'
}

