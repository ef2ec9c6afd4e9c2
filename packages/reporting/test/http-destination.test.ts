/** The http destination never lets a secret header value reach a delivery error (which is stored and logged). */
import type { Aws } from '@opensym/engine'
import { describe, expect, it } from 'vitest'
import type { OutgoingEntry } from '../src/batching.js'
import { httpDestination } from '../src/destinations/http.js'
import type { DestinationContext, DestinationRecord } from '../src/destinations/types.js'

const SECRET = 'top-secret-token'

const record: DestinationRecord = {
  id: 'd1',
  orgId: 'o1',
  orgSlug: 'o',
  type: 'http',
  slug: 'audit',
  // Port 9 (discard) on loopback: nothing needs to answer, the request must fail before or at connect.
  settings: { url: 'http://127.0.0.1:9/audit', headers_secret_id: 'headers' },
  integration: null,
}

const entry: OutgoingEntry = { seq: 1n, id: 'e1', runId: 'r1', entry: {}, json: '{}' }

/** Every message a delivery attempt produces: the factory's error, or the refused records'. */
async function messagesFor(headersJson: string): Promise<string[]> {
  const ctx: DestinationContext = {
    secret: async () => headersJson,
    aws: {} as unknown as Aws,
    endpoints: {},
    fetch,
    now: () => Date.now(),
    timeoutMs: 2000,
  }
  try {
    const d = await httpDestination(record, ctx)
    return (await d.send([entry])).map((f) => f.message)
  } catch (e) {
    return [e instanceof Error ? e.message : String(e)]
  }
}

describe('http log destination headers secret', () => {
  it.each([
    ['a NUL', `Bearer ${SECRET}\u0000`],
    ['a control character', `Bearer ${SECRET}\u0007`],
    ['a character fetch cannot send', `Bearer ${SECRET}\u20ac`],
  ])('a value with %s is refused, naming the header but not the value', async (_what, value) => {
    const messages = await messagesFor(JSON.stringify({ Authorization: value }))
    expect(messages.length).toBeGreaterThan(0)
    for (const m of messages) {
      expect(m).not.toContain(SECRET)
      expect(m).toMatch(/header "Authorization"/)
    }
  })
})
