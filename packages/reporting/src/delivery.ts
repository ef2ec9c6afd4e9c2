/**
 * Delivery to one log destination, one batch at a time, with PostgreSQL as the only record of progress.
 *
 * A destination's `LogDelivery.deliveredSeq` is a cursor over its org's audit chain (`AuditEntry.seq`): every entry
 * up to it was delivered or belongs to none of the destination's environments. Entries become visible in seq order
 * (appending locks the org's chain head until commit), so nothing can appear behind the cursor later. A pump reads
 * the entries after the cursor that belong to the destination's environments (with the chain head, in the same
 * snapshot), sends them (see `batching.ts` for order and partial failures), and only then moves the cursor, with a
 * compare-and-set on its old value. A crash between the two sends the batch again: at least once, never lost.
 *
 * A failed attempt counts in `failures` and sets `nextAttemptAt` (exponential backoff); after `maxAttempts` in a
 * row the delivery is `dead` until {@link replayDelivery} (admin command). Nothing is skipped or dropped meanwhile.
 */
import { Prisma, type Db } from '@opensym/db'
import { Aws, createSecretResolver, guardedFetch, silentLogger, SETTINGS_URL_POLICY, type EngineLogger } from '@opensym/engine'
import { backoffMs, deliverBatch, DeliveryError, isDead, scannedTo, takeBatch, type BackoffPolicy, type OutgoingEntry, type RetryPolicy } from './batching.js'
import { builtinDestinations, type DestinationFactory, type DestinationRecord, type ServiceEndpoints } from './destinations/index.js'
import { recordDeliveryFailure, recordDeliveryLag } from '@opensym/metrics'

export interface DeliveryOptions {
  readonly db: Db
  /** AWS clients for the Kinesis, Firehose and S3 destinations (and aws_secrets_manager secrets). Default: `new Aws()`. */
  readonly aws?: Aws
  readonly endpoints?: ServiceEndpoints
  /** Default: a fetch that never connects to link-local (cloud metadata) or reserved addresses ({@link SETTINGS_URL_POLICY}). */
  readonly fetch?: typeof fetch
  /** Where `env` secret sources read. Default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>
  readonly now?: () => number
  /** Adapters by destination type. Default {@link builtinDestinations}. */
  readonly destinations?: Readonly<Record<string, DestinationFactory>>
  /** Entries read per pump (before the destination's own batch limits). Default 500. */
  readonly readLimit?: number
  /** Failed attempts in a row before a destination is dead. Default 20 (about an hour with the default backoff). */
  readonly maxAttempts?: number
  /** Default 1 s doubling up to 5 min. */
  readonly backoff?: BackoffPolicy
  /** Re-sends of refused records within an attempt. Default 3 re-sends from 100 ms, waiting at most 5 s. */
  readonly retry?: Partial<RetryPolicy>
  /** Per HTTP call. Default 10 s. */
  readonly timeoutMs?: number
  readonly logger?: EngineLogger
}

export type PumpOutcome =
  /** Nothing (more) to send now. */
  | { readonly kind: 'idle' }
  /** A batch was delivered (`entries` of them), or skipped over; pump again. */
  | { readonly kind: 'delivered'; readonly entries: number; readonly to: bigint }
  /** The attempt failed; the next one is due at `retryAt`. */
  | { readonly kind: 'failed'; readonly error: string; readonly failures: number; readonly retryAt: Date }
  /** In backoff after an earlier failure. */
  | { readonly kind: 'waiting'; readonly until: Date }
  /** Given up on until replayed. */
  | { readonly kind: 'dead'; readonly error: string | null }
  /** The destination no longer exists. */
  | { readonly kind: 'gone' }

interface ReadRow {
  head: bigint
  seq: bigint | null
  id: string | null
  runId: string | null
  entry: string | null
}

/**
 * The entries after the cursor that belong to the destination's environments, in seq order, and the chain head in
 * the same snapshot (one statement). Always one row at least: the head, with null entry columns when none is due.
 */
