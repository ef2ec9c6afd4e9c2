// CLI over src/migrate.ts (Prisma Migrate on the wasm schema engine). Usage: see HELP below.
// Exit codes: 0 ok, 1 error or not up to date, 2 `diff` found differences, 64 bad usage.
import path from 'node:path'
import { parseArgs } from 'node:util'
import {
  MigrateError,
  migrateDeploy,
  migrateDev,
  migrateDiff,
  migrateReset,
  migrateStatus,
  type MigrateOptions,
} from '../src/migrate.js'

const HELP = `Usage: tsx tools/migrate.mts <command> [options]

Commands:
  dev --name <name> [--create-only] [--force-reset] [--accept-data-loss]
           apply pending migrations, then create and apply one for schema changes
  deploy   apply pending migrations only (production; creates nothing else)
  status   compare the database's migration history with prisma/migrations (exit 1 if not up to date)
  reset    drop everything in the database and re-apply all migrations (development only)
  diff     exit 0 if prisma/migrations produce exactly the schema, 2 (with a summary) if not

Options:
  --schema <path>   Prisma schema to use (default: <repo>/prisma/schema.prisma)

Environment:
  DATABASE_URL          required, e.g. postgresql://postgres@127.0.0.1:5432/opensym
  SHADOW_DATABASE_URL   optional empty database for dev/diff (wiped on use); default: a temporary database
  OPENSYM_MIGRATE_TRACE=1  print every SQL statement and engine log line to stderr`

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      name: { type: 'string', short: 'n' },
      'create-only': { type: 'boolean' },
      'force-reset': { type: 'boolean' },
      'accept-data-loss': { type: 'boolean' },
      schema: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  const [command, ...extra] = positionals
  if (values.help || !command) {
    console.log(HELP)
    return values.help ? 0 : 64
  }
  if (extra.length) throw new UsageError(`Unexpected argument: ${extra.join(' ')}`)
  const devOnly = (['name', 'create-only', 'force-reset', 'accept-data-loss'] as const).filter((k) => values[k] !== undefined)
  if (command !== 'dev' && devOnly.length) throw new UsageError(`--${devOnly[0]} only applies to dev`)

  const databaseUrl = process.env['DATABASE_URL']
  if (!databaseUrl) throw new MigrateError('DATABASE_URL is not set (e.g. postgresql://postgres@127.0.0.1:5432/opensym)')
  const options: MigrateOptions = {
    shadowDatabaseUrl: process.env['SHADOW_DATABASE_URL'] || undefined,
    // npm runs workspace scripts inside the package; resolve user paths against where npm was invoked.
    ...(values.schema ? { schemaPath: path.resolve(process.env['INIT_CWD'] ?? process.cwd(), values.schema) } : {}),
    log: (line) => console.log(line),
    ...(process.env['OPENSYM_MIGRATE_TRACE'] === '1' ? { trace: (line: string) => console.error(`[trace] ${line}`) } : {}),
  }

  switch (command) {
    case 'deploy': {
      const { applied } = await migrateDeploy(databaseUrl, options)
      console.log(applied.length ? `Applied:\n${list(applied)}` : 'No pending migrations to apply.')
      return 0
    }
    case 'status': {
      const s = await migrateStatus(databaseUrl, options)
      console.log(`${s.localMigrations.length} migration(s) found in prisma/migrations`)
      if (s.upToDate) {
        console.log('Database schema is up to date.')
        return 0
      }
      console.log(s.problems.join('\n'))
      return 1
    }
    case 'dev': {
      if (!values.name) throw new UsageError('dev needs --name <name> (e.g. --name add_audit_log)')
      const r = await migrateDev(
        databaseUrl,
        {
          name: values.name,
          createOnly: values['create-only'] ?? false,
          forceReset: values['force-reset'] ?? false,
          acceptDataLoss: values['accept-data-loss'] ?? false,
        },
        options,
      )
      for (const w of r.warnings) console.log(`warning: ${w}`)
      if (r.created && values['create-only']) {
        console.log(`Created ${r.created} without applying it. Edit it if needed, then run dev again to apply it.`)
      } else if (r.created) {
        console.log(`Created and applied ${r.created}. The database is in sync with the schema.`)
      } else {
        console.log('Already in sync: no schema change, no migration created.')
      }
      return 0
    }
    case 'reset': {
      const { applied } = await migrateReset(databaseUrl, options)
      console.log(`Database reset. Applied:\n${list(applied)}`)
      return 0
    }
    case 'diff': {
      const d = await migrateDiff(databaseUrl, options)
      if (d.inSync) {
        console.log('prisma/migrations and schema.prisma are in sync.')
        return 0
      }
      console.log(`schema.prisma has changes that no migration contains:\n\n${d.summary}\n`)
      console.log('Create a migration for them: npm run db:migrate:dev -- --name <name>')
      return 2
    }
    default:
      throw new UsageError(`Unknown command "${command}"`)
  }
}

function list(names: string[]): string {
  return names.length ? names.map((n) => `  - ${n}`).join('\n') : '  (none)'
}

const started = Date.now()
let code: number
try {
  code = await main(process.argv.slice(2))
} catch (e) {
  if (e instanceof UsageError || (e instanceof TypeError && 'code' in e && String(e.code).startsWith('ERR_PARSE_ARGS'))) {
    console.error(`error: ${e.message}\nRun with --help for usage.`)
    code = 64
  } else if (e instanceof MigrateError) {
    console.error(`error: ${e.message}`)
    code = 1
  } else {
    console.error(e)
    code = 1
  }
}
if (process.env['OPENSYM_MIGRATE_TRACE'] === '1') console.error(`[trace] ${Date.now() - started} ms`)
process.exitCode = code
// Pools are closed and engine timers unref'd, so the process ends by itself; should anything still hold the
// event loop, do not hang a CI job over it.
setTimeout(() => process.exit(code), 2_000).unref()
