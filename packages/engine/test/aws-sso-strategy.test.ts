/**
 * The aws_sso strategy against the local AWS fake (STS + sso-admin + identitystore): identity discovery in the
 * Identity Store, account assignments with their asynchronous status, group memberships, assumed-role credentials,
 * idempotent repeats and failures.
 */
import { startFakeAws, type FakeAws } from '@opensym/testing'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { Aws } from '../src/aws.js'
import { createAwsSsoStrategy } from '../src/strategies/index.js'
import { RetryableStrategyError, StrategyError, type Strategy } from '../src/strategy.js'
import { deadUrl, EXTERNAL_ID, failure, fakeAwsClients, permissionContextIntegration, ROLE_ARN, strategyCall } from './strategy-fixtures.js'

let fake: FakeAws
let aws: Aws
let strategy: Strategy
let instanceArn: string
let storeId: string
let permissionSetArn: string
let aliceId: string
let groupId: string
const ACCOUNT = '210987654321'

beforeAll(async () => {
  fake = await startFakeAws()
})
beforeEach(() => {
  fake.reset()
  fake.sts.addRole({ arn: ROLE_ARN, externalId: EXTERNAL_ID })
  ;({ instanceArn, identityStoreId: storeId } = fake.ssoAdmin.addInstance())
  permissionSetArn = fake.ssoAdmin.addPermissionSet(instanceArn, 'AdministratorAccess')
  aliceId = fake.identityStore.addUser(storeId, { userName: 'alice', email: 'alice@example.com' }).UserId
  groupId = fake.identityStore.addGroup(storeId, 'prod-admins')
  fake.ssoAdmin.inProgressPolls = 2
  aws = fakeAwsClients(fake)
  strategy = createAwsSsoStrategy({ aws, pollIntervalMs: 5, maxPolls: 5 })
})
afterEach(() => aws.destroy())
afterAll(async () => fake?.close())

const call = (o: { target?: 'set' | 'group'; identity?: string; email?: string | null; context?: Record<string, unknown> } = {}) =>
  strategyCall({
    type: 'aws_sso',
    integration: permissionContextIntegration(instanceArn, o.context),
    strategySettings: { instance_arn: instanceArn },
    target: o.target === 'group' ? { type: 'aws_sso_group', settings: { group_id: groupId } } : { type: 'aws_sso_permission_set', settings: { permission_set_arn: permissionSetArn, account_id: ACCOUNT } },
    identity: o.identity ?? aliceId,
    email: o.email,
  })

const assignment = () => ({ AccountId: ACCOUNT, PermissionSetArn: permissionSetArn, PrincipalType: 'USER' as const, PrincipalId: aliceId })

describe('aws_sso identity', () => {
  it('finds the Identity Store user by email (then userName), through the assumed role', async () => {
    expect(await strategy.identity(call())).toBe(aliceId)
    expect(fake.operations()).toEqual(['AssumeRole', 'ListInstances', 'GetUserId'])
    const [assume] = fake.calls('sts', 'AssumeRole')
    const form = new URLSearchParams(assume!.body)
    expect(Object.fromEntries(form)).toMatchObject({ Action: 'AssumeRole', Version: '2011-06-15', RoleArn: ROLE_ARN, ExternalId: EXTERNAL_ID, RoleSessionName: 'opensym', DurationSeconds: '900' })
    expect(assume!.principal).toBe(fake.credentials.accessKeyId)
    const [getUserId] = fake.calls('identitystore', 'GetUserId')
    expect(getUserId!.headers['x-amz-target']).toBe('AWSIdentityStore.GetUserId')
    expect(getUserId!.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=ASIA\w+\/\d{8}\/us-east-1\/identitystore\/aws4_request/)
    expect(getUserId!.headers['x-amz-security-token']).toEqual(expect.any(String))
    expect(getUserId!.principal).toBe(ROLE_ARN)
    expect(getUserId!.json).toEqual({ IdentityStoreId: storeId, AlternateIdentifier: { UniqueAttribute: { AttributePath: 'emails.value', AttributeValue: 'alice@example.com' } } })

    const bob = fake.identityStore.addUser(storeId, { userName: 'bob@example.com' })
    fake.clearRequests()
    expect(await strategy.identity(call({ email: 'bob@example.com' }))).toBe(bob.UserId)
    // Credentials and the identity store id are cached.
    expect(fake.operations()).toEqual(['GetUserId', 'GetUserId'])
    expect(await strategy.identity(call({ email: 'nobody@example.com' }))).toBeUndefined()
  })

  it('uses settings.identity_store_id when given', async () => {
    const s = createAwsSsoStrategy({ aws, pollIntervalMs: 5 })
    expect(await s.identity({ ...call(), strategy: { ...call().strategy, settings: { instance_arn: instanceArn, identity_store_id: storeId } } })).toBe(aliceId)
    expect(fake.operations()).toEqual(['AssumeRole', 'GetUserId'])
  })
})

