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
import { isUniqueViolation, Prisma, type Db, type Run, type RunEvent, type Sql, type TransactionOptions } from '@opensym/db'
import {
  accessExpiresAt,
  chainExpires,
  decisionRefusal,
  DEFAULT_REQUEST_PERMISSION,
  failureStatus,
  hookFailureStatus,
  hookNames,
  interpretHookReply,
  isFinished,
  linkDueAt,
  nextStep,
  parseRequestPermission,
  transition,
  type HookDecision,
  type HookStep,
  type Step,
} from '@opensym/domain'
import { asRecord, buildLogEntry, completedEntryInput, ENTRY_INPUT_COLUMNS, ENTRY_INPUT_EXTRA_COLUMNS, ENTRY_INPUT_JOINS, entryInputOf, type EntryInputRow, type LoadedEntryInput } from './audit.js'
import { flowParams, readSnapshot } from './flows.js'
import { grantKey, lockGrant, lockGrantByKey } from './grants.js'
import { resolveIdentity, type IdentityReducer } from './identities.js'
import { createSecretResolver } from './secrets.js'
import type { EngineQueues, EventStep } from './queues.js'
import { DEFAULT_PERMISSION_DATA, defaultNotifications, type EventCall, type FlowRuntime, type Routing } from './runtime.js'
import { logReporter, silentLogger, systemClock, type Clock, type EngineLogger, type ErrorReporter } from './seams.js'
import type { RunSnapshot } from './snapshot.js'
import { appendEvent, completeEvent, eventOf, lockRun, RunChangedError, runEventColumns, scheduledDeescalateIdSql, type CompleteAlso, type Completed, type EventOutcome } from './store.js'
import { RetryableStrategyError, StrategyError, type SecretResolver, type Strategy, type StrategyCall, type StrategyOutput, type StrategyRegistry, type Subject } from './strategy.js'

const { sql } = Prisma

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
  /**
   * Whether completed events are announced (a `notify-event` job each, for the RunNotifier). Default true. False when
   * nobody listens (no RunNotifier configured): each event is then marked notified as it completes, so the reconciler
   * does not re-drive it, and no job is added.
   */
  readonly announceEvents?: boolean
  /**
   * Whether a RunNotifier delivers request notifications. Default true. False (nobody to post to): link 0 of a
   * request's chain is recorded as posted by the statement that completes the request, instead of by a notify-request
   * job posting it to nobody.
   */
  readonly notifiesRequests?: boolean
  /**
   * Runs a step processed in the job of the step before it ({@link StepRunner.continueWith}) — the worker times and
   * traces it as its own queue's processor would. Default: runs it.
   */
  readonly inline?: (step: EventStep, process: () => Promise<StepResult>) => Promise<StepResult>
}

/** The secret resolver of an org, reading through `db`. */
export type SecretsFor = (orgId: string, db: Sql) => SecretResolver
const defaultSecrets: SecretsFor = (orgId, db) => createSecretResolver({ db, orgId })
/**
 * A step waiting for an earlier event of its run (an approval arriving while its request is still being processed)
 * looks again after each of these pauses, in process, before it gives its slot up and comes back later.
 */
const ORDER_WAITS_MS = [5, 10, 20, 40] as const
/** Then how soon the job comes back. */
const ORDER_RETRY_MS = 100

/** The run's columns a step reads first besides those of the entry input (its `snapshot`, read once). */
const STEP_RUN_COLUMNS = ['id', 'orgId', 'status', 'version', 'requesterId', 'permission'] as const satisfies ReadonlyArray<keyof Run>
const stepRunColumns = Prisma.raw(STEP_RUN_COLUMNS.map((c) => `r."${c}" AS "run_${c}"`).join(', '))

/** A run as a step reads it first: what steps decide on, with its requester's names and its lease, if any. */
type RunToChange = Pick<Run, (typeof STEP_RUN_COLUMNS)[number] | 'snapshot'> & {
  requesterEmail: string | null
  requesterUsername: string
  leaseId: string | null
  leaseGrantId: string | null
}

/** What a step reads first, in one round trip ({@link StepRunner.readStep}). */
interface StepInput {
  readonly event: RunEvent
  readonly run: RunToChange
  readonly snapshot: RunSnapshot
  /** The event's audit entry input as read while it is pending: its completion stages the entry in the same statement. */
  readonly entry: LoadedEntryInput
  /** The actor's kind and role; null when the event has no actor or the user is gone. */
  readonly actor: { readonly type: 'normal' | 'bot'; readonly role: 'admin' | 'member' | 'guest' } | null
  /** Earlier events of the run still pending. */
  readonly earlier: number
}

/** A step's one-statement completion is redone this many times at most when the run changed under it. */
const COMPLETE_ATTEMPTS = 5

const message = (e: unknown) => (e instanceof Error ? e.message : String(e))

/** What a compare-and-set of the run is made on (never the rest of the row: `completeEvent` writes what it is given). */
type RunCas = Pick<Run, 'id' | 'version' | 'status'>
const casOf = (run: RunCas): RunCas => ({ id: run.id, version: run.version, status: run.status })

/** Who decides and where a request goes when no flow code says: Sym's defaults (runtime.ts). */
const defaultRouting = (snapshot: RunSnapshot): Routing => ({ permission: DEFAULT_PERMISSION_DATA, notifications: defaultNotifications(snapshot.flow.vars), source: 'default' })

