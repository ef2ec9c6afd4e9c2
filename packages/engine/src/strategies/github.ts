/**
 * The `github` strategy: a repository collaborator (`github_repo` target, `settings.repo_name`, often bound from a
 * prompt field) in the organization of a `github` integration (`external_id` = the organization,
 * `settings.api_token_secret` = a token with `repo`, `read:org`, `user:email`), through Octokit. The API is
 * `https://api.github.com` unless `GithubStrategyOptions.baseUrl` (or `OPENSYM_GITHUB_API_URL`) says otherwise
 * (GitHub Enterprise Server: `https://<host>/api/v3`).
 *
 * - identity: the GitHub login, found by email with `GET /search/users?q=<email> in:email` (public emails only),
 *   then the authors of `GET /search/commits?q=author-email:<email>`; more than one login is refused as ambiguous.
 * - escalate: `PUT /repos/{org}/{repo}/collaborators/{login}` with the permission (target or strategy
 *   `settings.permission`, default `push`): 201 = an invitation was sent (the user must accept it), 204 = already a
 *   collaborator (or an organization member with access).
 * - deescalate: `DELETE …/collaborators/{login}` (204 also when not one) and the user's pending invitations to the
 *   repository (`DELETE /repos/{org}/{repo}/invitations/{id}`); a 404 (the repository or user is gone) is success.
 * - isGranted: a collaborator (`GET …/collaborators/{login}` 204) or a pending invitation for the user.
 * - 429, 403 with `x-ratelimit-remaining: 0` or a secondary rate limit (honouring `retry-after`, else
 *   `x-ratelimit-reset`, else 60 s), 5xx and connection errors are retried.
 */
import type * as OctokitModule from '@octokit/rest'
import type { Octokit } from '@octokit/rest'
import { RetryableStrategyError, StrategyError, type Strategy, type StrategyCall, type StrategyOutput } from '../strategy.js'
import { integrationOf, integrationSecret, optionalSetting, requireTargetType, strategyName, targetSetting } from './common.js'
import { parseRetryAfter } from './http.js'

export interface GithubStrategyOptions {
  /** The REST API's base URL. Default `https://api.github.com`. */
  readonly baseUrl?: string
  readonly fetch?: typeof fetch
  readonly now?: () => number
}

/** Octokit, imported on first use (the API process never needs it) and then cached; a failed import is tried again. */
let octokitModule: Promise<typeof OctokitModule> | undefined
const loadOctokit = () =>
  (octokitModule ??= import('@octokit/rest').catch((e: unknown) => {
    octokitModule = undefined
    throw e
  }))

const PERMISSIONS = /^[a-z0-9_-]{1,100}$/i
const SECONDARY_LIMIT_WAIT_MS = 60_000
const USER_AGENT = 'OpenSym-GitHub-Strategy/1'

interface OctokitError {
  status?: number
  message?: string
  name?: string
  response?: { headers?: Record<string, string | number | undefined>; data?: unknown }
}