describe('aws_sso account assignments', () => {
  it('assigns (polling IN_PROGRESS → SUCCEEDED), reads back, removes, reads back; repeats are idempotent', async () => {
    expect(await strategy.isGranted!(call())).toBe(false)
    fake.clearRequests()
    const out = await strategy.escalate(call())
    expect(out).toMatchObject({ body: { account_id: ACCOUNT, permission_set_arn: permissionSetArn, principal_id: aliceId, status: 'SUCCEEDED', request_id: expect.any(String) }, errors: [] })
    expect(fake.operations('sso-admin')).toEqual(['CreateAccountAssignment', 'DescribeAccountAssignmentCreationStatus', 'DescribeAccountAssignmentCreationStatus', 'DescribeAccountAssignmentCreationStatus'])
    expect(fake.calls('sso-admin', 'CreateAccountAssignment')[0]!.json).toEqual({
      InstanceArn: instanceArn,
      TargetId: ACCOUNT,
      TargetType: 'AWS_ACCOUNT',
      PermissionSetArn: permissionSetArn,
      PrincipalType: 'USER',
      PrincipalId: aliceId,
    })
    expect(fake.calls('sso-admin', 'DescribeAccountAssignmentCreationStatus')[0]!.json).toEqual({ InstanceArn: instanceArn, AccountAssignmentCreationRequestId: out.body.request_id })
    expect(fake.ssoAdmin.isAssigned(assignment())).toBe(true)
    expect(await strategy.isGranted!(call())).toBe(true)

    // Creating an existing assignment succeeds too.
    expect(await strategy.escalate(call())).toMatchObject({ body: { status: 'SUCCEEDED' }, errors: [] })

    fake.clearRequests()
    expect(await strategy.deescalate(call())).toMatchObject({ body: { status: 'SUCCEEDED' }, errors: [] })
    expect(fake.operations('sso-admin')).toEqual(['DeleteAccountAssignment', 'DescribeAccountAssignmentDeletionStatus', 'DescribeAccountAssignmentDeletionStatus', 'DescribeAccountAssignmentDeletionStatus'])
    expect(fake.ssoAdmin.isAssigned(assignment())).toBe(false)
    expect(await strategy.isGranted!(call())).toBe(false)
    expect(await strategy.deescalate(call())).toMatchObject({ errors: [] })
    // Every call was made with the assumed role's credentials; the role was assumed once.
    expect(fake.requests.filter((r) => r.service !== 'sts').every((r) => r.principal === ROLE_ARN)).toBe(true)
  })

  it('a deletion of an absent assignment that ends FAILED is success when the read-back shows it gone', async () => {
    fake.ssoAdmin.deleteAbsent = { status: 'FAILED', reason: 'Assignment does not exist' }
    const out = await strategy.deescalate(call())
    expect(out).toMatchObject({ errors: [], warnings: [expect.stringMatching(/FAILED: Assignment does not exist; the assignment is not there/)] })
    expect(fake.operations('sso-admin')).toContain('ListAccountAssignments')
  })

  it('an asynchronous FAILED fails the step with its reason; a status stuck IN_PROGRESS is retried', async () => {
    fake.ssoAdmin.failNext('creation', 'Received a 409 status error: Cannot create role: quota exceeded')
    const failed = await failure(() => strategy.escalate(call()), StrategyError)
    expect(failed.message).toMatch(/^sso-admin: assigning permission set .* to user .* FAILED: Received a 409 status error: Cannot create role: quota exceeded \(request [0-9a-f-]{36}\)$/)
    expect(fake.ssoAdmin.isAssigned(assignment())).toBe(false)

    fake.ssoAdmin.inProgressPolls = Infinity
    const stuck = await failure(() => strategy.escalate(call()), RetryableStrategyError)
    expect(stuck.message).toMatch(/is still IN_PROGRESS after 5 polls$/)
    expect(fake.calls('sso-admin', 'DescribeAccountAssignmentCreationStatus').length).toBeGreaterThanOrEqual(5 + 3)
  })

  it('throttling, conflicts and a service that is down are retryable; validation errors are not', async () => {
    fake.failWith('sso-admin', 'CreateAccountAssignment', { code: 'ThrottlingException', message: 'Rate exceeded', headers: { 'retry-after': '2' } })
    const throttled = await failure(() => strategy.escalate(call()), RetryableStrategyError)
    expect(throttled.message).toBe('sso-admin CreateAccountAssignment: ThrottlingException: Rate exceeded (HTTP 400)')
    expect(throttled.retryAfterMs).toBe(2000)

    fake.failWith('sso-admin', 'DeleteAccountAssignment', { code: 'ConflictException', message: 'Operation conflicts with a previous successful write' })
    expect((await failure(() => strategy.deescalate(call()), RetryableStrategyError)).message).toMatch(/ConflictException/)

    fake.failWith('sso-admin', 'ListAccountAssignments', { code: 'InternalServerException', status: 500 })
    expect((await failure(() => strategy.isGranted!(call()), RetryableStrategyError)).message).toMatch(/InternalServerException/)

    const bad = await failure(() => strategy.escalate(call({ identity: 'not-a-principal' })), StrategyError)
    expect(bad.message).toMatch(/^sso-admin CreateAccountAssignment: ValidationException: /)

    const deadAws = fakeAwsClients({ url: await deadUrl(), credentials: fake.credentials })
    const down = createAwsSsoStrategy({ aws: deadAws })
    try {
      expect((await failure(() => down.escalate(call()), RetryableStrategyError)).message).toMatch(/ECONNREFUSED/)
    } finally {
      deadAws.destroy()
    }
  })

  it('a role that cannot be assumed fails naming the role', async () => {
    const error = await failure(() => strategy.escalate(call({ context: { external_id: 'wrong' } })), StrategyError)
    expect(error.message).toBe(`sts AssumeRole ${ROLE_ARN}: AccessDenied: User: arn:aws:iam::123456789012:user/opensym is not authorized to perform: sts:AssumeRole on resource: ${ROLE_ARN} (HTTP 403)`)
    expect(fake.operations('sso-admin')).toEqual([])
  })
})

