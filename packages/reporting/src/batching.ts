/**
 * The rules of delivery, as plain functions: which entries make the next batch, in which order they are sent, how
 * long to wait after a failure, when a destination is given up on. Nothing here talks to PostgreSQL, Redis or a
 * destination; `delivery.ts` wires them together.
 *
 * Ordering: a destination receives a run's entries in their audit order, and when an entry is sent again (a retry
 * of a failed record, or a whole batch again after a crash), no later entry of its run has been sent before the
 * entry's first delivery. A consumer that keeps the first copy of each `id` therefore sees every run in order.
 */

/** An audit entry on its way to a destination. */
export interface OutgoingEntry {
  /** Position in the org's audit chain. */
  readonly seq: bigint
  /** The entry's stable id (the §7.2 `id`): every copy of one entry carries it. */
  readonly id: string
  readonly runId: string
  /** The §7.2 log entry. */
  readonly entry: Readonly<Record<string, unknown>>
  /** `entry` as the JSON text that is sent (and counted against size limits). */
  readonly json: string
}

export interface BatchLimits {
  /** Entries per batch. */
  readonly maxEntries: number
  /** Bytes of entry JSON per batch (the destination's per-call limit, with room for framing). */
  readonly maxBytes: number
}

/**
 * The longest prefix of `entries` within `limits`; at least one entry, so that an entry larger than the batch limit
 * is still tried (and fails at the destination, visibly) instead of blocking silently.
 */
export function takeBatch<T extends Pick<OutgoingEntry, 'json'>>(entries: readonly T[], limits: BatchLimits): T[] {
  const out: T[] = []
  let bytes = 0
  for (const e of entries) {
    const size = Buffer.byteLength(e.json)
    if (out.length > 0 && (out.length >= limits.maxEntries || bytes + size > limits.maxBytes)) break
    out.push(e)
    bytes += size
  }
  return out
}

/**
 * How far the cursor may move once `batch` is delivered: past every entry the read returned when the batch holds
 * all of them and the read was not cut short (then nothing between the batch and the chain head belongs to the
 * destination), else to the batch's last entry.
 *
 * @param read the entries read after `cursor` (in seq order, at most `limit`)
 * @param head the org's chain head in the same snapshot as `read` (0n when the org has no entries)
 */
export function scannedTo(cursor: bigint, read: ReadonlyArray<Pick<OutgoingEntry, 'seq'>>, limit: number, batch: ReadonlyArray<Pick<OutgoingEntry, 'seq'>>, head: bigint): bigint {
  const complete = read.length < limit && batch.length === read.length
  if (complete) return head > cursor ? head : cursor
  const last = batch.at(-1)
  return last ? last.seq : cursor
}

/**
 * A batch cut into waves: wave k holds the k-th entry of each run, in batch order. The entries of one wave belong to
 * different runs, so they may be sent together in any order and a failed one retried alone; a wave is sent only
 * once the one before it was delivered.
 */
export function waves<T extends Pick<OutgoingEntry, 'runId'>>(batch: readonly T[]): T[][] {
  const seen = new Map<string, number>()
  const out: T[][] = []
  for (const e of batch) {
    const k = seen.get(e.runId) ?? 0
    seen.set(e.runId, k + 1)
    ;(out[k] ??= []).push(e)
  }
  return out
}

export interface BackoffPolicy {
  /** The wait after the first failure. */
  readonly baseMs: number
  /** The longest wait. */
  readonly maxMs: number
}

/**
 * The wait before the next attempt after `failures` failures in a row (1 = the first): `base · 2^(failures-1)`
 * up to `max`; a longer `Retry-After` from the destination is honoured up to `max` too.
 */
export function backoffMs(failures: number, policy: BackoffPolicy, retryAfterMs?: number): number {
  const exponential = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, Math.min(30, failures - 1)))
  return Math.min(policy.maxMs, Math.max(exponential, retryAfterMs ?? 0))
}

/** Whether a destination that has now failed `failures` times in a row is given up on (until replayed). */
export const isDead = (failures: number, maxAttempts: number): boolean => failures >= maxAttempts

/** One record a destination did not take. */
export interface RecordFailure {
  /** Index into the entries given to `send`. */
  readonly index: number
  /** The destination's code (`ServiceUnavailableException`, `http_503`…). */
  readonly code: string
  readonly message: string
  readonly retryAfterMs?: number | undefined
}

/** A failed delivery attempt. `message` never contains a secret value. */
export class DeliveryError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
    options?: ErrorOptions,
  ) {
    super(message, options)
    this.name = 'DeliveryError'
  }
}

/** How a destination takes entries. */
export type SendMode =
  /** All of a batch in one call, in order; it succeeds or fails as a whole (S3 object, Segment batch, Datadog). */
  | 'whole'
  /** Entries of different runs per call, each accepted or refused on its own (Firehose, Kinesis, one POST per entry). */
  | 'records'

export interface Sender {
  readonly mode: SendMode
  /** Sends entries; for `records`, returns those refused (the rest were taken). Throws when the call failed as a whole. */
  send(entries: readonly OutgoingEntry[]): Promise<readonly RecordFailure[]>
}

export interface RetryPolicy {
  /** Re-sends of a wave's refused records within one attempt. */
  readonly partialRetries: number
  /** Wait before the first re-send; doubles each time. */
  readonly partialBackoffMs: number
  /** A refused record asking to wait longer than this ends the attempt instead (the attempt's backoff takes over). */
  readonly maxInlineWaitMs: number
  readonly sleep?: (ms: number) => Promise<void>
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/**
 * Delivers a batch in order: at once for a `whole` sender, else wave by wave, re-sending only the refused records
 * of a wave (a few times, with a short backoff) before the next wave. Throws a {@link DeliveryError} when the batch
 * could not be delivered in full; then the whole batch is sent again on the next attempt (ids make the copies
 * recognisable).
 */
export async function deliverBatch(sender: Sender, batch: readonly OutgoingEntry[], policy: RetryPolicy): Promise<{ calls: number }> {
  if (batch.length === 0) return { calls: 0 }
  const sleep = policy.sleep ?? defaultSleep
  let calls = 0
  const failOn = (refused: readonly RecordFailure[], pending: readonly OutgoingEntry[]): never => {
    const first = refused[0]!
    const retryAfter = Math.max(0, ...refused.map((f) => f.retryAfterMs ?? 0)) || undefined
    throw new DeliveryError(`${refused.length} of ${pending.length} records refused (first: entry ${pending[first.index]?.id ?? '?'}: ${first.code}: ${first.message})`, retryAfter)
  }
  if (sender.mode === 'whole') {
    calls++
    const refused = await sender.send(batch)
    if (refused.length > 0) failOn(refused, batch)
    return { calls }
  }
  for (const wave of waves(batch)) {
    let pending: readonly OutgoingEntry[] = wave
    for (let attempt = 0; ; attempt++) {
      calls++
      const refused = await sender.send(pending)
      if (refused.length === 0) break
      const wait = Math.max(policy.partialBackoffMs * 2 ** attempt, ...refused.map((f) => f.retryAfterMs ?? 0))
      if (attempt >= policy.partialRetries || wait > policy.maxInlineWaitMs) failOn(refused, pending)
      const indexes = new Set(refused.map((f) => f.index))
      pending = pending.filter((_, i) => indexes.has(i))
      await sleep(wait)
    }
  }
  return { calls }
}

/** Runs `fn` over `items` with at most `limit` at once; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const lane = async () => {
    for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i]!, i)
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane))
  return out
}
