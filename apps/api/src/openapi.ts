/**
 * The OpenAPI document without a running server: the app is built with clients that never connect.
 * `npm run generate:all` writes it to docs/api/openapi.json; a test keeps that copy current.
 */
import { createDb } from '@opensym/db'
import { Redis } from 'ioredis'
import { buildApp } from './app.js'

export const OPENAPI_PATH = 'docs/api/openapi.json'

export async function openApiDocument(): Promise<string> {
  // Prisma and ioredis (lazyConnect) open connections on first use only; building the app uses neither.
  const db = createDb('postgresql://unused@127.0.0.1:1/unused')
  const redis = new Redis('redis://127.0.0.1:1', { lazyConnect: true })
  const app = await buildApp({ config: { logLevel: 'silent' }, db, redis })
  try {
    await app.ready()
    return JSON.stringify(app.swagger(), null, 2) + '\n'
  } finally {
    await app.close()
    redis.disconnect()
  }
}
