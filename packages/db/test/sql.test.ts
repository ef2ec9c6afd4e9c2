import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDb, isRetriableTxError, isUniqueViolation, migrateDeploy, Prisma, TransactionTimeoutError, violatedConstraint, type Db } from '../src/index.js'
import { caught, createScratchDatabase, type ScratchDatabase } from './helpers.js'

const { sql } = Prisma

let scratch: ScratchDatabase
let db: Db

beforeAll(async () => {
  scratch = await createScratchDatabase()
  await migrateDeploy(scratch.url)
  db = createDb(scratch.url, { poolSize: 4, preparedStatements: true })
})

afterAll(async () => {
  await db?.$disconnect()
  await scratch?.drop()
})

describe('db.sql', () => {
  it('returns rows with the types Prisma raw queries have', async () => {
    const at = new Date('2026-01-02T03:04:05.678Z')
    const [row] = await db.sql.query<Record<string, unknown>>(sql`
      SELECT ${at}::timestamptz AS "at", '2026-01-02 03:04:05.678'::timestamp AS "naive", 9007199254740993::bigint AS "big",
             42::int AS "n", '{"a":[1,"x"]}'::jsonb AS "json", ${['00000000-0000-4000-8000-000000000001']}::uuid[] AS "ids", NULL::text AS "none"`)
    expect(row).toEqual({ at, naive: at, big: 9007199254740993n, n: 42, json: { a: [1, 'x'] }, ids: ['00000000-0000-4000-8000-000000000001'], none: null })
    // The same text again runs the prepared statement.
    expect(await db.sql.query(sql`SELECT ${1}::int AS "n"`)).toEqual([{ n: 1 }])
    expect(await db.sql.query(sql`SELECT ${2}::int AS "n"`)).toEqual([{ n: 2 }])
  })

  it('commits a transaction, rolls it back on an error, and reports affected rows', async () => {
    const made = await db.sql.transaction(async (tx) => tx.execute(sql`INSERT INTO "Organization" ("id", "slug", "updatedAt") VALUES (gen_random_uuid(), 'sql-commit', now())`))
    expect(made).toBe(1)
    await expect(
      db.sql.transaction(async (tx) => {
        await tx.execute(sql`INSERT INTO "Organization" ("id", "slug", "updatedAt") VALUES (gen_random_uuid(), 'sql-rollback', now())`)
        throw new Error('no')
      }),
    ).rejects.toThrow('no')
    const slugs = await db.sql.query<{ slug: string }>(sql`SELECT "slug" FROM "Organization" WHERE "slug" LIKE 'sql-%' ORDER BY "slug"`)
    expect(slugs.map((r) => r.slug)).toEqual(['sql-commit'])
  })

  it('classifies pg errors as the Prisma ones are', async () => {
    const e = await caught(db.sql.execute(sql`INSERT INTO "Organization" ("id", "slug", "updatedAt") VALUES (gen_random_uuid(), 'sql-commit', now())`))
    expect(isUniqueViolation(e)).toBe(true)
    expect(violatedConstraint(e)?.constraint).toBe('Organization_slug_key')
    expect(isRetriableTxError(e)).toBe(false)
  })

  it('rolls back a transaction that outlives its timeout, and the connection stays usable', async () => {
    const e = await caught(
      db.sql.transaction(
        async (tx) => {
          await tx.execute(sql`INSERT INTO "Organization" ("id", "slug", "updatedAt") VALUES (gen_random_uuid(), 'sql-slow', now())`)
          await new Promise((r) => setTimeout(r, 150))
          await tx.execute(sql`SELECT 1`)
        },
        { timeoutMs: 50 },
      ),
    )
    expect(e).toBeInstanceOf(TransactionTimeoutError)
    expect(await db.sql.query(sql`SELECT count(*)::int AS "n" FROM "Organization" WHERE "slug" = 'sql-slow'`)).toEqual([{ n: 0 }])
    // Every connection of the pool still works (none was left inside a transaction).
    const counts = await Promise.all([1, 2, 3, 4].map(() => db.sql.transaction(async (tx) => tx.query<{ n: number }>(sql`SELECT count(*)::int AS "n" FROM "Organization" WHERE "slug" = 'sql-slow'`))))
    expect(counts.flat()).toEqual([{ n: 0 }, { n: 0 }, { n: 0 }, { n: 0 }])
  })

  it('releases the locks of a timed-out transaction at once, even while its callback still waits', async () => {
    await db.sql.execute(sql`INSERT INTO "Organization" ("id", "slug", "updatedAt") VALUES (gen_random_uuid(), 'sql-locked', now())`)
    let resume!: () => void
    const waiting = new Promise<void>((r) => (resume = r))
    const stuck = db.sql.transaction(
      async (tx) => {
        await tx.query(sql`SELECT 1 FROM "Organization" WHERE "slug" = 'sql-locked' FOR UPDATE`)
        await waiting
        await tx.execute(sql`UPDATE "Organization" SET "updatedAt" = now() WHERE "slug" = 'sql-locked'`)
      },
      { timeoutMs: 50 },
    )
    const outcome = stuck.then(() => 'committed', (e: unknown) => e)
    await new Promise((r) => setTimeout(r, 150))
    // NOWAIT: fails at once if the stuck transaction still held the row.
    const taken = await db.sql.transaction(async (tx) => tx.query(sql`SELECT 1 AS "n" FROM "Organization" WHERE "slug" = 'sql-locked' FOR UPDATE NOWAIT`))
    expect(taken).toEqual([{ n: 1 }])
    resume()
    expect(await outcome).toBeInstanceOf(TransactionTimeoutError)
  })

  it('survives a connection lost while a transaction waits (the server restarted), and the pool goes on', async () => {
    let resume!: () => void
    const waiting = new Promise<void>((r) => (resume = r))
    let pid = 0
    const lost = db.sql.transaction(async (tx) => {
      const [row] = await tx.query<{ pid: number }>(sql`SELECT pg_backend_pid() AS "pid"`)
      pid = row?.pid ?? 0
      await waiting
      await tx.query(sql`SELECT 1`)
    })
    const outcome = lost.then(() => 'committed', (e: unknown) => e)
    await expect.poll(() => pid).not.toBe(0)
    // Killed from elsewhere while no statement of its own runs: an 'error' event on the idle-but-taken connection.
    await db.sql.query(sql`SELECT pg_terminate_backend(${pid}::int)`)
    await new Promise((r) => setTimeout(r, 100))
    resume()
    expect(await outcome).toBeInstanceOf(Error)
    expect(await Promise.all([1, 2, 3, 4, 5].map(() => db.sql.transaction((tx) => tx.query(sql`SELECT 1 AS "n"`))))).toEqual(Array(5).fill([{ n: 1 }]))
  })

  it('runs serializable transactions and reports their conflicts as retriable', async () => {
    await db.sql.execute(sql`INSERT INTO "Organization" ("id", "slug", "updatedAt") VALUES (gen_random_uuid(), 'sql-serial', now())`)
    let release!: () => void
    const held = new Promise<void>((r) => (release = r))
    const first = db.sql.transaction(
      async (tx) => {
        await tx.query(sql`SELECT "slug" FROM "Organization" WHERE "slug" = 'sql-serial'`)
        await held
        await tx.execute(sql`UPDATE "Organization" SET "updatedAt" = now() WHERE "slug" = 'sql-serial'`)
      },
      { isolationLevel: 'Serializable' },
    )
    const second = db.sql.transaction(
      async (tx) => {
        await tx.query(sql`SELECT "slug" FROM "Organization" WHERE "slug" = 'sql-serial'`)
        await tx.execute(sql`UPDATE "Organization" SET "updatedAt" = now() WHERE "slug" = 'sql-serial'`)
      },
      { isolationLevel: 'Serializable' },
    )
    await second
    release()
    const e = await caught(first)
    expect(isRetriableTxError(e)).toBe(true)
  })

  it('shares its pool with the Prisma client', async () => {
    const org = await db.organization.create({ data: { slug: 'sql-shared' } })
    const [row] = await db.sql.query<{ id: string }>(sql`SELECT "id" FROM "Organization" WHERE "slug" = 'sql-shared'`)
    expect(row?.id).toBe(org.id)
  })
})
