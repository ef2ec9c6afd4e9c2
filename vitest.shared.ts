import { fileURLToPath } from 'node:url'
import { defineProject, type UserWorkspaceConfig } from 'vitest/config'

/** Workspace packages are consumed from source in tests (the `@opensym/source` export condition). */
const conditions = ['@opensym/source']

export function project(name: string, options: { database?: boolean } = {}): UserWorkspaceConfig {
  return defineProject({
    resolve: { conditions },
    ssr: { resolve: { conditions } },
    test: {
      name,
      environment: 'node',
      pool: 'forks',
      include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
      ...(options.database
        ? { globalSetup: [fileURLToPath(new URL('./packages/testing/src/global-setup.ts', import.meta.url))] }
        : {}),
      testTimeout: 30_000,
      hookTimeout: 60_000,
    },
  })
}
