/**
 * Outbound HTTP whose destination comes from org data (a custom strategy's `strategy.fetch`, an integration's
 * `external_id` used as a base URL): which addresses it may reach, checked where the connection is made, after DNS
 * (so a name that resolves, or later re-resolves, to a forbidden address is refused too).
 *
 * - Always refused: link-local (169.254.0.0/16, fe80::/10) — cloud metadata services (169.254.169.254,
 *   fd00:ec2::254) live there —, "this network" (0.0.0.0/8, ::), 192.0.0.0/24, multicast and reserved ranges
 *   (`isReservedAddress`, shared with settings validation). No setting allows them: flow and strategy code has no
 *   business with a host's instance credentials.
 * - Refused unless the operator allows private networks (`OPENSYM_ALLOW_PRIVATE_NETWORKS=true`): loopback,
 *   RFC 1918, carrier-grade NAT (100.64.0.0/10), benchmarking (198.18.0.0/15) and unique-local IPv6 (fc00::/7).
 *   Self-hosters whose strategies call internal services turn it on; a shared deployment leaves it off.
 *
 * URLs an org's admins set in settings (the http strategy's `url`, log destinations') follow
 * {@link SETTINGS_URL_POLICY}: private networks allowed (an org's own receivers live there), the rest as above.
 * URLs the operator configures (OPENSYM_OKTA_BASE_URL, the API URLs in options) are not subject to this.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns'
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import { BlockList, isIP } from 'node:net'
import { Readable } from 'node:stream'
import { isReservedAddress } from '@opensym/provider-schema'

export interface OutboundPolicy {
  /** Loopback and private ranges may be reached (link-local and metadata addresses never). */
  readonly allowPrivateNetworks: boolean
}

/**
 * The policy of URLs an org's admins set in settings (the http strategy's `url`, a log destination's): they point at
 * the org's own receivers, often on a private network, so those may be reached; link-local (cloud metadata) and
 * reserved addresses never, whatever the operator allows flow code.
 */
export const SETTINGS_URL_POLICY: OutboundPolicy = { allowPrivateNetworks: true }

/** The policy from `OPENSYM_ALLOW_PRIVATE_NETWORKS` (`true`/`1` allows; default: refused). */
export function outboundPolicyFromEnv(env: Readonly<Record<string, string | undefined>> = process.env): OutboundPolicy {
  return { allowPrivateNetworks: /^(true|1|yes)$/i.test(env.OPENSYM_ALLOW_PRIVATE_NETWORKS?.trim() ?? '') }
}

/** A destination the policy refuses; its message names the host and why, never a URL's query or credentials. */
export class OutboundBlockedError extends Error {
  override readonly name = 'OutboundBlockedError'
  readonly code = 'ERR_OUTBOUND_BLOCKED'
}

const privateNets = new BlockList()
for (const [net, bits] of [
  ['127.0.0.0', 8],
  ['10.0.0.0', 8],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['100.64.0.0', 10],
  ['198.18.0.0', 15],
] as const) privateNets.addSubnet(net, bits, 'ipv4')
for (const [net, bits] of [
  ['::1', 128],
  ['fc00::', 7],
] as const) privateNets.addSubnet(net, bits, 'ipv6')

/** Why the policy refuses this IP address, or undefined when it may be reached. (IPv4-mapped IPv6 counts as IPv4.) */
export function addressRefusal(address: string, policy: OutboundPolicy): string | undefined {
  const family = isIP(address)
  if (family === 0) return 'not an IP address'
  const type = family === 4 ? 'ipv4' : 'ipv6'
  if (isReservedAddress(address)) return 'a link-local, metadata or reserved address'
  if (!policy.allowPrivateNetworks && privateNets.check(address, type)) return 'a loopback or private address (set OPENSYM_ALLOW_PRIVATE_NETWORKS=true to allow them)'
  return undefined
}

const bare = (hostname: string) => hostname.replace(/^\[(.*)\]$/, '$1')

/** Refuses a URL whose scheme is not http(s) or whose host is a refused IP literal (names are checked on connect). */
export function checkOutboundUrl(url: URL, policy: OutboundPolicy): void {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new OutboundBlockedError(`only http and https URLs can be fetched (${url.protocol})`)
  const host = bare(url.hostname)
  const why = isIP(host) ? addressRefusal(host, policy) : undefined
  if (why) throw new OutboundBlockedError(`${url.host} is ${why}`)
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void

/** `dns.lookup` that refuses answers the policy forbids (every address of the answer is checked). */
function guardedLookup(policy: OutboundPolicy) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, [])
      for (const a of addresses) {
        const why = addressRefusal(a.address, policy)
        if (why) return callback(new OutboundBlockedError(`${hostname} resolves to ${a.address}, ${why}`), [])
      }
      if (options.all) return callback(null, addresses)
      const first = addresses[0]
      if (!first) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), [])
      callback(null, first.address, first.family)
    })
  }
}

