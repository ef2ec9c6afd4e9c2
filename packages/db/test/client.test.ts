import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createDb,
  inTransaction,
  isForeignKeyViolation,
  isRetriableTxError,
  isUniqueViolation,
  migrateDeploy,
  violatedConstraint,
  type Db,
} from '../src/index.js'
import { caught, createScratchDatabase, type ScratchDatabase } from './helpers.js'

let scratch: ScratchDatabase
let db: Db

beforeAll(async () => {
  scratch = await createScratchDatabase()
  await migrateDeploy(scratch.url)
  db = createDb(scratch.url, { poolSize: 4 })
})

afterAll(async () => {
  await db?.$disconnect()
  await scratch?.drop()
})

describe('error helpers', () => {
  it('recognise a unique violation and name its constraint', async () => {
    const org = await db.organization.create({ data: { slug: 'unique-org' } })
    const e = await caught(db.organization.create({ data: { slug: org.slug } }))
    expect(isUniqueViolation(e)).toBe(true)
    expect(isUniqueViolation(e, 'Organization_slug_key')).toBe(true)
    expect(isUniqueViolation(e, 'Some_other_key')).toBe(false)
    expect(isForeignKeyViolation(e)).toBe(false)
    expect(violatedConstraint(e)).toEqual({ constraint: 'Organization_slug_key', fields: [] })
  })

  it('recognise a unique violation raised by a raw query', async () => {
    await db.organization.create({ data: { slug: 'raw-org' } })
    const e = await caught(db.$executeRaw`INSERT INTO "Organization" (id, slug, "updatedAt") VALUES (gen_random_uuid(), 'raw-org', now())`)
    expect(isUniqueViolation(e, 'Organization_slug_key')).toBe(true)
  })

  it('recognise a foreign-key violation, including a restricted delete', async () => {
    const missingOrg = '00000000-0000-0000-0000-000000000000'
    const insert = await caught(db.user.create({ data: { orgId: missingOrg, username: 'nobody' } }))
    expect(isForeignKeyViolation(insert, 'User_orgId_fkey')).toBe(true)

    const org = await db.organization.create({ data: { slug: 'fk-org' } })
    const integration = await db.integration.create({ data: { orgId: org.id, type: 'slack', slug: 'main', externalId: 'T1' } })
    await db.strategy.create({ data: { orgId: org.id, type: 'okta', slug: 's', integrationId: integration.id } })
    const del = await caught(db.integration.delete({ where: { id: integration.id } }))
    expect(isForeignKeyViolation(del)).toBe(true)
    expect(violatedConstraint(del)?.constraint).toBe('Strategy_integrationId_fkey')
    expect(isUniqueViolation(del)).toBe(false)
  })

  it('recognise a serialization failure as retriable', async () => {
    const bump = (n: string) =>
      db.$transaction(
        async (tx) => {
          const count = await tx.organization.count()
          await new Promise((resolve) => setTimeout(resolve, 100)) // make both read before either writes
          await tx.organization.create({ data: { slug: `serial-${n}-${count}` } })
        },
        { isolationLevel: 'Serializable' },
      )
    const results = await Promise.allSettled([bump('a'), bump('b')])
    const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []))
    expect(failures).toHaveLength(1)
    expect(isRetriableTxError(failures[0])).toBe(true)
    expect(isRetriableTxError(new Error('P2034'))).toBe(false)
  })
})

describe('inTransaction', () => {
  it('joins the caller’s transaction, so a rollback undoes the nested work', async () => {
    const failure = await caught(
      db.$transaction(async (tx) => {
        await inTransaction(tx, (inner) => inner.organization.create({ data: { slug: 'rolled-back' } }))
        throw new Error('abort')
      }),
    )
    expect(failure).toBeInstanceOf(Error)
    await expect(db.organization.findUnique({ where: { slug: 'rolled-back' } })).resolves.toBeNull()
  })

  it('opens a transaction when given the client', async () => {
    const org = await inTransaction(db, (tx) => tx.organization.create({ data: { slug: 'own-tx' } }))
    expect(org.slug).toBe('own-tx')
  })
})
