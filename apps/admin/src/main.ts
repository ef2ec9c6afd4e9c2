/** `npm run -s admin -- <command> [--json]`: see cli.ts. */
import { createDb } from '@opensym/db'
import { run } from './cli.js'

const DEFAULT_DATABASE_URL = 'postgresql://postgres@127.0.0.1:5432/opensym'

const db = createDb(process.env.DATABASE_URL || DEFAULT_DATABASE_URL, { poolSize: 1 })
let code = 1
try {
  code = await run(process.argv.slice(2), db, {
    out: (text) => (text.startsWith('error: ') ? process.stderr : process.stdout).write(`${text}\n`),
  })
} catch (e) {
  // Unexpected (e.g. the database is down): one line, not a stack trace.
  process.stderr.write(`error: ${e instanceof Error ? e.message.split('\n').filter(Boolean).at(-1) : String(e)}\n`)
} finally {
  await db.$disconnect()
}
process.exit(code)
