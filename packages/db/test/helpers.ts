// Each test file gets its own database on the real server, dropped afterwards.
import { randomBytes } from 'node:crypto'
import pg from 'pg'

const SERVER_URL = process.env['TEST_DATABASE_URL'] ?? process.env['DATABASE_URL'] ?? 'postgresql://postgres@127.0.0.1:5432/postgres'

export function databaseUrl(database: string): string {
  const url = new URL(SERVER_URL)
  url.pathname = `/${database}`
  return url.toString()
}

export async function sql<R extends pg.QueryResultRow>(database: string, text: string, values: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: databaseUrl(database) })
  await client.connect()
  try {
    return (await client.query<R>(text, values)).rows
  } finally {
    await client.end()
  }
}

export interface ScratchDatabase {
  name: string
  url: string
  drop(): Promise<void>
}

export async function createScratchDatabase(): Promise<ScratchDatabase> {
  const name = `opensym_test_db_${randomBytes(6).toString('hex')}`
  await sql('postgres', `CREATE DATABASE "${name}"`)
  return {
    name,
    url: databaseUrl(name),
    drop: async () => {
      await sql('postgres', `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
    },
  }
}

/** The error `p` rejects with; fails the test if it resolves. */
export async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p
  } catch (e) {
    return e
  }
  throw new Error('expected the operation to fail')
}
