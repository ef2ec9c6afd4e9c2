import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  DEFAULT_MIGRATIONS_DIR,
  DEFAULT_SCHEMA_PATH,
  MigrateError,
  migrateDeploy,
  migrateDiff,
  migrateStatus,
} from '../src/migrate.js'
import { createScratchDatabase, databaseUrl, sql, type ScratchDatabase } from './helpers.js'

const databases: ScratchDatabase[] = []
let db: ScratchDatabase
let migrationNames: string[]
let modelNames: string[]

beforeAll(async () => {
  db = await createScratchDatabase()
  databases.push(db)
  const entries = await readdir(DEFAULT_MIGRATIONS_DIR, { withFileTypes: true })
  migrationNames = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort()
  const schema = await readFile(DEFAULT_SCHEMA_PATH, 'utf8')
  modelNames = [...schema.matchAll(/^model (\w+) \{/gm)].map((m) => m[1]!)
})

afterAll(async () => {
  await Promise.all(databases.map((d) => d.drop()))
})

describe('migrateDeploy on a fresh database', () => {
  it('applies every migration, the init one first', async () => {
    const { applied } = await migrateDeploy(db.url)
    expect(applied).toEqual(migrationNames)
    expect(applied[0]).toMatch(/^\d{14}_init$/)
  })

  it('creates a table per model', async () => {
    const rows = await sql<{ table_name: string }>(
      db.name,
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`,
    )
    const tables = rows.map((r) => r.table_name)
    expect(modelNames.length).toBeGreaterThan(10)
    expect(tables).toEqual(expect.arrayContaining([...modelNames, '_prisma_migrations']))
  })

  it('records the init migration in _prisma_migrations as Prisma does', async () => {
    const rows = await sql<{ migration_name: string; checksum: string; finished: boolean; rolled_back: boolean; applied_steps_count: number }>(
      db.name,
      `SELECT migration_name, checksum, finished_at IS NOT NULL AS finished, rolled_back_at IS NOT NULL AS rolled_back,
              applied_steps_count FROM _prisma_migrations ORDER BY migration_name`,
    )
    expect(rows.map((r) => r.migration_name)).toEqual(migrationNames)
    expect(rows[0]).toMatchObject({ finished: true, rolled_back: false, applied_steps_count: 1 })
    expect(rows[0]!.checksum).toMatch(/^[0-9a-f]{64}$/) // sha256 of migration.sql, checked by `prisma migrate`
  })

  it('is a no-op the second time', async () => {
    await expect(migrateDeploy(db.url)).resolves.toEqual({ applied: [] })
    const [count] = await sql<{ n: string }>(db.name, 'SELECT count(*) AS n FROM _prisma_migrations')
    expect(Number(count!.n)).toBe(migrationNames.length)
  })

  it('leaves the database up to date according to status', async () => {
    const status = await migrateStatus(db.url)
    expect(status).toMatchObject({ upToDate: true, unapplied: [], failed: [], edited: [], problems: [] })
    expect(status.localMigrations).toEqual(migrationNames)
  })
})

describe('migrateDiff', () => {
  it('reports the migrations and the schema in sync', async () => {
    const result = await migrateDiff(db.url)
    expect(result.inSync).toBe(true)
  })

  it('reports a schema change that has no migration', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'opensym-db-test-'))
    try {
      const schema = await readFile(DEFAULT_SCHEMA_PATH, 'utf8')
      const changed = schema.replace(/^model Organization \{\n/m, 'model Organization {\n  testOnlyColumn String?\n')
      expect(changed).not.toBe(schema)
      const schemaPath = path.join(dir, 'schema.prisma')
      await writeFile(schemaPath, changed)
      const result = await migrateDiff(db.url, { schemaPath })
      expect(result.inSync).toBe(false)
      expect(result.summary).toContain('testOnlyColumn')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('migrateDeploy safety', () => {
  it('refuses a database that does not exist instead of creating it', async () => {
    const name = `opensym_test_db_missing_${Date.now()}`
    await expect(migrateDeploy(databaseUrl(name))).rejects.toThrow(MigrateError)
    const rows = await sql('postgres', 'SELECT 1 FROM pg_database WHERE datname = $1', [name])
    expect(rows).toHaveLength(0)
  })

  it('applies each migration exactly once when several deploys start together', async () => {
    const fresh = await createScratchDatabase()
    databases.push(fresh)
    const results = await Promise.all([1, 2, 3].map(() => migrateDeploy(fresh.url)))
    expect(results.flatMap((r) => r.applied).sort()).toEqual(migrationNames)
    const rows = await sql<{ migration_name: string }>(fresh.name, 'SELECT migration_name FROM _prisma_migrations')
    expect(rows.map((r) => r.migration_name).sort()).toEqual(migrationNames)
  })
})
