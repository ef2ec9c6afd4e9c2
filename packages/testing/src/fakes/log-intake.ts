/**
 * Local fakes of the HTTP log intakes log destinations call with plain fetch (reference saas-apis.md §9.4–§9.5):
 *
 * - Segment's HTTP Tracking API: `POST /v1/batch` (and `/v1/track`) with `Authorization: Basic base64("<writeKey>:")`
 *   (or `writeKey` in the body); 400 for bad JSON or more than 32 KB per event / 500 KB per batch; otherwise 200
 *   `{"success":true}`, even for invalid events (accepted, then dropped by Segment: `events` keeps them all,
 *   `stats.invalid` counts them). An unknown write key is accepted and dropped too (Segment answers 200): `events` holds
 *   only those of known keys.
 * - Datadog's logs intake v2: `POST /api/v2/logs` with `DD-API-KEY` (401 missing, 403 unknown), `Content-Encoding:
 *   gzip|deflate` decoded, 413 above 5 MB, 400 for non-JSON or more than 1000 logs, 202 `{}` otherwise.
 *
 * Faults (500s, 429 with `Retry-After`…) through the generic `fail({...})`.
 */
import zlib from 'node:zlib'
import { startFakeServer, type FakeRequest, type FakeResponse, type FakeServer } from './core.js'

export interface FakeSegmentEvent {
  readonly writeKey: string
  readonly type: string
  readonly event: unknown
  readonly messageId: unknown
  readonly body: Readonly<Record<string, unknown>>
  readonly receivedAt: Date
}

export interface FakeSegment extends FakeServer {
  /** Events of known write keys, in arrival order (invalid ones included). */
  readonly events: FakeSegmentEvent[]
  /** `invalid`: events accepted that Segment would drop (no user/anonymous id, or no event name). */
  readonly stats: { invalid: number }
}

const SEGMENT_EVENT_LIMIT = 32 * 1024
const SEGMENT_BATCH_LIMIT = 500 * 1024

export async function startFakeSegment(options: { writeKeys: readonly string[] }): Promise<FakeSegment> {
  const keys = new Set(options.writeKeys)
  const events: FakeSegmentEvent[] = []
  const state = { invalid: 0 }

  const classify = (req: FakeRequest) => {
    const m = /^\/v1\/(batch|track|identify)$/.exec(req.pathname)
    if (m && req.method === 'POST') {
      req.service = 'segment'
      req.operation = m[1]!
    }
  }

  const handle = (req: FakeRequest): FakeResponse => {
    if (req.service !== 'segment') return { status: 404, body: { success: false, message: 'not found' } }
    if (req.json === undefined || typeof req.json !== 'object' || req.json === null) return { status: 400, body: { success: false, message: 'invalid JSON' } }
    const body = req.json as Record<string, unknown>
    if (req.operation === 'batch' && req.rawBody.length > SEGMENT_BATCH_LIMIT) return { status: 400, body: { success: false, message: 'batch exceeds 500KB' } }
    const auth = req.headers.authorization
    let writeKey = typeof body.writeKey === 'string' ? body.writeKey : undefined
    if (auth?.startsWith('Basic ')) {
      const decoded = Buffer.from(auth.slice(6), 'base64').toString('utf8')
      // The key is the user name: "<writeKey>:" — without the colon it is not Basic auth Segment understands.
      if (decoded.endsWith(':')) writeKey = decoded.slice(0, -1)
    }
    const list = req.operation === 'batch' ? (Array.isArray(body.batch) ? (body.batch as unknown[]) : []) : [{ ...body, type: req.operation }]
    for (const e of list) if (Buffer.byteLength(JSON.stringify(e)) > SEGMENT_EVENT_LIMIT) return { status: 400, body: { success: false, message: 'event exceeds 32KB' } }
    req.principal = writeKey && keys.has(writeKey) ? writeKey : null
    if (req.principal) {
      for (const raw of list) {
        const e = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>
        const type = typeof e.type === 'string' ? e.type : 'track'
        if ((!e.userId && !e.anonymousId) || (type === 'track' && !e.event)) state.invalid++
        events.push({ writeKey: req.principal, type, event: e.event, messageId: e.messageId, body: e, receivedAt: new Date() })
      }
    }
    return { status: 200, body: { success: true } }
  }

  const server = await startFakeServer({
    classify,
    handle,
    onReset: () => {
      events.length = 0
      state.invalid = 0
    },
  })
  return Object.assign(server, { events, stats: state })
}

export interface FakeDatadogLog {
  readonly apiKey: string
  readonly log: Readonly<Record<string, unknown>>
  readonly receivedAt: Date
}

export interface FakeDatadog extends FakeServer {
  /** Logs accepted, in arrival order. */
  readonly logs: FakeDatadogLog[]
}

const DATADOG_PAYLOAD_LIMIT = 5 * 1024 * 1024
const DATADOG_MAX_LOGS = 1000

export async function startFakeDatadog(options: { apiKeys: readonly string[] }): Promise<FakeDatadog> {
  const keys = new Set(options.apiKeys)
  const logs: FakeDatadogLog[] = []
  const error = (status: number, title: string, detail: string): FakeResponse => ({ status, body: { errors: [{ status: String(status), title, detail }] } })

  const classify = (req: FakeRequest) => {
    if (req.pathname === '/api/v2/logs' && req.method === 'POST') {
      req.service = 'datadog'
      req.operation = 'SubmitLog'
    }
  }

  const handle = (req: FakeRequest): FakeResponse => {
    if (req.service !== 'datadog') return error(404, 'Not Found', 'no such endpoint')
    const key = req.headers['dd-api-key']
    if (!key) return error(401, 'Unauthorized', 'API key is missing')
    if (!keys.has(key)) return error(403, 'Forbidden', 'API key is invalid')
    req.principal = key
    let raw = req.rawBody
    const encoding = req.headers['content-encoding']
    try {
      if (encoding === 'gzip') raw = zlib.gunzipSync(raw)
      else if (encoding === 'deflate') raw = zlib.inflateSync(raw)
    } catch {
      return error(400, 'Bad Request', `the body is not valid ${encoding}`)
    }
    if (raw.length > DATADOG_PAYLOAD_LIMIT) return error(413, 'Payload Too Large', 'the payload exceeds 5MB')
    let parsed: unknown
    try {
      parsed = JSON.parse(raw.toString('utf8'))
    } catch {
      return error(400, 'Bad Request', 'the body is not JSON')
    }
    const list = Array.isArray(parsed) ? parsed : [parsed]
    if (list.length > DATADOG_MAX_LOGS) return error(400, 'Bad Request', `more than ${DATADOG_MAX_LOGS} logs in one request`)
    if (list.some((l) => !l || typeof l !== 'object' || Array.isArray(l))) return error(400, 'Bad Request', 'every log must be a JSON object')
    for (const log of list) logs.push({ apiKey: key, log: log as Record<string, unknown>, receivedAt: new Date() })
    return { status: 202, body: {} }
  }

  const server = await startFakeServer({ classify, handle, onReset: () => {
      logs.length = 0
    },
  })
  return Object.assign(server, { logs })
}