const READ_SQL = `
  WITH head AS (SELECT "seq" FROM "AuditChainHead" WHERE "orgId" = $1::uuid),
  batch AS (
    SELECT a."seq", a."id", a."runId", a."entry"::text AS "entry"
    FROM "AuditEntry" a JOIN "Run" r ON r."id" = a."runId"
    WHERE a."orgId" = $1::uuid AND a."seq" > $2 AND a."seq" <= COALESCE((SELECT "seq" FROM head), 0)
      AND r."environmentId" IN (SELECT "environmentId" FROM "EnvironmentLogDestination" WHERE "logDestinationId" = $3::uuid)
    ORDER BY a."seq"
    LIMIT $4
  )
  SELECT COALESCE((SELECT "seq" FROM head), 0)::bigint AS "head", b."seq", b."id"::text AS "id", b."runId"::text AS "runId", b."entry"
  FROM (SELECT 1) one LEFT JOIN batch b ON true
  ORDER BY b."seq"`

const asRecord = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {})

/** Keeps error texts short in the table and the log. */
const clip = (s: string) => (s.length > 1000 ? `${s.slice(0, 1000)}…` : s)

export class LogDeliverer {
  private readonly db: Db
  private readonly aws: Aws
  private readonly ownAws: boolean
  private readonly now: () => number
  private readonly factories: Readonly<Record<string, DestinationFactory>>
  private readonly readLimit: number
  private readonly maxAttempts: number
  private readonly backoff: BackoffPolicy
  private readonly retry: RetryPolicy
  private readonly logger: EngineLogger
  /** Destination URLs come from settings an org's admins set. */
  private readonly fetch: typeof fetch

  constructor(private readonly o: DeliveryOptions) {
    this.db = o.db
    this.ownAws = !o.aws
    this.aws = o.aws ?? new Aws()
    this.now = o.now ?? Date.now
    this.factories = o.destinations ?? builtinDestinations
    this.readLimit = o.readLimit ?? 500
    this.maxAttempts = o.maxAttempts ?? 20
    this.backoff = o.backoff ?? { baseMs: 1000, maxMs: 300_000 }
    this.retry = { partialRetries: 3, partialBackoffMs: 100, maxInlineWaitMs: 5000, ...o.retry }
    this.logger = o.logger ?? silentLogger
    this.fetch = o.fetch ?? guardedFetch(SETTINGS_URL_POLICY)
  }

  /** Sends the next batch of one destination, if any is due; see {@link PumpOutcome}. */
  async pump(destinationId: string): Promise<PumpOutcome> {
    const d = await this.db.logDestination.findUnique({
      where: { id: destinationId },
      select: {
        id: true,
        orgId: true,
        type: true,
        slug: true,
        settings: true,
        org: { select: { slug: true } },
        integration: { select: { id: true, type: true, externalId: true, settings: true } },
        delivery: true,
      },
    })
    if (!d) return { kind: 'gone' }
    let delivery = d.delivery
    if (!delivery) {
      await this.db.logDelivery.createMany({ data: [{ destinationId }], skipDuplicates: true })
      delivery = await this.db.logDelivery.findUniqueOrThrow({ where: { destinationId } })
    }
    if (delivery.status === 'dead') return { kind: 'dead', error: delivery.lastError }
    if (delivery.nextAttemptAt && delivery.nextAttemptAt.getTime() > this.now()) return { kind: 'waiting', until: delivery.nextAttemptAt }

    const cursor = delivery.deliveredSeq
    const rows = await this.db.$queryRawUnsafe<ReadRow[]>(READ_SQL, d.orgId, cursor, destinationId, this.readLimit)
    const head = rows[0]?.head ?? 0n
    const read: OutgoingEntry[] = []
    for (const r of rows) {
      if (r.seq === null || r.id === null || r.runId === null || r.entry === null) continue
      const entry = asRecord(JSON.parse(r.entry))
      read.push({ seq: r.seq, id: r.id, runId: r.runId, entry, json: JSON.stringify(entry) })
    }
    if (read.length === 0) {
      // Nothing of the destination's: move past the org's other entries so the tick stops pointing here.
      if (head > cursor) await this.advance(destinationId, cursor, head, 0)
      return { kind: 'idle' }
    }

    const record: DestinationRecord = {
      id: d.id,
      orgId: d.orgId,
      orgSlug: d.org.slug,
      type: d.type,
      slug: d.slug,
      settings: asRecord(d.settings),
      integration: d.integration ? { ...d.integration, settings: asRecord(d.integration.settings) } : null,
    }
    let batch: OutgoingEntry[]
    try {
      const factory = this.factories[d.type]
      if (!factory) throw new DeliveryError(`log destination ${d.slug}: unknown type "${d.type}"`)
      const destination = await factory(record, {
        secret: createSecretResolver({ db: this.db.sql, orgId: d.orgId, aws: this.aws, env: this.o.env }),
        aws: this.aws,
        endpoints: this.o.endpoints ?? {},
        fetch: this.fetch,
        now: this.now,
        timeoutMs: this.o.timeoutMs ?? 10_000,
      })
      batch = takeBatch(read, destination.limits)
      await deliverBatch(destination, batch, this.retry)
    } catch (e) {
      recordDeliveryFailure(d.type)
      return this.fail(destinationId, cursor, delivery.failures + 1, e)
    }
    const to = scannedTo(cursor, read, this.readLimit, batch, head)
    await this.advance(destinationId, cursor, to, batch.length)
    // Logged → delivered, per entry, on /metrics.
    const now = this.now()
    for (const e of batch) {
      const at = Date.parse(String(asRecord(e.entry.event).timestamp))
      if (Number.isFinite(at)) recordDeliveryLag(d.type, (now - at) / 1000)
    }
    return { kind: 'delivered', entries: batch.length, to }
  }

