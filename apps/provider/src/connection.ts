/**
 * Where the provider talks to and with which token, resolved as Sym's provider does: the token comes from the
 * environment variable named by `jwt_env_var` (default `SYM_JWT`), else from the `symflow` config file, whose
 * `org` must then match the provider's `org` (unless `SYM_TF_SKIP_VALIDATION` is set).
 */
import { readFileSync } from 'node:fs'
import type { Agent, ClientRequest, IncomingMessage, RequestOptions } from 'node:http'
import { join } from 'node:path'
import { DEFAULT_API_URL } from '@opensym/provider-schema'
import { parse } from 'yaml'

export interface ProviderSettings {
  readonly org: string
  readonly jwtEnvVar?: string | null
  readonly apiUrl?: string | null
}

export interface Connection {
  readonly apiUrl: string
  readonly token: string
  readonly tokenSource: 'environment' | 'symflow'
}

/** A problem with the provider configuration: a summary and a detail, as a Terraform diagnostic shows them. */
export class ConnectionError extends Error {
  override readonly name = 'ConnectionError'
  constructor(
    readonly summary: string,
    readonly detail: string,
    /** The provider attribute at fault, when there is one. */
    readonly attribute?: string,
  ) {
    super(`${summary}: ${detail}`)
  }
}

export const DEFAULT_JWT_ENV_VAR = 'SYM_JWT'
const DOCS = 'For more details, see docs/terraform/index.md.'

export interface ConnectionEnv {
  readonly env: Readonly<Record<string, string | undefined>>
  /** Reads a file as text; undefined when it does not exist. */
  readonly readFile: (path: string) => string | undefined
}

export function symflowConfigPath(env: Readonly<Record<string, string | undefined>>): string {
  return join(env.HOME ?? '', '.config', 'symflow', 'default', 'config.yml')
}

export function resolveConnection(settings: ProviderSettings, { env, readFile }: ConnectionEnv): Connection {
  const apiUrl = (settings.apiUrl || env.SYM_API_URL || DEFAULT_API_URL).replace(/\/+$/, '')
  if (!/^https?:\/\//.test(apiUrl)) {
    throw new ConnectionError('Invalid API URL', `"${apiUrl}" is not an http(s) URL. ${DOCS}`, settings.apiUrl ? 'api_url' : undefined)
  }
  const varName = settings.jwtEnvVar || DEFAULT_JWT_ENV_VAR
  const fromEnv = env[varName]
  if (fromEnv) return { apiUrl, token: fromEnv, tokenSource: 'environment' }

  const path = symflowConfigPath(env)
  const text = readFile(path)
  if (text === undefined) {
    throw new ConnectionError(
      'No Sym token',
      `No local Sym config was found at ${path}, and $${varName} is empty. Set $${varName} to a bot token (\`npm run -s admin -- token issue …\`) or log in with symflow. ${DOCS}`,
    )
  }
  let config: unknown
  try {
    config = parse(text)
  } catch (e) {
    throw new ConnectionError('Invalid Sym config', `failed to parse Sym configuration at ${path}: ${(e as Error).message}. ${DOCS}`)
  }
  const c = (typeof config === 'object' && config !== null ? config : {}) as { auth_token?: { access_token?: unknown }; org?: unknown }
  const token = c.auth_token?.access_token
  if (typeof token !== 'string' || !token) {
    throw new ConnectionError('No Sym token', `You do not have an org configured via \`symflow\`: ${path} has no auth_token.access_token. ${DOCS}`)
  }
  if (!env.SYM_TF_SKIP_VALIDATION && c.org !== settings.org) {
    throw new ConnectionError(
      'Org mismatch',
      `You are logged in to org "${String(c.org)}" but the provider is configured with org "${settings.org}". Log in to the right org, fix \`org\`, or set SYM_TF_SKIP_VALIDATION. ${DOCS}`,
      'org',
    )
  }
  return { apiUrl, token, tokenSource: 'symflow' }
}

// --- HTTP ---------------------------------------------------------------------------------------------------------

interface HttpClient {
  readonly request: (url: URL, options: RequestOptions, onResponse: (res: IncomingMessage) => void) => ClientRequest
  readonly agent: Agent
}

const clients = new Map<'http:' | 'https:', Promise<HttpClient>>()

/**
 * node:http or node:https with one keep-alive agent for every API call of the process: Terraform calls the
 * provider in parallel (10 at a time by default), and a connection per call would add a TCP (and TLS) handshake
 * to each. Loaded at the first call: the processes that only validate never call the API, and node:http/https
 * cannot be in the provider's startup snapshot (see snapshot.ts).
 */
function clientFor(protocol: 'http:' | 'https:'): Promise<HttpClient> {
  let client = clients.get(protocol)
  if (!client) {
    client =
      protocol === 'https:'
        ? Promise.all([import('node:https'), import('node:tls')]).then(([https, tls]) => {
            const extra = extraCertificateAuthorities(process.env)
            // Node's default trust plus the extra certificates, as NODE_EXTRA_CA_CERTS would make it; one context for
            // every connection of the agent (a `ca` option would make one, parsing every certificate, per connection).
            const secureContext = extra ? tls.createSecureContext({ ca: [...tls.rootCertificates, extra] }) : undefined
            return { request: https.request, agent: new https.Agent({ keepAlive: true, ...(secureContext ? { secureContext } : {}) }) }
          })
        : import('node:http').then((http) => ({ request: http.request, agent: new http.Agent({ keepAlive: true }) }))
    clients.set(protocol, client)
  }
  return client
}

