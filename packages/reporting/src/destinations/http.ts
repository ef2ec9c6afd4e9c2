/**
 * `http`: each entry POSTed as JSON to `settings.url`, one entry per request (as Sym does), signed like the http
 * strategy: `X-Sym-Timestamp` and `X-Sym-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` with the
 * `sym_secret` named by `settings.hmac_secret_id`, and `Idempotency-Key: <entry id>`. `settings.headers_secret_id`
 * names a `sym_secret` whose value is a JSON object of further headers (`{"Authorization": "Bearer …"}`).
 *
 * Entries of different runs are POSTed concurrently; 2xx is delivered, anything else (or no answer) refused, with
 * the receiver's `Retry-After` honoured.
 */
import { HTTP_HEADERS, parseRetryAfter, signHttpBody } from '@opensym/engine'
import { Type } from 'typebox'
import { mapLimit, type OutgoingEntry, type RecordFailure } from '../batching.js'
import { DeliveryError } from '../batching.js'
import { fetchFailure, parseSettings, readSecret, shownUrl, type DestinationFactory } from './types.js'

export const HTTP_DESTINATION_USER_AGENT = 'OpenSym-Log-Destination/1'
/** POSTs in flight at once per destination. */
const CONCURRENCY = 8

const HttpSettings = Type.Object({
  url: Type.String({ pattern: '^https?://' }),
  hmac_secret_id: Type.Optional(Type.String()),
  headers_secret_id: Type.Optional(Type.String()),
  timeout_seconds: Type.Optional(Type.String({ pattern: '^\\s*\\d{1,2}\\s*$' })),
})
interface HttpSettings {
  url: string
  hmac_secret_id?: string
  headers_secret_id?: string
  timeout_seconds?: string
}

/** Header names a headers secret may not set: they are the signature's, or the transport's. */
const RESERVED = new Set(['content-type', 'content-length', 'host', 'transfer-encoding', 'connection', HTTP_HEADERS.idempotencyKey, HTTP_HEADERS.timestamp, HTTP_HEADERS.signature])
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
/**
 * A header value fetch accepts (RFC 9110 field-value bytes). Checked here because fetch's own refusal quotes the
 * value in its message, which would put the secret into the delivery error.
 */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/

export const httpDestination: DestinationFactory = async (record, ctx) => {
  const s = parseSettings<HttpSettings>(HttpSettings, record, record.settings)
  const url = new URL(s.url)
  if (url.username || url.password) throw new DeliveryError(`http log destination ${record.slug}: settings.url must not contain credentials; use settings.headers_secret_id`)
  const timeoutMs = s.timeout_seconds ? Math.min(60, Math.max(1, Number(s.timeout_seconds))) * 1000 : ctx.timeoutMs
  const hmac = s.hmac_secret_id ? await readSecret(ctx, record, 'settings.hmac_secret_id', s.hmac_secret_id) : undefined
  const extra: Record<string, string> = {}
  if (s.headers_secret_id) {
    const raw = await readSecret(ctx, record, 'settings.headers_secret_id', s.headers_secret_id)
    let parsed: unknown
    try {
      parsed = JSON.parse(raw)
    } catch {
      parsed = undefined
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new DeliveryError(`http log destination ${record.slug}: the value of settings.headers_secret_id (sym_secret ${s.headers_secret_id}) is not a JSON object of header names and values`)
    }
    for (const [name, value] of Object.entries(parsed)) {
      // Name the header, never its value: it is the secret.
      if (!TOKEN.test(name) || RESERVED.has(name.toLowerCase()) || typeof value !== 'string' || !FIELD_VALUE.test(value)) {
        throw new DeliveryError(`http log destination ${record.slug}: header "${name}" of settings.headers_secret_id cannot be sent (reserved name, or not a single-line string)`)
      }
      extra[name] = value
    }
  }

  const post = async (e: OutgoingEntry, index: number): Promise<RecordFailure | undefined> => {
    const headers: Record<string, string> = { ...extra, 'content-type': 'application/json', 'user-agent': HTTP_DESTINATION_USER_AGENT, [HTTP_HEADERS.idempotencyKey]: e.id }
    if (hmac !== undefined) {
      const timestamp = String(Math.floor(ctx.now() / 1000))
      headers[HTTP_HEADERS.timestamp] = timestamp
      headers[HTTP_HEADERS.signature] = signHttpBody(hmac, timestamp, e.json)
    }
    let res: Response
    try {
      res = await ctx.fetch(url, { method: 'POST', headers, body: e.json, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) })
    } catch (err) {
      return { index, code: 'connection_error', message: `POST ${shownUrl(url)}: ${fetchFailure(err)}` }
    }
    // The body is not needed; reading it frees the connection for the next request.
    await res.arrayBuffer().catch(() => undefined)
    if (res.status >= 200 && res.status < 300) return undefined
    return { index, code: `http_${res.status}`, message: `POST ${shownUrl(url)} answered ${res.status}`, retryAfterMs: parseRetryAfter(res.headers.get('retry-after'), ctx.now()) }
  }

  return {
    mode: 'records',
    // Each entry is its own request: the batch size only bounds the work per attempt.
    limits: { maxEntries: 100, maxBytes: 8 * 1024 * 1024 },
    send: async (entries) => (await mapLimit(entries, CONCURRENCY, post)).filter((f): f is RecordFailure => f !== undefined),
  }
}
