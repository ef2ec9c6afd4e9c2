/**
 * The `http` strategy (Sym's legacy HTTP strategy): POSTs the event's §7.2 log entry as JSON to `settings.url`, once
 * for escalate and once for deescalate (`event.type` in the body says which). See ./README.md for the wire contract
 * and how receivers verify signatures.
 *
 * Settings (strings, as all settings): `url` (required), `hmac_secret_id` (a `sym_secret` whose value signs the
 * body), `timeout_seconds` (1–60, default 10).
 *
 * Reply classification:
 * - 2xx `{"body": {…}, "errors": [str]}` → the output; a non-empty `errors` → {@link StrategyError} carrying them.
 * - 2xx with any other or an empty body → success, with a warning in the output.
 * - 408, 429, 5xx, timeouts and connection errors → {@link RetryableStrategyError}, `retryAfterMs` from `Retry-After`.
 * - any other status (other 4xx, 3xx: redirects are not followed) → {@link StrategyError} naming the status and an
 *   excerpt of the body.
 * - a `url` that is, or resolves to, a link-local (cloud metadata) or reserved address → {@link StrategyError}, nothing
 *   sent ({@link SETTINGS_URL_POLICY}).
 * The http target cannot be read back: no `isGranted`.
 */
import { createHmac } from 'node:crypto'
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { checkOutboundUrl, failedOnStaleConnection, guardedAgents, outboundBlocked, SETTINGS_URL_POLICY, type OutboundPolicy } from '../outbound.js'
import { RetryableStrategyError, StrategyError, type Strategy, type StrategyCall, type StrategyOutput } from '../strategy.js'

export const HTTP_USER_AGENT = 'OpenSym-HTTP-Strategy/1'
/** Header names, lower-cased as Node delivers them to receivers. */
export const HTTP_HEADERS = {
  idempotencyKey: 'idempotency-key',
  event: 'x-sym-event',
  timestamp: 'x-sym-timestamp',
  signature: 'x-sym-signature',
} as const

export const DEFAULT_TIMEOUT_SECONDS = 10
export const MAX_TIMEOUT_SECONDS = 60
/** Replies larger than this are not read further (a `{body, errors}` reply is small). */
export const MAX_RESPONSE_BYTES = 1024 * 1024
const EXCERPT_CHARS = 300

export interface HttpStrategyOptions {
  /** The timeout when the strategy's settings have no `timeout_seconds`. Default 10 s. */
  readonly defaultTimeoutMs?: number
  /** The clock for `X-Sym-Timestamp` and HTTP-date `Retry-After` values. */
  readonly now?: () => number
  /** Where `settings.url` may point. Default {@link SETTINGS_URL_POLICY}: never link-local, metadata or reserved addresses. */
  readonly network?: OutboundPolicy
}

/** The signature of a body at a time: `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`. */
export function signHttpBody(secret: string, timestamp: string, rawBody: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${rawBody}`).digest('hex')}`
}

/**
 * `Retry-After` in milliseconds: delta-seconds or an HTTP date (relative to `now`, never negative); undefined when
 * absent or unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (value === null || value === undefined) return undefined
  const text = value.trim()
  if (/^\d+$/.test(text)) return Number(text) * 1000
  if (!/[a-z]/i.test(text)) return undefined
  const at = Date.parse(text)
  return Number.isNaN(at) ? undefined : Math.max(0, at - now)
}

interface HttpSettings {
  readonly url: URL
  readonly hmacSecretId: string | undefined
  readonly timeoutMs: number
}

function configError(call: Pick<StrategyCall, 'strategy'>, message: string): StrategyError {
  return new StrategyError(`http strategy "${call.strategy.slug}": ${message}`)
}

function readSettings(call: Pick<StrategyCall, 'strategy'>, defaultTimeoutMs: number): HttpSettings {
  const s = call.strategy.settings
  const rawUrl = s.url
  if (typeof rawUrl !== 'string' || rawUrl === '') throw configError(call, 'settings.url is not set')
  let url: URL
  try {
    url = new URL(rawUrl)
  } catch {
    throw configError(call, 'settings.url is not an absolute http:// or https:// URL')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw configError(call, 'settings.url is not an http:// or https:// URL')
  if (url.username || url.password) throw configError(call, 'settings.url must not contain credentials; sign requests with settings.hmac_secret_id')
  const secret = s.hmac_secret_id
  const hmacSecretId = typeof secret === 'string' && secret !== '' ? secret : undefined
  let timeoutMs = defaultTimeoutMs
  const rawTimeout = s.timeout_seconds
  if (rawTimeout !== undefined && rawTimeout !== null && rawTimeout !== '') {
    const n = typeof rawTimeout === 'number' ? rawTimeout : typeof rawTimeout === 'string' ? Number(rawTimeout.trim()) : NaN
    if (!Number.isFinite(n) || n <= 0 || n > MAX_TIMEOUT_SECONDS) {
      throw configError(call, `settings.timeout_seconds must be a number of seconds from 1 to ${MAX_TIMEOUT_SECONDS}`)
    }
    timeoutMs = n * 1000
  }
  return { url, hmacSecretId, timeoutMs }
}

/** The URL for messages: no query string or fragment (they may carry tokens). */
const shownUrl = (url: URL) => `${url.origin}${url.pathname}`

