/**
 * The run and event writes every step is made of. All run in the caller's transaction:
 * lock the run, append or complete an event, compare-and-set the run's status on its version, audit.
 */
import { randomUUID } from 'node:crypto'
import { Prisma, type RunEvent, type Run, type Tx } from '@opensym/db'
import type { EventChannel, RunStatus, Step } from '@opensym/domain'
import { appendAudit, ENTRY_INPUT_COLUMNS, ENTRY_INPUT_JOINS, entryInputOf, type EntryInputRow } from './audit.js'

const { join, raw, sql } = Prisma

/**
 * Every column of a model, as the generated client knows them, for raw queries (`r."id", r."orgId", …`): the rows
 * are those model queries return, and a statement prepared once per connection keeps its shape across migrations
 * (unlike `*`).
 */
const columnList = (fields: Record<string, string>) => (alias?: string) => raw(Object.values(fields).map((c) => `${alias ? `${alias}.` : ''}"${c}"`).join(', '))
export const runColumns = columnList(Prisma.RunScalarFieldEnum)
export const runEventColumns = columnList(Prisma.RunEventScalarFieldEnum)

/** Locks the run row until the transaction ends and returns it as committed now (one round trip). */
export async function lockRun(tx: Tx, runId: string): Promise<Run> {
  const [run] = await tx.$queryRaw<Run[]>`SELECT ${runColumns()} FROM "Run" WHERE "id" = ${runId}::uuid FOR UPDATE`
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
export async function casRun(tx: Tx, run: Pick<Run, 'id' | 'version' | 'status'>, to: RunStatus, data: RunTimestamps = {}): Promise<void> {
  const sets = RUN_TIMESTAMPS.filter((k) => data[k] !== undefined).map((k) => sql`${raw(`"${k}"`)} = ${data[k] ?? null}::timestamptz`)
  const count = await tx.$executeRaw`
    UPDATE "Run" SET ${join([...sets, sql`"status" = ${to}::"RunStatus"`, sql`"version" = "version" + 1`, sql`"updatedAt" = ${new Date()}::timestamptz`], ', ')}
    WHERE "id" = ${run.id}::uuid AND "version" = ${run.version} AND "status" = ${run.status}::"RunStatus"`
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
export async function appendEvent(tx: Tx, run: Pick<Run, 'id' | 'orgId'>, event: NewEvent): Promise<RunEvent> {
  const [created] = await tx.$queryRaw<RunEvent[]>`
    INSERT INTO "RunEvent" ("id", "orgId", "runId", "seq", "name", "actorId", "submittedById", "channel", "fields", "status", "attempts", "createdAt")
    VALUES (${randomUUID()}::uuid, ${run.orgId}::uuid, ${run.id}::uuid,
            (SELECT COALESCE(MAX("seq"), 0) + 1 FROM "RunEvent" WHERE "runId" = ${run.id}::uuid),
            ${event.name}, ${event.actorId}::uuid, ${event.submittedById ?? null}::uuid, ${event.channel}::"EventChannel",
            ${JSON.stringify(event.fields ?? {})}::jsonb, 'pending', 0, ${new Date()}::timestamptz)
    RETURNING ${runEventColumns()}`
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
}

/**
 * Completes a pending event exactly once and writes its audit entry (last: it takes the org's chain lock). The
 * update returns what the entry is made of, so this is two round trips: update, then append to the chain.
 */
export async function completeEvent(tx: Tx, eventId: string, outcome: EventOutcome): Promise<void> {
  const sets = [
    sql`"status" = ${outcome.status}::"EventStatus"`,
    sql`"error" = ${outcome.error ?? null}`,
    // A null output is stored as JSON null, as Prisma stores it.
    ...(outcome.output !== undefined ? [sql`"output" = ${JSON.stringify(outcome.output)}::jsonb`] : []),
    ...(outcome.verified !== undefined ? [sql`"verified" = ${outcome.verified}`] : []),
    ...(outcome.attempts !== undefined ? [sql`"attempts" = ${outcome.attempts}`] : []),
    ...(outcome.warning !== undefined ? [sql`"warning" = ${outcome.warning}`] : []),
    ...(outcome.addFields && Object.keys(outcome.addFields).length ? [sql`"fields" = "fields" || ${JSON.stringify(outcome.addFields)}::jsonb`] : []),
    sql`"completedAt" = ${outcome.completedAt}::timestamptz`,
  ]
  const [row] = await tx.$queryRaw<EntryInputRow[]>`
    WITH e AS (UPDATE "RunEvent" SET ${join(sets, ', ')} WHERE "id" = ${eventId}::uuid AND "status" = 'pending' RETURNING *)
    SELECT ${raw(ENTRY_INPUT_COLUMNS)} FROM e ${raw(ENTRY_INPUT_JOINS)}`
  if (!row) throw new RunChangedError(`event ${eventId} is no longer pending`)
  await appendAudit(tx, entryInputOf(row))
}
