/**
 * Plain SQL over the pg pool that the Prisma client also uses: the engine's and the Events API's hot paths run their
 * statements here. Measured on this kind of machine, one `$queryRaw` through Prisma's client costs ~430 µs of CPU and
 * a two-statement interactive transaction ~1.4 ms, against ~90 µs and ~0.6 ms over pg itself; a run makes dozens of
 * statements, so that difference bounded how many runs a worker and an API process could move per second.
 *
 * Statements are `Prisma.Sql` fragments (the `sql` tagged template, `join`, `raw`: the text with `$n` placeholders
 * and its values), so callers build them exactly as they would for `$queryRaw`. Rows come back as Prisma's raw
 * queries return them: bigint columns as `bigint`, timestamps as `Date`, json as values, numeric as text.
 */
import { createHash } from 'node:crypto'
import pg from 'pg'

/** A statement: SQL text with `$1…$n` placeholders and its values (what `Prisma.Sql` carries). */
export interface Statement {
  readonly text: string
  readonly values: readonly unknown[]
}

/** Runs statements: the pool, or one transaction's connection. */
export interface Sql {
  /** The rows of a statement, as objects keyed by column name. */
  query<T>(statement: Statement): Promise<T[]>
  /** The number of rows a statement affected. */
  execute(statement: Statement): Promise<number>
}

export interface TransactionOptions {
  /** Longest wait for a connection from the pool. Default 10 s. */
  readonly maxWaitMs?: number
  /**
   * The transaction is rolled back once it has been open this long (its connection is closed, so its locks go at
   * once): later statements fail and so does the transaction, as Prisma's interactive transactions do. Default 5 s.
   */
  readonly timeoutMs?: number
  readonly isolationLevel?: 'ReadCommitted' | 'RepeatableRead' | 'Serializable'
}

export interface SqlPool extends Sql {
  /**
   * Runs `fn` in a transaction on one connection: committed when `fn` resolves, rolled back when it throws (the
   * error is rethrown) or when it outlives `timeoutMs`. A connection that failed mid-transaction is discarded.
   */
  transaction<T>(fn: (tx: Sql) => Promise<T>, options?: TransactionOptions): Promise<T>
}

/** Raised when a transaction outlived its `timeoutMs` or could not get a connection within `maxWaitMs`. */
export class TransactionTimeoutError extends Error {
  override readonly name = 'TransactionTimeoutError'
}

const OID = { int8: 20, timestamp: 1114, date: 1082 } as const

/** Prisma's raw-query conventions where pg's defaults differ. */
const TYPES = {
  getTypeParser(oid: number, format?: string): (value: string) => unknown {
    if (format !== 'binary') {
      if (oid === OID.int8) return (v) => BigInt(v)
      // Columns without a time zone hold UTC (as Prisma reads and writes them), not the process's local time.
      if (oid === OID.timestamp) return (v) => new Date(`${v.replace(' ', 'T')}Z`)
      if (oid === OID.date) return (v) => new Date(`${v}T00:00:00Z`)
    }
    return pg.types.getTypeParser(oid, format as 'text')
  },
}

/**
 * Each distinct text is a named (server-side prepared) statement on every connection that runs it, named by a hash
 * of the text: pg refuses one name for two texts on a connection, and the pool's connections are shared.
 */
export function statementNames(prefix: string): (text: string) => string {
  const names = new Map<string, string>()
  return (text) => {
    let name = names.get(text)
    if (name === undefined) {
      name = `${prefix}${createHash('sha256').update(text).digest('base64url').slice(0, 24)}`
      // The texts are the application's own, so few; the cap only guards against a generator of unique texts.
      if (names.size < 10_000) names.set(text, name)
    }
    return name
  }
}

type Client = pg.Pool | pg.PoolClient

class Runner implements Sql {
  constructor(
    protected readonly client: Client,
    private readonly name: ((text: string) => string) | undefined,
  ) {}

  protected config(statement: Statement): pg.QueryConfig {
    const name = this.name?.(statement.text)
    return { text: statement.text, values: statement.values as unknown[], types: TYPES, ...(name ? { name } : {}) }
  }

  async query<T>(statement: Statement): Promise<T[]> {
    return (await this.client.query(this.config(statement))).rows as T[]
  }

  async execute(statement: Statement): Promise<number> {
    return (await this.client.query(this.config(statement))).rowCount ?? 0
  }
}