/** The request's routing reducers (runtime.ts `EventCall.route`). */
const ROUTING_REDUCERS = ['getPermissions', 'getRequestNotifications', 'getApprovers'] as const

/** Runs a strategy phase with its time budget; anything but a RetryableStrategyError fails the step for good. */
export async function strategyPhase<T>(what: string, timeoutMs: number, logger: EngineLogger, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const signal = AbortSignal.timeout(timeoutMs)
  try {
    const result = await fn(signal)
    const warnings = (result as Partial<StrategyOutput> | undefined)?.warnings
    if (warnings?.length) logger.warn({ warnings }, `${what}: the strategy succeeded with warnings`)
    return result
  } catch (e) {
    if (e instanceof RetryableStrategyError || e instanceof StrategyFailure) throw e
    if (signal.aborted) throw new RetryableStrategyError(`${what} timed out after ${timeoutMs} ms`, undefined, { cause: e })
    if (e instanceof StrategyError) throw new StrategyFailure(e.message, e.output, { cause: e })
    throw new StrategyFailure(`${what} failed: ${message(e)}`, undefined, { cause: e })
  }
}

/**
 * Removes the access (the grant's last lease ended), then reads the target back where it can tell: a removal the
 * target does not show is {@link UnverifiedChange} (retried), errors in the reply a {@link StrategyFailure}.
 */
export async function removeAccess(strategy: Strategy, call: StrategyCall): Promise<{ output: StrategyOutput; verified: boolean | null }> {
  const output = await strategy.deescalate(call)
  if (output.errors.length) throw new StrategyFailure(`the strategy reported: ${output.errors.join('; ')}`, output)
  if (!strategy.isGranted) return { output, verified: null }
  if (await strategy.isGranted(call)) throw new UnverifiedChange('the access still shows in the target after de-escalating', output)
  return { output, verified: true }
}

/**
 * What the step after `input`'s would read first ({@link StepRunner.readStep}), made from `input`, the outcome it
 * completed with and what its statement returned ({@link Completed.after}) instead of read again. Only when nothing
 * was appended between the two events (the next one's seq follows) and nothing before was pending, and the next event
 * has the same actor (an escalation is its approver's): then the next event's audit entry is made of the same run
 * and org, and its actors are this event's, completed, followed by the next one's own.
 */
function followingInput(input: StepInput, outcome: Parameters<typeof completedEntryInput>[1], after: NonNullable<Completed['after']>): StepInput | undefined {
  const { next } = after
  if (input.earlier > 0 || next.seq !== input.event.seq + 1 || next.actorId !== input.event.actorId || next.status !== 'pending') return undefined
  const completed = completedEntryInput(input.entry, outcome)
  const actor = input.entry.event.actor
  return {
    event: next,
    run: { ...input.run, status: after.run.status, version: after.run.version, permission: after.run.permission },
    snapshot: input.snapshot,
    entry: {
      ...completed,
      event: { id: next.id, name: next.name, channel: next.channel, status: next.status, error: next.error, fields: asRecord(next.fields), timestamp: next.createdAt, actor },
      actors: actor ? [...completed.actors, { step: next.name, user: actor }] : completed.actors,
    },
    actor: input.actor,
    earlier: 0,
  }
}

/**
 * Whether the flow has code to run at `step` (its `on…` or `after…` hook, or for a request a routing reducer). A
 * flow that compiled and exports none of them behaves as no flow code at all; a Python or failing implementation, or
 * a run whose snapshot has no source, goes the whole way (its warning or failure is the step's).
 */
