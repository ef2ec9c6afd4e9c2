/**
 * The local fakes at the wire level, with plain fetch: auth checks, error shapes per protocol, the async
 * assignment status, paging links, and the HTTP fault/record API every fake shares. (The engine's strategy tests
 * drive them with the real AWS SDK and Octokit clients.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startFakeAws, startFakeGithub, startFakeOkta, type FakeAws, type FakeGithub, type FakeOkta } from '../src/index.js'

let aws: FakeAws
let okta: FakeOkta
let gh: FakeGithub
beforeAll(async () => {
  ;[aws, okta, gh] = await Promise.all([startFakeAws(), startFakeOkta(), startFakeGithub()])
})
afterAll(async () => {
  await Promise.all([aws?.close(), okta?.close(), gh?.close()])
})

/** A SigV4-shaped header (the fake checks its shape, scope and key, not the signature). */
const sigv4 = (keyId: string, service: string) =>
  `AWS4-HMAC-SHA256 Credential=${keyId}/20261128/us-east-1/${service}/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'a'.repeat(64)}`

const json11 = (target: string, body: unknown, auth?: string, token?: string) =>
  fetch(`${aws.url}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': target, ...(auth ? { authorization: auth } : {}), ...(token ? { 'x-amz-security-token': token } : {}) },
    body: JSON.stringify(body),
  })

const query = (form: Record<string, string>, auth?: string) =>
  fetch(`${aws.url}/`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8', ...(auth ? { authorization: auth } : {}) }, body: new URLSearchParams(form).toString() })

describe('fake AWS', () => {
  it('rejects requests without SigV4 auth, with the wrong scope or an unknown key, in each protocol', async () => {
    aws.reset()
    const noAuth = await json11('SWBExternalService.ListInstances', {})
    expect(noAuth.status).toBe(403)
    expect(noAuth.headers.get('x-amzn-requestid')).toMatch(/^[0-9a-f-]{36}$/)
    expect(await noAuth.json()).toEqual({ __type: 'MissingAuthenticationTokenException', message: 'Request is missing Authentication Token' })
    const xml = await query({ Action: 'GetUser', Version: '2010-05-08' })
    expect(xml.status).toBe(403)
    expect(await xml.text()).toMatch(/<ErrorResponse xmlns="https:\/\/iam.amazonaws.com\/doc\/2010-05-08\/"><Error><Type>Sender<\/Type><Code>MissingAuthenticationToken<\/Code>/)
    const wrongScope = await json11('SWBExternalService.ListInstances', {}, sigv4(aws.credentials.accessKeyId, 'iam'))
    expect(await wrongScope.json()).toMatchObject({ __type: 'InvalidSignatureException' })
    const unknownKey = await json11('AWSIdentityStore.GetUserId', { IdentityStoreId: 'd-1' }, sigv4('AKIAUNKNOWN', 'identitystore'))
    expect(await unknownKey.json()).toMatchObject({ __type: 'UnrecognizedClientException' })
    expect(aws.requests.map((r) => [r.service, r.operation, r.status, r.principal])).toEqual([
      ['sso-admin', 'ListInstances', 403, null],
      ['iam', 'GetUser', 403, null],
      ['sso-admin', 'ListInstances', 403, null],
      ['identitystore', 'GetUserId', 403, null],
    ])
  })

  it('assumes roles (ExternalId checked) and accepts only the minted session with its token', async () => {
    aws.reset()
    const role = 'arn:aws:iam::123456789012:role/r'
    aws.sts.addRole({ arn: role, externalId: 'ext-1' })
    const denied = await query({ Action: 'AssumeRole', Version: '2011-06-15', RoleArn: role, RoleSessionName: 'opensym', ExternalId: 'wrong' }, sigv4(aws.credentials.accessKeyId, 'sts'))
    expect(denied.status).toBe(403)
    expect(await denied.text()).toContain('<Code>AccessDenied</Code>')
    const ok = await query({ Action: 'AssumeRole', Version: '2011-06-15', RoleArn: role, RoleSessionName: 'opensym', ExternalId: 'ext-1' }, sigv4(aws.credentials.accessKeyId, 'sts'))
    const text = await ok.text()
    expect(text).toMatch(/^<AssumeRoleResponse xmlns="https:\/\/sts.amazonaws.com\/doc\/2011-06-15\/"><AssumeRoleResult><AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role\/r\/opensym<\/Arn>/)
    const keyId = /<AccessKeyId>(ASIA\w+)<\/AccessKeyId>/.exec(text)![1]!
    const token = /<SessionToken>([^<]+)<\/SessionToken>/.exec(text)![1]!
    const { instanceArn } = aws.ssoAdmin.addInstance()
    expect((await json11('SWBExternalService.ListInstances', {}, sigv4(keyId, 'sso'))).status).toBe(403)
    const listed = await json11('SWBExternalService.ListInstances', {}, sigv4(keyId, 'sso'), token)
    expect(await listed.json()).toMatchObject({ Instances: [{ InstanceArn: instanceArn, Status: 'ACTIVE' }] })
    expect(aws.calls('sso-admin', 'ListInstances').at(-1)!.principal).toBe(role)
  })

  it('moves account assignments IN_PROGRESS → SUCCEEDED over polls and keeps them unique', async () => {
    aws.reset()
    const auth = sigv4(aws.credentials.accessKeyId, 'sso')
    const { instanceArn, identityStoreId } = aws.ssoAdmin.addInstance()
    const ps = aws.ssoAdmin.addPermissionSet(instanceArn, 'Admin')
    const user = aws.identityStore.addUser(identityStoreId, { userName: 'u', email: 'u@example.com' })
    aws.ssoAdmin.inProgressPolls = 1
    const input = { InstanceArn: instanceArn, TargetId: '111122223333', TargetType: 'AWS_ACCOUNT', PermissionSetArn: ps, PrincipalType: 'USER', PrincipalId: user.UserId }
    const created = (await (await json11('SWBExternalService.CreateAccountAssignment', input, auth)).json()) as { AccountAssignmentCreationStatus: { Status: string; RequestId: string; CreatedDate: number } }
    expect(created.AccountAssignmentCreationStatus).toMatchObject({ Status: 'IN_PROGRESS', CreatedDate: expect.any(Number) })
    const poll = async () =>
      ((await (await json11('SWBExternalService.DescribeAccountAssignmentCreationStatus', { InstanceArn: instanceArn, AccountAssignmentCreationRequestId: created.AccountAssignmentCreationStatus.RequestId }, auth)).json()) as {
        AccountAssignmentCreationStatus: { Status: string }
      }).AccountAssignmentCreationStatus.Status
    expect(await poll()).toBe('IN_PROGRESS')
    expect(await poll()).toBe('SUCCEEDED')
    await json11('SWBExternalService.CreateAccountAssignment', input, auth)
    const list = (await (await json11('SWBExternalService.ListAccountAssignments', { InstanceArn: instanceArn, AccountId: '111122223333', PermissionSetArn: ps }, auth)).json()) as { AccountAssignments: unknown[] }
    expect(list.AccountAssignments).toEqual([{ AccountId: '111122223333', PermissionSetArn: ps, PrincipalType: 'USER', PrincipalId: user.UserId }])
    const bad = await json11('SWBExternalService.CreateAccountAssignment', { ...input, TargetId: '12' }, auth)
    expect(await bad.json()).toMatchObject({ __type: 'ValidationException' })
    const unknown = await json11('SWBExternalService.Frobnicate', {}, auth)
    expect(await unknown.json()).toMatchObject({ __type: 'UnknownOperationException' })
  })

  it('answers Lambda errors in x-amzn-ErrorType and function errors as 200 + X-Amz-Function-Error', async () => {
    aws.reset()
    aws.lambda.addFunction('boom', () => {
      throw new RangeError('bad')
    })
    const invoke = (name: string, headers: Record<string, string> = {}) =>
      fetch(`${aws.url}/2015-03-31/functions/${encodeURIComponent(name)}/invocations`, { method: 'POST', headers: { authorization: sigv4(aws.credentials.accessKeyId, 'lambda'), ...headers }, body: '{}' })
    const boom = await invoke(aws.lambda.arnOf('boom'))
    expect(boom.status).toBe(200)
    expect(boom.headers.get('x-amz-function-error')).toBe('Unhandled')
    expect(await boom.json()).toEqual({ errorMessage: 'bad', errorType: 'RangeError', trace: [] })
    expect((await invoke('boom', { 'x-amz-invocation-type': 'Event' })).status).toBe(202)
    const missing = await invoke('nope')
    expect(missing.status).toBe(404)
    expect(missing.headers.get('x-amzn-errortype')).toBe('ResourceNotFoundException')
  })

  it('takes faults and reports requests over HTTP', async () => {
    aws.reset()
    const add = await fetch(`${aws.url}/__fake/faults`, { method: 'POST', body: JSON.stringify({ match: { service: 'iam', operation: 'GetUser' }, times: 1, respond: { status: 503, body: '' } }) })
    expect(add.status).toBe(204)
    const auth = sigv4(aws.credentials.accessKeyId, 'iam')
    expect((await query({ Action: 'GetUser', Version: '2010-05-08', UserName: 'x' }, auth)).status).toBe(503)
    expect((await query({ Action: 'GetUser', Version: '2010-05-08', UserName: 'x' }, auth)).status).toBe(404)
    const recorded = (await (await fetch(`${aws.url}/__fake/requests`)).json()) as Array<{ operation: string; status: number }>
    expect(recorded.map((r) => [r.operation, r.status])).toEqual([
      ['GetUser', 503],
      ['GetUser', 404],
    ])
    expect((await fetch(`${aws.url}/__fake/reset`, { method: 'POST' })).status).toBe(204)
    expect(aws.requests).toHaveLength(0)
  })
})

describe('fake Okta', () => {
  it('checks SSWS, evaluates search expressions, and sends rate-limit headers everywhere', async () => {
    okta.reset()
    const u = okta.addUser({ login: 'a@example.com', email: 'A@Example.com' })
    const api = (path: string, init: RequestInit = {}, token = okta.token) => fetch(`${okta.baseUrl}${path}`, { ...init, headers: { authorization: `SSWS ${token}`, accept: 'application/json' } })
    const bad = await api('/api/v1/users', {}, 'nope')
    expect(bad.status).toBe(401)
    expect(await bad.json()).toMatchObject({ errorCode: 'E0000011', errorSummary: 'Invalid token provided', errorCauses: [] })
    const found = await api(`/api/v1/users?search=${encodeURIComponent('profile.email eq "a@EXAMPLE.com" and status eq "ACTIVE"')}`)
    expect(found.headers.get('x-rate-limit-limit')).toBe('600')
    expect(Number(found.headers.get('x-rate-limit-reset'))).toBeGreaterThan(Date.now() / 1000)
    expect(found.headers.get('x-okta-request-id')).toEqual(expect.any(String))
    expect(await found.json()).toEqual([expect.objectContaining({ id: u.id, _links: { self: { href: `${okta.baseUrl}/api/v1/users/${u.id}` } } })])
    expect((await api(`/api/v1/users?search=${encodeURIComponent('profile.email sw "a"')}`)).status).toBe(400)
    const missing = await api('/api/v1/users/nobody@example.com')
    expect(await missing.json()).toMatchObject({ errorCode: 'E0000007', errorSummary: 'Not found: Resource not found: nobody@example.com (User)' })
    okta.rateLimit({ resetInSeconds: 5 })
    const limited = await api('/api/v1/users')
    expect(limited.status).toBe(429)
    expect(limited.headers.get('x-rate-limit-remaining')).toBe('0')
    expect(await limited.json()).toMatchObject({ errorCode: 'E0000047' })
  })

  it('pages group members with absolute Link headers', async () => {
    okta.reset()
    const g = okta.addGroup('g')
    for (let i = 0; i < 5; i++) g.members.add(okta.addUser({ login: `u${i}@example.com` }).id)
    let url: string | undefined = `${okta.baseUrl}/api/v1/groups/${g.id}/users?limit=2`
    const seen: string[] = []
    while (url) {
      const res: Response = await fetch(url, { headers: { authorization: `SSWS ${okta.token}` } })
      seen.push(...((await res.json()) as Array<{ id: string }>).map((x) => x.id))
      url = /<([^>]+)>; rel="next"/.exec(res.headers.get('link') ?? '')?.[1]
      if (url) expect(url.startsWith(okta.baseUrl)).toBe(true)
    }
    expect(seen).toEqual([...g.members])
  })
})

describe('fake GitHub', () => {
  it('checks the token, invites new collaborators (201) and answers 204 for existing ones', async () => {
    gh.reset()
    gh.addUser('dev')
    gh.addRepo('acme', 'api')
    const api = (method: string, path: string, body?: unknown, token = gh.token) =>
      fetch(`${gh.baseUrl}${path}`, { method, headers: { authorization: `token ${token}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) })
    expect(await (await api('GET', '/repos/acme/api/invitations', undefined, 'bad')).json()).toMatchObject({ message: 'Bad credentials' })
    const invited = await api('PUT', '/repos/acme/api/collaborators/dev', { permission: 'push' })
    expect(invited.status).toBe(201)
    expect(invited.headers.get('x-github-request-id')).toEqual(expect.any(String))
    expect(invited.headers.get('x-ratelimit-resource')).toBe('core')
    expect(await invited.json()).toMatchObject({ invitee: { login: 'dev' }, permissions: 'write', repository: { full_name: 'acme/api' } })
    expect((await api('GET', '/repos/acme/api/collaborators/dev')).status).toBe(404)
    gh.acceptInvitation('acme', 'api', 'dev')
    expect((await api('GET', '/repos/acme/api/collaborators/dev')).status).toBe(204)
    expect((await api('PUT', '/repos/acme/api/collaborators/dev', { permission: 'push' })).status).toBe(204)
    expect((await api('PUT', '/repos/acme/api/collaborators/ghost', { permission: 'push' })).status).toBe(404)
    expect((await api('PUT', '/repos/acme/api/collaborators/dev', { permission: 'all of it' })).status).toBe(422)
    gh.addRepo('dev', 'personal', 'User')
    expect(await (await api('PUT', '/repos/dev/personal/collaborators/dev', { permission: 'admin' })).json()).toMatchObject({ message: 'Validation Failed' })
    gh.secondaryRateLimit({ status: 429, retryAfterSeconds: 3 })
    const limited = await api('GET', '/repos/acme/api/invitations')
    expect(limited.status).toBe(429)
    expect(limited.headers.get('retry-after')).toBe('3')
  })
})
