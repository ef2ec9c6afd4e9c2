/**
 * What every local fake of a third-party API shares (reference saas-apis.md §10): a real HTTP server on
 * 127.0.0.1, a record of every request received (with the service and operation it was routed to, and who it was
 * authenticated as) for exact assertions, one fault-injection API — in process (`fail(...)`) and over HTTP
 * (`POST /__fake/faults`, `GET /__fake/requests`, `POST /__fake/reset`) — and an injectable clock.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface FakeRequest {
  readonly method: string
  /** Path and query as received, e.g. `/api/v1/users?search=…`. */
  readonly url: string
  /** Path without the query, decoded segment by segment only where the fake does so itself. */
  readonly pathname: string
  readonly query: URLSearchParams
  /** Lower-cased names; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>
  readonly rawBody: Buffer
  /** The body as UTF-8 text. */
  readonly body: string
  /** The body parsed as JSON, or undefined. */
  readonly json: unknown
  /** The service the request was routed to (`okta`, `iam`, `sts`, `sso-admin`, `github`…), or `unknown`. */
  service: string
  /** The operation (`AddUserToGroup`, `PUT /api/v1/groups/{groupId}/users/{userId}`…), or `unknown`. */
  operation: string
  /** Who the request authenticated as (an access key, a role ARN, a token's name), once checked; null if it was refused. */
  principal: string | null
  /** The status the fake answered with. */
  status: number
  readonly receivedAt: Date
}

export interface FakeResponse {
  readonly status: number
  readonly headers?: Readonly<Record<string, string>>
  /** An object is sent as JSON (content type set unless given); a string or Buffer as is. */
  readonly body?: unknown
}

export interface FaultMatch {
  readonly service?: string
  readonly operation?: string
  readonly method?: string
  /** A path prefix, or a pattern tested against the path and query. */
  readonly path?: string | RegExp
}

export interface Fault {
  readonly match?: FaultMatch
  /** How many matching requests it applies to. Default 1; Infinity for all until reset. */
  readonly times?: number
  /** The answer instead of the service's. */
  readonly respond?: FakeResponse
  /** Wait before answering (with `respond`, or before the normal answer). */
  readonly delayMs?: number
  /** Drop the connection instead of answering. */
  readonly reset?: boolean
}

export interface FakeServerOptions {
  /** Routes a request: sets `service` and `operation` (used by fault matching) before the handler runs. */
  readonly classify?: (req: FakeRequest) => void
  readonly handle: (req: FakeRequest) => FakeResponse | Promise<FakeResponse>
  /** Headers added to every response (request ids, rate-limit headers…). */
  readonly commonHeaders?: (req: FakeRequest, res: FakeResponse) => Record<string, string>
  /** Called on `reset()` and `POST /__fake/reset`, after requests and faults are forgotten. */
  readonly onReset?: () => void
}

export interface FakeServer {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string
  readonly port: number
  /** Every request so far (not the `/__fake/*` ones), in arrival order. */
  readonly requests: readonly FakeRequest[]
  /** Requests routed to a service and, optionally, an operation. */
  calls(service?: string, operation?: string): FakeRequest[]
  /** `operation` of each request so far (optionally of one service), in order: handy for exact assertions. */
  operations(service?: string): string[]
  /** Adds a fault; faults are tried in the order added. */
  fail(fault: Fault): void
  /** Forgets recorded requests (faults and state stay). */
  clearRequests(): void
  /** Forgets requests and faults, and resets the service's state when it says how. */
  reset(): void
  close(): Promise<void>
}

function headersOf(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v
  return out
}

