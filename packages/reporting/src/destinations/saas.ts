/**
 * The SaaS destinations, over plain fetch, each batch in one call (both APIs take a batch whole or refuse it):
 *
 * - `segment`: `POST <host>/v1/batch` with `Authorization: Basic base64("<write key>:")`, the write key read from the
 *   `segment` integration's `settings.write_key_secret` (a `sym_secret` id). One `track` per entry: `event`
 *   `sym:<event type>`, `messageId` the entry id (Segment de-duplicates on it), `timestamp` the event's,
 *   `properties` the entry, `userId` the actor's user SRN (else `anonymousId` the run SRN). Host: the integration's
 *   `settings.api_host` (EU workspaces: `https://events.eu1.segmentapis.com`), else `https://api.segment.io`.
 * - `datadog`: `POST https://http-intake.logs.<settings.site>/api/v2/logs` (site default `datadoghq.com`) with
 *   `DD-API-KEY` from `settings.api_key_secret_id`; one log per entry: `message` the entry's JSON (Datadog parses it
 *   into attributes), `ddsource` `sym`, `service` `settings.service` (default `sym`), `ddtags` `settings.tags`.
 */
import { parseRetryAfter } from '@opensym/engine'
import { Type } from 'typebox'
import { DeliveryError, type OutgoingEntry } from '../batching.js'
import { fetchFailure, parseSettings, readSecret, shownUrl, type DestinationContext, type DestinationFactory } from './types.js'

async function postJson(ctx: DestinationContext, url: URL, headers: Record<string, string>, body: string, ok: (status: number) => boolean): Promise<void> {
  let res: Response
  try {
    res = await ctx.fetch(url, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body, redirect: 'manual', signal: AbortSignal.timeout(ctx.timeoutMs) })
  } catch (e) {
    throw new DeliveryError(`POST ${shownUrl(url)}: ${fetchFailure(e)}`, undefined, { cause: e })
  }
  const text = await res.text().catch(() => '')
  if (ok(res.status)) return
  // Both services answer errors with short JSON that names the problem and never echoes credentials.
  const excerpt = text.replace(/\s+/g, ' ').slice(0, 200)
  throw new DeliveryError(`POST ${shownUrl(url)} answered ${res.status}${excerpt ? `: ${excerpt}` : ''}`, parseRetryAfter(res.headers.get('retry-after'), ctx.now()))
}

const SegmentIntegrationSettings = Type.Object({ write_key_secret: Type.String({ minLength: 1 }), api_host: Type.Optional(Type.String({ pattern: '^https?://' })) })

interface EntryShape {
  run?: { srn?: unknown }
  event?: { type?: unknown; timestamp?: unknown }
  actor?: { user?: unknown } | null
}

/** One Segment `track` call for an entry. */
export function segmentTrack(e: OutgoingEntry): Record<string, unknown> {
  const entry = e.entry as EntryShape
  const user = typeof entry.actor?.user === 'string' ? entry.actor.user : undefined
  return {
    type: 'track',
    messageId: e.id,
    event: `sym:${typeof entry.event?.type === 'string' ? entry.event.type : 'event'}`,
    ...(user ? { userId: user } : { anonymousId: typeof entry.run?.srn === 'string' ? entry.run.srn : e.runId }),
    ...(typeof entry.event?.timestamp === 'string' ? { timestamp: entry.event.timestamp } : {}),
    properties: e.entry,
  }
}

export const segmentDestination: DestinationFactory = async (record, ctx) => {
  const integration = record.integration
  if (!integration || integration.type !== 'segment') {
    throw new DeliveryError(`segment log destination ${record.slug}: integration_id must name a segment sym_integration${integration ? ` (it names a "${integration.type}" one)` : ''}`)
  }
  const s = parseSettings<{ write_key_secret: string; api_host?: string }>(SegmentIntegrationSettings, record, integration.settings, 'the segment integration\'s settings')
  const writeKey = await readSecret(ctx, record, 'the segment integration\'s settings.write_key_secret', s.write_key_secret)
  const url = new URL('/v1/batch', s.api_host ?? ctx.endpoints.segment ?? 'https://api.segment.io')
  const auth = `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}`
  return {
    mode: 'whole',
    // 500 KB per batch and 32 KB per event; the properties repeat the entry, so leave room for the envelope.
    limits: { maxEntries: 100, maxBytes: 400_000 },
    send: async (entries) => {
      await postJson(ctx, url, { authorization: auth }, JSON.stringify({ batch: entries.map(segmentTrack), context: { library: { name: 'opensym', version: '1' } } }), (s) => s >= 200 && s < 300)
      return []
    },
  }
}

const DatadogSettings = Type.Object({
  api_key_secret_id: Type.String({ minLength: 1 }),
  site: Type.Optional(Type.String({ pattern: '^[a-z0-9.-]+$' })),
  service: Type.Optional(Type.String()),
  tags: Type.Optional(Type.String()),
})

export const datadogDestination: DestinationFactory = async (record, ctx) => {
  const s = parseSettings<{ api_key_secret_id: string; site?: string; service?: string; tags?: string }>(DatadogSettings, record, record.settings)
  const apiKey = await readSecret(ctx, record, 'settings.api_key_secret_id', s.api_key_secret_id)
  const url = new URL('/api/v2/logs', ctx.endpoints.datadog ?? `https://http-intake.logs.${s.site || 'datadoghq.com'}`)
  const service = s.service || 'sym'
  return {
    mode: 'whole',
    // 1000 logs and 5 MB per call.
    limits: { maxEntries: 1000, maxBytes: 4_000_000 },
    send: async (entries) => {
      const logs = entries.map((e) => ({ ddsource: 'sym', service, ...(s.tags ? { ddtags: s.tags } : {}), message: e.json }))
      await postJson(ctx, url, { 'dd-api-key': apiKey }, JSON.stringify(logs), (status) => status === 202 || status === 200)
      return []
    },
  }
}
