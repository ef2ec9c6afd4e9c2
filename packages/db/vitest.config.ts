import { defineProject } from 'vitest/config'

// Workspace packages are consumed from source in tests (the `@opensym/source` export condition).
const conditions = ['@opensym/source']

export default defineProject({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    name: 'db',
    environment: 'node',
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
})
