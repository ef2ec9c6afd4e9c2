/**
 * The run and event writes every step is made of. All run in the caller's transaction:
 * lock the run, append or complete an event, compare-and-set the run's status on its version, audit.
 */
import type { Prisma, RunEvent, Run, Tx } from '@opensym/db'
import type { EventChannel, RunStatus, Step } from '@opensym/domain'
import { recordAudit } from './audit.js'

/** Locks the run row until the transaction ends and returns it as committed now. */
export async function lockRun(tx: Tx, runId: string): Promise<Run> {
  await tx.$queryRaw`SELECT 1 FROM "Run" WHERE "id" = ${runId}::uuid FOR UPDATE`
  return tx.run.findUniqueOrThrow({ where: { id: runId } })
}

/** The run changed under a step: the transaction must roll back; the step's retry re-reads everything. */
export class RunChangedError extends Error {
  override readonly name = 'RunChangedError'
}

/** Moves the run from its current status to `to`, only if nobody changed it since it was read (same version). */
export async function casRun(tx: Tx, run: Pick<Run, 'id' | 'version' | 'status'>, to: RunStatus, data: Prisma.RunUpdateManyMutationInput = {}): Promise<void> {
  const { count } = await tx.run.updateMany({
    where: { id: run.id, version: run.version, status: run.status },
    data: { ...data, status: to, version: { increment: 1 } },
  })
  if (count !== 1) throw new RunChangedError(`run ${run.id} changed while moving it from ${run.status} to ${to}`)
}

export interface NewEvent {
  readonly name: Step
  readonly actorId: string | null
  readonly submittedById?: string | null
  readonly channel: EventChannel
  readonly fields?: Record<string, unknown>
}

/** Appends a pending event to a run the transaction has locked. */
export async function appendEvent(tx: Tx, run: Pick<Run, 'id' | 'orgId'>, event: NewEvent): Promise<RunEvent> {
  const { _max } = await tx.runEvent.aggregate({ where: { runId: run.id }, _max: { seq: true } })
  return tx.runEvent.create({
    data: {
      orgId: run.orgId,
      runId: run.id,
      seq: (_max.seq ?? 0) + 1,
      name: event.name,
      actorId: event.actorId,
      submittedById: event.submittedById ?? null,
      channel: event.channel,
      fields: (event.fields ?? {}) as Prisma.InputJsonValue,
    },
  })
}

export interface EventOutcome {
  readonly status: 'success' | 'error'
  readonly error?: string | null
  readonly output?: unknown
  readonly verified?: boolean | null
  readonly attempts?: number
  readonly completedAt: Date
}

/** Completes a pending event exactly once and writes its audit entry (last: it takes the org's chain lock). */
export async function completeEvent(tx: Tx, eventId: string, outcome: EventOutcome): Promise<void> {
  const { count } = await tx.runEvent.updateMany({
    where: { id: eventId, status: 'pending' },
    data: {
      status: outcome.status,
      error: outcome.error ?? null,
      ...(outcome.output !== undefined ? { output: outcome.output as Prisma.InputJsonValue } : {}),
      ...(outcome.verified !== undefined ? { verified: outcome.verified } : {}),
      ...(outcome.attempts !== undefined ? { attempts: outcome.attempts } : {}),
      completedAt: outcome.completedAt,
    },
  })
  if (count !== 1) throw new RunChangedError(`event ${eventId} is no longer pending`)
  await recordAudit(tx, eventId)
}