/**
 * Keep-alive agents that connect only where `policy` allows (every DNS answer is checked). Agents of their own: a
 * pooled socket of the global agent may have been opened under no policy. IP-literal hosts are not looked up: check
 * URLs with {@link checkOutboundUrl} too.
 */
export function guardedAgents(policy: OutboundPolicy): { readonly http: HttpAgent; readonly https: HttpsAgent } {
  const lookup = guardedLookup(policy)
  return { http: new HttpAgent({ keepAlive: true, lookup }), https: new HttpsAgent({ keepAlive: true, lookup }) }
}

/** Statuses whose responses have no body (the Response constructor refuses one). */
const NULL_BODY = new Set([101, 204, 205, 304])

/** Methods whose requests may be sent again without changing what they do (RFC 9110 §9.2.2). */
const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'])

/**
 * Whether a request failed only because the pooled keep-alive connection it went out on had been closed by the
 * server while idle (a reset or a broken pipe on a reused socket, before any reply). A request that may be repeated
 * is then sent again at once on a new connection, once, as HTTP clients do (RFC 9112 §9.3.1); otherwise the caller's
 * retry would wait its backoff for nothing, or a flow's call would fail for no reason of its own.
 */
export function failedOnStaleConnection(req: ClientRequest, error: NodeJS.ErrnoException, replied: boolean, signal?: AbortSignal | null): boolean {
  return !replied && req.reusedSocket && (error.code === 'ECONNRESET' || error.code === 'EPIPE') && !signal?.aborted
}

/**
 * A `fetch` (the subset flow integrations use: method, headers, a string/bytes body, a signal) that connects only
 * where `policy` allows. Redirects are never followed: a 3xx is returned as is. An idempotent request, or one with an
 * `Idempotency-Key`, that meets a stale pooled connection is sent again on a new one ({@link failedOnStaleConnection}).
 */
export function guardedFetch(policy: OutboundPolicy): typeof fetch {
  const agents = guardedAgents(policy)
  const doFetch = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : input)
    checkOutboundUrl(url, policy)
    const headers: Record<string, string> = {}
    new Headers(init.headers).forEach((v, k) => (headers[k] = v))
    const body = init.body
    if (body !== undefined && body !== null && typeof body !== 'string' && !(body instanceof Uint8Array)) throw new TypeError('guardedFetch sends string or byte bodies only')
    const method = (init.method ?? 'GET').toUpperCase()
    const repeatable = IDEMPOTENT_METHODS.has(method) || 'idempotency-key' in headers
    const https = url.protocol === 'https:'
    const send = https ? httpsRequest : httpRequest
    const attempt = (resent: boolean): Promise<Response> =>
      new Promise<Response>((resolve, reject) => {
        let replied = false
        const req = send(url, { method, headers, agent: https ? agents.https : agents.http, ...(init.signal ? { signal: init.signal } : {}) }, (res: IncomingMessage) => {
          replied = true
          const out = new Headers()
          for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) out.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!)
          const status = res.statusCode ?? 502
          const stream = NULL_BODY.has(status) ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>)
          if (!stream) res.resume()
          resolve(new Response(stream, { status, statusText: res.statusMessage ?? '', headers: out }))
        })
        req.on('error', (error: NodeJS.ErrnoException) => {
          if (!resent && repeatable && failedOnStaleConnection(req, error, replied, init.signal)) resolve(attempt(true))
          else reject(error)
        })
        req.end(body ?? undefined)
      })
    return attempt(false)
  }
  return doFetch
}

const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/

/**
 * The name of a header whose value fetch would refuse (a control character inside it), or undefined. Checked before
 * sending because fetch's refusal quotes the value, and header values are where tokens and secrets go.
 */
export function unsendableHeader(headers: Readonly<Record<string, string>>): string | undefined {
  return Object.entries(headers).find(([, v]) => !FIELD_VALUE.test(v))?.[0]
}

/** Reads a response's body as text, refusing more than `max` bytes (a hostile server cannot exhaust memory). */
export async function readTextLimited(res: Response, max: number): Promise<string> {
  if (!res.body) return ''
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of res.body) {
    size += chunk.byteLength
    if (size > max) {
      await res.body.cancel().catch(() => undefined)
      throw Object.assign(new Error(`the response is larger than ${Math.round(max / 1024)} KiB`), { code: 'too_large' })
    }
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** The `OutboundBlockedError` in an error's cause chain (fetch wraps connection errors). */
export function outboundBlocked(e: unknown): OutboundBlockedError | undefined {
  let x: unknown = e
  for (let i = 0; i < 5 && x instanceof Error; i++, x = x.cause) if (x instanceof OutboundBlockedError) return x
  return undefined
}
