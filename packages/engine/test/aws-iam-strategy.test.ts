/** The aws_iam strategy against the local AWS fake (STS + IAM Query/XML). */
import { startFakeAws, type FakeAws, type FakeIamUser } from '@opensym/testing'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { Aws } from '../src/aws.js'
import { createAwsIamStrategy, iamUserName } from '../src/strategies/index.js'
import { RetryableStrategyError, StrategyError, type Strategy } from '../src/strategy.js'
import { failure, fakeAwsClients, permissionContextIntegration, ROLE_ARN, EXTERNAL_ID, strategyCall } from './strategy-fixtures.js'

let fake: FakeAws
let aws: Aws
let strategy: Strategy
let alice: FakeIamUser

beforeAll(async () => {
  fake = await startFakeAws()
})
beforeEach(() => {
  fake.reset()
  fake.sts.addRole({ arn: ROLE_ARN, externalId: EXTERNAL_ID })
  alice = fake.iam.addUser('alice@example.com', '/people/')
  fake.iam.addGroup('prod-readers')
  aws = fakeAwsClients(fake)
  strategy = createAwsIamStrategy({ aws })
})
afterEach(() => aws.destroy())
afterAll(async () => fake?.close())

const call = (o: { group?: string; identity?: string; email?: string | null } = {}) =>
  strategyCall({
    type: 'aws_iam',
    integration: permissionContextIntegration('123456789012'),
    target: { type: 'aws_iam_group', settings: { iam_group: o.group ?? 'prod-readers' } },
    identity: o.identity ?? alice.Arn,
    email: o.email,
  })