  /** Moves the cursor from `from` to `to` unless someone else moved it (a replay): then the next pump starts there. */
  private async advance(destinationId: string, from: bigint, to: bigint, entries: number): Promise<void> {
    await this.db.logDelivery.updateMany({
      where: { destinationId, deliveredSeq: from },
      data: {
        deliveredSeq: to,
        failures: 0,
        lastError: null,
        nextAttemptAt: null,
        ...(entries > 0 ? { delivered: { increment: BigInt(entries) }, deliveredAt: new Date(this.now()) } : {}),
      },
    })
  }

  private async fail(destinationId: string, cursor: bigint, failures: number, e: unknown): Promise<PumpOutcome> {
    if (!(e instanceof DeliveryError)) {
      // Not the destination's answer: a bug or the database. The job fails and the tick tries again.
      if (e instanceof Prisma.PrismaClientKnownRequestError || !(e instanceof Error)) throw e
    }
    const message = clip(e instanceof Error ? e.message : String(e))
    const retryAfter = e instanceof DeliveryError ? e.retryAfterMs : undefined
    const dead = isDead(failures, this.maxAttempts)
    const retryAt = new Date(this.now() + backoffMs(failures, this.backoff, retryAfter))
    await this.db.logDelivery.updateMany({
      where: { destinationId, deliveredSeq: cursor, status: 'active' },
      data: { failures, lastError: message, nextAttemptAt: dead ? null : retryAt, ...(dead ? { status: 'dead' } : {}) },
    })
    if (dead) {
      this.logger.error({ destinationId, failures, error: message }, 'log destination is dead after too many failed attempts; replay it with the admin command')
      return { kind: 'dead', error: message }
    }
    this.logger.warn({ destinationId, failures, error: message, retryAt }, 'log delivery attempt failed')
    return { kind: 'failed', error: message, failures, retryAt }
  }

  /**
   * The destinations with entries after their cursor that may be sent now (active, not in backoff), oldest org
   * entries first. A cheap query: the cursor against the chain head.
   */
  async dueDestinations(limit = 1000): Promise<string[]> {
    const rows = await this.db.$queryRaw<Array<{ id: string }>>`
      SELECT d."id"::text AS "id"
      FROM "LogDestination" d
      JOIN "AuditChainHead" h ON h."orgId" = d."orgId"
      LEFT JOIN "LogDelivery" ld ON ld."destinationId" = d."id"
      WHERE h."seq" > COALESCE(ld."deliveredSeq", 0)
        AND (ld."status" IS NULL OR ld."status" = 'active')
        AND (ld."nextAttemptAt" IS NULL OR ld."nextAttemptAt" <= ${new Date(this.now())})
        AND EXISTS (SELECT 1 FROM "EnvironmentLogDestination" e WHERE e."logDestinationId" = d."id")
      LIMIT ${limit}`
    return rows.map((r) => r.id)
  }

  /** Closes the AWS clients when this deliverer made them. */
  close(): void {
    if (this.ownAws) this.aws.destroy()
  }
}
