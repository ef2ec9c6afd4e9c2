/**
 * Each built-in strategy type end to end: a request through the engine (PostgreSQL, Redis, an in-process worker)
 * to escalation against the service's local fake, read back, and the automatic de-escalation when the duration
 * ends — with identities discovered by email and stored, secrets read at call time (env and AWS Secrets Manager),
 * a service that is down (retries with backoff, the run shows why, the error logger hears, nothing recorded as
 * granted) and an identity nobody can resolve. No secret value ends up in events, audit entries, views or logs.
 */
import { randomBytes } from 'node:crypto'
import { createDb, type Db, type Prisma } from '@opensym/db'
import { startFakeAws, startFakeGithub, startFakeOkta, type FakeAws, type FakeGithub, type FakeOkta } from '@opensym/testing'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { chainAudit } from '../src/audit.js'
import type { Aws } from '../src/aws.js'
import { EngineQueues } from '../src/queues.js'
import type { EngineFailure, EngineLogger } from '../src/seams.js'
import { createSecretResolver } from '../src/secrets.js'
import { RunService } from '../src/service.js'
import { builtinStrategies } from '../src/strategies/index.js'
import { startEngineWorker, type EngineWorker } from '../src/worker.js'
import { eventually, orgWithPrincipals, queuePrefix, redisClient, type OrgPrincipals } from './fixtures.js'
import { EXTERNAL_ID, fakeAwsClients, ROLE_ARN } from './strategy-fixtures.js'

let db: Db
let redis: Redis
let queues: EngineQueues
let service: RunService
let worker: EngineWorker
let o: OrgPrincipals
let okta: FakeOkta
let aws: FakeAws
let gh: FakeGithub
let awsClients: Aws
const reported: EngineFailure[] = []
const logs: string[] = []
/** Values that must never be stored, logged or returned. */
const AWS_SECRET_VALUE = `aws-held-${randomBytes(8).toString('hex')}`
let env: Record<string, string>

/** Everything reachable from a value, own non-enumerable properties (message, stack, cause) included. */
function deepText(value: unknown, depth = 0, seen = new Set<unknown>()): string {
  if (value === null || value === undefined || depth > 8) return ''
  if (typeof value === 'string') return value
  if (typeof value !== 'object') return typeof value === 'number' || typeof value === 'boolean' ? String(value) : ''
  if (seen.has(value)) return ''
  seen.add(value)
  return Object.getOwnPropertyNames(value)
    .map((k) => {
      let v: unknown
      try {
        v = (value as Record<string, unknown>)[k]
      } catch {
        v = undefined
      }
      return `${k}=${deepText(v, depth + 1, seen)}`
    })
    .join(' ')
}

const logger: EngineLogger = {
  debug: (obj, msg) => logs.push(`${msg ?? ''} ${deepText(obj)}`),
  info: (obj, msg) => logs.push(`${msg ?? ''} ${deepText(obj)}`),
  warn: (obj, msg) => logs.push(`${msg ?? ''} ${deepText(obj)}`),
  error: (obj, msg) => logs.push(`${msg ?? ''} ${deepText(obj)}`),
}

beforeAll(async () => {
  db = createDb(inject('databaseUrl'), { poolSize: 10 })
  redis = redisClient()
  const prefix = queuePrefix('strategies')
  ;[okta, aws, gh] = await Promise.all([startFakeOkta(), startFakeAws(), startFakeGithub()])
  awsClients = fakeAwsClients(aws)
  aws.sts.addRole({ arn: ROLE_ARN, externalId: EXTERNAL_ID })
  env = { OPENSYM_SECRET_OKTA_TOKEN: okta.token }
  queues = new EngineQueues({ connection: redis, prefix, attempts: 3, backoffMs: 50 })
  service = new RunService({ db, queues })
  o = await orgWithPrincipals(db, 'strategies')
  worker = await startEngineWorker({
    db,
    connection: redis,
    prefix,
    strategies: builtinStrategies({ okta: { baseUrl: okta.baseUrl }, github: { baseUrl: gh.baseUrl }, aws: awsClients, awsSso: { pollIntervalMs: 5 }, env: {} }),
    secrets: (orgId, dbOrTx) => createSecretResolver({ db: dbOrTx, orgId, env, aws: awsClients }),
    reporter: (f) => void reported.push(f),
    logger,
    attempts: 3,
    backoffMs: 50,
    reconcileIntervalMs: 0,
    concurrency: 5,
  })
})
afterAll(async () => {
  await worker?.close()
  await queues?.close()
  redis?.disconnect()
  awsClients?.destroy()
  await Promise.all([okta?.close(), aws?.close(), gh?.close()])
  await db?.$disconnect()
})

