/** The delivery rules as plain functions: batches, the cursor, waves, backoff, partial failures. */
import { describe, expect, it } from 'vitest'
import { backoffMs, deliverBatch, DeliveryError, isDead, mapLimit, scannedTo, takeBatch, waves, type OutgoingEntry, type RecordFailure, type Sender } from '../src/batching.js'
import { s3Key, segmentTrack } from '../src/destinations/index.js'

const entry = (seq: number, runId: string, size = 10): OutgoingEntry => {
  const e = { id: `e${seq}`, pad: 'x'.repeat(Math.max(0, size - 20)) }
  return { seq: BigInt(seq), id: `e${seq}`, runId, entry: e, json: JSON.stringify(e) }
}

describe('takeBatch', () => {
  it('takes the longest prefix within the count and byte limits, but at least one entry', () => {
    const list = [entry(1, 'a', 100), entry(2, 'b', 100), entry(3, 'a', 100), entry(4, 'c', 100)]
    const bytes = Buffer.byteLength(list[0]!.json)
    expect(takeBatch(list, { maxEntries: 3, maxBytes: 10_000 }).map((e) => e.id)).toEqual(['e1', 'e2', 'e3'])
    expect(takeBatch(list, { maxEntries: 10, maxBytes: bytes * 2 }).map((e) => e.id)).toEqual(['e1', 'e2'])
    expect(takeBatch(list, { maxEntries: 10, maxBytes: 5 }).map((e) => e.id)).toEqual(['e1'])
    expect(takeBatch([], { maxEntries: 10, maxBytes: 5 })).toEqual([])
  })
})

describe('scannedTo', () => {
  it('moves to the chain head when the read was complete and all of it was sent', () => {
    expect(scannedTo(4n, [entry(6, 'a'), entry(9, 'b')], 10, [entry(6, 'a'), entry(9, 'b')], 12n)).toBe(12n)
    expect(scannedTo(4n, [], 10, [], 12n)).toBe(12n)
    expect(scannedTo(4n, [], 10, [], 0n)).toBe(4n)
  })
  it('stops at the last entry sent when the read was cut at its limit or the batch at its size', () => {
    expect(scannedTo(4n, [entry(6, 'a'), entry(9, 'b')], 2, [entry(6, 'a'), entry(9, 'b')], 12n)).toBe(9n)
    expect(scannedTo(4n, [entry(6, 'a'), entry(9, 'b')], 10, [entry(6, 'a')], 12n)).toBe(6n)
  })
})

describe('waves', () => {
  it('puts the k-th entry of each run in wave k, in batch order', () => {
    const w = waves([entry(1, 'a'), entry(2, 'a'), entry(3, 'b'), entry(4, 'a'), entry(5, 'c'), entry(6, 'b')])
    expect(w.map((x) => x.map((e) => e.id))).toEqual([['e1', 'e3', 'e5'], ['e2', 'e6'], ['e4']])
  })
})

describe('backoff and dead-lettering', () => {
  it('doubles from the base up to the cap, honouring a longer Retry-After up to the cap', () => {
    const p = { baseMs: 1000, maxMs: 60_000 }
    expect([1, 2, 3, 7, 8, 100].map((n) => backoffMs(n, p))).toEqual([1000, 2000, 4000, 60_000, 60_000, 60_000])
    expect(backoffMs(1, p, 30_000)).toBe(30_000)
    expect(backoffMs(1, p, 3_600_000)).toBe(60_000)
    expect(backoffMs(3, p, 10)).toBe(4000)
    expect([isDead(2, 3), isDead(3, 3)]).toEqual([false, true])
  })
})

/** A records sender that refuses what `refuse` says, per call, and records what it was given. */
function recordingSender(refuse: (ids: string[], call: number) => Array<Omit<RecordFailure, 'message'> & { message?: string }>): Sender & { calls: string[][] } {
  const calls: string[][] = []
  return {
    mode: 'records',
    calls,
    send: async (entries) => {
      const ids = entries.map((e) => e.id)
      calls.push(ids)
      return refuse(ids, calls.length).map((f) => ({ message: 'refused', ...f }))
    },
  }
}

