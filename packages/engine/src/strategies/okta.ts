/**
 * The `okta` strategy: membership of an Okta group (`okta_group` target, `settings.group_id`) through the Okta
 * Management API with the integration's API token (`settings.api_token_secret`, sent as `Authorization: SSWS …`).
 * The API is at `https://<integration external_id>` (the Okta domain) unless `OktaStrategyOptions.baseUrl` (or
 * `OPENSYM_OKTA_BASE_URL`) says otherwise.
 *
 * - identity: the Okta user id (`00u…`), found by `profile.email eq "<email>"`, then `profile.login eq "<email>"`
 *   (deprovisioned users ignored; two matches are refused as ambiguous).
 * - escalate: `PUT /api/v1/groups/{groupId}/users/{userId}` (204 also when already a member).
 * - deescalate: `DELETE` the same (204 also when not a member; 404 — the user or group is gone — is success too).
 * - isGranted: the group's members (`GET /api/v1/groups/{groupId}/users`, following `Link: rel="next"`).
 * - 429 (`X-Rate-Limit-Reset`), 5xx, timeouts and connection errors are retried; other errors name Okta's
 *   `errorCode` and `errorSummary`.
 */
import { RetryableStrategyError, StrategyError, type Strategy, type StrategyCall, type StrategyOutput } from '../strategy.js'
import { causeText, integrationOf, integrationSecret, requireTargetType, strategyName, targetSetting } from './common.js'

export interface OktaStrategyOptions {
  /** The API's base URL for every Okta integration, or per domain. Default `https://<external_id>`. */
  readonly baseUrl?: string | ((domain: string) => string)
  readonly fetch?: typeof fetch
  readonly now?: () => number
  /** Per request. Default 10 s. */
  readonly requestTimeoutMs?: number
}

interface OktaUser {
  id: string
  status?: string
  profile?: { login?: string; email?: string }
}

const PAGE_LIMIT = 200
const MAX_PAGES = 500

