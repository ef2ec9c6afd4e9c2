#!/usr/bin/env node
// `npm run -s admin -- <command> [--json]`: runs apps/admin against the stack's database.
// Without DATABASE_URL it uses the private PostgreSQL that `npm start` runs under .data/ when there is one,
// else the default local server. Only Node built-ins: prints nothing of its own, so --json output stays clean.
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const dataDir = resolve(process.env.OPENSYM_DATA_DIR ?? join(root, '.data'))

function privateDatabaseUrl() {
  // postmaster.pid: line 1 is the pid, line 4 the port.
  const pidFile = join(dataDir, 'postgres', 'postmaster.pid')
  if (!existsSync(pidFile)) return undefined
  const [pid, , , port] = readFileSync(pidFile, 'utf8').split('\n')
  try {
    process.kill(Number(pid), 0)
  } catch {
    return undefined
  }
  return `postgresql://postgres@127.0.0.1:${port.trim()}/opensym`
}

const env = { ...process.env }
env.DATABASE_URL ||= privateDatabaseUrl() ?? 'postgresql://postgres@127.0.0.1:5432/opensym'
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--conditions=@opensym/source', join(root, 'apps/admin/src/main.ts'), ...process.argv.slice(2)],
  { stdio: 'inherit', env, cwd: root },
)
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)))