const policy = { partialRetries: 2, partialBackoffMs: 1, maxInlineWaitMs: 1000, sleep: async () => undefined }

describe('deliverBatch', () => {
  it('sends wave by wave and re-sends only the refused records of a wave before the next', async () => {
    const sender = recordingSender((ids, call) => (call === 1 ? [{ index: ids.indexOf('e3'), code: 'ServiceUnavailableException' }] : []))
    const batch = [entry(1, 'a'), entry(2, 'a'), entry(3, 'b'), entry(4, 'b'), entry(5, 'c')]
    expect(await deliverBatch(sender, batch, policy)).toEqual({ calls: 3 })
    expect(sender.calls).toEqual([['e1', 'e3', 'e5'], ['e3'], ['e2', 'e4']])
  })

  it('gives the attempt up after the last re-send, or when a record asks to wait longer than it may', async () => {
    const always = recordingSender((ids) => [{ index: ids.length - 1, code: 'InternalFailure' }])
    const err = await deliverBatch(always, [entry(1, 'a'), entry(2, 'b')], policy).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(DeliveryError)
    expect((err as Error).message).toBe('1 of 1 records refused (first: entry e2: InternalFailure: refused)')
    expect(always.calls).toEqual([['e1', 'e2'], ['e2'], ['e2']])
    const slow = recordingSender(() => [{ index: 0, code: 'http_429', retryAfterMs: 30_000 }])
    const late = (await deliverBatch(slow, [entry(1, 'a')], policy).catch((e: unknown) => e)) as DeliveryError
    expect(late.retryAfterMs).toBe(30_000)
    expect(slow.calls).toHaveLength(1)
  })

  it('sends a whole batch in one call in order', async () => {
    const calls: string[][] = []
    const whole: Sender = { mode: 'whole', send: async (entries) => (calls.push(entries.map((e) => e.id)), []) }
    await deliverBatch(whole, [entry(1, 'a'), entry(2, 'a'), entry(3, 'b')], policy)
    expect(calls).toEqual([['e1', 'e2', 'e3']])
    expect(await deliverBatch(whole, [], policy)).toEqual({ calls: 0 })
  })
})

describe('mapLimit', () => {
  it('keeps results in input order with at most `limit` at once', async () => {
    let active = 0
    let most = 0
    const out = await mapLimit([5, 1, 3, 2, 4], 2, async (n) => {
      most = Math.max(most, ++active)
      await new Promise((r) => setTimeout(r, n))
      active--
      return n * 10
    })
    expect(out).toEqual([50, 10, 30, 20, 40])
    expect(most).toBe(2)
  })
})

describe('payloads', () => {
  const e: OutgoingEntry = {
    seq: 42n,
    id: 'id-1',
    runId: 'run-1',
    entry: { id: 'id-1', run: { srn: 'org:run:flow:1:run-1' }, event: { type: 'approve', timestamp: '2026-03-04T05:06:07.000Z' }, actor: { user: 'org:user:normal:u1:latest' } },
    json: '{}',
  }
  it('makes a Segment track with the entry id as messageId and the actor as userId (else the run as anonymousId)', () => {
    expect(segmentTrack(e)).toEqual({ type: 'track', messageId: 'id-1', event: 'sym:approve', userId: 'org:user:normal:u1:latest', timestamp: '2026-03-04T05:06:07.000Z', properties: e.entry })
    expect(segmentTrack({ ...e, entry: { ...e.entry, actor: null } })).toMatchObject({ anonymousId: 'org:run:flow:1:run-1' })
  })
  it('names S3 objects by prefix, org, day of the first entry and seq range', () => {
    expect(s3Key('sym/', 'acme', e, 57n, 0)).toBe('sym/acme/2026/03/04/000000000042-000000000057.ndjson')
  })
})
