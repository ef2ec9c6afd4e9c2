/**
 * A local fake of the GitHub REST API as Octokit uses it (reference saas-apis.md §6), served under `/api/v3`
 * (Octokit's `baseUrl` = `fake.baseUrl`): `Authorization: token|bearer <token>` (401 "Bad credentials" otherwise),
 * repository collaborators with the invitation flow (`PUT …/collaborators/{user}`: 201 + a repository invitation
 * for a new user, 204 for an existing collaborator or an organization member given access; an invitee becomes a
 * collaborator only through `acceptInvitation()`), `GET` (204/404) and `DELETE` (204) of collaborators, invitations
 * listed with `per_page`/`page` and an absolute `Link`, deleted by id, user search by public email and commit
 * search by author email, `x-github-request-id` and `x-ratelimit-*` headers on every response, and rate-limit
 * faults (`primaryRateLimit()`, `secondaryRateLimit()`).
 */
import { randomHex, startFakeServer, type FakeRequest, type FakeResponse, type FakeServer } from './core.js'

export interface FakeGithubUser {
  readonly login: string
  readonly id: number
  readonly type: 'User' | 'Organization' | 'Bot'
  /** The public email search finds. */
  publicEmail: string | null
}

export interface FakeInvitation {
  readonly id: number
  readonly invitee: string
  readonly inviter: string
  permissions: string
  readonly created_at: string
  expired: boolean
}

export interface FakeRepo {
  readonly owner: string
  readonly name: string
  readonly id: number
  readonly ownerType: 'Organization' | 'User'
  /** login → permission (pull, triage, push, maintain, admin). */
  readonly collaborators: Map<string, string>
  readonly invitations: Map<number, FakeInvitation>
}

export interface FakeGithubOptions {
  /** Tokens accepted (as `token X` or `bearer X`). Default one, `token`. */
  readonly tokens?: readonly string[]
  readonly now?: () => number
}

export interface FakeGithub extends FakeServer {
  /** Octokit's `baseUrl`: `<url>/api/v3`. */
  readonly baseUrl: string
  readonly token: string
  readonly users: Map<string, FakeGithubUser>
  readonly repos: Map<string, FakeRepo>
  /** Organization members: added directly (204) instead of invited. */
  readonly orgMembers: Map<string, Set<string>>
  addUser(login: string, opts?: { publicEmail?: string | null; type?: FakeGithubUser['type'] }): FakeGithubUser
  addRepo(owner: string, name: string, ownerType?: FakeRepo['ownerType']): FakeRepo
  /** A commit whose author email is `email`, authored by `login` (null: not linked to a GitHub user). */
  addCommit(email: string, login: string | null): void
  /** The invitee accepts their invitation to the repository: now a collaborator. */
  acceptInvitation(owner: string, repo: string, login: string): void
  repo(owner: string, name: string): FakeRepo | undefined
  isCollaborator(owner: string, repo: string, login: string): boolean
  pendingInvitation(owner: string, repo: string, login: string): FakeInvitation | undefined
  /** The next `times` calls get a primary rate limit: 403 (or 429) with `x-ratelimit-remaining: 0`. */
  primaryRateLimit(opts?: { times?: number; status?: 403 | 429; resetInSeconds?: number }): void
  /** The next `times` calls get a secondary rate limit: 403 or 429, with `retry-after` when given. */
  secondaryRateLimit(opts?: { times?: number; status?: 403 | 429; retryAfterSeconds?: number }): void
}

const PREFIX = '/api/v3'
const DOCS = 'https://docs.github.com/rest'
const PERMISSION_NAMES: Record<string, string> = { pull: 'read', triage: 'triage', push: 'write', maintain: 'maintain', admin: 'admin' }