export function createOktaStrategy(options: OktaStrategyOptions = {}): Strategy {
  const doFetch = options.fetch ?? fetch
  const now = options.now ?? Date.now
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000

  function baseUrlOf(domain: string): string {
    const configured = typeof options.baseUrl === 'function' ? options.baseUrl(domain) : options.baseUrl
    const raw = configured ?? (/^https?:\/\//.test(domain) ? domain : `https://${domain}`)
    return raw.replace(/\/+$/, '')
  }

  async function connection(call: Pick<StrategyCall, 'strategy' | 'secrets'>) {
    const integration = integrationOf(call, ['okta'])
    if (!integration.externalId) throw new StrategyError(`${strategyName(call)}: its okta integration has no external_id (the Okta domain)`)
    const token = await integrationSecret(call, integration, 'api_token_secret')
    return { base: baseUrlOf(integration.externalId), token }
  }

  type Conn = Awaited<ReturnType<typeof connection>>

  /** One Okta API request; returns the response for 2xx and 404 (callers decide), throws otherwise. */
  async function request(conn: Conn, method: string, url: string, signal: AbortSignal, what: string): Promise<Response> {
    const timeout = AbortSignal.timeout(requestTimeoutMs)
    let res: Response
    try {
      res = await doFetch(url, {
        method,
        headers: { authorization: `SSWS ${conn.token}`, accept: 'application/json', 'user-agent': 'OpenSym-Okta-Strategy/1' },
        signal: AbortSignal.any([signal, timeout]),
        redirect: 'manual',
      })
    } catch (error) {
      if (timeout.aborted) throw new RetryableStrategyError(`okta ${what}: no reply within ${requestTimeoutMs / 1000} s`, undefined, { cause: error })
      throw new RetryableStrategyError(`okta ${what}: ${causeText(error)}`, undefined, { cause: error })
    }
    if ((res.status >= 200 && res.status < 300) || res.status === 404) return res
    const text = await res.text().catch(() => '')
    const summary = oktaErrorSummary(text)
    const detail = `okta ${what}: HTTP ${res.status}${summary ? ` ${summary}` : ''}`
    if (res.status === 429) throw new RetryableStrategyError(detail, rateLimitWait(res))
    if (res.status >= 500 || res.status === 408) throw new RetryableStrategyError(detail)
    throw new StrategyError(detail)
  }

  /** How long until `X-Rate-Limit-Reset` (epoch seconds), measured against the server's `Date` when it sent one. */
  function rateLimitWait(res: Response): number | undefined {
    const reset = Number(res.headers.get('x-rate-limit-reset'))
    if (!Number.isFinite(reset) || reset <= 0) return undefined
    const serverNow = Date.parse(res.headers.get('date') ?? '')
    return Math.max(0, reset * 1000 - (Number.isNaN(serverNow) ? now() : serverNow))
  }

  async function findUsers(conn: Conn, attribute: 'profile.email' | 'profile.login', email: string, signal: AbortSignal): Promise<OktaUser[]> {
    const search = `${attribute} eq "${email.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`
    const url = `${conn.base}/api/v1/users?search=${encodeURIComponent(search)}&limit=${PAGE_LIMIT}`
    const res = await request(conn, 'GET', url, signal, `find user by ${attribute}`)
    if (res.status === 404) return []
    const users = (await res.json()) as OktaUser[]
    return Array.isArray(users) ? users.filter((u) => u && typeof u.id === 'string' && u.status !== 'DEPROVISIONED') : []
  }

  const groupId = (call: Pick<StrategyCall, 'strategy' | 'target'>) => {
    requireTargetType(call, ['okta_group'])
    return targetSetting(call, 'group_id')
  }
  const membershipUrl = (conn: Conn, group: string, user: string) => `${conn.base}/api/v1/groups/${encodeURIComponent(group)}/users/${encodeURIComponent(user)}`

  async function change(call: StrategyCall, step: 'escalate' | 'deescalate'): Promise<StrategyOutput> {
    const group = groupId(call)
    const conn = await connection(call)
    const method = step === 'escalate' ? 'PUT' : 'DELETE'
    const what = `${step === 'escalate' ? 'add user to' : 'remove user from'} group ${group}`
    const res = await request(conn, method, membershipUrl(conn, group, call.identity), call.signal, what)
    await res.body?.cancel()
    if (res.status === 404) {
      if (step === 'escalate') throw new StrategyError(`okta ${what}: HTTP 404: the Okta user ${call.identity} or group ${group} does not exist`)
      return { body: { group_id: group, user_id: call.identity }, errors: [], warnings: [`okta ${what}: HTTP 404 (the user or group is gone; nothing to remove)`] }
    }
    return { body: { group_id: group, user_id: call.identity }, errors: [] }
  }

  return {
    type: 'okta',
    identityService: 'okta',
    async identity(call) {
      const email = call.subject.email
      if (!email) return undefined
      const conn = await connection(call)
      for (const attribute of ['profile.email', 'profile.login'] as const) {
        const users = await findUsers(conn, attribute, email, call.signal)
        if (users.length === 1) return users[0]!.id
        if (users.length > 1) {
          throw new StrategyError(`okta: ${users.length} Okta users have ${attribute} ${email} (${users.map((u) => u.id).join(', ')}); set the user's okta identity with the admin command`)
        }
      }
      return undefined
    },
    escalate: (call) => change(call, 'escalate'),
    deescalate: (call) => change(call, 'deescalate'),
    async isGranted(call) {
      const group = groupId(call)
      const conn = await connection(call)
      let url: string | undefined = `${conn.base}/api/v1/groups/${encodeURIComponent(group)}/users?limit=${PAGE_LIMIT}`
      const origin = new URL(conn.base).origin
      for (let page = 0; url && page < MAX_PAGES; page++) {
        const res = await request(conn, 'GET', url, call.signal, `list members of group ${group}`)
        if (res.status === 404) {
          await res.body?.cancel()
          return false
        }
        const users = (await res.json()) as OktaUser[]
        if (Array.isArray(users) && users.some((u) => u?.id === call.identity)) return true
        url = nextLink(res.headers.get('link'))
        // Only follow pages on the same API (the token goes with every request).
        if (url && new URL(url).origin !== origin) throw new StrategyError(`okta: the next page of group ${group} is on another host (${new URL(url).origin})`)
      }
      return false
    },
  }
}

/** `<errorCode> <errorSummary>` of an Okta error body, or an excerpt of a body that is not one. */
function oktaErrorSummary(text: string): string {
  try {
    const body = JSON.parse(text) as { errorCode?: string; errorSummary?: string }
    return [body.errorCode, body.errorSummary].filter(Boolean).join(' ')
  } catch {
    return text.replace(/\s+/g, ' ').trim().slice(0, 200)
  }
}

/** The `rel="next"` URL of a `Link` header. */
export function nextLink(link: string | null): string | undefined {
  if (!link) return undefined
  for (const part of link.split(',')) {
    const m = /<([^>]+)>\s*;\s*rel="?next"?/.exec(part.trim())
    if (m) return m[1]
  }
  return undefined
}
