import { randomUUID } from 'node:crypto'
import { createDb, type Db } from '@opensym/db'
import { ENV_SECRET_PREFIX as SCHEMA_PREFIX, SECRET_SOURCE_TYPES } from '@opensym/provider-schema'
import { createTestOrg, startHttpReceiver, type TestOrg } from '@opensym/testing'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { createSecretResolver, ENV_SECRET_PREFIX, readSecretValue, SecretError, type SecretRecord } from '../src/secrets.js'
import { httpStrategy } from '../src/strategies/index.js'
import type { StrategyCall } from '../src/strategy.js'

const env = {
  OPENSYM_SECRET_PLAIN: 'plain-value',
  OPENSYM_SECRET_JSON: JSON.stringify({ token: 'json-token', port: 5432, nested: { a: 1 } }),
  OPENSYM_SECRET_EMPTY: '',
  DATABASE_URL: 'postgresql://root:hunter2@db/prod',
}

const envSecret = (path: string, settings: unknown = {}): SecretRecord => ({ id: 's1', path, settings, source: { id: 'src', type: 'env', settings: {} } })

async function secretError(p: Promise<unknown>): Promise<SecretError> {
  try {
    await p
  } catch (error) {
    expect(error).toBeInstanceOf(SecretError)
    return error as SecretError
  }
  throw new Error('expected a SecretError')
}

describe('readSecretValue', () => {
  it('reads OPENSYM_SECRET_* variables of an env source, whole or by json_key', async () => {
    expect(await readSecretValue(envSecret('OPENSYM_SECRET_PLAIN'), { env })).toBe('plain-value')
    expect(await readSecretValue(envSecret('OPENSYM_SECRET_JSON', { json_key: 'token' }), { env })).toBe('json-token')
    expect(await readSecretValue(envSecret('OPENSYM_SECRET_JSON', { json_key: 'port' }), { env })).toBe('5432')
    expect(await readSecretValue(envSecret('OPENSYM_SECRET_JSON', { json_key: '' }), { env })).toBe(env.OPENSYM_SECRET_JSON)
  })

  it('refuses variables without the prefix, so configuration cannot read DATABASE_URL', async () => {
    for (const path of ['DATABASE_URL', 'opensym_secret_plain', 'OPENSYM_SECRET_', 'OPENSYM_SECRET_A-B', 'X_OPENSYM_SECRET_PLAIN']) {
      const error = await secretError(readSecretValue(envSecret(path), { env }))
      expect(error.message).toContain(`an env secret source only reads environment variables named OPENSYM_SECRET_<NAME>`)
      expect(error.message).not.toContain('hunter2')
    }
  })

  it('names a missing variable, a missing key or a non-JSON value without quoting the value', async () => {
    expect((await secretError(readSecretValue(envSecret('OPENSYM_SECRET_NOPE'), { env }))).message).toBe(
      `sym_secret s1 (path "OPENSYM_SECRET_NOPE"): the environment variable OPENSYM_SECRET_NOPE is not set (or empty) in the OpenSym worker's environment`,
    )
    expect((await secretError(readSecretValue(envSecret('OPENSYM_SECRET_EMPTY'), { env }))).message).toContain('is not set (or empty)')
    const noKey = await secretError(readSecretValue(envSecret('OPENSYM_SECRET_JSON', { json_key: 'password' }), { env }))
    expect(noKey.message).toBe('sym_secret s1 (path "OPENSYM_SECRET_JSON"): the JSON value has no key "password" (settings.json_key)')
    const notJson = await secretError(readSecretValue(envSecret('OPENSYM_SECRET_PLAIN', { json_key: 'token' }), { env }))
    expect(notJson.message).toBe('sym_secret s1 (path "OPENSYM_SECRET_PLAIN"): settings.json_key is "token" but the value is not JSON')
    expect(notJson.message).not.toContain('plain-value')
    const nested = await secretError(readSecretValue(envSecret('OPENSYM_SECRET_JSON', { json_key: 'nested' }), { env }))
    expect(nested.message).toContain('holds an object or array, not a string')
    expect(nested.message).not.toContain('json-token')
  })

  it('aws_secrets_manager needs its source\'s context_id to name a permission_context integration', async () => {
    const record = (settings: unknown): SecretRecord => ({ id: 's2', path: 'sym/main/okta', settings: {}, source: { id: 'x', type: 'aws_secrets_manager', settings } })
    expect((await secretError(readSecretValue(record({})))).message).toBe(
      'sym_secret s2 (path "sym/main/okta"): its aws_secrets_manager source has no settings.context_id (the ID of a permission_context sym_integration)',
    )
    expect((await secretError(readSecretValue(record({ context_id: 'c' })))).message).toBe(
      'sym_secret s2 (path "sym/main/okta"): its source\'s settings.context_id c is not a sym_integration of this organization',
    )
    const id = randomUUID()
    const slack = { id, type: 'slack', externalId: 'T1', settings: {} }
    expect((await secretError(readSecretValue(record({ context_id: id }), { integration: async () => slack }))).message).toBe(
      'sym_secret s2 (path "sym/main/okta"): its source\'s settings.context_id names a "slack" integration; it must be a permission_context',
    )
  })

  it('uses the prefix and source types the schema documents', () => {
    expect(ENV_SECRET_PREFIX).toBe(SCHEMA_PREFIX)
    expect(SECRET_SOURCE_TYPES).toContain('env')
  })
})

