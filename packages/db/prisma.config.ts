// Prisma CLI config, used only for `prisma generate` (and validate/format). Migrations run through
// tools/migrate.mts on the wasm schema engine, because the CLI's migrate commands need the native
// schema-engine binary, which cannot be downloaded here.
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'prisma/config'

// The CLI insists that a schema-engine binary exists even for `generate`, which never runs it; any existing
// file satisfies the check and stops it from trying to download one.
process.env['PRISMA_SCHEMA_ENGINE_BINARY'] ??= fileURLToPath(import.meta.url)
// No update-check child process (it makes DNS lookups).
process.env['CHECKPOINT_DISABLE'] ??= '1'

export default defineConfig({
  schema: '../../prisma/schema.prisma',
  migrations: { path: '../../prisma/migrations' },
})