describe('aws_iam strategy', () => {
  it('finds the IAM user named by the email; the identity is its ARN', async () => {
    expect(await strategy.identity(call())).toBe('arn:aws:iam::123456789012:user/people/alice@example.com')
    expect(fake.operations()).toEqual(['AssumeRole', 'GetUser'])
    const form = new URLSearchParams(fake.calls('iam', 'GetUser')[0]!.body)
    expect(Object.fromEntries(form)).toEqual({ Action: 'GetUser', Version: '2010-05-08', UserName: 'alice@example.com' })
    expect(fake.calls('iam', 'GetUser')[0]!.principal).toBe(ROLE_ARN)
    expect(await strategy.identity(call({ email: 'nobody@example.com' }))).toBeUndefined()
    expect(iamUserName('arn:aws:iam::123456789012:user/a/b/carol')).toBe('carol')
    expect(iamUserName('carol')).toBe('carol')
  })

  it('finds a user named by the local part of the email when its email tag says it is theirs', async () => {
    const bob = fake.iam.addUser('bob', '/', { Email: 'Bob@Example.com', team: 'payments' })
    expect(await strategy.identity(call({ email: 'bob@example.com' }))).toBe(bob.Arn)
    expect(fake.calls('iam', 'GetUser').map((c) => new URLSearchParams(c.body).get('UserName'))).toEqual(['bob@example.com', 'bob'])

    // Someone else's `bob`: tagged with another email, it is not this user.
    expect(await strategy.identity(call({ email: 'bob@contractor.example' }))).toBeUndefined()

    // An untagged `carol` may or may not be carol@example.com: refused, saying how to settle it.
    const carol = fake.iam.addUser('carol')
    const refused = await failure(() => strategy.identity(call({ email: 'carol@example.com' })), StrategyError)
    expect(refused.message).toBe(
      `aws_iam: the IAM user "carol" (${carol.Arn}) may belong to carol@example.com, but it has no email tag saying so; tag it email=carol@example.com (iam:TagUser), or set the user's aws_iam identity with the admin command (npm run -s admin -- identities set)`,
    )

    // The full email wins over the local part; users without an email are not looked up.
    fake.iam.addUser('alice', '/', { email: 'alice@example.com' })
    expect(await strategy.identity(call())).toBe(alice.Arn)
    fake.clearRequests()
    expect(await strategy.identity(call({ email: null }))).toBeUndefined()
    expect(fake.requests).toHaveLength(0)
  })

  it('adds to the group, reads back, removes, reads back; repeats are idempotent', async () => {
    expect(await strategy.isGranted!(call())).toBe(false)
    expect(await strategy.escalate(call())).toEqual({ body: { iam_group: 'prod-readers', user_name: 'alice@example.com' }, errors: [] })
    expect(fake.iam.isMember('prod-readers', 'alice@example.com')).toBe(true)
    expect(await strategy.isGranted!(call())).toBe(true)
    expect(await strategy.escalate(call())).toMatchObject({ errors: [] })
    expect(await strategy.deescalate(call())).toEqual({ body: { iam_group: 'prod-readers', user_name: 'alice@example.com' }, errors: [] })
    expect(fake.iam.isMember('prod-readers', 'alice@example.com')).toBe(false)
    expect(await strategy.isGranted!(call())).toBe(false)
    expect(await strategy.deescalate(call())).toEqual({ body: { iam_group: 'prod-readers', user_name: 'alice@example.com' }, errors: [] })
    expect(fake.operations('iam')).toEqual(['ListGroupsForUser', 'AddUserToGroup', 'ListGroupsForUser', 'AddUserToGroup', 'RemoveUserFromGroup', 'ListGroupsForUser', 'RemoveUserFromGroup'])
    expect(Object.fromEntries(new URLSearchParams(fake.calls('iam', 'AddUserToGroup')[0]!.body))).toEqual({ Action: 'AddUserToGroup', Version: '2010-05-08', GroupName: 'prod-readers', UserName: 'alice@example.com' })
    expect(fake.calls('sts', 'AssumeRole')).toHaveLength(1)
  })

  it('reads back across pages of groups (Marker)', async () => {
    fake.iam.groupsPerUser = 200
    for (let i = 0; i < 120; i++) fake.iam.addGroup(`g${String(i).padStart(3, '0')}`).members.add('alice@example.com')
    fake.iam.groups.delete('prod-readers')
    fake.iam.addGroup('prod-readers').members.add('alice@example.com')
    expect(await strategy.isGranted!(call())).toBe(true)
    const pages = fake.calls('iam', 'ListGroupsForUser')
    expect(pages).toHaveLength(2)
    expect(new URLSearchParams(pages[1]!.body).get('Marker')).toEqual(expect.any(String))
  })

  it('NoSuchEntity and LimitExceeded fail the escalate; NoSuchEntity on removal is success; throttling is retried', async () => {
    const noGroup = await failure(() => strategy.escalate(call({ group: 'nope' })), StrategyError)
    expect(noGroup.message).toBe('iam AddUserToGroup nope: NoSuchEntityException: The group with name nope cannot be found. (HTTP 404)')
    expect(await strategy.deescalate(call({ group: 'nope' }))).toMatchObject({ errors: [], warnings: [expect.stringMatching(/NoSuchEntity/)] })

    fake.failWith('iam', 'AddUserToGroup', { code: 'LimitExceeded', message: 'Cannot exceed quota for GroupsPerUser: 10', status: 409 })
    expect((await failure(() => strategy.escalate(call()), StrategyError)).message).toMatch(/LimitExceededException: Cannot exceed quota for GroupsPerUser: 10/)

    fake.failWith('iam', 'RemoveUserFromGroup', { code: 'Throttling', message: 'Rate exceeded' })
    expect((await failure(() => strategy.deescalate(call()), RetryableStrategyError)).message).toBe('iam RemoveUserFromGroup prod-readers: Throttling: Rate exceeded (HTTP 400)')

    fake.failWith('iam', 'AddUserToGroup', { code: 'ServiceFailure', message: 'internal', status: 500 })
    expect(await failure(() => strategy.escalate(call()), RetryableStrategyError)).toBeInstanceOf(RetryableStrategyError)
    fake.fail({ match: { service: 'iam' }, reset: true })
    expect((await failure(() => strategy.escalate(call()), RetryableStrategyError)).message).toMatch(/ECONNRESET|socket hang up/)
  })

  it('the SDK itself retries throttling when allowed more attempts', async () => {
    const patient = fakeAwsClients(fake, 3)
    try {
      fake.failWith('iam', 'AddUserToGroup', { code: 'Throttling', message: 'Rate exceeded', times: 1 })
      expect(await createAwsIamStrategy({ aws: patient }).escalate(call())).toMatchObject({ errors: [] })
      expect(fake.calls('iam', 'AddUserToGroup')).toHaveLength(2)
    } finally {
      patient.destroy()
    }
  })
})