describe('createSecretResolver (PostgreSQL)', () => {
  let db: Db
  let org: TestOrg
  let other: TestOrg
  beforeAll(async () => {
    db = createDb(inject('databaseUrl'), { poolSize: 2 })
    org = await createTestOrg(db, 'secrets')
    other = await createTestOrg(db, 'secrets-other')
  })
  afterAll(async () => {
    await db?.$disconnect()
  })

  async function secret(orgId: string, type: string, path: string, settings: Record<string, string> = {}) {
    const source = await db.secretSource.create({ data: { orgId, type, slug: `src-${randomUUID().slice(0, 8)}` } })
    return db.secret.create({ data: { orgId, slug: path.toLowerCase(), path, sourceId: source.id, settings } })
  }

  it('resolves a sym_secret id of the org through its source', async () => {
    const plain = await secret(org.id, 'env', 'OPENSYM_SECRET_PLAIN')
    const keyed = await secret(org.id, 'env', 'OPENSYM_SECRET_JSON', { json_key: 'token' })
    const resolve = createSecretResolver({ db: db.sql, orgId: org.id, env })
    expect(await resolve(plain.id)).toBe('plain-value')
    expect(await resolve(keyed.id)).toBe('json-token')
  })

  it('refuses ids of other orgs, unknown ids and non-UUIDs', async () => {
    const theirs = await secret(other.id, 'env', 'OPENSYM_SECRET_PLAIN')
    const resolve = createSecretResolver({ db: db.sql, orgId: org.id, env })
    expect((await secretError(resolve(theirs.id))).message).toBe(`no sym_secret with id ${theirs.id} in this organization`)
    const unknown = randomUUID()
    expect((await secretError(resolve(unknown))).message).toBe(`no sym_secret with id ${unknown} in this organization`)
    expect((await secretError(resolve('nope'))).message).toBe('"nope" is not a sym_secret id (a UUID)')
    const forbidden = await secret(org.id, 'env', 'DATABASE_URL')
    expect((await secretError(resolve(forbidden.id))).message).toContain('only reads environment variables named OPENSYM_SECRET_<NAME>')
  })

  it('signs http strategy requests with an env secret', async () => {
    const signing = await secret(org.id, 'env', 'OPENSYM_SECRET_PLAIN')
    const rx = await startHttpReceiver({ secret: 'plain-value', rejectBadSignatures: true })
    try {
      const c: StrategyCall = {
        strategy: { id: 's', type: 'http', slug: 'grant', integration: null, settings: { url: `${rx.url}/grant`, hmac_secret_id: signing.id } },
        target: { id: 't', type: 'custom', slug: 'db', label: null, settings: {} },
        subject: { userId: 'u', email: 'ben@example.com', username: 'ben@example.com' },
        identity: 'ben@example.com',
        payload: { id: 'e1', event: { type: 'escalate' } },
        secrets: createSecretResolver({ db: db.sql, orgId: org.id, env }),
        signal: new AbortController().signal,
      }
      expect(await httpStrategy.escalate(c)).toEqual({ body: {}, errors: [] })
      expect(rx.requests[0]!.signature).toBe('valid')
    } finally {
      await rx.close()
    }
  })
})
