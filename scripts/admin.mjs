#!/usr/bin/env node
// `npm run -s admin -- <command> [--json]`: runs apps/admin against the stack's database.
// Without DATABASE_URL (REDIS_URL) it uses the private PostgreSQL (Redis) that `npm start` runs under .data/ when
// there is one, else the default local server. Prints nothing of its own, so --json output stays clean.
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { ROOT, runningPrivatePostgres, runningPrivateRedis } from './stack.mjs'

const env = { ...process.env }
if (!env.DATABASE_URL) {
  const running = runningPrivatePostgres()
  env.DATABASE_URL = `postgresql://postgres@127.0.0.1:${running?.port ?? 5432}/opensym`
}
// Likewise Redis, for `queues` commands.
if (!env.REDIS_URL) {
  const running = runningPrivateRedis()
  env.REDIS_URL = `redis://127.0.0.1:${running?.port ?? 6379}`
}
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--conditions=@opensym/source', join(ROOT, 'apps/admin/src/main.ts'), ...process.argv.slice(2)],
  { stdio: 'inherit', env, cwd: ROOT },
)
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)))
