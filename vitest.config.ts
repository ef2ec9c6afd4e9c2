import { defineConfig } from 'vitest/config'

// Each package is a project with its own config (see vitest.shared.ts); `npm test` runs them all.
export default defineConfig({
  test: { projects: ['packages/*/vitest.config.ts', 'apps/*/vitest.config.ts'] },
})