const uid = () => randomBytes(3).toString('hex')

async function integration(type: string, externalId: string, settings: Record<string, unknown>) {
  return db.integration.create({ data: { orgId: o.org.id, type, slug: `${type}-${uid()}`, externalId, settings: settings as Prisma.InputJsonValue } })
}

async function secret(type: 'env' | 'aws_secrets_manager', path: string, sourceSettings: Record<string, unknown> = {}, settings: Record<string, unknown> = {}) {
  const source = await db.secretSource.create({ data: { orgId: o.org.id, type, slug: `src-${uid()}`, settings: sourceSettings as Prisma.InputJsonValue } })
  return db.secret.create({ data: { orgId: o.org.id, slug: path.toLowerCase().replace(/[^a-z0-9_-]+/g, '-'), path, sourceId: source.id, settings: settings as Prisma.InputJsonValue } })
}

async function permissionContext(externalId: string) {
  return integration('permission_context', externalId, { cloud: 'aws', role_arn: ROLE_ARN, region: 'us-east-1', external_id: EXTERNAL_ID })
}

interface AccessFlow {
  readonly slug: string
  readonly targetId: string
}

async function accessFlow(o2: {
  type: string
  integrationId: string
  strategySettings?: Record<string, unknown>
  target: { type: string; settings: Record<string, unknown>; fieldBindings?: string[] }
  extraFields?: Array<Record<string, unknown>>
}): Promise<AccessFlow> {
  const orgId = o.org.id
  const envRow = await db.environment.upsert({ where: { orgId_slug: { orgId, slug: 'main' } }, update: {}, create: { orgId, slug: 'main' } })
  const strategy = await db.strategy.create({
    data: { orgId, type: o2.type, slug: `${o2.type}-${uid()}`, integrationId: o2.integrationId, settings: (o2.strategySettings ?? {}) as Prisma.InputJsonValue },
  })
  const target = await db.target.create({
    data: { orgId, type: o2.target.type, slug: `t-${uid()}`, label: o2.target.type, settings: o2.target.settings as Prisma.InputJsonValue, fieldBindings: o2.target.fieldBindings ?? [] },
  })
  await db.strategyTarget.create({ data: { strategyId: strategy.id, targetId: target.id, position: 0 } })
  const flow = await db.flow.create({
    data: {
      orgId,
      slug: `access-${uid()}`,
      implementation: 'export {}',
      environmentId: envRow.id,
      strategyId: strategy.id,
      params: {
        allow_revoke: true,
        prompt_fields: [{ name: 'reason', type: 'string', required: true }, { name: 'duration', type: 'duration', required: true }, ...(o2.extraFields ?? [])],
      } as Prisma.InputJsonValue,
    },
  })
  return { slug: flow.slug, targetId: target.id }
}

async function runOf(runId: string) {
  return db.run.findUniqueOrThrow({ where: { id: runId }, include: { events: { orderBy: { seq: 'asc' } }, leases: true } })
}

async function until(runId: string, status: string, timeoutMs = 15_000) {
  return eventually(async () => {
    const r = await runOf(runId)
    return r.status === status && r.events.every((e) => e.status !== 'pending') && r
  }, timeoutMs, `run ${runId} to be ${status}`)
}

/** Requests (for member@example.com) and approves a 1-second access; returns the run once escalated. */
async function escalate(flow: AccessFlow, inputs: Record<string, unknown> = {}, email = 'member@example.com') {
  const { run_id } = await service.createRequest(o.bot, { flow_srn: flow.slug, flow_inputs: { reason: 'incident 7', duration: 1, target_id: flow.targetId, ...inputs }, user_email: email })
  await service.decide(o.admin, 'approve', { run_id })
  return run_id
}

