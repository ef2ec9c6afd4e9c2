/**
 * The grant ledger's keys and rows. A grant is access in a target system — (identity there, target) — independent
 * of the runs that hold it: two runs for the same user and target share one grant, each with its own lease.
 */
import { createHash, randomUUID } from 'node:crypto'
import { Prisma, type Run, type Sql } from '@opensym/db'
import { canonicalJson } from './audit.js'
import type { StrategySnapshot, TargetSnapshot } from './strategy.js'

/**
 * What identifies the access: the strategy type, its integration and settings (which system; for `http`, which
 * URL), the target (its id, type and settings with field bindings applied: a dynamic target is one grant per bound
 * value) and the user's identity there. Two targets are never merged even with equal settings — the payload names
 * the target, and a receiver may act on it. Readable prefix, hashed rest.
 */
export function grantKey(strategy: StrategySnapshot, target: TargetSnapshot, identity: string): string {
  const material = canonicalJson({
    strategy: { type: strategy.type, integration: strategy.integration?.id ?? null, settings: strategy.settings },
    target: { id: target.id, type: target.type, settings: target.settings },
    identity,
  })
  return `${strategy.type}:${createHash('sha256').update(material).digest('hex')}`
}

export interface LockedGrant {
  readonly id: string
  readonly applied: boolean
  readonly identity: string
}

/** What escalating reads of the run under its lock: where it stands, and how long its access lasts. */
export type LockedRun = Pick<Run, 'id' | 'version' | 'status' | 'durationSeconds'>
type LockedRunRow = { runVersion: number; runStatus: Run['status']; runDurationSeconds: number | null }

/**
 * Creates the grant row if needed and locks it until the transaction ends — calls for one grant never overlap — then
 * locks the run `runId` and its event `eventId` (the order every step locks them in: grant, run, event), returning
 * the grant, the run as committed now ({@link LockedRun}) and the event's status (whether it is still pending under
 * these locks). One round trip: an insert that, on conflict, "updates" the existing row to itself, which locks it
 * like `FOR UPDATE` (waiting for a holder to commit); the run and the event are locked above the join that needs the
 * grant's row, so only after it, and as they are after any wait (a locked row is read again once its holder commits).
 */
export async function lockGrantByKey(
  tx: Sql,
  orgId: string,
  key: string,
  strategyType: string,
  identity: string,
  runId: string,
  eventId: string,
): Promise<{ grant: LockedGrant; run: LockedRun; eventPending: boolean }> {
  const [row] = await tx.query<LockedGrant & LockedRunRow & { eventStatus: string }>(Prisma.sql`
    WITH g AS (
      INSERT INTO "Grant" ("id", "orgId", "key", "strategyType", "identity", "updatedAt")
      VALUES (${randomUUID()}::uuid, ${orgId}::uuid, ${key}, ${strategyType}, ${identity}, now())
      ON CONFLICT ("orgId", "key") DO UPDATE SET "key" = EXCLUDED."key"
      RETURNING "id", "applied", "identity"
    )
    SELECT g."id", g."applied", g."identity", r."version" AS "runVersion", r."status"::text AS "runStatus", r."durationSeconds" AS "runDurationSeconds",
           ev."status"::text AS "eventStatus"
    FROM g JOIN "Run" r ON r."id" = ${runId}::uuid JOIN "RunEvent" ev ON ev."id" = ${eventId}::uuid AND ev."runId" = r."id"
    FOR UPDATE OF r, ev`)
  if (!row) throw new Error(`grant ${key}, run ${runId} or its event ${eventId} vanished while being locked`)
  return {
    grant: { id: row.id, applied: row.applied, identity: row.identity },
    run: { id: runId, version: row.runVersion, status: row.runStatus, durationSeconds: row.runDurationSeconds },
    eventPending: row.eventStatus === 'pending',
  }
}

export async function lockGrant(tx: Sql, grantId: string): Promise<LockedGrant> {
  const [grant] = await tx.query<LockedGrant>(Prisma.sql`SELECT "id", "applied", "identity" FROM "Grant" WHERE "id" = ${grantId}::uuid FOR UPDATE`)
  if (!grant) throw new Error(`grant ${grantId} not found`)
  return grant
}
