/** The github strategy (Octokit) against the local GitHub fake: discovery, the invitation flow, read-back, rate limits. */
import { startFakeGithub, type FakeGithub } from '@opensym/testing'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createGithubStrategy } from '../src/strategies/index.js'
import { RetryableStrategyError, StrategyError } from '../src/strategy.js'
import { deadUrl, failure, strategyCall, TOKEN_SECRET_ID } from './strategy-fixtures.js'

let gh: FakeGithub
const strategy = () => createGithubStrategy({ baseUrl: gh.baseUrl })

const call = (o: { repo?: string; identity?: string; email?: string | null; token?: string; permission?: string } = {}) =>
  strategyCall({
    type: 'github',
    integration: { id: 'i1', type: 'github', externalId: 'acme', settings: { api_token_secret: TOKEN_SECRET_ID } },
    target: { type: 'github_repo', settings: { repo_name: o.repo ?? 'api', ...(o.permission ? { permission: o.permission } : {}) } },
    identity: o.identity ?? 'alice-gh',
    email: o.email,
    secrets: { [TOKEN_SECRET_ID]: o.token ?? gh.token },
  })

beforeAll(async () => {
  gh = await startFakeGithub()
})
afterEach(() => gh.reset())
afterAll(async () => gh?.close())

function seed() {
  gh.addUser('alice-gh', { publicEmail: 'alice@example.com' })
  gh.addRepo('acme', 'api')
}