/** The run goes request → approve → escalate (verified) → scheduled deescalate (verified). */
async function fullRun(flow: AccessFlow, granted: () => boolean, inputs: Record<string, unknown> = {}, verified: boolean | null = true) {
  const runId = await escalate(flow, inputs)
  const escalated = await until(runId, 'escalated')
  expect(escalated.events.at(-1)).toMatchObject({ name: 'escalate', status: 'success', verified })
  expect(granted()).toBe(true)
  const done = await until(runId, 'deescalated')
  expect(done.events.map((e) => [e.name, e.status])).toEqual([
    ['request', 'success'],
    ['approve', 'success'],
    ['escalate', 'success'],
    ['deescalate', 'success'],
  ])
  expect(done.events[3]).toMatchObject({ fields: { deescalate_type: 'scheduled' }, verified })
  expect(granted()).toBe(false)
  expect(done.leases[0]!.endedAt).not.toBeNull()
  return done
}

/** member@example.com in Okta (one user, whichever test comes first). */
const oktaMember = () => [...okta.users.values()].find((u) => u.profile.login === 'member@example.com') ?? okta.addUser({ login: 'member@example.com' })

const storedIdentity = (service: string, serviceId: string) =>
  db.userIdentity.findUnique({ where: { userId_service_serviceId: { userId: o.member.userId, service, serviceId } } }).then((r) => r?.externalUserId)

