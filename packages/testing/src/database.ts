import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import pg from 'pg'

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url))

/**
 * Applies the migrations with the real migrate command in a child process. The wasm schema engine keeps
 * process-wide state that the test runner's per-project module graphs would otherwise share unsafely.
 */
async function migrate(url: string): Promise<void> {
  await promisify(execFile)(process.execPath, ['--import', 'tsx', 'packages/db/tools/migrate.mts', 'deploy'], {
    cwd: repoRoot,
    env: { ...process.env, DATABASE_URL: url },
  }).catch((e: Error & { stderr?: string }) => {
    throw new Error(`migrating the test database failed: ${e.stderr?.trim() || e.message}`)
  })
}

export const DEFAULT_TEST_DATABASE_URL = 'postgresql://postgres@127.0.0.1:5432/postgres'

/** Unique enough for parallel runs on one machine, and recognisable when one is left behind. */
export const uniqueSuffix = (): string => `${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`

function withDatabase(url: string, database: string): string {
  const u = new URL(url)
  u.pathname = `/${database}`
  return u.toString()
}

async function admin<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: withDatabase(url, 'postgres') })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

export interface TestDatabase {
  readonly url: string
  readonly name: string
  drop(): Promise<void>
}

/** A fresh, migrated database of its own, on the server `serverUrl` points at. */
export async function createTestDatabase(serverUrl = DEFAULT_TEST_DATABASE_URL): Promise<TestDatabase> {
  const name = `opensym_test_${uniqueSuffix()}`
  await admin(serverUrl, (c) => c.query(`CREATE DATABASE "${name}"`))
  const url = withDatabase(serverUrl, name)
  await migrate(url)
  return {
    url,
    name,
    drop: () => admin(serverUrl, (c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => undefined),
  }
}
