/** vitest globalSetup: one database and one Redis key prefix per test run, removed when the run ends. */
import type {} from 'vitest'
import type { TestProject } from 'vitest/node'
import { Redis } from 'ioredis'
import { createTestDatabase, DEFAULT_TEST_DATABASE_URL, uniqueSuffix, type TestDatabase } from './database.js'

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string
    redisUrl: string
    redisPrefix: string
  }
}

interface RunResources {
  db: TestDatabase
  redisUrl: string
  redisPrefix: string
}

/**
 * Every project of a run shares one database and prefix: setup runs once per project in the same process, so the
 * first one creates them and the last teardown removes them.
 */
const SHARED = Symbol.for('opensym.testing.run')
type Shared = { resources?: Promise<RunResources>; users: number }
const shared: Shared = ((globalThis as Record<symbol, Shared | undefined>)[SHARED] ??= { users: 0 })

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  shared.users++
  shared.resources ??= (async () => {
    const serverUrl = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? DEFAULT_TEST_DATABASE_URL
    const redisUrl = process.env.TEST_REDIS_URL ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
    return { db: await createTestDatabase(serverUrl), redisUrl, redisPrefix: `opensym-test-${uniqueSuffix()}` }
  })()
  const { db, redisUrl, redisPrefix } = await shared.resources
  project.provide('databaseUrl', db.url)
  project.provide('redisUrl', redisUrl)
  project.provide('redisPrefix', redisPrefix)
  return async () => {
    if (--shared.users > 0) return
    shared.resources = undefined
    await db.drop()
    const redis = new Redis(redisUrl, { lazyConnect: true })
    try {
      await redis.connect()
      let cursor = '0'
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${redisPrefix}*`, 'COUNT', 500)
        if (keys.length) await redis.del(...keys)
        cursor = next
      } while (cursor !== '0')
    } finally {
      redis.disconnect()
    }
  }
}