const excerpt = (text: string) => {
  const flat = text.replace(/\s+/g, ' ').trim()
  return flat.length > EXCERPT_CHARS ? `${flat.slice(0, EXCERPT_CHARS)}…` : flat
}

interface Reply {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly text: string
  /** The body was larger than the limit; only its start was read. */
  readonly truncated: boolean
}

/**
 * POSTs `body` over node:http(s) with keep-alive agents (a third of fetch's CPU per call: expiries come in bursts of
 * thousands) and reads at most `limit` bytes of the reply; the rest is discarded. Redirects are not followed.
 *
 * A pooled connection the receiver had closed meanwhile (servers close idle keep-alive connections after a few
 * seconds; a request sent at that moment meets a reset before any reply) is not a failure of the receiver: the
 * request goes again at once on a new connection, once ({@link failedOnStaleConnection}; the payload's
 * Idempotency-Key covers a receiver that did get it).
 */
function post(agents: ReturnType<typeof guardedAgents>, url: URL, headers: Record<string, string>, body: string, signal: AbortSignal, limit: number, resent = false): Promise<Reply> {
  const https = url.protocol === 'https:'
  return new Promise<Reply>((resolve, reject) => {
    let replied = false
    const req = (https ? httpsRequest : httpRequest)(
      url,
      { method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, agent: https ? agents.https : agents.http, signal },
      (res) => {
        replied = true
        const chunks: Buffer[] = []
        let size = 0
        const done = (truncated: boolean) => resolve({ status: res.statusCode ?? 502, headers: res.headers, text: Buffer.concat(chunks).subarray(0, limit).toString('utf8'), truncated })
        res.on('data', (chunk: Buffer) => {
          chunks.push(chunk)
          size += chunk.byteLength
          if (size > limit) {
            // Enough: the socket goes (it cannot be reused with a reply half read).
            res.destroy()
            done(true)
          }
        })
        res.on('end', () => done(false))
        res.on('error', reject)
      },
    )
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (!resent && failedOnStaleConnection(req, error, replied, signal)) resolve(post(agents, url, headers, body, signal, limit, true))
      else reject(error)
    })
    req.end(body)
  })
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v)

const errorMessage = (e: unknown) => (typeof e === 'string' ? e : isPlainObject(e) && typeof e.message === 'string' ? e.message : JSON.stringify(e))

/**
 * Classifies a successful reply body against the `{body, errors}` contract (shared with aws_lambda): the output, a
 * warning for anything unformatted, or a {@link StrategyError} carrying a non-empty `errors`.
 */
export function successOutput(step: string, text: string, truncated: boolean): StrategyOutput {
  const unformatted = (why: string): StrategyOutput => ({
    body: {},
    errors: [],
    warnings: [`the ${step} reply ${why}; expected {"body": {...}, "errors": []} (treated as success)`],
  })
  if (truncated) return unformatted(`was larger than ${MAX_RESPONSE_BYTES} bytes and was not read`)
  if (text.trim() === '') return unformatted('was empty')
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return unformatted(`was not JSON: ${excerpt(text)}`)
  }
  if (!isPlainObject(parsed)) return unformatted(`was not a JSON object: ${excerpt(text)}`)
  const { body, errors } = parsed
  if (Array.isArray(errors) && errors.length > 0) {
    const messages = errors.map(errorMessage)
    const output: StrategyOutput = { body: isPlainObject(body) ? body : {}, errors: messages }
    throw new StrategyError(`the ${step} endpoint reported ${messages.length === 1 ? 'an error' : `${messages.length} errors`}: ${messages.join('; ')}`, messages, { output })
  }
  if (!isPlainObject(body) || !Array.isArray(errors)) return unformatted(`was not {body, errors}: ${excerpt(text)}`)
  return { body, errors: [] }
}

