// Prisma Migrate without the native schema-engine binary (it cannot be downloaded here): the same engine, built
// to wasm (@prisma/schema-engine-wasm), driven through @prisma/adapter-pg. Files and the `_prisma_migrations`
// table are the ones `prisma migrate` writes, so the native CLI can take over at any time.
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { bindMigrationAwareSqlAdapterFactory } from '@prisma/driver-adapter-utils'
import type { ErrorRegistry } from '@prisma/driver-adapter-utils'
import type { MigrationList, SchemaFilter, SchemasContainer } from '@prisma/schema-engine-wasm'
import {
  MigrationAdapterFactory,
  describeTarget,
  parseDatabaseUrl,
  quoteIdent,
  withClient,
  type PgConfig,
  type ShadowMode,
} from './migrate/adapter.js'
import { exclusively, openEngine, type SchemaEngine } from './migrate/engine.js'
import { MigrateError } from './migrate/errors.js'
import { readMigrationList, writeMigration } from './migrate/files.js'

export { MigrateError }

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url)) // same depth from src/ and dist/
export const DEFAULT_SCHEMA_PATH = path.join(REPO_ROOT, 'prisma', 'schema.prisma')
export const DEFAULT_MIGRATIONS_DIR = path.join(REPO_ROOT, 'prisma', 'migrations')

export interface MigrateOptions {
  schemaPath?: string
  migrationsDir?: string
  /** A pre-created, disposable database for dev/diff. Default: a temporary database per use (needs CREATEDB). */
  shadowDatabaseUrl?: string | undefined
  /** How long deploy/dev/reset wait for another migration run on the same database. Default 60 s. */
  lockTimeoutMs?: number
  /** Human-readable progress lines. Silent by default. */
  log?: (line: string) => void
  /** Every SQL statement and engine log line (debugging). */
  trace?: (line: string) => void
}

export interface DeployResult {
  applied: string[]
}

export interface StatusResult {
  /** Every migration was applied, none failed or was edited afterwards. */
  upToDate: boolean
  localMigrations: string[]
  hasMigrationsTable: boolean
  /** In the folder, not (yet) in the database. */
  unapplied: string[]
  /** Recorded in the database but missing from the folder. */
  missingLocally: string[]
  failed: string[]
  /** Applied, but the file changed since (its checksum differs). */
  edited: string[]
  /** One line per problem, empty when up to date. */
  problems: string[]
}

export interface DevInput {
  name: string
  /** Write the migration file but do not apply it. */
  createOnly?: boolean
  /** Reset the database when its history or schema drifted, instead of failing. */
  forceReset?: boolean
  /** Proceed although the new migration would lose data (e.g. drops a column). */
  acceptDataLoss?: boolean
}

export interface DevResult {
  /** Folder name of the migration created by this run, if any. */
  created: string | null
  /** Migrations applied by this run (pending ones first, then the new one). */
  applied: string[]
  /** Whether the database was reset because of drift. */
  reset: boolean
  warnings: string[]
}

export interface DiffResult {
  inSync: boolean
  /** The engine's human-readable summary of what the migrations lack compared to the schema. */
  summary: string
}

const FILTERS: SchemaFilter = { externalTables: [], externalEnums: [] }
// Serialises our own runs. The engine additionally takes pg_advisory_lock(72707369) on its connection but gives
// up after 10 s; this lock must use a different key or a run would wait on its own engine.
const TOOL_LOCK_KEY = 72707370
const DEFAULT_LOCK_TIMEOUT_MS = 60_000

/** Applies pending migrations. Creates nothing else: no database, no migration, no shadow database. */
export function migrateDeploy(databaseUrl: string, options: MigrateOptions = {}): Promise<DeployResult> {
  return session(databaseUrl, options, { command: 'deploy', shadow: false, createDatabase: false, lock: true }, async (s) => {
    const list = await s.migrations()
    s.log(`${list.migrationDirectories.length} migration(s) found in ${s.relativeMigrationsDir}`)
    const { appliedMigrationNames } = await s.engine.applyMigrations({ migrationsList: list, filters: FILTERS })
    return { applied: appliedMigrationNames }
  })
}

