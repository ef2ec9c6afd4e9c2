/**
 * A local fake of the Okta Management API (reference saas-apis.md §2): `Authorization: SSWS <token>` (401
 * `E0000011` otherwise), users found with `search`/`filter` expressions (`profile.login eq`, `profile.email eq`,
 * `status eq`, `id eq`, joined with `and`/`or`; values case-insensitive; `DEPROVISIONED` users left out unless asked
 * for), group membership `PUT`/`DELETE /api/v1/groups/{groupId}/users/{userId}` (204, idempotent; 404 `E0000007`
 * for an unknown user or group; 403 `E0000006` for an `APP_GROUP`), group members paged with `limit`/`after` and an
 * absolute `Link` header, the `X-Rate-Limit-*` and `X-Okta-Request-Id` headers on every response, and
 * `rateLimit()` for 429 `E0000047`.
 */
import { randomHex, startFakeServer, type FakeRequest, type FakeResponse, type FakeServer } from './core.js'

export type OktaUserStatus = 'STAGED' | 'PROVISIONED' | 'ACTIVE' | 'RECOVERY' | 'PASSWORD_EXPIRED' | 'LOCKED_OUT' | 'SUSPENDED' | 'DEPROVISIONED'

export interface FakeOktaUser {
  readonly id: string
  status: OktaUserStatus
  readonly created: string
  readonly lastUpdated: string
  readonly profile: { login: string; email: string; firstName: string; lastName: string }
}

export interface FakeOktaGroup {
  readonly id: string
  readonly type: 'OKTA_GROUP' | 'APP_GROUP' | 'BUILT_IN'
  readonly name: string
  readonly members: Set<string>
}

export interface FakeOktaOptions {
  /** API tokens accepted. Default one, `token`. */
  readonly tokens?: readonly string[]
  readonly now?: () => number
  /** `X-Rate-Limit-Limit`. Default 600. */
  readonly rateLimit?: number
}

export interface FakeOkta extends FakeServer {
  /** The base URL to configure (the fake's own; `Link` headers point at it). */
  readonly baseUrl: string
  /** A valid API token. */
  readonly token: string
  readonly users: Map<string, FakeOktaUser>
  readonly groups: Map<string, FakeOktaGroup>
  addUser(user: { login: string; email?: string; firstName?: string; lastName?: string; status?: OktaUserStatus }): FakeOktaUser
  addGroup(name: string, type?: FakeOktaGroup['type']): FakeOktaGroup
  isMember(groupId: string, userId: string): boolean
  /** The next `times` (default 1) API calls get 429 `E0000047` with `X-Rate-Limit-Remaining: 0` and a reset `resetInSeconds` ahead. */
  rateLimit(opts?: { times?: number; resetInSeconds?: number; operation?: string }): void
}

const DEFAULT_PAGE = 1000
const MAX_PAGE = { search: 200, members: 1000 }

function errorBody(code: string, summary: string, causes: string[] = []) {
  return { errorCode: code, errorSummary: summary, errorLink: code, errorId: `oae${randomHex(10)}`, errorCauses: causes.map((c) => ({ errorSummary: c })) }
}

/** Parses `a eq "x" and b eq "y"` / `... or ...` (no parentheses). */
function parseExpression(expr: string): { op: 'and' | 'or'; clauses: Array<{ attr: string; value: string }> } | undefined {
  const clauses: Array<{ attr: string; value: string }> = []
  const re = /\s*([\w.]+)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*(and|or)?/giy
  let op: 'and' | 'or' | undefined
  let m: RegExpExecArray | null
  let consumed = 0
  while ((m = re.exec(expr))) {
    clauses.push({ attr: m[1]!, value: m[2]!.replace(/\\(.)/g, '$1') })
    consumed = re.lastIndex
    if (m[3]) {
      const o = m[3].toLowerCase() as 'and' | 'or'
      if (op && op !== o) return undefined
      op = o
    } else break
  }
  if (!clauses.length || expr.slice(consumed).trim() !== '') return undefined
  return { op: op ?? 'and', clauses }
}

function attrOf(user: FakeOktaUser, attr: string): string | undefined {
  switch (attr) {
    case 'id':
      return user.id
    case 'status':
      return user.status
    case 'profile.login':
      return user.profile.login
    case 'profile.email':
      return user.profile.email
    case 'profile.firstName':
      return user.profile.firstName
    case 'profile.lastName':
      return user.profile.lastName
    default:
      return undefined
  }
}

