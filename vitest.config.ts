import { defineConfig } from 'vitest/config'

// Each package is a project with its own config (see vitest.shared.ts); `npm test` runs them all. The conditions
// here serve globalSetup, which runs in this process and loads workspace packages from source.
const conditions = ['@opensym/source']
export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: { projects: ['packages/*/vitest.config.ts', 'apps/*/vitest.config.ts'] },
})
