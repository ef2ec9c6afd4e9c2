/**
 * A local HTTP endpoint for `http` strategies (and anything else that POSTs JSON): a real server on 127.0.0.1 that
 * records every request, checks `X-Sym-Signature` independently of the engine's code, and answers as scripted, so
 * tests can inject 5xx, 429 + Retry-After, slow replies, dropped connections and `{body, errors}` failures.
 *
 * Signature scheme checked (documented in packages/engine/src/strategies/README.md): `X-Sym-Timestamp: <unix s>`,
 * `X-Sym-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface ReceivedRequest {
  readonly method: string
  /** Path and query, e.g. `/grant?x=1`. */
  readonly path: string
  /** Lower-cased names; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>
  readonly rawBody: string
  /** The body parsed as JSON, or undefined when it is not JSON. */
  readonly json: unknown
  /**
   * `valid`/`invalid` when the receiver has a secret (invalid also when the timestamp is outside the tolerance),
   * `missing` when it has one but the request carries no signature, `unchecked` when it has none.
   */
  readonly signature: 'valid' | 'invalid' | 'missing' | 'unchecked'
  readonly receivedAt: Date
}

export interface ScriptedResponse {
  /** Default 200. */
  readonly status?: number
  /** An object/array is sent as JSON; a string as is; an explicit undefined an empty body. Unset: `{body: {}, errors: []}` for 2xx but 204, empty otherwise. */
  readonly body?: unknown
  readonly headers?: Readonly<Record<string, string>>
  /** `Retry-After`: seconds, or a date (sent as an HTTP date), or a raw string. */
  readonly retryAfter?: number | Date | string
  /** Wait this long before answering (a client timeout shorter than this sees no reply). */
  readonly delayMs?: number
  /** Drop the connection instead of answering (after `delayMs`). */
  readonly destroy?: boolean
}

export type Responder = (request: ReceivedRequest) => ScriptedResponse | undefined

export interface HttpReceiverOptions {
  /** The signing secret requests are checked against. */
  readonly secret?: string
  /** How far the signed timestamp may be from the receiver's clock. Default 300 s. */
  readonly toleranceSeconds?: number
  /** Answer 401 to a request whose signature is not `valid` (only with a secret). Default false: record and answer. */
  readonly rejectBadSignatures?: boolean
}

export interface HttpReceiver {
  /** `http://127.0.0.1:<port>`; append any path. */
  readonly url: string
  readonly port: number
  /** Every request so far, in arrival order. */
  readonly requests: readonly ReceivedRequest[]
  /** Requests whose JSON body has `event.type` equal to this (escalate, deescalate…). */
  received(eventType: string): ReceivedRequest[]
  /** Queues answers for the next requests, in order; when the queue is empty the responder or the default answers. */
  enqueue(...responses: ScriptedResponse[]): void
  /** Answers every request not covered by the queue (return undefined to fall through to the default). */
  respondWith(responder: Responder | undefined): void
  /** Resolves with the requests once at least `count` have arrived (or rejects after `timeoutMs`, default 5 s). */
  waitForRequests(count: number, timeoutMs?: number): Promise<ReceivedRequest[]>
  /** Forgets recorded requests, queued answers and the responder. */
  reset(): void
  close(): Promise<void>
}

const DEFAULT_REPLY: ScriptedResponse = { status: 200, body: { body: {}, errors: [] } }

/** The signature the scheme expects for a body at a timestamp. */
export function expectedSignature(secret: string, timestamp: string, rawBody: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${rawBody}`).digest('hex')}`
}

function checkSignature(req: IncomingMessage, rawBody: string, options: HttpReceiverOptions): ReceivedRequest['signature'] {
  if (options.secret === undefined) return 'unchecked'
  const signature = req.headers['x-sym-signature']
  const timestamp = req.headers['x-sym-timestamp']
  if (typeof signature !== 'string' || typeof timestamp !== 'string') return 'missing'
  if (!/^\d+$/.test(timestamp)) return 'invalid'
  const skew = Math.abs(Date.now() / 1000 - Number(timestamp))
  if (skew > (options.toleranceSeconds ?? 300)) return 'invalid'
  const expected = Buffer.from(expectedSignature(options.secret, timestamp, rawBody))
  const given = Buffer.from(signature)
  return expected.length === given.length && timingSafeEqual(expected, given) ? 'valid' : 'invalid'
}

function headersOf(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v
  return out
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** Starts a receiver on 127.0.0.1 with an ephemeral port. */
export async function startHttpReceiver(options: HttpReceiverOptions = {}): Promise<HttpReceiver> {
  const requests: ReceivedRequest[] = []
  let queue: ScriptedResponse[] = []
  let responder: Responder | undefined
  const waiters = new Set<() => void>()
  const timers = new Set<NodeJS.Timeout>()

  const answer = (res: ServerResponse, reply: ScriptedResponse) => {
    if (reply.destroy) {
      res.socket?.destroy()
      return
    }
    const status = reply.status ?? 200
    const headers: Record<string, string> = { ...(reply.headers ?? {}) }
    if (reply.retryAfter !== undefined) {
      headers['retry-after'] = reply.retryAfter instanceof Date ? reply.retryAfter.toUTCString() : String(reply.retryAfter)
    }
    let body = reply.body
    if (body === undefined && !('body' in reply) && status >= 200 && status < 300 && status !== 204) body = DEFAULT_REPLY.body
    let text = ''
    if (typeof body === 'string') text = body
    else if (body !== undefined) {
      text = JSON.stringify(body)
      headers['content-type'] ??= 'application/json'
    }
    res.writeHead(status, headers)
    res.end(text)
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8')
      const signature = checkSignature(req, rawBody, options)
      const request: ReceivedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: headersOf(req),
        rawBody,
        json: parseJson(rawBody),
        signature,
        receivedAt: new Date(),
      }
      requests.push(request)
      for (const wake of [...waiters]) wake()
      let reply: ScriptedResponse
      if (options.rejectBadSignatures && signature !== 'valid' && signature !== 'unchecked') {
        reply = { status: 401, body: { message: `signature ${signature}` } }
      } else {
        reply = queue.shift() ?? responder?.(request) ?? DEFAULT_REPLY
      }
      if (reply.delayMs) {
        const timer = setTimeout(() => {
          timers.delete(timer)
          if (!res.destroyed && !res.writableEnded) answer(res, reply)
        }, reply.delayMs)
        timers.add(timer)
      } else {
        answer(res, reply)
      }
    })
  })
  // A client that gave up (timeout) resets its socket; that is expected here.
  server.on('clientError', (_err, socket) => socket.destroy())

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port } = server.address() as AddressInfo

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    received: (eventType) =>
      requests.filter((r) => {
        const event = (r.json as { event?: { type?: unknown } } | undefined)?.event
        return event?.type === eventType
      }),
    enqueue: (...responses) => {
      queue.push(...responses)
    },
    respondWith: (r) => {
      responder = r
    },
    waitForRequests: (count, timeoutMs = 5000) =>
      new Promise((resolve, reject) => {
        if (requests.length >= count) return resolve([...requests])
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(new Error(`waitForRequests: ${requests.length} of ${count} requests after ${timeoutMs} ms`))
        }, timeoutMs)
        const check = () => {
          if (requests.length < count) return
          clearTimeout(timer)
          waiters.delete(check)
          resolve([...requests])
        }
        waiters.add(check)
      }),
    reset: () => {
      requests.length = 0
      queue = []
      responder = undefined
    },
    close: async () => {
      for (const t of timers) clearTimeout(t)
      timers.clear()
      server.closeAllConnections()
      await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())))
    },
  }
}