/** Compares the database's `_prisma_migrations` with the migrations folder. Read-only. */
export function migrateStatus(databaseUrl: string, options: MigrateOptions = {}): Promise<StatusResult> {
  return session(databaseUrl, options, { command: 'status', shadow: false, createDatabase: false, lock: false }, async (s) => {
    const list = await s.migrations()
    const d = await s.engine.diagnoseMigrationHistory({ migrationsList: list, optInToShadowDatabase: false, filters: FILTERS })
    const h = d.history
    const unapplied = h && h.diagnostic !== 'migrationsDirectoryIsBehind' ? h.unappliedMigrationNames : []
    const missingLocally = h && h.diagnostic !== 'databaseIsBehind' ? h.unpersistedMigrationNames : []
    const problems: string[] = []
    if (!d.hasMigrationsTable) problems.push('The database has no _prisma_migrations table (never migrated).')
    if (unapplied.length) problems.push(`Not yet applied: ${unapplied.join(', ')}`)
    if (missingLocally.length) problems.push(`Applied in the database but missing from the folder: ${missingLocally.join(', ')}`)
    if (d.failedMigrationNames.length) problems.push(`Failed: ${d.failedMigrationNames.join(', ')}`)
    if (d.editedMigrationNames.length) problems.push(`Edited after being applied: ${d.editedMigrationNames.join(', ')}`)
    return {
      upToDate: problems.length === 0,
      localMigrations: list.migrationDirectories.map((m) => m.path),
      hasMigrationsTable: d.hasMigrationsTable,
      unapplied,
      missingLocally,
      failed: d.failedMigrationNames,
      edited: d.editedMigrationNames,
      problems,
    }
  })
}

/**
 * Development flow of `prisma migrate dev`: apply pending migrations, then create (and apply) a migration for
 * the schema changes. Creates the database if missing. Never resets without `forceReset`.
 */
export async function migrateDev(databaseUrl: string, input: DevInput, options: MigrateOptions = {}): Promise<DevResult> {
  const migrationName = migrationSlug(input.name)
  return session(databaseUrl, options, { command: 'dev', shadow: true, createDatabase: true, lock: true }, async (s) => {
    let reset = false
    const diagnostic = await s.engine.devDiagnostic({ migrationsList: await s.migrations(), filters: FILTERS })
    if (diagnostic.action.tag === 'reset') {
      if (!input.forceReset) {
        throw new MigrateError(
          `${diagnostic.action.reason.trim()}\n\nThe database ${s.target} must be reset; all its data would be lost. ` +
            'Re-run with --force-reset to do so.',
          'DRIFT',
        )
      }
      s.log(`Resetting ${s.target}: ${diagnostic.action.reason.trim()}`)
      await s.engine.reset({ filter: FILTERS })
      reset = true
    }
    const pending = await s.engine.applyMigrations({ migrationsList: await s.migrations(), filters: FILTERS })
    const applied = [...pending.appliedMigrationNames]
    if (applied.length) s.log(`Applied pending: ${applied.join(', ')}`)

    const loss = await s.engine.evaluateDataLoss({ migrationsList: await s.migrations(), schema: s.schema, filters: FILTERS })
    const warnings = loss.warnings.map((w) => w.message)
    if (loss.unexecutableSteps.length && !input.createOnly) {
      throw new MigrateError(
        `The schema change cannot be applied as generated:\n${loss.unexecutableSteps.map((u) => `  - ${u.message}`).join('\n')}\n` +
          'Use --create-only, edit the migration by hand, then run dev again.',
      )
    }
    if (warnings.length && !input.acceptDataLoss && !input.createOnly) {
      throw new MigrateError(
        `The new migration would lose data:\n${warnings.map((w) => `  - ${w}`).join('\n')}\n` +
          'Re-run with --accept-data-loss, or use --create-only and edit the migration.',
        'DATA_LOSS',
      )
    }
    if (loss.migrationSteps === 0 && !input.createOnly) return { created: null, applied, reset, warnings }

    const out = await s.engine.createMigration({
      draft: input.createOnly ?? false,
      migrationName,
      migrationsList: await s.migrations(),
      schema: s.schema,
      filters: FILTERS,
    })
    if (out.migrationScript === null) return { created: null, applied, reset, warnings }
    await writeMigration({
      baseDir: s.migrationsDir,
      directoryName: out.generatedMigrationName,
      extension: out.extension,
      script: out.migrationScript,
      connectorType: out.connectorType,
    })
    s.log(`Created ${path.join(s.relativeMigrationsDir, out.generatedMigrationName, `migration.${out.extension}`)}`)
    if (!input.createOnly) {
      const { appliedMigrationNames } = await s.engine.applyMigrations({ migrationsList: await s.migrations(), filters: FILTERS })
      applied.push(...appliedMigrationNames)
    }
    return { created: out.generatedMigrationName, applied, reset, warnings }
  })
}