export async function runsFlowCode(flows: FlowRuntime | undefined, snapshot: RunSnapshot, step: HookStep): Promise<boolean> {
  if (!flows) return false
  const source = snapshot.flow.implementation
  if (source === undefined) return true
  const loaded = await flows.load(snapshot.flow.id, snapshot.flow.version, source)
  const names = [hookNames(step).on, hookNames(step).after, ...(step === 'request' ? ROUTING_REDUCERS : [])]
  return loaded.kind !== 'flow' || names.some((name) => loaded.flow.has(name as 'onRequest'))
}

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
  private readonly txOptions: TransactionOptions
  private readonly announceEvents: boolean
  private readonly notifiesRequests: boolean
  private readonly inline: (step: EventStep, process: () => Promise<StepResult>) => Promise<StepResult>

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
    this.txOptions = { timeoutMs: this.strategyTimeoutMs + 15_000, maxWaitMs: deps.maxWaitMs ?? 10_000 }
    this.announceEvents = deps.announceEvents ?? true
    this.notifiesRequests = deps.notifiesRequests ?? true
    this.inline = deps.inline ?? ((_step, process) => process())
  }

  /**
   * {@link completeEvent}, marking the event notified at once when events are not announced. With `pending` (the
   * event's entry input read while pending) one statement, which needs no transaction.
   */
  private complete(tx: Sql, eventId: string, outcome: EventOutcome, also?: CompleteAlso, pending?: LoadedEntryInput): Promise<Completed | undefined> {
    return completeEvent(tx, eventId, this.announceEvents ? outcome : { ...outcome, notifiedAt: outcome.completedAt }, also, pending)
  }

  /** Processes the pending event `eventId`, whatever its step. */
  async processEvent(eventId: string, ctx: StepContext): Promise<StepResult> {
    return this.process(eventId, await this.readStep(eventId), ctx)
  }

  /** Processes the event `eventId` as `first` read it (undefined: it is gone). */
  private async process(eventId: string, first: StepInput | undefined, ctx: StepContext): Promise<StepResult> {
    let input = first
    if (!input || input.event.status !== 'pending') return 'noop'
    if (input.earlier > 0) {
      await this.waitForEarlier(input.event, true)
      // What the earlier steps changed (the run, its actors so far) is read again.
      input = await this.readStep(eventId)
      if (!input || input.event.status !== 'pending') return 'noop'
    }
    // The attempts its event records count: a step first tried in another step's job (continueWith) goes on in its
    // own job, whose counter starts again.
    if (input.event.attempts >= ctx.attempt) ctx = { ...ctx, attempt: input.event.attempts + 1 }
    const name = input.event.name as Step
    switch (name) {
      case 'request':
        return this.request(input, ctx)
      case 'approve':
      case 'deny':
        return this.decision(input, name, ctx)
      case 'escalate':
        return this.escalate(input, ctx)
      case 'deescalate':
        return this.deescalate(input, ctx)
      default:
        throw new Error(`event ${eventId} has step "${name}", which no job processes`)
    }
  }

  /**
   * What a step reads first, in one round trip: the event, how many earlier events of its run are still pending, the
   * run with its requester's names and lease, the actor's kind and role (who may decide), and what the event's audit
   * entry is made of.
   */
  private async readStep(eventId: string): Promise<StepInput | undefined> {
    const [row] = await this.db.sql.query<Record<string, unknown> & EntryInputRow & { earlier: number; actorType: 'normal' | 'bot' | null; actorRole: 'admin' | 'member' | 'guest' | null }>(sql`
      SELECT ${runEventColumns('e')}, ${stepRunColumns}, ${Prisma.raw(ENTRY_INPUT_EXTRA_COLUMNS)},
             (SELECT count(*)::int FROM "RunEvent" p WHERE p."runId" = e."runId" AND p."seq" < e."seq" AND p."status" = 'pending') AS "earlier",
             ru."email" AS "requesterEmail", ru."username" AS "requesterUsername", l."id" AS "leaseId", l."grantId" AS "leaseGrantId",
             a."type"::text AS "actorType", a."role"::text AS "actorRole"
      FROM "RunEvent" e ${Prisma.raw(ENTRY_INPUT_JOINS)} JOIN "User" ru ON ru."id" = r."requesterId" LEFT JOIN "GrantLease" l ON l."runId" = r."id"
      WHERE e."id" = ${eventId}::uuid`)
    if (!row) return undefined
    const run: RunToChange = {
      id: row.run_id as string,
      orgId: row.run_orgId as string,
      status: row.run_status as Run['status'],
      version: row.run_version as number,
      requesterId: row.run_requesterId as string,
      permission: row.run_permission as Run['permission'],
      snapshot: row.snapshot as Run['snapshot'],
      requesterEmail: row.requesterEmail as string | null,
      requesterUsername: row.requesterUsername as string,
      leaseId: row.leaseId as string | null,
      leaseGrantId: row.leaseGrantId as string | null,
    }
    return {
      event: eventOf(row),
      run,
      snapshot: readSnapshot(run.snapshot),
      entry: entryInputOf(row),
      actor: row.actorType && row.actorRole ? { type: row.actorType, role: row.actorRole } : null,
      earlier: row.earlier,
    }
  }

  /**
   * Runs a step's one-statement completion against the run as read: when the run changed meanwhile (its version) or
   * another event of it was appended (the seq the statement counted was taken), reads the run again and redoes it.
   */
  private async completeOnRun<T>(input: StepInput, write: (run: RunCas) => Promise<T>): Promise<T> {
    let run = casOf(input.run)
    for (let attempt = 1; ; attempt++) {
      try {
        return await write(run)
      } catch (e) {
        if (attempt >= COMPLETE_ATTEMPTS || !(e instanceof RunChangedError || isUniqueViolation(e, 'RunEvent_runId_seq_key'))) throw e
        const [fresh] = await this.db.sql.query<RunCas>(sql`SELECT "id", "version", "status"::text AS "status" FROM "Run" WHERE "id" = ${run.id}::uuid`)
        if (!fresh) throw e
        run = fresh
      }
    }
  }

  /**
   * Processes the event a step just appended (escalate after an approval, a hook's decision) in this job rather than
   * a job of its own: one job less per run. If it fails, its own queue's job takes over, with its retries.
   */
  private async continueWith(next: { readonly step: EventStep; readonly id: string; readonly input?: StepInput }, ctx: StepContext): Promise<void> {
    try {
      const nextCtx = { attempt: 1, maxAttempts: ctx.maxAttempts }
      await this.inline(next.step, async () => this.process(next.id, next.input ?? (await this.readStep(next.id)), nextCtx))
    } catch (e) {
      this.logger.debug({ err: e, eventId: next.id }, `${next.step} goes to its queue`)
      await this.bestEffort(`queue the ${next.step}`, () => this.queues.enqueueEvent(next.step, next.id, e instanceof NotYet ? e.delayMs : this.queues.firstRetryMs))
    }
  }

  /** The run's de-escalation is due (`expiresAt`): records the scheduled de-escalate event, then processes it. */
  async scheduledDeescalation(runId: string, ctx: StepContext): Promise<StepResult> {
    // Checked under the run's lock (the job usually comes when it is due): one round trip less than a read first.
    const found = await this.db.sql.transaction(async (tx) => {
      const locked = await lockRun(tx, runId)
      if (locked.status !== 'escalated' || !locked.expiresAt) return null
      const due = locked.expiresAt.getTime() - this.clock().getTime()
      if (due > 0) return { due, row: undefined }
      // A de-escalation in progress (a revoke, or this job's earlier attempt) is the one to finish; otherwise the
      // scheduled one (the approver's) is appended. One statement, which also counts earlier pending events.
      const [row] = await tx.query<RunEvent & { earlier: number }>(sql`
        WITH progress AS (
          SELECT "id" FROM "RunEvent" WHERE "runId" = ${runId}::uuid AND "name" = 'deescalate' AND "status" = 'pending' ORDER BY "seq" LIMIT 1
        ), appended AS (
          INSERT INTO "RunEvent" ("id", "orgId", "runId", "seq", "name", "actorId", "channel", "fields", "status", "attempts", "createdAt")
          SELECT ${scheduledDeescalateIdSql(Prisma.sql`${runId}::uuid`)}, ${locked.orgId}::uuid, ${runId}::uuid,
                 (SELECT COALESCE(MAX("seq"), 0) + 1 FROM "RunEvent" WHERE "runId" = ${runId}::uuid), 'deescalate',
                 (SELECT "actorId" FROM "RunEvent" WHERE "runId" = ${runId}::uuid AND "name" = 'approve' AND "status" = 'success' LIMIT 1),
                 'internal'::"EventChannel", ${JSON.stringify({ deescalate_type: 'scheduled' })}::jsonb, 'pending', 0, ${this.clock()}::timestamptz
          WHERE NOT EXISTS (SELECT 1 FROM progress)
          RETURNING *
        ), ev AS (
          SELECT * FROM appended UNION ALL SELECT e.* FROM "RunEvent" e JOIN progress ON progress."id" = e."id"
        )
        SELECT ${runEventColumns('ev')},
               (SELECT count(*)::int FROM "RunEvent" p WHERE p."runId" = ev."runId" AND p."seq" < ev."seq" AND p."status" = 'pending') AS "earlier"
        FROM ev`)
      if (!row) throw new Error(`could not find or append the de-escalation of run ${runId}`)
      return { due: 0, row }
    }, this.txOptions)
    if (!found) return 'noop'
    if (!found.row) throw new NotYet(found.due)
    const { earlier, ...event } = found.row
    if (earlier > 0) await this.waitForEarlier(event, true)
    const input = await this.readStep(event.id)
    if (!input || input.event.status !== 'pending') return 'noop'
    // This job is the scheduled de-escalation: there is no other one to cancel afterwards.
    return this.deescalate(input, ctx, { scheduled: true })
  }

  /** The request has waited its time for a decision: it expires. */
  async expireRequest(runId: string, _ctx: StepContext): Promise<StepResult> {
    const [run] = await this.db.sql.query<Pick<Run, 'status' | 'requestExpiresAt'>>(sql`SELECT "status"::text AS "status", "requestExpiresAt" FROM "Run" WHERE "id" = ${runId}::uuid`)
    if (!run || run.status !== 'requested' || !run.requestExpiresAt) return 'noop'
    const due = run.requestExpiresAt.getTime() - this.clock().getTime()
    if (due > 0) throw new NotYet(due)
    return this.db.sql.transaction(async (tx) => {
      const locked = await lockRun(tx, runId)
      const allowed = transition(locked.status, 'expire')
      if (!allowed.ok) return 'noop'
      const now = this.clock()
      const event = await appendEvent(tx, locked, { name: 'expire', actorId: null, channel: 'internal' })
      await this.complete(tx, event.id, { status: 'success', completedAt: now, attempts: 1 }, { run: { ...casOf(locked), to: allowed.to, data: { endedAt: now } } })
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
  private async request(input: StepInput, ctx: StepContext): Promise<StepResult> {
    const { event, snapshot } = input
    const call = await this.eventCall(event, 'request', snapshot)
    const decided = await this.onHook(call, 'request', event)
    if (decided.kind === 'failed') return this.hookFailed(event, 'request', decided.message, ctx, call)
    if (decided.kind === 'ignore') return this.ignored(event, 'request', decided.message, ctx)
    const routed = call ? await call.route() : { ok: true as const, routing: undefined }
    if (!routed.ok) return this.hookFailed(event, 'request', routed.message, ctx, call)
    const routing = routed.routing ?? defaultRouting(snapshot)
    const warning = call?.warning
    if (warning) this.logger.warn({ runId: event.runId, flow: call.snapshot.flow.slug }, warning)
    const links = routing.notifications
    // The chain's last link with a timeout decides the request's expiry (set when that link is posted).
    const expiresByChain = chainExpires(links.map((l) => l.timeout))

    // One statement (see completeEvent), with the permission stored on the run (nothing is written if the event is
    // no longer pending).
    const outcome = await this.completeOnRun(input, async (run) => {
      const now = this.clock()
      const also = { run: { ...run, permission: routing.permission } }
      if (decided.kind === 'replace') {
        // Auto-approved or -denied: nobody needs to be asked.
        const done = await this.complete(this.db.sql, event.id, { status: 'success', completedAt: now, attempts: ctx.attempt, warning: warning ?? null }, {
          ...also,
          next: { run: input.run, name: decided.step, actorId: event.actorId, channel: 'sdk', fields: decided.fields },
        }, input.entry)
        return done && { next: { step: decided.step as EventStep, id: done.nextEventId! }, firstPosted: undefined }
      }
      // Nobody to post link 0 to: it is posted by this statement.
      const firstPosted = !this.notifiesRequests && links[0] ? { at: now, dueAt: linkDueAt(now, links[0].timeout) } : undefined
      const requestExpiresAt = expiresByChain ? (firstPosted && links.length === 1 ? firstPosted.dueAt : null) : undefined
      const done = await this.complete(this.db.sql, event.id, { status: 'success', completedAt: now, attempts: ctx.attempt, warning: warning ?? null, addFields: decided.fields }, {
        run: { ...also.run, requestExpiresAt },
        chain: { orgId: input.run.orgId, runId: input.run.id, links, firstPosted },
      }, input.entry)
      return done && { next: undefined, firstPosted }
    })
    if (!outcome) return 'noop'
    this.logger.debug({ runId: event.runId, routing: routing.source }, 'request routed')
    const { next, firstPosted } = outcome
    // Link 0 posted here: its timeout scheduled as the notification runner does (for the only link, the request's
    // expiry replaces the default one). Redis only schedules: the reconciler re-adds what fails.
    const expiryReplaced = !!firstPosted?.dueAt && links.length === 1
    await Promise.all([
      this.announce(event.id),
      next || !this.notifiesRequests ? undefined : this.bestEffort('post the request', () => this.queues.enqueueNotifyRequest(event.runId, 0)),
      firstPosted ? this.bestEffort('schedule the request\'s timeout', () => this.queues.scheduleLinkDue(event.runId, 0, links.length, firstPosted.dueAt)) : undefined,
      !next && expiresByChain && !expiryReplaced ? this.bestEffort('cancel the default expiry', () => this.queues.cancelExpiry(event.runId)) : undefined,
    ])
    await Promise.all([next ? this.continueWith(next, ctx) : undefined, this.afterHook(call, 'request', event)])
    return 'done'
  }

  private async decision(input: StepInput, step: 'approve' | 'deny', ctx: StepContext): Promise<StepResult> {
    const { event, snapshot } = input
    // The worker is the authority on who may decide: the API checked before the request was routed, maybe.
    if (event.channel !== 'sdk') {
      const refusal = this.decisionRefusal(input)
      if (refusal) return this.refuse(event, refusal, ctx)
    }
    const call = await this.eventCall(event, step, snapshot)
    const decided = await this.onHook(call, step, event)
    if (decided.kind === 'failed') return this.hookFailed(event, step, decided.message, ctx, call)
    if (decided.kind === 'ignore') return this.ignored(event, step, decided.message, ctx)
    if (decided.kind === 'replace') return this.replaced(event, step, decided, ctx)
    const hasStrategy = snapshot.strategy !== null
    // One statement (see completeEvent).
    const outcome = await this.completeOnRun(input, async (run) => {
      const now = this.clock()
      const allowed = transition(run.status, step)
      if (!allowed.ok) {
        // Runs only move forward: a decision refused now stays refused, whatever the run does meanwhile.
        const done = await this.complete(this.db.sql, event.id, { status: 'error', error: allowed.reason, completedAt: now, attempts: ctx.attempt }, {}, input.entry)
        return { result: done ? ('refused' as const) : ('noop' as const) }
      }
      const next = nextStep(step, hasStrategy)
      const completion = { status: 'success' as const, completedAt: now, attempts: ctx.attempt, addFields: decided.fields }
      const done = await this.complete(this.db.sql, event.id, completion, {
        run: { ...run, to: allowed.to, data: { decidedAt: now, ...(isFinished(allowed.to, hasStrategy) ? { endedAt: now } : {}) } },
        // Escalate is the approver's too (Sym: its actor is the approve actor).
        ...(next ? { next: { run: input.run, name: next, actorId: event.actorId, channel: event.channel } } : {}),
      }, input.entry)
      if (!done) return { result: 'noop' as const }
      return {
        result: 'done' as const,
        next: next && done.nextEventId ? { step: next as EventStep, id: done.nextEventId, input: done.after && followingInput(input, completion, done.after) } : undefined,
      }
    })
    if (outcome.result !== 'noop') await this.announce(event.id)
    if (outcome.result === 'done') {
      await this.bestEffort('cancel the request expiry', () => this.queues.cancelExpiry(event.runId))
      // The escalation follows in this job, while the decision's after-hook runs.
      await Promise.all([outcome.next ? this.continueWith(outcome.next, ctx) : undefined, this.afterHook(call, step, event)])
    }
    return outcome.result
  }

  /** Why the event's actor may not make this decision, as the run's stored permission says (domain rules). */
  private decisionRefusal(input: StepInput): string | undefined {
    const { event, run, actor } = input
    if (!event.actorId || !actor) return 'The user who made this decision no longer exists.'
    const params = flowParams(input.snapshot.flow.params)
    const permission = parseRequestPermission(run.permission) ?? DEFAULT_REQUEST_PERMISSION
    return decisionRefusal({ userId: event.actorId, userType: actor.type, role: actor.role }, run.requesterId, permission, { allowGuestInteraction: params.allow_guest_interaction })
  }

  // -------------------------------------------------------------------------------------------------------------
  // Hooks

  /**
   * The flow's calls for this event, when the engine runs flow code and the flow has something to run at this step
   * ({@link runsFlowCode}): otherwise the event's data (several reads) is not assembled for nothing.
   */
  private async eventCall(event: RunEvent, step: HookStep, snapshot: RunSnapshot): Promise<EventCall | undefined> {
    if (!this.flows || !(await runsFlowCode(this.flows, snapshot, step))) return undefined
    return this.flows.forEvent(event.id)
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
      const fresh = await this.flows!.forEvent(event.id)
      const out = await fresh.hook(hookNames(step).after as 'afterRequest')
      if (out.ok) return
      await this.db.sql.execute(sql`UPDATE "RunEvent" SET "warning" = ${out.message} WHERE "id" = ${event.id}::uuid`)
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
    const done = await this.db.sql.transaction(async (tx) => {
      const run = await lockRun(tx, event.runId)
      const now = this.clock()
      const to = hookFailureStatus(run.status, step)
      const completed = await this.complete(tx, event.id, { status: 'error', error: detail, completedAt: now, attempts: ctx.attempt }, to ? { run: { ...casOf(run), to, data: { endedAt: now } } } : {})
      return completed !== undefined
    }, this.txOptions)
    if (!done) return 'noop'
    await this.announce(event.id)
    await this.report(event, step, `${step} of run ${event.runId} (flow ${call?.snapshot.flow.slug ?? '-'}) failed: ${detail}. Nothing was granted.`, new Error(message))
    return 'failed'
  }

  /** `ApprovalTemplate.ignore({message})`: the event is an error with the message; the run stays (a request ends). */
  private async ignored(event: RunEvent, step: HookStep, message: string, ctx: StepContext): Promise<StepResult> {
    const done = await this.db.sql.transaction(async (tx) => {
      const run = await lockRun(tx, event.runId)
      const now = this.clock()
      const to = hookFailureStatus(run.status, step)
      const completed = await this.complete(tx, event.id, { status: 'error', error: message, completedAt: now, attempts: ctx.attempt }, to ? { run: { ...casOf(run), to, data: { endedAt: now } } } : {})
      return completed !== undefined
    }, this.txOptions)
    if (!done) return 'noop'
    await this.announce(event.id)
    return 'refused'
  }

  /** The hook returned another transition: this event does not take effect; that one (channel `sdk`) follows. */
  private async replaced(event: RunEvent, step: HookStep, decided: Extract<HookDecision, { kind: 'replace' }>, ctx: StepContext): Promise<StepResult> {
    const next = await this.db.sql.transaction(async (tx) => {
      const run = await lockRun(tx, event.runId)
      const why = `${hookNames(step).on} replaced this ${step} with ${decided.step}`
      const done = await this.complete(tx, event.id, { status: 'error', error: why, completedAt: this.clock(), attempts: ctx.attempt }, {
        next: { run, name: decided.step, actorId: event.actorId, channel: 'sdk', fields: decided.fields },
      })
      return done?.nextEventId
    }, this.txOptions)
    if (!next) return 'noop'
    await Promise.all([this.announce(event.id), this.queues.enqueueEvent(decided.step, next)])
    return 'done'
  }

  /** The RunNotifier hears about a completed event (best effort: the reconciler re-drives `notifiedAt IS NULL`). */
  private async announce(eventId: string): Promise<void> {
    if (!this.announceEvents) return
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

  private async escalate(input: StepInput, ctx: StepContext): Promise<StepResult> {
    const { event, run, snapshot } = input
    const allowed = transition(run.status, 'escalate')
    if (!allowed.ok) return this.refuse(event, allowed.reason, ctx)
    // onEscalate runs before anything is granted (on every attempt of the step: it may be a policy check).
    const call = await this.eventCall(event, 'escalate', snapshot)
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
        resolveIdentity({ db: this.db, getIdentity: this.getIdentity }, strategy, { ...base, secrets: this.secrets(run.orgId, this.db.sql), signal, orgId: run.orgId, runId: run.id, snapshot }),
      )
      const key = grantKey(config, target, identity)
      const scheduleDeescalation = flowParams(snapshot.flow.params).schedule_deescalation

      const done = await this.db.sql.transaction(async (tx) => {
        const { grant, run: locked, eventPending } = await lockGrantByKey(tx, run.orgId, key, config.type, identity, run.id, event.id)
        const now0 = this.clock()
        const again = transition(locked.status, 'escalate')
        if (!again.ok) {
          await this.complete(tx, event.id, { status: 'error', error: again.reason, completedAt: now0, attempts: ctx.attempt })
          return undefined
        }
        let output: StrategyOutput
        let verified: boolean | null = null
        let applied: { id: string; applied: boolean; at: Date } | undefined
        if (!grant.applied) {
          // First lease: grant the access, then read it back where the target can tell. Nothing is called for an
          // event done already (by a duplicate job: the lock says). The entry input read with the step is what it
          // would be under the lock: what it is made of — the run's request, the actors of the steps before this
          // one, this pending event — does not change while the event is pending.
          if (!eventPending) return undefined
          const payload = buildLogEntry(input.entry) as unknown as Record<string, unknown>
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
          applied = { id: grant.id, applied: true, at: this.clock() }
        } else {
          output = { body: { strategy_called: false, reason: 'the access is already granted: another run holds it' }, errors: [] }
        }
        const now = this.clock()
        const expiresAt = accessExpiresAt(now, locked.durationSeconds, scheduleDeescalation)
        // The grant's state, the run's lease, the run's move, the event and its audit entry, in one statement
        // (nothing if the event is no longer pending).
        const completed = await this.complete(tx, event.id, { status: 'success', output, verified, completedAt: now, attempts: ctx.attempt, addFields: decided.fields }, {
          run: { ...casOf(locked), to: again.to, data: { escalatedAt: now, expiresAt } },
          ...(applied ? { grant: applied } : {}),
          lease: { grantId: grant.id, runId: run.id, startedAt: now, expiresAt },
        }, input.entry)
        // After a strategy call the event was pending under this same lock: it still is (never record a call as undone).
        if (!completed && applied) throw new RunChangedError(`event ${event.id} is no longer pending`)
        return completed && { expiresAt }
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

  private async deescalate(input: StepInput, ctx: StepContext, opts: { scheduled?: boolean } = {}): Promise<StepResult> {
    const { event, run, snapshot } = input
    const allowed = transition(run.status, 'deescalate')
    if (!allowed.ok) return this.refuse(event, allowed.reason, ctx)
    // onDeescalate may block a person's de-escalation (ignore), never a scheduled one (access ends on time) nor one
    // the flow itself asked for (channel sdk); a failing hook then only leaves a warning (domain interpretHookReply).
    const scheduled = opts.scheduled === true || event.channel === 'internal' || event.channel === 'sdk'
    const call = await this.eventCall(event, 'deescalate', snapshot)
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
      const done = await this.db.sql.transaction(async (tx) => {
        const grant = leaseId && run.leaseGrantId ? await lockGrant(tx, run.leaseGrantId) : undefined
        const locked = await lockRun(tx, run.id)
        const now0 = this.clock()
        const again = transition(locked.status, 'deescalate')
        if (!again.ok) {
          await this.complete(tx, event.id, { status: 'error', error: again.reason, completedAt: now0, attempts: ctx.attempt })
          return false
        }
        let output: StrategyOutput | null = null
        let verified: boolean | null = null
        let removed: { id: string; applied: boolean; at: Date } | undefined
        // Under the run's lock, in one statement: whether the event is still pending (nothing is done for an event
        // done already), what its payload is made of, and — if so — the run's lease ended if it still holds one, with
        // the count of the grant's other active leases (the grant is locked: leases only start and end under its
        // lock, so the count is current).
        const state = await this.endLease(tx, event.id, grant && leaseId ? { leaseId, grantId: grant.id, at: now0 } : undefined)
        if (!state) return false
        const { ended } = state
        if (grant && ended) {
          const others = ended.others
          if (others === 0 && grant.applied) {
            // Last lease: remove the access, then read back that it is gone.
            const { strategy: config, target } = snapshot
            if (!config || !target) throw new StrategyFailure('this run has no strategy or target to de-escalate with')
            const strategy = this.strategyFor(config.type)
            const payload = buildLogEntry(state.input) as unknown as Record<string, unknown>
            const subject: Subject = { userId: run.requesterId, email: run.requesterEmail, username: run.requesterUsername }
            const removal = await this.callStrategy('deescalate', (signal) =>
              removeAccess(strategy, { strategy: config, target, subject, identity: grant.identity, payload, secrets: this.secrets(run.orgId, tx), signal }),
            )
            output = removal.output
            verified = removal.verified
            removed = { id: grant.id, applied: false, at: this.clock() }
          } else {
            const reason = others > 0 ? `the access stays: ${others} other run(s) still hold it` : 'the access was not in place'
            output = { body: { strategy_called: false, reason }, errors: [] }
          }
        }
        const now = this.clock()
        const completed = await this.complete(tx, event.id, { status: 'success', output, verified, completedAt: now, attempts: ctx.attempt, addFields, ...(warning ? { warning } : {}) }, {
          run: { ...casOf(locked), to: again.to, data: { deescalatedAt: now, endedAt: now } },
          ...(removed ? { grant: removed } : {}),
        }, state.input)
        // The event was pending when the lease ended, under the same lock: it still is.
        if (!completed) throw new RunChangedError(`event ${event.id} is no longer pending`)
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
    const done = await this.db.sql.transaction(async (tx) => {
      await lockRun(tx, event.runId)
      return (await this.complete(tx, event.id, { status: 'error', error: reason, completedAt: this.clock(), attempts: ctx.attempt })) !== undefined
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
    const next = await this.db.sql.transaction(async (tx) => {
      const run = await lockRun(tx, event.runId)
      const allowed = transition(run.status, 'escalate')
      const now = this.clock()
      if (!allowed.ok) {
        const refused = await this.complete(tx, event.id, { status: 'error', error: allowed.reason, completedAt: now, attempts: ctx.attempt })
        return refused ? null : undefined
      }
      const output: StrategyOutput = { body: { strategy_called: false, reason: 'the flow\'s onEscalate hook ended the access before it was granted' }, errors: [] }
      const done = await this.complete(tx, event.id, { status: 'success', output, completedAt: now, attempts: ctx.attempt }, {
        run: { ...casOf(run), to: allowed.to, data: { escalatedAt: now, expiresAt: null } },
        next: { run, name: 'deescalate', actorId: event.actorId, channel: 'sdk', fields: { deescalate_type: 'hook', ...fields } },
      })
      return done?.nextEventId
    }, this.txOptions)
    if (next === undefined) return 'noop'
    await this.announce(event.id)
    if (next === null) return 'refused'
    await this.queues.enqueueEvent('deescalate', next)
    return 'done'
  }

  /** Records a step that failed for good on its event (and the run, for escalate), then reports it. */
  private async fail(event: RunEvent, step: 'escalate' | 'deescalate', e: unknown, ctx: StepContext, snapshot: RunSnapshot, advice: string): Promise<StepResult> {
    const output = e instanceof StrategyFailure || e instanceof UnverifiedChange ? e.output : undefined
    const verified = e instanceof UnverifiedChange ? false : undefined
    const detail = e instanceof StrategyFailure || e instanceof UnverifiedChange ? e.message : `${message(e)} (after ${ctx.attempt} attempts)`
    const recorded = await this.db.sql.transaction(async (tx) => {
      const run = await lockRun(tx, event.runId)
      const now = this.clock()
      const to = failureStatus(run.status, step)
      const done = await this.complete(tx, event.id, { status: 'error', error: detail, output: output ?? undefined, verified, completedAt: now, attempts: ctx.attempt }, to ? { run: { ...casOf(run), to, data: { endedAt: now } } } : {})
      return done && run
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

  private callStrategy<T>(what: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    return strategyPhase(what, this.strategyTimeoutMs, this.logger, fn)
  }

  private strategyFor(type: string): Strategy {
    const strategy = this.strategies.get(type)
    if (!strategy) throw new StrategyFailure(`no strategy implementation for type "${type}" is installed`)
    return strategy
  }

  /**
   * De-escalate's first statement under the run's lock: the event's entry input (its status, and the strategy's
   * payload: the §7.2 log entry in state "processing") and, when the event is still pending and the run holds a
   * lease, the lease ended with the count of the grant's other active leases. Undefined when the event is no longer
   * pending (nothing was changed).
   */
  private async endLease(
    tx: Sql,
    eventId: string,
    lease: { leaseId: string; grantId: string; at: Date } | undefined,
  ): Promise<{ input: LoadedEntryInput; ended: { others: number } | undefined } | undefined> {
    const [row] = await tx.query<EntryInputRow & { ended: boolean | null; others: number | null }>(sql`
      WITH ended AS (
        ${
          lease
            ? Prisma.sql`UPDATE "GrantLease" SET "endedAt" = ${lease.at}::timestamptz
                WHERE "id" = ${lease.leaseId}::uuid AND "endedAt" IS NULL AND EXISTS (SELECT 1 FROM "RunEvent" WHERE "id" = ${eventId}::uuid AND "status" = 'pending')
                RETURNING (SELECT count(*)::int FROM "GrantLease" o WHERE o."grantId" = ${lease.grantId}::uuid AND o."endedAt" IS NULL AND o."id" <> ${lease.leaseId}::uuid) AS "others"`
            : Prisma.sql`SELECT NULL::int AS "others" WHERE false`
        }
      )
      SELECT ${Prisma.raw(ENTRY_INPUT_COLUMNS)}, EXISTS (SELECT 1 FROM ended) AS "ended", (SELECT "others" FROM ended) AS "others"
      FROM "RunEvent" e ${Prisma.raw(ENTRY_INPUT_JOINS)} WHERE e."id" = ${eventId}::uuid`)
    if (!row) throw new Error(`event ${eventId} not found`)
    const input = entryInputOf(row)
    if (input.event.status !== 'pending') return undefined
    return { input, ended: row.ended ? { others: row.others ?? 0 } : undefined }
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
    await this.bestEffort('note the retry on its event', () => this.db.sql.execute(sql`UPDATE "RunEvent" SET "error" = ${why}, "attempts" = ${ctx.attempt} WHERE "id" = ${eventId}::uuid AND "status" = 'pending'`))
  }

  /**
   * Steps of a run happen in order: a later event waits until the earlier ones are done — briefly in process (the
   * earlier step is usually being processed right now), then by coming back later.
   */
  private async waitForEarlier(event: RunEvent, knownPending = false): Promise<void> {
    const pendingEarlier = async () => {
      const [row] = await this.db.sql.query<{ n: number }>(sql`
        SELECT count(*)::int AS "n" FROM "RunEvent" WHERE "runId" = ${event.runId}::uuid AND "seq" < ${event.seq} AND "status" = 'pending'`)
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