/** The cause chain's codes, e.g. ECONNREFUSED, for messages. */
function causeText(error: unknown): string {
  let e: unknown = error
  for (let i = 0; i < 5 && e instanceof Error; i++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string') return `${code}${e.message && !e.message.includes(code) ? ` (${e.message})` : ''}`
    if (!e.cause) return e.message
    e = e.cause
  }
  return String(error)
}

export function createHttpStrategy(options: HttpStrategyOptions = {}): Strategy {
  const defaultTimeoutMs = options.defaultTimeoutMs ?? DEFAULT_TIMEOUT_SECONDS * 1000
  const now = options.now ?? Date.now
  const network = options.network ?? SETTINGS_URL_POLICY
  const agents = guardedAgents(network)

  async function send(step: 'escalate' | 'deescalate', call: StrategyCall): Promise<StrategyOutput> {
    const settings = readSettings(call, defaultTimeoutMs)
    const rawBody = JSON.stringify(call.payload)
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json',
      'user-agent': HTTP_USER_AGENT,
      [HTTP_HEADERS.event]: step,
    }
    if (typeof call.payload.id === 'string') headers[HTTP_HEADERS.idempotencyKey] = call.payload.id
    if (settings.hmacSecretId) {
      let secret: string
      try {
        secret = await call.secrets(settings.hmacSecretId)
      } catch (error) {
        if (error instanceof RetryableStrategyError) throw error
        const message = error instanceof Error ? error.message : String(error)
        throw new StrategyError(`http strategy "${call.strategy.slug}": cannot read the signing secret (settings.hmac_secret_id): ${message}`, undefined, { cause: error })
      }
      const timestamp = String(Math.floor(now() / 1000))
      headers[HTTP_HEADERS.timestamp] = timestamp
      headers[HTTP_HEADERS.signature] = signHttpBody(secret, timestamp, rawBody)
    }

    const where = `${step} POST ${shownUrl(settings.url)}`
    const timeout = AbortSignal.timeout(settings.timeoutMs)
    const signal = AbortSignal.any([call.signal, timeout])
    const failed = (error: unknown): never => {
      if (timeout.aborted && !call.signal.aborted) {
        throw new RetryableStrategyError(`${where}: no reply within ${settings.timeoutMs / 1000} s`, undefined, { cause: error })
      }
      if (call.signal.aborted) throw new RetryableStrategyError(`${where}: aborted before the reply (${String(call.signal.reason)})`, undefined, { cause: error })
      throw new RetryableStrategyError(`${where}: ${causeText(error)}`, undefined, { cause: error })
    }

    let reply: Reply
    try {
      checkOutboundUrl(settings.url, network)
      reply = await post(agents, settings.url, headers, rawBody, signal, MAX_RESPONSE_BYTES)
    } catch (error) {
      // A destination the policy refuses stays refused: a configuration error, not one to retry.
      const blocked = outboundBlocked(error)
      if (blocked) throw new StrategyError(`${where}: ${blocked.message}`, undefined, { cause: error })
      return failed(error)
    }
    const { status, text, truncated } = reply
    const header = (name: string) => {
      const v = reply.headers[name]
      return Array.isArray(v) ? v.join(', ') : v
    }
    if (status >= 200 && status < 300) return successOutput(step, text, truncated)
    const detail = text.trim() ? `: ${excerpt(text)}` : ''
    if (status === 408 || status === 429 || status >= 500) {
      const retryAfterMs = parseRetryAfter(header('retry-after'), now())
      throw new RetryableStrategyError(`${where}: HTTP ${status}${detail}`, retryAfterMs)
    }
    if (status >= 300 && status < 400) {
      const location = header('location')
      throw new StrategyError(`${where}: HTTP ${status} redirect${location ? ` to ${location}` : ''}; redirects are not followed, set settings.url to the final URL`)
    }
    throw new StrategyError(`${where}: HTTP ${status}${detail}`)
  }

  return {
    type: 'http',
    async identity(call) {
      return call.subject.email || call.subject.username
    },
    escalate: (call) => send('escalate', call),
    deescalate: (call) => send('deescalate', call),
  }
}

/** The `http` strategy with default options. */
export const httpStrategy: Strategy = createHttpStrategy()