/** Starts the fake on 127.0.0.1. */
export async function startFakeOkta(options: FakeOktaOptions = {}): Promise<FakeOkta> {
  const tokens = new Set(options.tokens ?? [`00${randomHex(20)}`])
  const token = [...tokens][0]!
  const now = options.now ?? Date.now
  const limit = options.rateLimit ?? 600
  const users = new Map<string, FakeOktaUser>()
  const groups = new Map<string, FakeOktaGroup>()
  let base = ''
  let remaining = limit
  let windowReset = 0

  const userView = (u: FakeOktaUser) => ({ ...u, _links: { self: { href: `${base}/api/v1/users/${u.id}` } } })
  const notFound = (id: string, kind: 'User' | 'UserGroup'): FakeResponse => ({ status: 404, body: errorBody('E0000007', `Not found: Resource not found: ${id} (${kind})`) })

  function page<T>(req: FakeRequest, items: T[], idOf: (t: T) => string, max: number): { items: T[]; link: string } {
    const rawLimit = Number(req.query.get('limit') ?? DEFAULT_PAGE)
    const size = Math.max(1, Math.min(Number.isFinite(rawLimit) ? rawLimit : DEFAULT_PAGE, max))
    const after = req.query.get('after')
    const start = after ? items.findIndex((t) => idOf(t) === after) + 1 : 0
    const slice = items.slice(start, start + size)
    const self = `<${base}${req.url}>; rel="self"`
    if (start + size >= items.length || slice.length === 0) return { items: slice, link: self }
    const next = new URL(`${base}${req.pathname}`)
    for (const [k, v] of req.query) if (k !== 'after') next.searchParams.set(k, v)
    next.searchParams.set('after', idOf(slice.at(-1)!))
    next.searchParams.set('limit', String(size))
    return { items: slice, link: `${self}, <${next.toString()}>; rel="next"` }
  }

  function classify(req: FakeRequest): void {
    req.service = 'okta'
    const p = req.pathname
    if (p === '/api/v1/users') req.operation = `${req.method} /api/v1/users`
    else if (/^\/api\/v1\/users\/[^/]+$/.test(p)) req.operation = `${req.method} /api/v1/users/{id}`
    else if (/^\/api\/v1\/groups\/[^/]+\/users\/[^/]+$/.test(p)) req.operation = `${req.method} /api/v1/groups/{groupId}/users/{userId}`
    else if (/^\/api\/v1\/groups\/[^/]+\/users$/.test(p)) req.operation = `${req.method} /api/v1/groups/{groupId}/users`
    else req.operation = `${req.method} ${p}`
  }

  function handle(req: FakeRequest): FakeResponse {
    const auth = req.headers.authorization ?? ''
    const m = /^SSWS (.+)$/.exec(auth)
    if (!m || !tokens.has(m[1]!)) return { status: 401, body: errorBody('E0000011', 'Invalid token provided') }
    req.principal = `token:${m[1]!.slice(0, 4)}…`
    const p = req.pathname
    const seg = p.split('/').map((s) => decodeURIComponent(s))

    if (p === '/api/v1/users' && req.method === 'GET') {
      const expr = req.query.get('search') ?? req.query.get('filter')
      let found = [...users.values()]
      if (expr !== null) {
        const parsed = parseExpression(expr)
        if (!parsed) return { status: 400, body: errorBody('E0000031', 'Invalid search criteria.', [`Invalid search: ${expr}`]) }
        const hit = (u: FakeOktaUser, c: { attr: string; value: string }) => attrOf(u, c.attr)?.toLowerCase() === c.value.toLowerCase()
        found = found.filter((u) => (parsed.op === 'and' ? parsed.clauses.every((c) => hit(u, c)) : parsed.clauses.some((c) => hit(u, c))))
        if (!parsed.clauses.some((c) => c.attr === 'status')) found = found.filter((u) => u.status !== 'DEPROVISIONED')
      } else {
        const q = req.query.get('q')?.toLowerCase()
        found = found.filter((u) => u.status !== 'DEPROVISIONED' && (!q || u.profile.login.toLowerCase().startsWith(q) || u.profile.email.toLowerCase().startsWith(q)))
      }
      const pg = page(req, found, (u) => u.id, MAX_PAGE.search)
      return { status: 200, headers: { link: pg.link }, body: pg.items.map(userView) }
    }
    if (seg.length === 5 && seg[3] === 'users' && req.method === 'GET') {
      const key = seg[4]!.toLowerCase()
      const u = users.get(seg[4]!) ?? [...users.values()].find((x) => x.profile.login.toLowerCase() === key)
      return u ? { status: 200, body: userView(u) } : notFound(seg[4]!, 'User')
    }
    if (seg.length === 7 && seg[3] === 'groups' && seg[5] === 'users' && (req.method === 'PUT' || req.method === 'DELETE')) {
      const group = groups.get(seg[4]!)
      if (!group) return notFound(seg[4]!, 'UserGroup')
      const user = users.get(seg[6]!)
      if (!user) return notFound(seg[6]!, 'User')
      if (group.type !== 'OKTA_GROUP') return { status: 403, body: errorBody('E0000006', 'You do not have permission to perform the requested action', [`Cannot modify the membership of a ${group.type} group`]) }
      if (req.method === 'PUT') group.members.add(user.id)
      else group.members.delete(user.id)
      return { status: 204 }
    }
    if (seg.length === 6 && seg[3] === 'groups' && seg[5] === 'users' && req.method === 'GET') {
      const group = groups.get(seg[4]!)
      if (!group) return notFound(seg[4]!, 'UserGroup')
      const members = [...group.members].map((id) => users.get(id)).filter((u): u is FakeOktaUser => !!u && u.status !== 'DEPROVISIONED')
      const pg = page(req, members, (u) => u.id, MAX_PAGE.members)
      return { status: 200, headers: { link: pg.link }, body: pg.items.map(userView) }
    }
    return { status: 404, body: errorBody('E0000022', 'The endpoint does not support the provided HTTP method') }
  }

  const server = await startFakeServer({
    classify,
    handle,
    commonHeaders: (_req, res) => {
      const nowS = Math.floor(now() / 1000)
      if (nowS >= windowReset) {
        windowReset = nowS + 60
        remaining = limit
      }
      remaining = Math.max(0, remaining - 1)
      const injected = res.status === 429 ? res.headers : undefined
      return {
        'x-rate-limit-limit': String(limit),
        'x-rate-limit-remaining': injected?.['x-rate-limit-remaining'] ?? String(remaining),
        'x-rate-limit-reset': injected?.['x-rate-limit-reset'] ?? String(windowReset),
        'x-okta-request-id': randomHex(12),
        date: new Date(now()).toUTCString(),
      }
    },
    onReset: () => {
      users.clear()
      groups.clear()
    },
  })
  base = server.url

  return Object.assign(server, {
    baseUrl: server.url,
    token,
    users,
    groups,
    addUser(u: { login: string; email?: string; firstName?: string; lastName?: string; status?: OktaUserStatus }): FakeOktaUser {
      const at = new Date(now()).toISOString()
      const user: FakeOktaUser = {
        id: `00u${randomHex(8)}`,
        status: u.status ?? 'ACTIVE',
        created: at,
        lastUpdated: at,
        profile: { login: u.login, email: u.email ?? u.login, firstName: u.firstName ?? 'Test', lastName: u.lastName ?? 'User' },
      }
      users.set(user.id, user)
      return user
    },
    addGroup(name: string, type: FakeOktaGroup['type'] = 'OKTA_GROUP'): FakeOktaGroup {
      const group: FakeOktaGroup = { id: `00g${randomHex(8)}`, type, name, members: new Set() }
      groups.set(group.id, group)
      return group
    },
    isMember: (groupId: string, userId: string) => groups.get(groupId)?.members.has(userId) ?? false,
    rateLimit(opts: { times?: number; resetInSeconds?: number; operation?: string } = {}) {
      const reset = Math.floor(now() / 1000) + (opts.resetInSeconds ?? 2)
      server.fail({
        match: { service: 'okta', ...(opts.operation ? { operation: opts.operation } : {}) },
        times: opts.times ?? 1,
        respond: {
          status: 429,
          headers: { 'x-rate-limit-remaining': '0', 'x-rate-limit-reset': String(reset) },
          body: errorBody('E0000047', 'API call exceeded rate limit due to too many requests.'),
        },
      })
    },
  })
}
