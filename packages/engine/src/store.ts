/**
 * The run and event writes every step is made of. All run in the caller's transaction:
 * lock the run, append or complete an event, compare-and-set the run's status on its version, audit.
 */
import { createHash, randomUUID } from 'node:crypto'
import { Prisma, type RunEvent, type Run, type Sql } from '@opensym/db'
import type { EventChannel, RunStatus, Step } from '@opensym/domain'
import { appendAudit, buildLogEntry, completedEntryInput, ENTRY_INPUT_COLUMNS, ENTRY_INPUT_JOINS, entryInputOf, stageAuditSql, type EntryInputRow, type LoadedEntryInput } from './audit.js'

const { join, raw, sql } = Prisma

/**
 * Every column of a model, as the generated client knows them, for raw queries (`r."id", r."orgId", …`): the rows
 * are those model queries return, and a statement prepared once per connection keeps its shape across migrations
 * (unlike `*`).
 */
const columnList = (fields: Record<string, string>) => (alias?: string) => raw(Object.values(fields).map((c) => `${alias ? `${alias}.` : ''}"${c}"`).join(', '))
export const runColumns = columnList(Prisma.RunScalarFieldEnum)
export const runEventColumns = columnList(Prisma.RunEventScalarFieldEnum)

/** The event of a row that selected {@link runEventColumns} among others. */
export function eventOf(row: Readonly<Record<string, unknown>>): RunEvent {
  return Object.fromEntries(Object.values(Prisma.RunEventScalarFieldEnum).map((c) => [c, row[c]])) as unknown as RunEvent
}

/**
 * The id of a run's scheduled de-escalate event, the `n`-th de-escalate event of the run (0 for the first): derived,
 * not random, so that a de-escalation whose transaction rolled back after the strategy was called (a crash, a lost
 * connection) is redone under the same event id — the strategy's payload id and Idempotency-Key — and the target
 * sees a redelivery, not a second revoke. The same as {@link scheduledDeescalateIdSql} computes in PostgreSQL: the
 * MD5 of `<runId>:deescalate:<n>` as a UUID.
 */
