// The driver adapter the wasm schema engine talks to PostgreSQL through. It wraps @prisma/adapter-pg with the
// fixes recorded in docs (offline-stack §1.2): catalog column types, a shadow database that really is separate
// from the main one, and shadow databases that are cleaned up.
import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { parseIntoClientConfig } from 'pg-connection-string'
import { PrismaPg } from '@prisma/adapter-pg'
import { DriverAdapterError } from '@prisma/driver-adapter-utils'
import type {
  IsolationLevel,
  SqlDriverAdapter,
  SqlMigrationAwareDriverAdapterFactory,
  SqlQuery,
  SqlResultSet,
  Transaction,
} from '@prisma/driver-adapter-utils'
import { MigrateError } from './errors.js'

/** Discrete connection fields. Never a `connectionString`: in pg it overrides `database`. */
export type PgConfig = Omit<pg.ClientConfig, 'connectionString'> & { database: string }

export function parseDatabaseUrl(url: string, what = 'DATABASE_URL'): PgConfig {
  if (!/^postgres(ql)?:\/\//.test(url)) throw new MigrateError(`${what} must be a postgresql:// URL`)
  let parsed: pg.ClientConfig & Record<string, unknown>
  try {
    parsed = parseIntoClientConfig(url) as pg.ClientConfig & Record<string, unknown>
  } catch (e) {
    throw new MigrateError(`${what} is not a valid PostgreSQL URL: ${e instanceof Error ? e.message : String(e)}`)
  }
  // Prisma-style `?schema=` is passed through by pg-connection-string; the tool only manages `public`.
  const { schema, connectionString: _ignored, ...config } = parsed
  if (schema !== undefined && schema !== 'public') {
    throw new MigrateError(`${what}: only the "public" schema is supported (got schema=${JSON.stringify(schema)})`)
  }
  if (typeof config.database !== 'string' || config.database === '') {
    throw new MigrateError(`${what} must name a database (postgresql://user@host:port/<database>)`)
  }
  return { ...config, database: config.database }
}

export function describeTarget(config: PgConfig): string {
  return `"${config.database}" at ${config.host ?? 'localhost'}:${config.port ?? 5432}`
}

export function sameDatabase(a: PgConfig, b: PgConfig): boolean {
  return (
    a.database === b.database &&
    (a.host ?? 'localhost') === (b.host ?? 'localhost') &&
    Number(a.port ?? 5432) === Number(b.port ?? 5432)
  )
}

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}

// adapter-pg cannot map the catalog types "char" (OID 18) and name (OID 19) that the engine reads from
// pg_catalog ("Column type 'char' could not be deserialized"). Their values arrive as plain strings anyway,
// so the field metadata is rewritten to text (OID 25) before the adapter sees it.
const CATALOG_TEXT_OIDS = new Set([18, 19])
const TEXT_OID = 25

function retypeCatalogFields<T>(result: T): T {
  for (const one of Array.isArray(result) ? (result as unknown[]) : [result]) {
    const fields = (one as { fields?: unknown } | null | undefined)?.fields
    if (!Array.isArray(fields)) continue
    for (const field of fields as { dataTypeID: number }[]) {
      if (CATALOG_TEXT_OIDS.has(field.dataTypeID)) field.dataTypeID = TEXT_OID
    }
  }
  return result
}

type LooseQuery = (this: pg.Client, ...args: unknown[]) => unknown
type Callback = (err: Error | null, res: unknown) => void
const baseQuery = Reflect.get(pg.Client.prototype, 'query') as LooseQuery

export class CatalogTextClient extends pg.Client {}
// Defined on the prototype rather than as an `override` because pg's query() has a dozen overloads.
// pg.Pool calls it callback-style (`client.query(config, values, cb)`), so both styles are handled.
Object.defineProperty(CatalogTextClient.prototype, 'query', {
  value: function query(this: pg.Client, ...args: unknown[]): unknown {
    const last = args.length - 1
    const cb = args[last]
    if (typeof cb === 'function') {
      args[last] = ((err, res) => (cb as Callback)(err, err ? res : retypeCatalogFields(res))) satisfies Callback
      return baseQuery.apply(this, args)
    }
    const ret = baseQuery.apply(this, args)
    return ret instanceof Promise ? ret.then(retypeCatalogFields) : ret // submittables (cursors) pass through
  },
})

// adapter-pg maps well-known SQLSTATEs to terse kinds ("No such table: nope"). A failing migration deserves
// PostgreSQL's own message, which ends up in the error and in `_prisma_migrations.logs`.
function scriptError(e: unknown): unknown {
  if (!(e instanceof pg.DatabaseError)) return e
  return new DriverAdapterError({
    kind: 'postgres',
    code: e.code ?? 'N/A',
    severity: e.severity ?? 'ERROR',
    message: e.message,
    detail: e.detail,
    column: e.column,
    hint: e.hint,
  })
}

/** Runs `fn` on a short-lived plain connection. */
export async function withClient<T>(config: PgConfig, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(config)
  client.on('error', () => {}) // a dropped idle connection must not crash the process; queries still reject
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end().catch(() => {})
  }
}