export function createGithubStrategy(options: GithubStrategyOptions = {}): Strategy {
  const baseUrl = (options.baseUrl ?? 'https://api.github.com').replace(/\/+$/, '')
  const now = options.now ?? Date.now

  async function client(call: Pick<StrategyCall, 'strategy' | 'secrets' | 'signal'>) {
    const integration = integrationOf(call, ['github'])
    const org = integration.externalId
    if (!org) throw new StrategyError(`${strategyName(call)}: its github integration has no external_id (the GitHub organization)`)
    const token = await integrationSecret(call, integration, 'api_token_secret')
    const { Octokit } = await loadOctokit()
    const octokit: Octokit = new Octokit({
      auth: token,
      baseUrl,
      userAgent: USER_AGENT,
      request: { signal: call.signal, ...(options.fetch ? { fetch: options.fetch } : {}) },
      log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
    })
    return { octokit, org }
  }

  /** An Octokit failure as the engine's error; 404 is returned as `undefined` when `notFound` is true. */
  function failure(error: unknown, what: string): Error {
    const e = error as OctokitError
    const status = typeof e?.status === 'number' ? e.status : undefined
    const text = (typeof e?.message === 'string' ? e.message : String(error)).split('\n')[0]!
    const detail = `github ${what}: ${status && status !== 500 ? `HTTP ${status}: ` : ''}${text}`
    const headers = e?.response?.headers ?? {}
    const header = (name: string) => {
      const v = headers[name]
      return v === undefined ? undefined : String(v)
    }
    const rateLimited = status === 429 || (status === 403 && (header('x-ratelimit-remaining') === '0' || /rate limit/i.test(text)))
    if (rateLimited) {
      const retryAfter = parseRetryAfter(header('retry-after'), now())
      // The reset is the primary limit's: it says when to come back only when that limit is spent.
      const reset = Number(header('x-ratelimit-reset'))
      const untilReset = header('x-ratelimit-remaining') === '0' && Number.isFinite(reset) && reset > 0 ? Math.max(0, reset * 1000 - now()) : undefined
      return new RetryableStrategyError(detail, retryAfter ?? untilReset ?? SECONDARY_LIMIT_WAIT_MS, { cause: error })
    }
    if (status === undefined || status >= 500 || e?.name === 'AbortError') return new RetryableStrategyError(detail, undefined, { cause: error })
    return new StrategyError(detail, undefined, { cause: error })
  }

  async function call<T>(what: string, fn: () => Promise<T>): Promise<T>
  async function call<T>(what: string, fn: () => Promise<T>, notFound: 'undefined'): Promise<T | undefined>
  async function call<T>(what: string, fn: () => Promise<T>, notFound?: 'undefined'): Promise<T | undefined> {
    try {
      return await fn()
    } catch (error) {
      if (notFound && (error as OctokitError)?.status === 404) return undefined
      throw failure(error, what)
    }
  }

  function repoOf(c: Pick<StrategyCall, 'strategy' | 'target'>): string {
    requireTargetType(c, ['github_repo'])
    const repo = targetSetting(c, 'repo_name')
    // A bound repo_name comes from a prompt field: it must be a name in the organization, not a path.
    if (!/^[\w.-]{1,100}$/.test(repo)) throw new StrategyError(`target "${c.target.slug}": repo_name "${repo}" is not a repository name`)
    return repo
  }

  function permissionOf(c: Pick<StrategyCall, 'strategy' | 'target'>): string {
    const p = optionalSetting(c.target.settings, 'permission') ?? optionalSetting(c.strategy.settings, 'permission') ?? 'push'
    if (!PERMISSIONS.test(p)) throw new StrategyError(`${strategyName(c)}: permission "${p}" is not a repository role (pull, triage, push, maintain, admin or a custom role)`)
    return p
  }

  const sameLogin = (a: string | undefined | null, b: string) => !!a && a.toLowerCase() === b.toLowerCase()

  async function pendingInvitations(gh: Awaited<ReturnType<typeof client>>, repo: string, login: string) {
    const all = await call(`list invitations of ${gh.org}/${repo}`, () => gh.octokit.paginate(gh.octokit.rest.repos.listInvitations, { owner: gh.org, repo, per_page: 100 }), 'undefined')
    return (all ?? []).filter((i) => sameLogin(i.invitee?.login, login) && !i.expired)
  }

  async function escalate(c: StrategyCall): Promise<StrategyOutput> {
    const repo = repoOf(c)
    const permission = permissionOf(c)
    const gh = await client(c)
    const res = await call(`add ${c.identity} to ${gh.org}/${repo}`, () =>
      gh.octokit.rest.repos.addCollaborator({ owner: gh.org, repo, username: c.identity, permission }),
    )
    const body: Record<string, unknown> = { repository: `${gh.org}/${repo}`, username: c.identity, permission }
    if (res.status === 201) {
      const invitation = res.data as { id?: number; html_url?: string } | undefined
      return { body: { ...body, state: 'invited', invitation_id: invitation?.id ?? null, invitation_url: invitation?.html_url ?? null }, errors: [] }
    }
    return { body: { ...body, state: 'collaborator' }, errors: [] }
  }

  async function deescalate(c: StrategyCall): Promise<StrategyOutput> {
    const repo = repoOf(c)
    const gh = await client(c)
    const removed = await call(`remove ${c.identity} from ${gh.org}/${repo}`, () => gh.octokit.rest.repos.removeCollaborator({ owner: gh.org, repo, username: c.identity }), 'undefined')
    const invitations = await pendingInvitations(gh, repo, c.identity)
    for (const invitation of invitations) {
      await call(`delete invitation ${invitation.id} to ${gh.org}/${repo}`, () => gh.octokit.rest.repos.deleteInvitation({ owner: gh.org, repo, invitation_id: invitation.id }), 'undefined')
    }
    const output: StrategyOutput = { body: { repository: `${gh.org}/${repo}`, username: c.identity, invitations_deleted: invitations.map((i) => i.id) }, errors: [] }
    return removed === undefined ? { ...output, warnings: [`github remove ${c.identity} from ${gh.org}/${repo}: HTTP 404 (the repository or user is gone; nothing to remove)`] } : output
  }

  return {
    type: 'github',
    identityService: 'github',
    async identity(c) {
      const email = c.subject.email
      if (!email) return undefined
      const gh = await client(c)
      const users = await call('search users by email', () => gh.octokit.rest.search.users({ q: `${email} in:email`, per_page: 5 }))
      const logins = [...new Set(users.data.items.filter((u) => u.type !== 'Organization').map((u) => u.login))]
      if (logins.length === 1) return logins[0]
      if (logins.length > 1) throw new StrategyError(`github: ${logins.length} GitHub users have the email ${email} (${logins.join(', ')}); set the user's github identity with the admin command`)
      const commits = await call('search commits by author email', () => gh.octokit.rest.search.commits({ q: `author-email:${email}`, per_page: 20 }))
      const authors = [...new Set(commits.data.items.map((i) => i.author?.login).filter((l): l is string => typeof l === 'string' && l !== ''))]
      if (authors.length === 1) return authors[0]
      if (authors.length > 1) throw new StrategyError(`github: commits with the author email ${email} belong to ${authors.length} GitHub users (${authors.join(', ')}); set the user's github identity with the admin command`)
      return undefined
    },
    escalate,
    deescalate,
    async isGranted(c) {
      const repo = repoOf(c)
      const gh = await client(c)
      const collaborator = await call(`check ${c.identity} on ${gh.org}/${repo}`, () => gh.octokit.rest.repos.checkCollaborator({ owner: gh.org, repo, username: c.identity }), 'undefined')
      if (collaborator !== undefined) return true
      return (await pendingInvitations(gh, repo, c.identity)).length > 0
    },
  }
}
