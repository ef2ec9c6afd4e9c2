/**
 * Reading the audit trail: an org's log entries in chain order, filtered, a page at a time. Pages are keyed by the
 * chain position (`seq`), which only grows, so entries appended while a client pages through never shift a page.
 */
import { Prisma, type DbOrTx } from '@opensym/db'

export const DEFAULT_AUDIT_LIMIT = 100
export const MAX_AUDIT_LIMIT = 1000

export interface AuditFilter {
  readonly runId?: string | undefined
  /** A flow id, matched against the flow the run was started from. */
  readonly flowId?: string | undefined
  /** A flow slug, matched against the runs' flow slug, so runs of a deleted or re-created flow are found too. */
  readonly flowSlug?: string | undefined
  /** The entry's actor: the user who caused the event. */
  readonly userId?: string | undefined
  readonly eventType?: string | undefined
  /** Inclusive. */
  readonly since?: Date | undefined
  /** Exclusive. */
  readonly until?: Date | undefined
  /** Only entries after this chain position (from a cursor). */
  readonly afterSeq?: bigint | undefined
  readonly limit: number
}

export interface AuditPage {
  readonly entries: unknown[]
  /** The position of the last entry returned when more entries match; undefined on the last page. */
  readonly nextSeq: bigint | undefined
}

/** One page of an org's audit entries (the stored §7.2 JSON), oldest first. */
export async function queryAudit(db: DbOrTx, orgId: string, f: AuditFilter): Promise<AuditPage> {
  const conditions = [Prisma.sql`a."orgId" = ${orgId}::uuid`]
  if (f.afterSeq !== undefined) conditions.push(Prisma.sql`a."seq" > ${f.afterSeq}`)
  if (f.runId !== undefined) conditions.push(Prisma.sql`a."runId" = ${f.runId}::uuid`)
  if (f.flowId !== undefined) conditions.push(Prisma.sql`a."flowId" = ${f.flowId}::uuid`)
  if (f.flowSlug !== undefined) {
    conditions.push(Prisma.sql`a."runId" IN (SELECT r."id" FROM "Run" r WHERE r."orgId" = ${orgId}::uuid AND r."flowSlug" = ${f.flowSlug})`)
  }
  if (f.userId !== undefined) conditions.push(Prisma.sql`a."userId" = ${f.userId}::uuid`)
  if (f.eventType !== undefined) conditions.push(Prisma.sql`a."eventType" = ${f.eventType}`)
  if (f.since !== undefined) conditions.push(Prisma.sql`a."timestamp" >= ${f.since}`)
  if (f.until !== undefined) conditions.push(Prisma.sql`a."timestamp" < ${f.until}`)
  // One more than asked for tells whether there is a next page.
  const rows = await db.$queryRaw<Array<{ seq: bigint; entry: unknown }>>`
    SELECT a."seq", a."entry" FROM "AuditEntry" a
    WHERE ${Prisma.join(conditions, ' AND ')}
    ORDER BY a."seq" ASC
    LIMIT ${f.limit + 1}`
  const page = rows.slice(0, f.limit)
  return { entries: page.map((r) => r.entry), nextSeq: rows.length > f.limit ? page.at(-1)?.seq : undefined }
}

const CURSOR_PREFIX = 'audit.v1.'

/** An opaque cursor for the page after chain position `seq`. */
export function encodeAuditCursor(seq: bigint): string {
  return Buffer.from(`${CURSOR_PREFIX}${seq}`).toString('base64url')
}

/** The chain position in a cursor from {@link encodeAuditCursor}, or undefined when it is not one. */
export function decodeAuditCursor(cursor: string): bigint | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) return undefined
  const text = Buffer.from(cursor, 'base64url').toString()
  const match = new RegExp(`^${CURSOR_PREFIX.replace(/\./g, '\\.')}(0|[1-9][0-9]{0,18})$`).exec(text)
  return match ? BigInt(match[1]!) : undefined
}