function parseJson(text: string): unknown {
  if (!text) return undefined
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

const matches = (m: FaultMatch | undefined, req: FakeRequest) =>
  !m ||
  ((m.service === undefined || m.service === req.service) &&
    (m.operation === undefined || m.operation === req.operation) &&
    (m.method === undefined || m.method.toUpperCase() === req.method) &&
    (m.path === undefined || (typeof m.path === 'string' ? req.pathname.startsWith(m.path) : m.path.test(req.url))))

function send(res: ServerResponse, reply: FakeResponse, extra: Record<string, string>): void {
  const headers: Record<string, string> = { ...extra, ...(reply.headers ?? {}) }
  let payload: string | Buffer = ''
  if (Buffer.isBuffer(reply.body) || typeof reply.body === 'string') payload = reply.body
  else if (reply.body !== undefined) {
    payload = JSON.stringify(reply.body)
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json'
  }
  res.writeHead(reply.status, headers)
  res.end(payload)
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Starts a fake on 127.0.0.1 with an ephemeral port. */
export async function startFakeServer(options: FakeServerOptions): Promise<FakeServer> {
  const requests: FakeRequest[] = []
  let faults: Array<{ fault: Fault; left: number }> = []

  const takeFault = (req: FakeRequest): Fault | undefined => {
    for (const f of faults) {
      if (f.left > 0 && matches(f.fault.match, req)) {
        f.left--
        return f.fault
      }
    }
    faults = faults.filter((f) => f.left > 0)
    return undefined
  }

  const control = async (req: FakeRequest, res: ServerResponse): Promise<void> => {
    if (req.method === 'POST' && req.pathname === '/__fake/faults') {
      const spec = req.json as (Fault & { match?: FaultMatch & { pathPattern?: string } }) | undefined
      if (!spec || typeof spec !== 'object') return send(res, { status: 400, body: { error: 'a JSON fault is required' } }, {})
      const match = spec.match ? { ...spec.match, ...(spec.match.pathPattern ? { path: new RegExp(spec.match.pathPattern) } : {}) } : undefined
      api.fail({ ...spec, ...(match ? { match } : {}) })
      return send(res, { status: 204 }, {})
    }
    if (req.method === 'GET' && req.pathname === '/__fake/requests') {
      return send(
        res,
        { status: 200, body: requests.map((r) => ({ method: r.method, url: r.url, service: r.service, operation: r.operation, principal: r.principal, status: r.status, headers: r.headers, body: r.body })) },
        {},
      )
    }
    if (req.method === 'POST' && req.pathname === '/__fake/reset') {
      api.reset()
      return send(res, { status: 204 }, {})
    }
    send(res, { status: 404, body: { error: 'unknown fake control endpoint' } }, {})
  }

  const server = createServer((incoming, res) => {
    const chunks: Buffer[] = []
    incoming.on('data', (c: Buffer) => chunks.push(c))
    incoming.on('end', () => {
      void (async () => {
        const rawBody = Buffer.concat(chunks)
        const url = incoming.url ?? '/'
        const parsed = new URL(url, 'http://fake.invalid')
        const body = rawBody.toString('utf8')
        const req: FakeRequest = {
          method: incoming.method ?? 'GET',
          url,
          pathname: parsed.pathname,
          query: parsed.searchParams,
          headers: headersOf(incoming),
          rawBody,
          body,
          json: parseJson(body),
          service: 'unknown',
          operation: 'unknown',
          principal: null,
          status: 0,
          receivedAt: new Date(),
        }
        if (req.pathname.startsWith('/__fake/')) return control(req, res)
        options.classify?.(req)
        requests.push(req)
        const fault = takeFault(req)
        if (fault?.delayMs) await sleep(fault.delayMs)
        if (res.destroyed) return
        if (fault?.reset) {
          req.status = -1
          res.socket?.destroy()
          return
        }
        let reply: FakeResponse
        try {
          reply = fault?.respond ?? (await options.handle(req))
        } catch (e) {
          reply = { status: 500, body: { message: `fake error: ${e instanceof Error ? e.message : String(e)}` } }
        }
        req.status = reply.status
        send(res, reply, options.commonHeaders?.(req, reply) ?? {})
      })()
    })
  })
  server.on('clientError', (_err, socket) => socket.destroy())
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port } = server.address() as AddressInfo

  const api: FakeServer = {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    calls: (service, operation) => requests.filter((r) => (service === undefined || r.service === service) && (operation === undefined || r.operation === operation)),
    operations: (service) => requests.filter((r) => service === undefined || r.service === service).map((r) => r.operation),
    fail: (fault) => {
      faults.push({ fault, left: fault.times ?? 1 })
    },
    clearRequests: () => {
      requests.length = 0
    },
    reset: () => {
      requests.length = 0
      faults = []
      options.onReset?.()
    },
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())))
    },
  }
  return api
}

let counter = 0
/** A random hex id of `bytes` bytes (not cryptographic). */
export function randomHex(bytes: number): string {
  let s = ''
  for (let i = 0; i < bytes * 2; i++) s += Math.floor(Math.random() * 16).toString(16)
  return s
}

/** A v4-shaped UUID. */
export function uuid(): string {
  const h = randomHex(16)
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`
}

/** A process-unique sequence number. */
export const nextId = () => ++counter
