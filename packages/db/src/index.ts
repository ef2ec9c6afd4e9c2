// The one place that imports Prisma. Other packages use createDb() and the types re-exported here.
import { PrismaPg } from '@prisma/adapter-pg'
import pg from 'pg'
import { type Prisma, PrismaClient } from './generated/prisma/client.js'
import { createSql, statementNames, type SqlPool } from './sql.js'

export * from './generated/prisma/client.js'
export { isForeignKeyViolation, isRetriableTxError, isUniqueViolation, violatedConstraint, type ViolatedConstraint } from './errors.js'
// Migrations (wasm schema engine; loaded lazily on first call). Also available as `@opensym/db/migrate`.
export {
  MigrateError,
  migrateDeploy,
  migrateDev,
  migrateDiff,
  migrateReset,
  migrateStatus,
  type DeployResult,
  type DevInput,
  type DevResult,
  type DiffResult,
  type MigrateOptions,
  type StatusResult,
} from './migrate.js'
export * from './accounts.js'
export { createSql, TransactionTimeoutError, type Sql, type SqlPool, type Statement, type TransactionOptions } from './sql.js'

/** The Prisma client, plus plain SQL over the same pool for hot paths (sql.ts). */
export type Db = PrismaClient & { readonly sql: SqlPool }
/** The client handed to an interactive `$transaction(async (tx) => ...)` callback. */
export type Tx = Prisma.TransactionClient
/** Services take this so callers can pass either the client or an open transaction. */
export type DbOrTx = Db | Tx

export interface CreateDbOptions {
  /** Maximum connections in the pg pool. Default 10. */
  poolSize?: number
  /**
   * Name every distinct SQL text, so that each pool connection parses and plans it once (server-side prepared
   * statements) instead of on every execution: less CPU in PostgreSQL per query. Not behind a pooler in transaction
   * mode that does not track prepared statements (PgBouncer before 1.21 or without `max_prepared_statements`).
   * Default false.
   */
  preparedStatements?: boolean
}

export function createDb(url: string, options: CreateDbOptions = {}): Db {
  if (!url) throw new Error('createDb: the database URL is empty (is DATABASE_URL set?)')
  // The Prisma 7 client has no Rust engine; it talks to PostgreSQL through this pg-based adapter.
  const pool = new pg.Pool({ connectionString: url, max: options.poolSize ?? 10 })
  // An idle connection that breaks (the server restarted) is dropped by the pool, which then emits 'error': without a
  // listener that would end the process. The next statement opens a new connection.
  pool.on('error', () => undefined)
  const names = options.preparedStatements ? statementNames('s_') : undefined
  const adapter = new PrismaPg(pool, names ? { statementNameGenerator: ({ sql }: { sql: string }) => names(sql) } : {})
  const client = new PrismaClient({ adapter })
  const disconnect = client.$disconnect.bind(client)
  // The pool is ours, not the adapter's: it closes once, when the client does (also if only `sql` used it).
  return Object.assign(client, {
    sql: createSql(pool, { preparedStatements: options.preparedStatements }),
    $disconnect: async () => {
      await disconnect()
      if (!pool.ended) await pool.end()
    },
  })
}


/** Runs `fn` in the caller's transaction if given one, else in a new interactive transaction. */
export function inTransaction<T>(db: DbOrTx, fn: (tx: Tx) => Promise<T>, options?: { isolationLevel?: Prisma.TransactionIsolationLevel }): Promise<T> {
  return '$transaction' in db ? db.$transaction(fn, options) : fn(db)
}

/**
 * A value for a Json column. Our typed records (interfaces, which have no index signature) are JSON by
 * construction; Prisma's input type cannot see that.
 */
export function toJson(value: object): Prisma.InputJsonObject {
  // typescript-eslint resolves the generated client's types differently from tsc and calls this unnecessary.
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
  return value as Prisma.InputJsonObject
}