/** Starts the fake on 127.0.0.1. */
export async function startFakeGithub(options: FakeGithubOptions = {}): Promise<FakeGithub> {
  const tokens = new Set(options.tokens ?? [`ghp_${randomHex(18)}`])
  const token = [...tokens][0]!
  const now = options.now ?? Date.now
  const users = new Map<string, FakeGithubUser>()
  const repos = new Map<string, FakeRepo>()
  const orgMembers = new Map<string, Set<string>>()
  const commits: Array<{ email: string; login: string | null; sha: string }> = []
  let nextId = 1000
  const used = { core: 0, search: 0 }
  let url = ''

  const userOf = (login: string) => [...users.values()].find((u) => u.login.toLowerCase() === login.toLowerCase())
  const simpleUser = (u: FakeGithubUser) => ({ login: u.login, id: u.id, node_id: `U_${u.id}`, type: u.type, site_admin: false, url: `${url}${PREFIX}/users/${u.login}` })
  const repoKey = (owner: string, name: string) => `${owner.toLowerCase()}/${name.toLowerCase()}`
  const error = (status: number, message: string, extra: Record<string, unknown> = {}): FakeResponse => ({ status, body: { message, documentation_url: DOCS, status: String(status), ...extra } })
  const notFound = () => error(404, 'Not Found')

  const invitationView = (repo: FakeRepo, i: FakeInvitation) => {
    const invitee = userOf(i.invitee)
    const inviter = userOf(i.inviter)
    return {
      id: i.id,
      node_id: `RI_${i.id}`,
      repository: { id: repo.id, name: repo.name, full_name: `${repo.owner}/${repo.name}` },
      invitee: invitee ? simpleUser(invitee) : null,
      inviter: inviter ? simpleUser(inviter) : null,
      permissions: i.permissions,
      created_at: i.created_at,
      expired: i.expired,
      url: `${url}${PREFIX}/user/repository_invitations/${i.id}`,
      html_url: `https://github.com/${repo.owner}/${repo.name}/invitations`,
    }
  }

  function pageOf<T>(req: FakeRequest, items: T[]): { items: T[]; link?: string } {
    const perPage = Math.max(1, Math.min(100, Number(req.query.get('per_page') ?? 30) || 30))
    const pageNo = Math.max(1, Number(req.query.get('page') ?? 1) || 1)
    const slice = items.slice((pageNo - 1) * perPage, pageNo * perPage)
    const last = Math.max(1, Math.ceil(items.length / perPage))
    if (last <= 1) return { items: slice }
    const link = (p: number, rel: string) => {
      const u = new URL(`${url}${req.pathname}`)
      for (const [k, v] of req.query) u.searchParams.set(k, v)
      u.searchParams.set('page', String(p))
      return `<${u.toString()}>; rel="${rel}"`
    }
    const parts = [pageNo < last ? link(pageNo + 1, 'next') : '', link(last, 'last'), pageNo > 1 ? link(pageNo - 1, 'prev') : '', pageNo > 1 ? link(1, 'first') : ''].filter(Boolean)
    return { items: slice, link: parts.join(', ') }
  }

  function classify(req: FakeRequest): void {
    req.service = 'github'
    const p = req.pathname.startsWith(PREFIX) ? req.pathname.slice(PREFIX.length) : req.pathname
    const route = p
      .replace(/^\/repos\/[^/]+\/[^/]+\/collaborators\/[^/]+$/, '/repos/{owner}/{repo}/collaborators/{username}')
      .replace(/^\/repos\/[^/]+\/[^/]+\/invitations\/[^/]+$/, '/repos/{owner}/{repo}/invitations/{invitation_id}')
      .replace(/^\/repos\/[^/]+\/[^/]+\/invitations$/, '/repos/{owner}/{repo}/invitations')
    req.operation = `${req.method} ${route}`
  }

  function handle(req: FakeRequest): FakeResponse {
    const auth = /^(?:token|bearer) (.+)$/i.exec(req.headers.authorization ?? '')
    if (!auth || !tokens.has(auth[1]!)) return { status: 401, body: { message: 'Bad credentials', documentation_url: DOCS, status: '401' } }
    req.principal = `token:${auth[1]!.slice(0, 6)}…`
    const p = req.pathname.startsWith(PREFIX) ? req.pathname.slice(PREFIX.length) : req.pathname
    const seg = p.split('/').map((s) => decodeURIComponent(s))

    if (p === '/search/users' && req.method === 'GET') {
      const q = req.query.get('q') ?? ''
      const m = /^(\S+)\s+in:email$/i.exec(q.trim())
      const found = m ? [...users.values()].filter((u) => u.publicEmail?.toLowerCase() === m[1]!.toLowerCase()) : [...users.values()].filter((u) => u.login.toLowerCase().includes(q.toLowerCase()))
      const pg = pageOf(req, found)
      return { status: 200, headers: pg.link ? { link: pg.link } : {}, body: { total_count: found.length, incomplete_results: false, items: pg.items.map((u) => ({ ...simpleUser(u), score: 1 })) } }
    }
    if (p === '/search/commits' && req.method === 'GET') {
      const m = /author-email:(\S+)/i.exec(req.query.get('q') ?? '')
      const found = m ? commits.filter((c) => c.email.toLowerCase() === m[1]!.toLowerCase()) : []
      const pg = pageOf(req, found)
      return {
        status: 200,
        headers: pg.link ? { link: pg.link } : {},
        body: {
          total_count: found.length,
          incomplete_results: false,
          items: pg.items.map((c) => {
            const author = c.login ? userOf(c.login) : undefined
            return { sha: c.sha, commit: { author: { email: c.email, name: c.login ?? 'someone' } }, author: author ? simpleUser(author) : null, score: 1 }
          }),
        },
      }
    }
    if (seg[1] === 'repos' && seg.length >= 5) {
      const repo = repos.get(repoKey(seg[2]!, seg[3]!))
      if (!repo) return notFound()
      if (seg[4] === 'collaborators' && seg.length === 6) {
        const login = seg[5]!
        const user = userOf(login)
        const collaborator = [...repo.collaborators.keys()].find((l) => l.toLowerCase() === login.toLowerCase())
        switch (req.method) {
          case 'GET':
            return collaborator ? { status: 204 } : notFound()
          case 'DELETE':
            if (collaborator) repo.collaborators.delete(collaborator)
            return { status: 204 }
          case 'PUT': {
            if (!user) return notFound()
            const body = (req.json ?? {}) as { permission?: unknown }
            const permission = body.permission === undefined ? 'push' : body.permission
            if (typeof permission !== 'string' || (!(permission in PERMISSION_NAMES) && !/^[a-z][\w-]*$/i.test(permission))) {
              return error(422, 'Validation Failed', { errors: [{ resource: 'Repository', code: 'invalid', field: 'permission', message: `${JSON.stringify(permission)} is not a valid permission` }] })
            }
            if (body.permission !== undefined && repo.ownerType === 'User') {
              return error(422, 'Validation Failed', { errors: [{ resource: 'Repository', code: 'custom', field: 'permission', message: 'permission is only valid for organization-owned repositories' }] })
            }
            if (collaborator) {
              repo.collaborators.set(collaborator, permission)
              return { status: 204 }
            }
            if (orgMembers.get(repo.owner.toLowerCase())?.has(user.login.toLowerCase())) {
              repo.collaborators.set(user.login, permission)
              return { status: 204 }
            }
            const existing = [...repo.invitations.values()].find((i) => i.invitee.toLowerCase() === user.login.toLowerCase() && !i.expired)
            const invitation = existing ?? { id: nextId++, invitee: user.login, inviter: 'opensym-bot', permissions: PERMISSION_NAMES[permission] ?? permission, created_at: new Date(now()).toISOString(), expired: false }
            invitation.permissions = PERMISSION_NAMES[permission] ?? permission
            repo.invitations.set(invitation.id, invitation)
            return { status: 201, body: invitationView(repo, invitation) }
          }
        }
      }
      if (seg[4] === 'invitations' && seg.length === 5 && req.method === 'GET') {
        const pg = pageOf(req, [...repo.invitations.values()].sort((a, b) => a.id - b.id))
        return { status: 200, headers: pg.link ? { link: pg.link } : {}, body: pg.items.map((i) => invitationView(repo, i)) }
      }
      if (seg[4] === 'invitations' && seg.length === 6 && req.method === 'DELETE') {
        return repo.invitations.delete(Number(seg[5])) ? { status: 204 } : notFound()
      }
    }
    return notFound()
  }

  const server = await startFakeServer({
    classify,
    handle,
    commonHeaders: (req, res) => {
      const resource = req.pathname.includes('/search/') ? 'search' : 'core'
      used[resource]++
      const limit = resource === 'search' ? 30 : 5000
      const headers: Record<string, string> = {
        'x-github-request-id': `${randomHex(4)}:${randomHex(4)}:${randomHex(6)}`.toUpperCase(),
        'x-ratelimit-limit': String(limit),
        'x-ratelimit-remaining': String(Math.max(0, limit - used[resource])),
        'x-ratelimit-used': String(used[resource]),
        'x-ratelimit-reset': String(Math.floor(now() / 1000) + 3600),
        'x-ratelimit-resource': resource,
      }
      void res
      return headers
    },
    onReset: () => {
      users.clear()
      repos.clear()
      orgMembers.clear()
      commits.length = 0
      used.core = used.search = 0
    },
  })
  url = server.url

  const api = {
    baseUrl: `${server.url}${PREFIX}`,
    token,
    users,
    repos,
    orgMembers,
    addUser(login: string, opts: { publicEmail?: string | null; type?: FakeGithubUser['type'] } = {}): FakeGithubUser {
      const u: FakeGithubUser = { login, id: nextId++, type: opts.type ?? 'User', publicEmail: opts.publicEmail ?? null }
      users.set(login.toLowerCase(), u)
      return u
    },
    addRepo(owner: string, name: string, ownerType: FakeRepo['ownerType'] = 'Organization'): FakeRepo {
      const r: FakeRepo = { owner, name, id: nextId++, ownerType, collaborators: new Map(), invitations: new Map() }
      repos.set(repoKey(owner, name), r)
      return r
    },
    addCommit(email: string, login: string | null) {
      commits.push({ email, login, sha: randomHex(20) })
    },
    repo: (owner: string, name: string) => repos.get(repoKey(owner, name)),
    acceptInvitation(owner: string, name: string, login: string) {
      const r = repos.get(repoKey(owner, name))
      const inv = r && [...r.invitations.values()].find((i) => i.invitee.toLowerCase() === login.toLowerCase())
      if (!r || !inv) throw new Error(`no invitation for ${login} to ${owner}/${name}`)
      r.invitations.delete(inv.id)
      const permission = Object.entries(PERMISSION_NAMES).find(([, v]) => v === inv.permissions)?.[0] ?? inv.permissions
      r.collaborators.set(inv.invitee, permission)
    },
    isCollaborator: (owner: string, name: string, login: string) => [...(repos.get(repoKey(owner, name))?.collaborators.keys() ?? [])].some((l) => l.toLowerCase() === login.toLowerCase()),
    pendingInvitation: (owner: string, name: string, login: string) =>
      [...(repos.get(repoKey(owner, name))?.invitations.values() ?? [])].find((i) => i.invitee.toLowerCase() === login.toLowerCase() && !i.expired),
    primaryRateLimit(opts: { times?: number; status?: 403 | 429; resetInSeconds?: number } = {}) {
      const reset = Math.floor(now() / 1000) + (opts.resetInSeconds ?? 60)
      server.fail({
        match: { service: 'github' },
        times: opts.times ?? 1,
        respond: {
          status: opts.status ?? 403,
          headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(reset) },
          body: { message: 'API rate limit exceeded for user ID 1.', documentation_url: `${DOCS}/overview/rate-limits-for-the-rest-api`, status: String(opts.status ?? 403) },
        },
      })
    },
    secondaryRateLimit(opts: { times?: number; status?: 403 | 429; retryAfterSeconds?: number } = {}) {
      server.fail({
        match: { service: 'github' },
        times: opts.times ?? 1,
        respond: {
          status: opts.status ?? 403,
          headers: opts.retryAfterSeconds !== undefined ? { 'retry-after': String(opts.retryAfterSeconds) } : {},
          body: {
            message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.',
            documentation_url: `${DOCS}/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits`,
            status: String(opts.status ?? 403),
          },
        },
      })
    },
  }
  // The in-process helpers above use `orgMembers` keyed by lower-cased org with lower-cased logins.
  return Object.assign(server, api)
}