describe('github strategy', () => {
  it('finds the login by public email, then by commit author email', async () => {
    seed()
    expect(await strategy().identity(call())).toBe('alice-gh')
    const [search] = gh.calls('github', 'GET /search/users')
    expect(search!.query.get('q')).toBe('alice@example.com in:email')
    expect(search!.headers.authorization).toBe(`token ${gh.token}`)
    expect(search!.headers['user-agent']).toMatch(/^OpenSym-GitHub-Strategy\/1 octokit-rest\.js\//)

    gh.addUser('bob-gh')
    gh.addCommit('bob@example.com', 'bob-gh')
    gh.addCommit('bob@example.com', null)
    expect(await strategy().identity(call({ email: 'bob@example.com' }))).toBe('bob-gh')
    expect(gh.calls('github', 'GET /search/commits')[0]!.query.get('q')).toBe('author-email:bob@example.com')
    expect(await strategy().identity(call({ email: 'nobody@example.com' }))).toBeUndefined()

    gh.addUser('alice-2', { publicEmail: 'alice@example.com' })
    expect((await failure(() => strategy().identity(call()), StrategyError)).message).toMatch(/^github: 2 GitHub users have the email alice@example.com/)
  })

  it('invites, reads back the pending invitation, cancels it on de-escalation, reads back', async () => {
    seed()
    const s = strategy()
    expect(await s.isGranted!(call())).toBe(false)
    const out = await s.escalate(call())
    expect(out).toMatchObject({ body: { repository: 'acme/api', username: 'alice-gh', permission: 'push', state: 'invited', invitation_id: expect.any(Number) }, errors: [] })
    const put = gh.calls('github', 'PUT /repos/{owner}/{repo}/collaborators/{username}')[0]!
    expect(put.pathname).toBe('/api/v3/repos/acme/api/collaborators/alice-gh')
    expect(put.json).toEqual({ permission: 'push' })
    expect(gh.pendingInvitation('acme', 'api', 'alice-gh')).toMatchObject({ permissions: 'write' })
    expect(await s.isGranted!(call())).toBe(true)
    // Escalating again keeps the one invitation.
    expect(await s.escalate(call())).toMatchObject({ body: { state: 'invited', invitation_id: out.body.invitation_id } })
    expect(gh.repo('acme', 'api')!.invitations.size).toBe(1)

    const removed = await s.deescalate(call())
    expect(removed).toMatchObject({ body: { invitations_deleted: [out.body.invitation_id] }, errors: [] })
    expect(gh.pendingInvitation('acme', 'api', 'alice-gh')).toBeUndefined()
    expect(await s.isGranted!(call())).toBe(false)
    expect(await s.deescalate(call())).toMatchObject({ body: { invitations_deleted: [] }, errors: [] })
    expect(gh.operations()).toEqual([
      'GET /repos/{owner}/{repo}/collaborators/{username}',
      'GET /repos/{owner}/{repo}/invitations',
      'PUT /repos/{owner}/{repo}/collaborators/{username}',
      'GET /repos/{owner}/{repo}/collaborators/{username}',
      'GET /repos/{owner}/{repo}/invitations',
      'PUT /repos/{owner}/{repo}/collaborators/{username}',
      'DELETE /repos/{owner}/{repo}/collaborators/{username}',
      'GET /repos/{owner}/{repo}/invitations',
      'DELETE /repos/{owner}/{repo}/invitations/{invitation_id}',
      'GET /repos/{owner}/{repo}/collaborators/{username}',
      'GET /repos/{owner}/{repo}/invitations',
      'DELETE /repos/{owner}/{repo}/collaborators/{username}',
      'GET /repos/{owner}/{repo}/invitations',
    ])
  })

  it('an accepted invitation is a collaborator: 204 on repeat, removed on de-escalation', async () => {
    seed()
    const s = strategy()
    await s.escalate(call({ permission: 'pull' }))
    gh.acceptInvitation('acme', 'api', 'alice-gh')
    expect(gh.isCollaborator('acme', 'api', 'alice-gh')).toBe(true)
    expect(await s.isGranted!(call())).toBe(true)
    expect(await s.escalate(call({ permission: 'pull' }))).toMatchObject({ body: { state: 'collaborator', permission: 'pull' } })
    await s.deescalate(call())
    expect(gh.isCollaborator('acme', 'api', 'alice-gh')).toBe(false)
    expect(await s.isGranted!(call())).toBe(false)
    // An organization member is added directly.
    gh.orgMembers.set('acme', new Set(['alice-gh']))
    expect(await s.escalate(call())).toMatchObject({ body: { state: 'collaborator' } })
  })

  it('rate limits are retried after retry-after or the reset; 5xx and a service that is down too', async () => {
    seed()
    gh.secondaryRateLimit({ retryAfterSeconds: 7 })
    const secondary = await failure(() => strategy().escalate(call()), RetryableStrategyError)
    expect(secondary.message).toMatch(/^github add alice-gh to acme\/api: HTTP 403: You have exceeded a secondary rate limit/)
    expect(secondary.retryAfterMs).toBe(7000)
    gh.secondaryRateLimit({ status: 429 })
    expect((await failure(() => strategy().escalate(call()), RetryableStrategyError)).retryAfterMs).toBe(60_000)
    gh.primaryRateLimit({ resetInSeconds: 30 })
    const primary = await failure(() => strategy().escalate(call()), RetryableStrategyError)
    expect(primary.retryAfterMs).toBeGreaterThan(25_000)
    expect(primary.retryAfterMs).toBeLessThanOrEqual(30_000)
    gh.fail({ match: { method: 'PUT' }, respond: { status: 502, body: { message: 'Server Error' } } })
    expect(await failure(() => strategy().escalate(call()), RetryableStrategyError)).toBeInstanceOf(RetryableStrategyError)
    const down = createGithubStrategy({ baseUrl: `${await deadUrl()}/api/v3` })
    expect((await failure(() => down.escalate(call()), RetryableStrategyError)).message).toMatch(/ECONNREFUSED/)
    expect(gh.pendingInvitation('acme', 'api', 'alice-gh')).toBeUndefined()
  })

  it('refusals fail without retry and never show the token', async () => {
    seed()
    const bad = await failure(() => strategy().escalate(call({ token: 'ghp_wrong' })), StrategyError)
    expect(bad.message).toMatch(/^github add alice-gh to acme\/api: HTTP 401: Bad credentials/)
    expect(bad.message).not.toContain('ghp_wrong')
    expect((await failure(() => strategy().escalate(call({ identity: 'nobody' })), StrategyError)).message).toMatch(/HTTP 404: Not Found/)
    expect((await failure(() => strategy().escalate(call({ permission: 'bogus perm' })), StrategyError)).message).toMatch(/permission "bogus perm" is not a repository role/)
    expect((await failure(() => strategy().escalate(call({ repo: '../orgs/acme' })), StrategyError)).message).toMatch(/is not a repository name/)
    // Removing from a repository that is gone is done.
    expect(await strategy().deescalate(call({ repo: 'gone' }))).toMatchObject({ errors: [], warnings: [expect.stringMatching(/HTTP 404/)] })
  })
})