/** A transaction's connection; refuses statements once the transaction timed out. */
class TxRunner extends Runner {
  expired = false
  failed = false

  override async query<T>(statement: Statement): Promise<T[]> {
    return this.guard(() => super.query<T>(statement))
  }

  override async execute(statement: Statement): Promise<number> {
    return this.guard(() => super.execute(statement))
  }

  private async guard<T>(run: () => Promise<T>): Promise<T> {
    if (this.expired) throw new TransactionTimeoutError('the transaction timed out and was rolled back')
    try {
      return await run()
    } catch (e) {
      // A statement error aborts the transaction on the server; a lost connection must not go back to the pool.
      if (!(e instanceof pg.DatabaseError)) this.failed = true
      throw e
    }
  }

  async run(text: string): Promise<void> {
    try {
      await (this.client as pg.PoolClient).query(text)
    } catch (e) {
      if (!(e instanceof pg.DatabaseError)) this.failed = true
      throw e
    }
  }
}

const BEGIN = { ReadCommitted: 'BEGIN ISOLATION LEVEL READ COMMITTED', RepeatableRead: 'BEGIN ISOLATION LEVEL REPEATABLE READ', Serializable: 'BEGIN ISOLATION LEVEL SERIALIZABLE' }

class Pool extends Runner implements SqlPool {
  constructor(
    private readonly pool: pg.Pool,
    private readonly names: ((text: string) => string) | undefined,
  ) {
    super(pool, names)
  }

  async transaction<T>(fn: (tx: Sql) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    const client = await this.connect(options.maxWaitMs ?? 10_000)
    const tx = new TxRunner(client, this.names)
    // A connection lost while no statement of ours is running (the server restarted while `fn` waited) is an 'error'
    // event on the client, which would end the process without a listener: the transaction fails at its next step.
    const onLost = () => (tx.failed = true)
    client.on('error', onLost)
    let released = false
    const release = (err?: Error) => {
      if (released) return
      released = true
      client.removeListener('error', onLost)
      // With an error the connection is closed instead of reused: PostgreSQL then ends whatever it had open.
      client.release(err ?? (tx.failed ? new Error('the connection was lost') : undefined))
    }
    // Past its time the transaction is ended at once (its locks released) by closing its connection, even while
    // `fn` still waits on something: the statements `fn` sends afterwards fail, and so does the transaction.
    const timeoutMs = options.timeoutMs ?? 5000
    const timer = setTimeout(() => {
      tx.expired = true
      release(new TransactionTimeoutError(`the transaction was open longer than ${timeoutMs} ms`))
    }, timeoutMs)
    try {
      await tx.run(options.isolationLevel ? BEGIN[options.isolationLevel] : 'BEGIN')
      const result = await fn(tx)
      if (tx.expired) throw new TransactionTimeoutError(`the transaction was open longer than ${timeoutMs} ms and was rolled back`)
      await tx.run('COMMIT')
      return result
    } catch (e) {
      if (tx.expired) throw e instanceof TransactionTimeoutError ? e : new TransactionTimeoutError(`the transaction was open longer than ${timeoutMs} ms and was rolled back`, { cause: e })
      if (tx.failed) release(e instanceof Error ? e : new Error(String(e)))
      else {
        try {
          await tx.run('ROLLBACK')
        } catch (rollbackError) {
          release(rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError)))
        }
      }
      throw e
    } finally {
      clearTimeout(timer)
      release()
    }
  }

  private async connect(maxWaitMs: number): Promise<pg.PoolClient> {
    let timer: NodeJS.Timeout | undefined
    let timedOut = false
    const connecting = this.pool.connect()
    try {
      return await Promise.race([
        connecting,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            timedOut = true
            reject(new TransactionTimeoutError(`no database connection became free within ${maxWaitMs} ms`))
          }, maxWaitMs)
        }),
      ])
    } finally {
      clearTimeout(timer)
      // A connection that arrives after the wait was given up goes straight back.
      if (timedOut) connecting.then((c) => c.release(), () => undefined)
    }
  }
}

/** The SQL runner over `pool`; with `preparedStatements`, every distinct text is prepared once per connection. */
export function createSql(pool: pg.Pool, options: { preparedStatements?: boolean } = {}): SqlPool {
  return new Pool(pool, options.preparedStatements ? statementNames('q_') : undefined)
}