/**
 * The PEM certificates of NODE_EXTRA_CA_CERTS, which the packaged provider's launcher passes on as
 * SYM_PROVIDER_EXTRA_CA_CERTS so that Node does not parse them at the start of every provider process (see
 * LAUNCHER in scripts/build.ts). Unset: none (a provider run by node itself has Node apply NODE_EXTRA_CA_CERTS).
 * A file that cannot be read is skipped with a warning, as Node does.
 */
export function extraCertificateAuthorities(
  env: Readonly<Record<string, string | undefined>>,
  readFile: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): string | undefined {
  const path = env.SYM_PROVIDER_EXTRA_CA_CERTS
  if (!path) return undefined
  try {
    return readFile(path)
  } catch (error) {
    process.emitWarning(`Ignoring extra certs from \`${path}\`, load failed: ${error instanceof Error ? error.message : String(error)}`)
    return undefined
  }
}

/** As Node's fetch (undici): 10 s to connect, 300 s without a byte of the response. */
const CONNECT_TIMEOUT_MS = 10_000
const IDLE_TIMEOUT_MS = 300_000
const MAX_REDIRECTS = 20
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308])

interface FetchInit {
  readonly method?: string
  readonly headers?: Readonly<Record<string, string>>
  readonly body?: string
}

/** The part of a fetch Response that the SDK's transport reads. */
interface MinimalResponse {
  readonly status: number
  readonly statusText: string
  readonly ok: boolean
  readonly redirected: boolean
  readonly url: string
  readonly headers: { get(name: string): string | null; has(name: string): boolean }
  text(): Promise<string>
  json(): Promise<unknown>
}

async function send(url: URL, init: FetchInit): Promise<{ res: IncomingMessage; body: string }> {
  const client = await clientFor(url.protocol === 'https:' ? 'https:' : 'http:')
  return new Promise((resolve, reject) => {
    const body = init.body
    const options: RequestOptions = {
      method: init.method ?? 'GET',
      agent: client.agent,
      // What Node's fetch sends besides the caller's headers (not accept-encoding: the body is read as sent).
      headers: { accept: '*/*', 'user-agent': 'node', ...init.headers, ...(body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) }) },
      timeout: IDLE_TIMEOUT_MS,
    }
    const req = client.request(url, options, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ res, body: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', reject)
    })
    req.on('socket', (socket) => {
      if (!socket.connecting) return // a kept-alive connection
      const timer = setTimeout(() => req.destroy(new Error(`Connect Timeout Error (${url.host}, timeout: ${CONNECT_TIMEOUT_MS}ms)`)), CONNECT_TIMEOUT_MS)
      socket.once('connect', () => clearTimeout(timer))
      socket.once('close', () => clearTimeout(timer))
    })
    req.on('timeout', () => req.destroy(new Error(`no response from ${url.host} for ${IDLE_TIMEOUT_MS / 1000} s`)))
    req.on('error', reject)
    req.end(body)
  })
}

/**
 * `fetch` for the API calls, on node:http/https. Node's own fetch (undici) costs the provider process about
 * 30 ms at its first call (loading undici and compiling its WebAssembly HTTP parser) and about 60 ms more when
 * the process exits (V8 finishes optimising that WebAssembly first); Terraform starts a provider process for
 * each phase of every command, and the phases that call the API make only a few calls. On node:http (whose
 * parser is native) the first call costs a few ms. It does what the SDK's transport relies on, as fetch does it:
 * redirects followed (the method becoming GET for a 303, or for a 301/302 of a POST; the authorization header
 * dropped when leaving the origin), network failures rejected as `TypeError('fetch failed', { cause })`.
 */
export async function nodeFetch(input: string | URL, init: FetchInit = {}): Promise<MinimalResponse> {
  let url = new URL(input)
  let current = init
  for (let redirects = 0; ; redirects++) {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError('fetch failed', { cause: new Error(`unsupported protocol ${url.protocol}`) })
    let sent: { res: IncomingMessage; body: string }
    try {
      sent = await send(url, current)
    } catch (cause) {
      throw new TypeError('fetch failed', { cause })
    }
    const { res, body } = sent
    const status = res.statusCode ?? 0
    const location = res.headers.location
    if (REDIRECT_STATUSES.has(status) && location) {
      if (redirects >= MAX_REDIRECTS) throw new TypeError('fetch failed', { cause: new Error('redirect count exceeded') })
      const next = new URL(location, url)
      const method = current.method ?? 'GET'
      const toGet = status === 303 ? method !== 'HEAD' : (status === 301 || status === 302) && method === 'POST'
      const headers = { ...current.headers }
      if (next.origin !== url.origin) for (const name of Object.keys(headers)) if (name.toLowerCase() === 'authorization') delete headers[name]
      if (toGet) for (const name of Object.keys(headers)) if (/^content-/i.test(name)) delete headers[name]
      current = toGet ? { method: 'GET', headers } : { ...current, headers }
      url = next
      continue
    }
    const header = (name: string): string | null => {
      const value = res.headers[name.toLowerCase()]
      return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value
    }
    return {
      status,
      statusText: res.statusMessage ?? '',
      ok: status >= 200 && status < 300,
      redirected: redirects > 0,
      url: url.href,
      headers: { get: header, has: (name) => header(name) !== null },
      text: () => Promise.resolve(body),
      json: () => Promise.resolve(JSON.parse(body) as unknown),
    }
  }
}

/** {@link nodeFetch} typed as the `fetch` the SDK takes: it reads only what {@link MinimalResponse} has. */
export const apiFetch = nodeFetch as unknown as typeof fetch