describe('end to end, request to automatic de-escalation', () => {
  it('okta: group membership, the identity discovered by email and stored, the token from an env secret', async () => {
    const member = oktaMember()
    const group = okta.addGroup('prod')
    const token = await secret('env', 'OPENSYM_SECRET_OKTA_TOKEN')
    const i = await integration('okta', 'acme.okta.com', { api_token_secret: token.id })
    const flow = await accessFlow({ type: 'okta', integrationId: i.id, target: { type: 'okta_group', settings: { group_id: group.id } } })
    await fullRun(flow, () => okta.isMember(group.id, member.id))
    expect(await storedIdentity('okta', 'acme.okta.com')).toBe(member.id)
    expect(okta.operations()).toEqual([
      'GET /api/v1/users',
      'PUT /api/v1/groups/{groupId}/users/{userId}',
      'GET /api/v1/groups/{groupId}/users',
      'DELETE /api/v1/groups/{groupId}/users/{userId}',
      'GET /api/v1/groups/{groupId}/users',
    ])
    expect(okta.requests.every((r) => r.headers.authorization === `SSWS ${okta.token}`)).toBe(true)
  })

  it('aws_sso: an account assignment (asynchronous status polled) and a group membership', async () => {
    const { instanceArn, identityStoreId } = aws.ssoAdmin.addInstance()
    const permissionSetArn = aws.ssoAdmin.addPermissionSet(instanceArn, 'ReadOnly')
    const member = aws.identityStore.addUser(identityStoreId, { userName: 'member', email: 'member@example.com' })
    const groupId = aws.identityStore.addGroup(identityStoreId, 'readers')
    const i = await permissionContext(instanceArn)
    const account = '345678901234'
    const assignment = { AccountId: account, PermissionSetArn: permissionSetArn, PrincipalType: 'USER' as const, PrincipalId: member.UserId }
    const sets = await accessFlow({ type: 'aws_sso', integrationId: i.id, strategySettings: { instance_arn: instanceArn }, target: { type: 'aws_sso_permission_set', settings: { permission_set_arn: permissionSetArn, account_id: account } } })
    await fullRun(sets, () => aws.ssoAdmin.isAssigned(assignment))
    expect(await storedIdentity('aws_sso', instanceArn)).toBe(member.UserId)
    expect(aws.operations('sso-admin').filter((op) => op.startsWith('Describe'))).toContain('DescribeAccountAssignmentCreationStatus')
    expect(aws.operations('sso-admin')).toContain('DescribeAccountAssignmentDeletionStatus')

    const groups = await accessFlow({ type: 'aws_sso', integrationId: i.id, strategySettings: { instance_arn: instanceArn }, target: { type: 'aws_sso_group', settings: { group_id: groupId } } })
    await fullRun(groups, () => aws.identityStore.isMember(identityStoreId, groupId, member.UserId))
  })

  it('aws_iam: IAM group membership for the IAM user named by the email', async () => {
    const user = aws.iam.addUser('member@example.com')
    aws.iam.addGroup('e2e-readers')
    const i = await permissionContext(aws.accountId)
    const flow = await accessFlow({ type: 'aws_iam', integrationId: i.id, target: { type: 'aws_iam_group', settings: { iam_group: 'e2e-readers' } } })
    await fullRun(flow, () => aws.iam.isMember('e2e-readers', 'member@example.com'))
    expect(await storedIdentity('aws_iam', aws.accountId)).toBe(user.Arn)
  })

  it('github: a dynamic target (repo_name bound from a prompt field), invitation and its cancellation; the token from AWS Secrets Manager', async () => {
    gh.addUser('member-gh', { publicEmail: 'member@example.com' })
    gh.addRepo('acme', 'billing')
    gh.addRepo('acme', 'payroll')
    const ctx = await permissionContext(aws.accountId)
    aws.secretsManager.putSecret('sym/main/github', JSON.stringify({ token: gh.token, other: AWS_SECRET_VALUE }))
    const token = await secret('aws_secrets_manager', 'sym/main/github', { context_id: ctx.id }, { json_key: 'token' })
    const i = await integration('github', 'acme', { api_token_secret: token.id })
    const flow = await accessFlow({
      type: 'github',
      integrationId: i.id,
      target: { type: 'github_repo', settings: {}, fieldBindings: ['repo_name'] },
      extraFields: [{ name: 'repo_name', type: 'string', required: true }],
    })
    const done = await fullRun(flow, () => gh.pendingInvitation('acme', 'payroll', 'member-gh') !== undefined, { repo_name: 'payroll' })
    expect(done.events[2]!.output).toMatchObject({ body: { repository: 'acme/payroll', state: 'invited', username: 'member-gh' } })
    expect(gh.pendingInvitation('acme', 'billing', 'member-gh')).toBeUndefined()
    expect(gh.operations()).toContain('DELETE /repos/{owner}/{repo}/invitations/{invitation_id}')
    expect(await storedIdentity('github', 'acme')).toBe('member-gh')
    expect(aws.calls('secretsmanager', 'GetSecretValue').map((r) => r.json)).toContainEqual({ SecretId: 'sym/main/github' })
    expect(aws.calls('secretsmanager', 'GetSecretValue').every((r) => r.principal === ROLE_ARN)).toBe(true)
  })

  it('aws_lambda: the §7.2 payload for escalate and deescalate; the function\'s body is the step output', async () => {
    const seen: Array<{ type: string; target: unknown; requester: unknown }> = []
    const live = new Set<string>()
    const arn = aws.lambda.addFunction(`grant-${uid()}`, (p) => {
      const e = p as { event: { type: string }; fields: { target: { name: string; settings: unknown } }; run: { actors: { request: { username: string } } } }
      seen.push({ type: e.event.type, target: e.fields.target.settings, requester: e.run.actors.request.username })
      if (e.event.type === 'escalate') live.add(e.fields.target.name)
      else live.delete(e.fields.target.name)
      return { body: { role: 'readonly', step: e.event.type }, errors: [] }
    })
    const i = await permissionContext(aws.accountId)
    const flow = await accessFlow({ type: 'aws_lambda', integrationId: i.id, target: { type: 'aws_lambda_function', settings: { arn } } })
    const done = await fullRun(flow, () => live.size === 1, {}, null)
    expect(seen).toEqual([
      { type: 'escalate', target: { arn }, requester: 'member@example.com' },
      { type: 'deescalate', target: { arn }, requester: 'member@example.com' },
    ])
    expect(done.events[2]!.output).toEqual({ body: { role: 'readonly', step: 'escalate' }, errors: [] })
    expect(done.events[3]!.output).toEqual({ body: { role: 'readonly', step: 'deescalate' }, errors: [] })
  })
})