/** How `connectToShadowDb` behaves. */
export type ShadowMode =
  /** A pre-created database (SHADOW_DATABASE_URL); its public schema is wiped on every connect. */
  | { kind: 'fixed'; config: PgConfig }
  /** A throw-away database per connect, dropped when the engine disposes it. Needs CREATEDB. */
  | { kind: 'temporary' }
  /** Commands such as deploy/status must never create or touch another database. */
  | { kind: 'forbidden'; command: string }

/**
 * Migration-aware adapter factory for the schema engine. Everything it opens is tracked so `close()` can
 * release it even when the engine fails half-way (and never disposes what it connected).
 */
export class MigrationAdapterFactory implements SqlMigrationAwareDriverAdapterFactory {
  readonly provider = 'postgres' as const
  readonly adapterName = '@prisma/adapter-pg'
  readonly #pools = new Set<pg.Pool>()
  readonly #temporaryDatabases = new Set<string>()

  constructor(
    private readonly main: PgConfig,
    private readonly shadow: ShadowMode,
    /** Receives every SQL text the engine sends (debugging aid). */
    private readonly trace?: (sql: string) => void,
  ) {
    if (shadow.kind === 'fixed' && sameDatabase(main, shadow.config)) {
      throw new MigrateError('SHADOW_DATABASE_URL points at the main database; it would be wiped. Use a separate database.')
    }
  }

  connect(): Promise<SqlDriverAdapter> {
    return this.#adapter(this.main)
  }

  async connectToShadowDb(): Promise<SqlDriverAdapter> {
    switch (this.shadow.kind) {
      case 'forbidden':
        throw new MigrateError(`${this.shadow.command} does not use a shadow database`)
      case 'fixed':
        // The engine connects to the shadow more than once per run and expects it empty every time.
        await withClient(this.shadow.config, (c) => c.query('DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public'))
        return this.#adapter(this.shadow.config)
      case 'temporary': {
        const database = `opensym_shadow_${randomUUID().replaceAll('-', '')}`
        await withClient(this.main, (c) => c.query(`CREATE DATABASE ${quoteIdent(database)}`)).catch((e: unknown) => {
          throw new MigrateError(
            `Cannot create a temporary shadow database (${e instanceof Error ? e.message : String(e)}). ` +
              'Grant CREATEDB, or set SHADOW_DATABASE_URL to an empty database this tool may wipe.',
          )
        })
        this.#temporaryDatabases.add(database)
        // Dropped only after its own pool is closed; otherwise "database is being accessed by other users".
        return this.#adapter({ ...this.main, database }, () => this.#dropTemporary(database))
      }
    }
  }

  /**
   * Ends every pool this factory opened and drops any temporary shadow database still around. Best effort (it
   * runs in `finally` and must not mask the real error); returns the databases it could not drop.
   */
  async close(): Promise<string[]> {
    await Promise.all([...this.#pools].map((pool) => this.#endPool(pool)))
    const leaked: string[] = []
    for (const database of [...this.#temporaryDatabases]) {
      await this.#dropTemporary(database).catch(() => leaked.push(database))
    }
    return leaked
  }

  async #adapter(config: PgConfig, afterDispose?: () => Promise<void>): Promise<SqlDriverAdapter> {
    const pool = new pg.Pool({ ...config, Client: CatalogTextClient, max: 4 })
    pool.on('error', () => {}) // idle-client errors surface on the next query instead of crashing
    this.#pools.add(pool)
    const inner = await new PrismaPg(pool).connect()
    let disposed = false
    return {
      provider: inner.provider,
      adapterName: inner.adapterName,
      queryRaw: (query: SqlQuery): Promise<SqlResultSet> => {
        this.trace?.(`query: ${query.sql}`)
        return inner.queryRaw(query)
      },
      executeRaw: (query: SqlQuery): Promise<number> => {
        this.trace?.(`execute: ${query.sql}`)
        return inner.executeRaw(query)
      },
      // adapter-pg splits scripts on ";" (breaks on semicolons inside strings/bodies and runs statements one
      // by one). Sending the script as one simple-protocol query keeps it intact and makes PostgreSQL run it
      // in one implicit transaction, as the native engine does.
      executeScript: async (script: string): Promise<void> => {
        this.trace?.(`script: ${script}`)
        await pool.query(script).catch((e: unknown) => {
          throw scriptError(e)
        })
      },
      startTransaction: (isolationLevel?: IsolationLevel): Promise<Transaction> => inner.startTransaction(isolationLevel),
      getConnectionInfo: () => inner.getConnectionInfo(),
      dispose: async (): Promise<void> => {
        if (disposed) return
        disposed = true
        await this.#endPool(pool)
        await afterDispose?.()
      },
    }
  }

  async #endPool(pool: pg.Pool): Promise<void> {
    if (!this.#pools.delete(pool)) return // pg throws if end() is called twice
    await pool.end().catch(() => {})
  }

  async #dropTemporary(database: string): Promise<void> {
    if (!this.#temporaryDatabases.has(database)) return
    await withClient(this.main, (c) => c.query(`DROP DATABASE IF EXISTS ${quoteIdent(database)} WITH (FORCE)`))
    this.#temporaryDatabases.delete(database) // only once gone, so close() retries or reports it
  }
}