describe('aws_sso group memberships', () => {
  it('adds to the group, reads back, removes, reads back; already a member / not a member are success', async () => {
    const g = call({ target: 'group' })
    expect(await strategy.isGranted!(g)).toBe(false)
    const out = await strategy.escalate(g)
    expect(out).toMatchObject({ body: { group_id: groupId, user_id: aliceId, membership_id: expect.any(String) }, errors: [] })
    expect(fake.identityStore.isMember(storeId, groupId, aliceId)).toBe(true)
    expect(fake.calls('identitystore', 'CreateGroupMembership')[0]!.json).toEqual({ IdentityStoreId: storeId, GroupId: groupId, MemberId: { UserId: aliceId } })
    expect(await strategy.isGranted!(g)).toBe(true)
    expect(await strategy.escalate(g)).toMatchObject({ body: { already_member: true }, errors: [] })
    expect(await strategy.deescalate(g)).toMatchObject({ body: { membership_id: expect.any(String) }, errors: [] })
    expect(fake.identityStore.isMember(storeId, groupId, aliceId)).toBe(false)
    expect(await strategy.isGranted!(g)).toBe(false)
    expect(await strategy.deescalate(g)).toMatchObject({ body: { was_member: false }, errors: [] })
    expect(fake.operations('identitystore')).toEqual([
      'GetGroupMembershipId',
      'CreateGroupMembership',
      'GetGroupMembershipId',
      'CreateGroupMembership',
      'GetGroupMembershipId',
      'GetGroupMembershipId',
      'DeleteGroupMembership',
      'GetGroupMembershipId',
      'GetGroupMembershipId',
    ])
  })
})