export function scheduledDeescalateEventId(runId: string, n: number): string {
  const h = createHash('md5').update(`${runId.toLowerCase()}:deescalate:${n}`).digest('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

/** {@link scheduledDeescalateEventId} in SQL, for the run `runId` (a uuid expression) and its de-escalate events so far. */
export const scheduledDeescalateIdSql = (runId: Prisma.Sql) =>
  sql`md5(${runId}::text || ':deescalate:' || (SELECT count(*) FROM "RunEvent" d WHERE d."runId" = ${runId} AND d."name" = 'deescalate')::text)::uuid`

/** Locks the run row until the transaction ends and returns it as committed now (one round trip). */
export async function lockRun(tx: Sql, runId: string): Promise<Run> {
  const [run] = await tx.query<Run>(sql`SELECT ${runColumns()} FROM "Run" WHERE "id" = ${runId}::uuid FOR UPDATE`)
  if (!run) throw new Error(`run ${runId} not found`)
  return run
}

/** The run changed under a step: the transaction must roll back; the step's retry re-reads everything. */
export class RunChangedError extends Error {
  override readonly name = 'RunChangedError'
}

/** The timestamps a transition sets on a run. */
export type RunTimestamps = Partial<Record<(typeof RUN_TIMESTAMPS)[number], Date | null>>
const RUN_TIMESTAMPS = ['decidedAt', 'escalatedAt', 'expiresAt', 'deescalatedAt', 'endedAt'] as const

/** Moves the run from its current status to `to`, only if nobody changed it since it was read (same version). */
export async function casRun(tx: Sql, run: Pick<Run, 'id' | 'version' | 'status'>, to: RunStatus, data: RunTimestamps = {}): Promise<void> {
  const sets = RUN_TIMESTAMPS.filter((k) => data[k] !== undefined).map((k) => sql`${raw(`"${k}"`)} = ${data[k] ?? null}::timestamptz`)
  const count = await tx.execute(sql`
    UPDATE "Run" SET ${join([...sets, sql`"status" = ${to}::"RunStatus"`, sql`"version" = "version" + 1`, sql`"updatedAt" = ${new Date()}::timestamptz`], ', ')}
    WHERE "id" = ${run.id}::uuid AND "version" = ${run.version} AND "status" = ${run.status}::"RunStatus"`)
  if (count !== 1) throw new RunChangedError(`run ${run.id} changed while moving it from ${run.status} to ${to}`)
}

export interface NewEvent {
  readonly name: Step
  readonly actorId: string | null
  readonly submittedById?: string | null
  readonly channel: EventChannel
  readonly fields?: Record<string, unknown>
}

/** Appends a pending event to a run the transaction has locked: the run's next `seq`, in one round trip. */
export async function appendEvent(tx: Sql, run: Pick<Run, 'id' | 'orgId'>, event: NewEvent): Promise<RunEvent> {
  const [created] = await tx.query<RunEvent>(insertEvent(randomUUID(), run, event, new Date()))
  if (!created) throw new Error(`could not append a ${event.name} event to run ${run.id}`)
  return created
}

export interface EventOutcome {
  readonly status: 'success' | 'error'
  readonly error?: string | null
  readonly output?: unknown
  readonly verified?: boolean | null
  readonly attempts?: number
  readonly completedAt: Date
  /** A note on a step that went ahead anyway (RunEvent.warning). */
  readonly warning?: string | null
  /** Fields added to the event's (a hook's keyword arguments), before its audit entry is made. */
  readonly addFields?: Readonly<Record<string, unknown>>
  /** Marks the event notified (`notifiedAt`): set when no RunNotifier listens, so that nobody announces it. */
  readonly notifiedAt?: Date
}

/** What else a step writes when its event completes: made in the same statement, and only if the event was pending. */
export interface CompleteAlso {
  /**
   * The run's compare-and-set from `run.status` to `to` on its version (with the transition's timestamps), and/or
   * its stored `permission`. A failed compare-and-set throws {@link RunChangedError}: the transaction rolls back.
   */
  readonly run?: {
    readonly id: string
    readonly version: number
    readonly status: string
    readonly to?: RunStatus
    readonly data?: RunTimestamps
    readonly permission?: unknown
    /**
     * Sets `requestExpiresAt`: null when the request's notification chain decides its expiry (set when its last link
     * is posted), that link's due time when it is posted with this statement.
     */
    readonly requestExpiresAt?: Date | null
  }
  /** The request's notification chain (`RunNotification`, one row per link; links stored already are kept). */
  readonly chain?: {
    readonly orgId: string
    readonly runId: string
    readonly links: ReadonlyArray<{ readonly destinations: unknown; readonly timeout: number | null }>
    /** Link 0 is posted now (nobody to post it to: no RunNotifier), due at `dueAt` (its timeout). */
    readonly firstPosted?: { readonly at: Date; readonly dueAt: Date | null }
  }
  /** The grant's state after the strategy call: applied (escalate) or removed (de-escalate). */
  readonly grant?: { readonly id: string; readonly applied: boolean; readonly at: Date }
  /** The run's lease on its grant (escalate). */
  readonly lease?: { readonly grantId: string; readonly runId: string; readonly startedAt: Date; readonly expiresAt: Date | null }
  /** The event that follows (appended to the run in the audit statement); its id is returned. */
  readonly next?: NewEvent & { readonly run: Pick<Run, 'id' | 'orgId'> }
}

export interface Completed {
  /** The id of the event appended after it ({@link CompleteAlso.next}). */
  readonly nextEventId: string | undefined
  /**
   * In one statement with `also.run` and `also.next`: the appended event as stored, and where the run stands as the
   * statement left it ({@link AFTER_RUN_COLUMNS}).
   */
  readonly after?: { readonly next: RunEvent; readonly run: Pick<Run, (typeof AFTER_RUN_COLUMNS)[number]> }
}

/** What {@link Completed.after} says of the run: what the next step decides on. */
const AFTER_RUN_COLUMNS = ['status', 'version', 'permission'] as const satisfies ReadonlyArray<keyof Run>

/**
 * Completes a pending event exactly once, with what the step changes on its run and its grant ({@link CompleteAlso}),
 * stages its audit entry and appends the next event, if any. Returns undefined, having written nothing, when the
 * event is no longer pending (a duplicate job processed it).
 *
 * With `pending` — the event's entry input read while it was pending — it is one statement, whose entry is made
 * beforehand ({@link completedEntryInput}); it needs no transaction: it locks the run and the event itself and
 * writes only if the event is still pending and the run is still at `also.run`'s version and status, else throws
 * {@link RunChangedError}. Appending the next event in it may meet a `RunEvent_runId_seq_key` violation when another
 * event of the run was appended meanwhile (its seq was counted before the lock): it wrote nothing, and may be redone.
 *
 * Without, the caller's transaction has locked the run: two statements, the update (which returns what the entry is
 * made of), then the staging of the entry (with the next event, if any).
 */
export async function completeEvent(tx: Sql, eventId: string, outcome: EventOutcome, also: CompleteAlso = {}, pending?: LoadedEntryInput): Promise<Completed | undefined> {
  const sets = [
    sql`"status" = ${outcome.status}::"EventStatus"`,
    sql`"error" = ${outcome.error ?? null}`,
    // A null output is stored as JSON null, as Prisma stores it.
    ...(outcome.output !== undefined ? [sql`"output" = ${JSON.stringify(outcome.output)}::jsonb`] : []),
    ...(outcome.verified !== undefined ? [sql`"verified" = ${outcome.verified}`] : []),
    ...(outcome.attempts !== undefined ? [sql`"attempts" = ${outcome.attempts}`] : []),
    ...(outcome.warning !== undefined ? [sql`"warning" = ${outcome.warning}`] : []),
    ...(outcome.addFields && Object.keys(outcome.addFields).length ? [sql`"fields" = "fields" || ${JSON.stringify(outcome.addFields)}::jsonb`] : []),
    ...(outcome.notifiedAt !== undefined ? [sql`"notifiedAt" = ${outcome.notifiedAt}::timestamptz`] : []),
    sql`"completedAt" = ${outcome.completedAt}::timestamptz`,
  ]
  const run = also.run
  // The next event and the run as they are after this statement, for the next step (one read less).
  const returnsAfter = pending !== undefined && run !== undefined && also.next !== undefined
  const ctes: Prisma.Sql[] = []
  if (pending) {
    // The run first, then the event: the order every step locks them in. The run by its id too: the statement is
    // prepared once for every run, and its generic plan may otherwise look runs up by status and version (an index
    // scan over every run in that status) rather than by the event's run.
    ctes.push(sql`ok AS (
      SELECT 1 FROM ${run ? sql`"Run" r JOIN "RunEvent" ev ON ev."runId" = r."id" AND r."id" = ${run.id}::uuid AND r."version" = ${run.version} AND r."status" = ${run.status}::"RunStatus"` : sql`"RunEvent" ev`}
      WHERE ev."id" = ${eventId}::uuid AND ev."status" = 'pending' FOR UPDATE)`)
  }
  // Every other write is guarded by the event's update (`EXISTS (SELECT 1 FROM e)`): nothing happens for an event
  // that is no longer pending.
  ctes.push(sql`e AS (UPDATE "RunEvent" SET ${join(sets, ', ')} WHERE "id" = ${eventId}::uuid AND "status" = 'pending'${pending ? sql` AND EXISTS (SELECT 1 FROM ok)` : Prisma.empty} RETURNING *)`)
  if (run) {
    const runSets = [
      ...(run.to !== undefined
        ? [
            ...RUN_TIMESTAMPS.filter((k) => run.data?.[k] !== undefined).map((k) => sql`${raw(`"${k}"`)} = ${run.data?.[k] ?? null}::timestamptz`),
            sql`"status" = ${run.to}::"RunStatus"`,
            sql`"version" = "version" + 1`,
          ]
        : []),
      ...(run.permission !== undefined ? [sql`"permission" = ${JSON.stringify(run.permission)}::jsonb`] : []),
      ...(run.requestExpiresAt !== undefined ? [sql`"requestExpiresAt" = ${run.requestExpiresAt}::timestamptz`] : []),
      sql`"updatedAt" = ${new Date()}::timestamptz`,
    ]
    ctes.push(sql`m AS (
      UPDATE "Run" SET ${join(runSets, ', ')}
      WHERE "id" = ${run.id}::uuid AND "version" = ${run.version} AND "status" = ${run.status}::"RunStatus" AND EXISTS (SELECT 1 FROM e)
      RETURNING ${returnsAfter ? raw(AFTER_RUN_COLUMNS.map((c) => `"${c}"`).join(', ')) : sql`1`})`)
  }
  const { grant, lease, chain } = also
  if (chain?.links.length) {
    const links = JSON.stringify(chain.links.map((l) => ({ destinations: l.destinations, timeout: l.timeout })))
    const posted = chain.firstPosted
    ctes.push(sql`n AS (
      INSERT INTO "RunNotification" ("id", "orgId", "runId", "index", "destinations", "timeoutSeconds", "createdAt", "postedAt", "dueAt")
      SELECT gen_random_uuid(), ${chain.orgId}::uuid, ${chain.runId}::uuid, (x."ord" - 1)::int, x."link"->'destinations', (x."link"->>'timeout')::int, ${new Date()}::timestamptz,
             CASE WHEN x."ord" = 1 THEN ${posted?.at ?? null}::timestamptz END, CASE WHEN x."ord" = 1 THEN ${posted?.dueAt ?? null}::timestamptz END
      FROM jsonb_array_elements(${links}::jsonb) WITH ORDINALITY AS x("link", "ord")
      WHERE EXISTS (SELECT 1 FROM e)
      ON CONFLICT ("runId", "index") DO NOTHING
      RETURNING 1)`)
  }
  if (grant) {
    const grantSets = grant.applied
      ? sql`"applied" = true, "appliedAt" = ${grant.at}::timestamptz, "removedAt" = NULL`
      : sql`"applied" = false, "removedAt" = ${grant.at}::timestamptz`
    ctes.push(sql`g AS (UPDATE "Grant" SET ${grantSets}, "updatedAt" = ${new Date()}::timestamptz WHERE "id" = ${grant.id}::uuid AND EXISTS (SELECT 1 FROM e) RETURNING 1)`)
  }
  if (lease) {
    ctes.push(sql`l AS (
      INSERT INTO "GrantLease" ("id", "grantId", "runId", "startedAt", "expiresAt")
      SELECT ${randomUUID()}::uuid, ${lease.grantId}::uuid, ${lease.runId}::uuid, ${lease.startedAt}::timestamptz, ${lease.expiresAt}::timestamptz
      WHERE EXISTS (SELECT 1 FROM e)
      RETURNING 1)`)
  }
  const next = also.next
  const nextEventId = next ? randomUUID() : undefined
  const nextInsert = next && nextEventId ? insertEvent(nextEventId, next.run, next, new Date(), pending ? sql`WHERE EXISTS (SELECT 1 FROM e)` : undefined) : undefined
  const moved = run ? sql`(SELECT count(*)::int FROM m)` : sql`NULL::int`

  if (pending) {
    const completed = completedEntryInput(pending, outcome)
    ctes.push(sql`staged AS (${stageAuditSql(completed, buildLogEntry(completed), sql`AND EXISTS (SELECT 1 FROM e)`)})`)
    if (nextInsert) ctes.push(sql`nx AS (${nextInsert})`)
    const after = returnsAfter
      ? sql`, ${runEventColumns('nx')}, ${raw(AFTER_RUN_COLUMNS.map((c) => `m."${c}" AS "run_${c}"`).join(', '))} FROM (SELECT 1) AS one LEFT JOIN nx ON true LEFT JOIN m ON true`
      : Prisma.empty
    const [row] = await tx.query<{ done: number; moved: number | null } & Record<string, unknown>>(
      sql`WITH ${join(ctes, ', ')} SELECT (SELECT count(*)::int FROM e) AS "done", ${moved} AS "moved"${after}`,
    )
    if (row?.done === 1) {
      if (run && row.moved !== 1) throw new Error(`run ${run.id} was locked at version ${run.version} yet not updated`)
      return returnsAfter && row.id
        ? { nextEventId, after: { next: eventOf(row), run: { status: row.run_status as Run['status'], version: row.run_version as number, permission: row.run_permission as Run['permission'] } } }
        : { nextEventId }
    }
    // Nothing written: the event is done, or the run moved on (a fresh read says which).
    const [now] = await tx.query<{ status: string; version: number; runStatus: string }>(sql`
      SELECT e."status"::text AS "status", r."version", r."status"::text AS "runStatus" FROM "RunEvent" e JOIN "Run" r ON r."id" = e."runId" WHERE e."id" = ${eventId}::uuid`)
    if (!now || now.status !== 'pending') return undefined
    throw new RunChangedError(`run ${run?.id ?? '?'} changed (now ${now.runStatus}, version ${now.version}) before its event ${eventId} completed`)
  }

  const [row] = await tx.query<EntryInputRow & { moved: number | null }>(sql`
    WITH ${join(ctes, ', ')}
    SELECT ${raw(ENTRY_INPUT_COLUMNS)}, ${moved} AS "moved" FROM e ${raw(ENTRY_INPUT_JOINS)}`)
  if (!row) return undefined
  if (run && row.moved !== 1) throw new RunChangedError(`run ${run.id} changed while ${run.to ? `moving it from ${run.status} to ${run.to}` : 'completing its event'}`)
  await appendAudit(tx, entryInputOf(row), nextInsert)
  return { nextEventId }
}

/** The INSERT of a new pending event of a run (the run's next `seq`), returning the row; `from` may filter it. */
function insertEvent(id: string, run: Pick<Run, 'id' | 'orgId'>, event: NewEvent, createdAt: Date, from?: Prisma.Sql): Prisma.Sql {
  return insertEventFrom(id, { id: sql`${run.id}::uuid`, orgId: sql`${run.orgId}::uuid` }, event, createdAt, { returning: runEventColumns(), from })
}

/**
 * The INSERT of a new pending event of the run whose id and org are the SQL expressions `run` (e.g. columns of a CTE
 * named in `from`, which may also filter: `FROM locked WHERE …`), at the run's next `seq`.
 */
export function insertEventFrom(
  id: string,
  run: { readonly id: Prisma.Sql; readonly orgId: Prisma.Sql },
  event: NewEvent,
  createdAt: Date,
  options: { readonly from?: Prisma.Sql; readonly returning?: Prisma.Sql } = {},
): Prisma.Sql {
  return sql`
    INSERT INTO "RunEvent" ("id", "orgId", "runId", "seq", "name", "actorId", "submittedById", "channel", "fields", "status", "attempts", "createdAt")
    SELECT ${id}::uuid, ${run.orgId}, ${run.id}, (SELECT COALESCE(MAX(p."seq"), 0) + 1 FROM "RunEvent" p WHERE p."runId" = ${run.id}),
           ${event.name}, ${event.actorId}::uuid, ${event.submittedById ?? null}::uuid, ${event.channel}::"EventChannel",
           ${JSON.stringify(event.fields ?? {})}::jsonb, 'pending', 0, ${createdAt}::timestamptz
    ${options.from ?? Prisma.empty}
    RETURNING ${options.returning ?? sql`"id"`}`
}
