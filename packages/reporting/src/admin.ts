/**
 * What operators see and do about log delivery (`admin log-destinations status|replay`): each destination's
 * cursor, backlog and last error, and replaying — bringing a dead destination back, optionally from an earlier
 * entry so that entries are sent again. The running workers pick a replayed destination up on their next tick.
 */
import type { Db } from '@opensym/db'

export class DeliveryAdminError extends Error {
  override readonly name = 'DeliveryAdminError'
}

export interface DeliveryStatus {
  readonly id: string
  readonly type: string
  readonly slug: string
  readonly environments: readonly string[]
  /** `pending` before the first attempt. */
  readonly status: 'active' | 'dead' | 'pending'
  /** The cursor: every entry of the org up to this seq is done. */
  readonly deliveredSeq: bigint
  /** The org's last audit entry. */
  readonly headSeq: bigint
  /** Entries of the destination's environments after the cursor. */
  readonly backlog: number
  readonly delivered: bigint
  readonly failures: number
  readonly lastError: string | null
  readonly nextAttemptAt: Date | null
  readonly deliveredAt: Date | null
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** The org's destinations matching `destination` (a slug, or an id), optionally of one type. */
async function findDestinations(db: Db, orgId: string, destination?: string, type?: string) {
  const key = destination?.trim()
  return db.logDestination.findMany({
    where: { orgId, ...(type ? { type } : {}), ...(key ? (UUID.test(key) ? { id: key } : { slug: key.toLowerCase() }) : {}) },
    orderBy: [{ type: 'asc' }, { slug: 'asc' }, { id: 'asc' }],
    select: { id: true, type: true, slug: true, delivery: true, environments: { select: { environment: { select: { slug: true } } }, orderBy: { position: 'asc' } } },
  })
}

/** Delivery state of the org's log destinations (all, or those matching a slug or id). */
export async function deliveryStatus(db: Db, o: { orgId: string; destination?: string; type?: string }): Promise<DeliveryStatus[]> {
  const destinations = await findDestinations(db, o.orgId, o.destination, o.type)
  if (o.destination && destinations.length === 0) throw new DeliveryAdminError(`no log destination "${o.destination}" in this organization`)
  const head = (await db.auditChainHead.findUnique({ where: { orgId: o.orgId } }))?.seq ?? 0n
  const out: DeliveryStatus[] = []
  for (const d of destinations) {
    const cursor = d.delivery?.deliveredSeq ?? 0n
    const [row] = await db.$queryRaw<Array<{ n: bigint }>>`
      SELECT count(*) AS "n" FROM "AuditEntry" a JOIN "Run" r ON r."id" = a."runId"
      WHERE a."orgId" = ${o.orgId}::uuid AND a."seq" > ${cursor}
        AND r."environmentId" IN (SELECT "environmentId" FROM "EnvironmentLogDestination" WHERE "logDestinationId" = ${d.id}::uuid)`
    out.push({
      id: d.id,
      type: d.type,
      slug: d.slug,
      environments: d.environments.map((e) => e.environment.slug),
      status: d.delivery?.status ?? 'pending',
      deliveredSeq: cursor,
      headSeq: head,
      backlog: Number(row?.n ?? 0n),
      delivered: d.delivery?.delivered ?? 0n,
      failures: d.delivery?.failures ?? 0,
      lastError: d.delivery?.lastError ?? null,
      nextAttemptAt: d.delivery?.nextAttemptAt ?? null,
      deliveredAt: d.delivery?.deliveredAt ?? null,
    })
  }
  return out
}

export interface ReplayOptions {
  readonly orgId: string
  /** A slug or id; with several destinations of that slug, `type` must tell them apart. */
  readonly destination: string
  readonly type?: string
  /**
   * Send again from this point: an audit seq (that entry and everything after it), or a time (entries recorded from
   * then on). Default: resume where delivery stopped.
   */
  readonly from?: { readonly seq: bigint } | { readonly time: Date }
}

export interface ReplayResult {
  readonly id: string
  readonly type: string
  readonly slug: string
  readonly previousStatus: 'active' | 'dead' | 'pending'
  readonly previousSeq: bigint
  readonly deliveredSeq: bigint
}

/**
 * Makes a destination active again with no failures or backoff, optionally moving its cursor back (or forward) to
 * `from`. Entries are never dropped by this: moving forward past undelivered entries is refused.
 */
export async function replayDelivery(db: Db, o: ReplayOptions): Promise<ReplayResult> {
  const found = await findDestinations(db, o.orgId, o.destination, o.type)
  if (found.length === 0) throw new DeliveryAdminError(`no log destination "${o.destination}"${o.type ? ` of type ${o.type}` : ''} in this organization`)
  if (found.length > 1) {
    throw new DeliveryAdminError(`"${o.destination}" names ${found.length} log destinations (${found.map((d) => `${d.type} ${d.id}`).join(', ')}); give --type or the id`)
  }
  const d = found[0]!
  const previousSeq = d.delivery?.deliveredSeq ?? 0n
  let target = previousSeq
  if (o.from && 'seq' in o.from) {
    if (o.from.seq < 1n) throw new DeliveryAdminError('--from must be an audit entry position (1 or more) or a time')
    target = o.from.seq - 1n
  } else if (o.from) {
    const first = await db.auditEntry.findFirst({ where: { orgId: o.orgId, timestamp: { gte: o.from.time } }, orderBy: { seq: 'asc' }, select: { seq: true } })
    const head = (await db.auditChainHead.findUnique({ where: { orgId: o.orgId } }))?.seq ?? 0n
    // Never past what is not delivered yet: a time after the cursor just resumes.
    const at = first ? first.seq - 1n : head
    target = at < previousSeq ? at : previousSeq
  }
  if (target > previousSeq) throw new DeliveryAdminError(`--from is past entries not yet delivered (the cursor is at ${previousSeq}); replay only moves back`)
  await db.logDelivery.upsert({
    where: { destinationId: d.id },
    create: { destinationId: d.id, deliveredSeq: target },
    update: { deliveredSeq: target, status: 'active', failures: 0, lastError: null, nextAttemptAt: null },
  })
  return { id: d.id, type: d.type, slug: d.slug, previousStatus: d.delivery?.status ?? 'pending', previousSeq, deliveredSeq: target }
}