/** Drops everything in the database (public schema) and re-applies all migrations. Development only. */
export function migrateReset(databaseUrl: string, options: MigrateOptions = {}): Promise<DeployResult> {
  return session(databaseUrl, options, { command: 'reset', shadow: false, createDatabase: true, lock: true }, async (s) => {
    await s.engine.reset({ filter: FILTERS })
    const { appliedMigrationNames } = await s.engine.applyMigrations({ migrationsList: await s.migrations(), filters: FILTERS })
    return { applied: appliedMigrationNames }
  })
}

/**
 * Whether replaying the migrations folder yields exactly the schema (CI drift check). Replays into a shadow
 * database; the main database is only used to create/drop that shadow.
 */
export function migrateDiff(databaseUrl: string, options: MigrateOptions = {}): Promise<DiffResult> {
  return session(databaseUrl, options, { command: 'diff', shadow: true, createDatabase: false, lock: false }, async (s) => {
    const list = await s.migrations()
    const result = await s.engine.diff({
      from: list.migrationDirectories.length ? { tag: 'migrations', ...list } : { tag: 'empty' },
      to: { tag: 'schemaDatamodel', ...s.schema },
      script: false,
      exitCode: true,
      filters: FILTERS,
    })
    return { inSync: result.exitCode === 0, summary: (result.stdout ?? '').trim() }
  })
}

// ---------------------------------------------------------------------------------------------------------------

interface SessionSpec {
  command: string
  /** Whether the engine may use a shadow database. */
  shadow: boolean
  /** Create the main database when it does not exist. */
  createDatabase: boolean
  /** Hold the tool's advisory lock for the whole run. */
  lock: boolean
}

interface Session {
  engine: SchemaEngine
  schema: SchemasContainer
  migrationsDir: string
  relativeMigrationsDir: string
  target: string
  migrations: () => Promise<MigrationList>
  log: (line: string) => void
}

async function session<T>(databaseUrl: string, options: MigrateOptions, spec: SessionSpec, run: (s: Session) => Promise<T>): Promise<T> {
  if (!databaseUrl) throw new MigrateError('DATABASE_URL is not set (postgresql://user@host:port/database)')
  const main = parseDatabaseUrl(databaseUrl)
  const schemaPath = path.resolve(options.schemaPath ?? DEFAULT_SCHEMA_PATH)
  const migrationsDir = path.resolve(options.migrationsDir ?? DEFAULT_MIGRATIONS_DIR)
  const log = options.log ?? (() => {})
  const schemaText = await readFile(schemaPath, 'utf8').catch((e: Error) => {
    throw new MigrateError(`Cannot read the Prisma schema at ${schemaPath}: ${e.message}`)
  })
  const shadow: ShadowMode = !spec.shadow
    ? { kind: 'forbidden', command: spec.command }
    : options.shadowDatabaseUrl
      ? { kind: 'fixed', config: parseDatabaseUrl(options.shadowDatabaseUrl, 'SHADOW_DATABASE_URL') }
      : { kind: 'temporary' }

  await ensureDatabase(main, spec.createDatabase, log)
  const factory = new MigrationAdapterFactory(main, shadow, options.trace)
  const bound = bindMigrationAwareSqlAdapterFactory(factory)
  const work = async (): Promise<T> => {
    let engine: SchemaEngine | undefined
    try {
      engine = await openEngine({ schemaPath, schema: schemaText, adapterFactory: bound, log: options.trace })
      return await run({
        engine,
        schema: { files: [{ path: schemaPath, content: schemaText }] },
        migrationsDir,
        relativeMigrationsDir: displayPath(migrationsDir),
        target: describeTarget(main),
        migrations: () => readMigrationList(migrationsDir),
        log,
      })
    } catch (e) {
      throw toMigrateError(e, bound.errorRegistry)
    } finally {
      engine?.free()
      for (const database of await factory.close()) log(`warning: could not drop temporary shadow database "${database}"`)
    }
  }
  const locked = () => (spec.lock ? withToolLock(main, options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS, work) : work())
  return exclusively(locked)
}