describe('failures end to end', () => {
  it('a service that is down: retried with backoff, the run shows why, the error logger hears, nothing recorded as granted', async () => {
    const member = oktaMember()
    const group = okta.addGroup('down')
    const token = await secret('env', 'OPENSYM_SECRET_OKTA_TOKEN')
    const i = await integration('okta', 'down.okta.com', { api_token_secret: token.id })
    const flow = await accessFlow({ type: 'okta', integrationId: i.id, target: { type: 'okta_group', settings: { group_id: group.id } } })
    okta.fail({ match: { method: 'PUT' }, times: 2, respond: { status: 503, body: { errorCode: 'E0000009', errorSummary: 'Internal Server Error' } } })
    okta.fail({ match: { method: 'PUT' }, times: 1, delayMs: 600, respond: { status: 503, body: { errorCode: 'E0000009', errorSummary: 'Internal Server Error' } } })
    const runId = await escalate(flow)
    // While it is retried, the event says why.
    const retrying = await eventually(async () => {
      const e = (await runOf(runId)).events.find((x) => x.name === 'escalate')
      return e?.status === 'pending' && e.error ? e.error : undefined
    }, 10_000, 'the escalate event to show the retry')
    expect(retrying).toMatch(/^attempt [12] of 3 failed, retrying: okta add user to group \w+: HTTP 503 E0000009 Internal Server Error$/)
    const r = await until(runId, 'errored')
    expect(r.events.at(-1)).toMatchObject({ name: 'escalate', status: 'error', attempts: 3, error: expect.stringMatching(/HTTP 503 .*\(after 3 attempts\)$/) })
    expect(okta.calls('okta', 'PUT /api/v1/groups/{groupId}/users/{userId}').filter((c) => c.pathname.includes(group.id))).toHaveLength(3)
    expect(reported.find((f) => f.runId === runId)).toMatchObject({ step: 'escalate', message: expect.stringMatching(/HTTP 503.*Nothing was recorded as granted/) })
    expect(r.leases).toHaveLength(0)
    expect(await db.grant.count({ where: { orgId: o.org.id, strategyType: 'okta', identity: member.id, applied: true } })).toBe(0)
    expect(okta.isMember(group.id, member.id)).toBe(false)
  })

  it('an identity nobody can resolve fails the escalate naming the user and the service', async () => {
    const group = okta.addGroup('nobody')
    const token = await secret('env', 'OPENSYM_SECRET_OKTA_TOKEN')
    const i = await integration('okta', 'ghosts.okta.com', { api_token_secret: token.id })
    const flow = await accessFlow({ type: 'okta', integrationId: i.id, target: { type: 'okta_group', settings: { group_id: group.id } } })
    const runId = await escalate(flow, {}, 'guest@example.com')
    const r = await until(runId, 'errored')
    const message = `cannot resolve the okta identity of user guest@example.com (okta ghosts.okta.com): none is stored, no okta user was found with the email guest@example.com. An admin can set it: npm run -s admin -- identities set --org ${o.org.slug} --user guest@example.com --service okta --service-id ghosts.okta.com --external-id <id>`
    expect(r.events.at(-1)).toMatchObject({ name: 'escalate', status: 'error', error: message })
    expect(reported.find((f) => f.runId === runId)?.message).toContain(message)
    expect(okta.calls('okta', 'PUT /api/v1/groups/{groupId}/users/{userId}').filter((c) => c.pathname.includes(group.id))).toHaveLength(0)
  })

  it('no secret value is in events, audit entries, run views or logs', async () => {
    // A failing call with a wrong token, too: its error names the setting, not the value.
    env.OPENSYM_SECRET_WRONG = 'wrong-token-value-123'
    const group = okta.addGroup('wrong')
    const token = await secret('env', 'OPENSYM_SECRET_WRONG')
    const i = await integration('okta', 'acme.okta.com', { api_token_secret: token.id })
    const flow = await accessFlow({ type: 'okta', integrationId: i.id, target: { type: 'okta_group', settings: { group_id: group.id } } })
    const runId = await escalate(flow)
    expect((await until(runId, 'errored')).events.at(-1)!.error).toMatch(/HTTP 401 E0000011 Invalid token provided/)

    const runs = await db.run.findMany({ where: { orgId: o.org.id }, include: { events: true } })
    await chainAudit(db.sql)
    const audit = await db.auditEntry.findMany({ where: { orgId: o.org.id } })
    const views = await Promise.all(runs.map((r) => service.getRun(o.admin, r.id)))
    const stored = JSON.stringify({ runs, audit, views, reported: reported.map((f) => ({ ...f, cause: deepText(f.cause) })) }, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))
    const everything = `${stored}\n${logs.join('\n')}`
    expect(runs.length).toBeGreaterThanOrEqual(8)
    expect(logs.length).toBeGreaterThan(0)
    for (const value of [okta.token, gh.token, AWS_SECRET_VALUE, 'wrong-token-value-123', aws.credentials.secretAccessKey, ...[...aws.sts.sessions.values()].flatMap((s) => [s.secretAccessKey, s.sessionToken])]) {
      expect(everything).not.toContain(value)
    }
  })
})
