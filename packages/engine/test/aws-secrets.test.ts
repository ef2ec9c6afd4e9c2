/** `aws_secrets_manager` secret sources against the local AWS fake (STS + Secrets Manager GetSecretValue). */
import { createDb, type Db } from '@opensym/db'
import { createTestOrg, startFakeAws, type FakeAws, type TestOrg } from '@opensym/testing'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest'
import type { Aws } from '../src/aws.js'
import { createSecretResolver, readSecretValue, SecretError, type PermissionContextRecord, type SecretRecord } from '../src/secrets.js'
import { RetryableStrategyError } from '../src/strategy.js'
import { EXTERNAL_ID, failure, fakeAwsClients, ROLE_ARN } from './strategy-fixtures.js'

const CONTEXT_ID = '00000000-0000-4000-8000-0000000000c1'
const VALUE = 'okta-token-d41d8cd98f00b204'

let fake: FakeAws
let aws: Aws
beforeAll(async () => {
  fake = await startFakeAws()
})
beforeEach(() => {
  fake.reset()
  fake.sts.addRole({ arn: ROLE_ARN, externalId: EXTERNAL_ID })
  aws = fakeAwsClients(fake)
})
afterEach(() => aws.destroy())
afterAll(async () => fake?.close())

const context: PermissionContextRecord = { id: CONTEXT_ID, type: 'permission_context', externalId: '123456789012', settings: { role_arn: ROLE_ARN, region: 'us-east-1', external_id: EXTERNAL_ID } }
const record = (path: string, settings: Record<string, unknown> = {}): SecretRecord => ({ id: 's1', path, settings, source: { id: 'src', type: 'aws_secrets_manager', settings: { context_id: CONTEXT_ID } } })
const read = (r: SecretRecord) => readSecretValue(r, { aws, integration: async (id) => (id === CONTEXT_ID ? context : undefined) })

describe('aws_secrets_manager secrets', () => {
  it('reads the current value through the permission context, whole or by json_key, at every call', async () => {
    fake.secretsManager.putSecret('sym/main/okta', VALUE)
    fake.secretsManager.putSecret('sym/main/json', JSON.stringify({ username: 'bot', password: 'pw-123' }))
    fake.secretsManager.putSecret('sym/main/binary', Buffer.from('binary-value'))
    expect(await read(record('sym/main/okta'))).toBe(VALUE)
    expect(await read(record('sym/main/json', { json_key: 'password' }))).toBe('pw-123')
    expect(await read(record('sym/main/binary'))).toBe('binary-value')
    const gets = fake.calls('secretsmanager', 'GetSecretValue')
    expect(gets.map((r) => r.json)).toEqual([{ SecretId: 'sym/main/okta' }, { SecretId: 'sym/main/json' }, { SecretId: 'sym/main/binary' }])
    expect(gets[0]!.headers['x-amz-target']).toBe('secretsmanager.GetSecretValue')
    expect(gets.every((r) => r.principal === ROLE_ARN)).toBe(true)
    // Rotated: the next read has the new value.
    fake.secretsManager.putSecret('sym/main/okta', 'rotated-value')
    expect(await read(record('sym/main/okta'))).toBe('rotated-value')
  })

  it('names a missing, deleted or keyless secret without its value; throttling is retryable', async () => {
    const missing = await failure(() => read(record('sym/main/nope')), SecretError)
    expect(missing.message).toBe(`sym_secret s1 (path "sym/main/nope"): secretsmanager GetSecretValue: ResourceNotFoundException: Secrets Manager can't find the specified secret. (HTTP 400)`)
    fake.secretsManager.putSecret('sym/main/old', VALUE)
    fake.secretsManager.scheduleDeletion('sym/main/old')
    expect((await failure(() => read(record('sym/main/old')), SecretError)).message).toMatch(/InvalidRequestException: You can't perform this operation on the secret because it was marked for deletion/)
    fake.secretsManager.putSecret('sym/main/json', JSON.stringify({ token: VALUE }))
    const noKey = await failure(() => read(record('sym/main/json', { json_key: 'password' })), SecretError)
    expect(noKey.message).toBe('sym_secret s1 (path "sym/main/json"): the JSON value has no key "password" (settings.json_key)')
    expect(noKey.message).not.toContain(VALUE)
    fake.failWith('secretsmanager', 'GetSecretValue', { code: 'ThrottlingException', message: 'Rate exceeded' })
    expect(await failure(() => read(record('sym/main/json', { json_key: 'token' })), RetryableStrategyError)).toBeInstanceOf(RetryableStrategyError)
    // A role that cannot be assumed (fresh clients: the first ones hold cached credentials).
    fake.failWith('sts', 'AssumeRole', { code: 'AccessDenied', status: 403, message: 'not authorized' })
    const fresh = fakeAwsClients(fake)
    try {
      const denied = await failure(() => readSecretValue(record('sym/main/json', { json_key: 'token' }), { aws: fresh, integration: async () => context }), SecretError)
      expect(denied.message).toBe(`sym_secret s1 (path "sym/main/json"): sts AssumeRole ${ROLE_ARN}: AccessDenied: not authorized (HTTP 403)`)
    } finally {
      fresh.destroy()
    }
  })

  describe('through createSecretResolver (PostgreSQL)', () => {
    let db: Db
    let org: TestOrg
    beforeAll(async () => {
      db = createDb(inject('databaseUrl'), { poolSize: 2 })
      org = await createTestOrg(db, 'aws-secrets')
    })
    afterAll(async () => db?.$disconnect())

    it('finds the source\'s permission context in the org', async () => {
      fake.secretsManager.putSecret('sym/main/okta', VALUE)
      const ctx = await db.integration.create({ data: { orgId: org.id, type: 'permission_context', slug: 'ctx', externalId: '123456789012', settings: context.settings as object } })
      const source = await db.secretSource.create({ data: { orgId: org.id, type: 'aws_secrets_manager', slug: 'main', settings: { context_id: ctx.id } } })
      const secret = await db.secret.create({ data: { orgId: org.id, slug: 'okta', path: 'sym/main/okta', sourceId: source.id } })
      expect(await createSecretResolver({ db: db.sql, orgId: org.id, aws })(secret.id)).toBe(VALUE)
      const other = await createTestOrg(db, 'aws-secrets-other')
      const foreign = await db.secretSource.create({ data: { orgId: other.id, type: 'aws_secrets_manager', slug: 'main', settings: { context_id: ctx.id } } })
      const theirs = await db.secret.create({ data: { orgId: other.id, slug: 'okta', path: 'sym/main/okta', sourceId: foreign.id } })
      // Another org's source cannot use this org's permission context.
      expect((await failure(() => createSecretResolver({ db: db.sql, orgId: other.id, aws })(theirs.id), SecretError)).message).toMatch(/is not a sym_integration of this organization/)
    })
  })
})