async function ensureDatabase(main: PgConfig, create: boolean, log: (line: string) => void): Promise<void> {
  try {
    await withClient(main, async () => {})
    return
  } catch (e) {
    if (pgCode(e) !== '3D000') throw new MigrateError(`Cannot connect to ${describeTarget(main)}: ${errorMessage(e)}`)
  }
  if (!create) throw new MigrateError(`Database ${describeTarget(main)} does not exist; create it first (this command does not).`)
  await withClient({ ...main, database: 'postgres' }, (c) => c.query(`CREATE DATABASE ${quoteIdent(main.database)}`)).catch(
    (e: unknown) => {
      if (pgCode(e) !== '42P04') throw new MigrateError(`Cannot create database ${describeTarget(main)}: ${errorMessage(e)}`)
    },
  )
  log(`Created database ${describeTarget(main)}`)
}

/** Session-level advisory lock on a dedicated connection; closing the connection releases it. */
async function withToolLock<T>(main: PgConfig, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const client = new pg.Client(main)
  client.on('error', () => {})
  await client.connect()
  try {
    await client.query(`SET lock_timeout = ${Math.max(1, Math.floor(timeoutMs))}`)
    try {
      await client.query('SELECT pg_advisory_lock($1)', [TOOL_LOCK_KEY])
    } catch (e) {
      if (pgCode(e) === '55P03') {
        throw new MigrateError(`Another migration run holds the lock on ${describeTarget(main)}; gave up after ${timeoutMs} ms.`, 'LOCKED')
      }
      throw e
    }
    return await fn()
  } finally {
    await client.end().catch(() => {})
  }
}

/**
 * Engine errors carry a wasm span trace after the message (which names the migration being applied); errors
 * thrown by our adapter reach the engine as "External error id#N" and are parked in the adapter's registry.
 */
function toMigrateError(e: unknown, registry: ErrorRegistry): Error {
  if (e instanceof MigrateError) return e
  let message = errorMessage(e)
  const externalId = /External error id#(\d+)/.exec(message)?.[1]
  const original = externalId === undefined ? undefined : registry.consumeError(Number(externalId))?.error
  if (original instanceof MigrateError) return original
  if (original !== undefined) message = errorMessage(original)
  const traceAt = message.search(/\n\s+0: /)
  const spans = traceAt < 0 ? '' : message.slice(traceAt)
  let text = (traceAt < 0 ? message : message.slice(0, traceAt)).replace(/^external connector error\n/, '').trim()
  const migration = /migration_name="([^"]+)"/.exec(spans)?.[1]
  if (migration && !text.includes(migration)) text = `Migration ${migration} failed: ${text}`
  return new MigrateError(text, /\b(P\d{4})\b/.exec(text)?.[1])
}

/** Repo-relative when inside the repo (npm runs scripts from the package folder, so cwd is not helpful). */
function displayPath(p: string): string {
  const rel = path.relative(REPO_ROOT, p)
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : p
}

function migrationSlug(name: string): string {
  const slug = name
    .normalize('NFKD')
    .replace(/[^\w]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .toLowerCase()
    .slice(0, 200)
  if (!slug) throw new MigrateError('A migration name is required (--name <name>, letters, digits and underscores).')
  return slug
}

function pgCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message || (e as { code?: string }).code || e.name
  return String(e)
}
