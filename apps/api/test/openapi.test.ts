import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { apiSchemas, resourceList } from '@opensym/provider-schema'
import { Redis } from 'ioredis'
import { describe, expect, it } from 'vitest'
import { buildApp } from '../src/app.js'
import { OPENAPI_PATH, openApiDocument } from '../src/openapi.js'
import { call, useApi } from './helpers.js'

const h = useApi()

type Operation = { requestBody?: { content: Record<string, { schema: unknown }> }; responses: Record<string, { content?: Record<string, { schema: unknown }> }> }
type Doc = { openapi: string; paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, { properties?: Record<string, unknown>; required?: string[] }> } }

describe('GET /api/v1/openapi.json', () => {
  it('is OpenAPI 3.1 and lists every entity path with request and response schemas from provider-schema', async () => {
    const res = await call(h, 'GET', '/api/v1/openapi.json', { token: null })
    expect(res.status).toBe(200)
    const doc = res.body as Doc
    expect(doc.openapi).toBe('3.1.0')
    for (const r of resourceList) {
      const base = `/api/v1/entities/${r.path}`
      const { body, ids } = apiSchemas[r.kind]
      const bodyRef = { $ref: `#/components/schemas/${ids.body}` }
      const viewRef = { $ref: `#/components/schemas/${ids.view}` }
      const item = r.lookup === 'singleton' ? doc.paths[base]! : doc.paths[`${base}/{id}`]!
      expect(Object.keys(doc.paths[base]!).sort(), base).toEqual(r.lookup === 'singleton' ? ['delete', 'get', 'patch', 'post'] : ['get', 'post'])
      expect(doc.paths[base]!.post!.requestBody!.content['application/json']!.schema).toEqual(bodyRef)
      expect(doc.paths[base]!.post!.responses['201']!.content!['application/json']!.schema).toEqual(viewRef)
      expect(item.patch!.requestBody!.content['application/json']!.schema).toEqual(bodyRef)
      expect(item.get!.responses['200']!.content!['application/json']!.schema).toEqual(viewRef)
      expect(item.delete!.responses['409']).toBeDefined()
      // The components are the derived schemas themselves.
      const component = doc.components.schemas[ids.body]!
      expect(Object.keys(component.properties!).sort()).toEqual(Object.keys((body as unknown as { properties: object }).properties).sort())
    }
    expect(doc.components.schemas.Error!.required).toEqual(expect.arrayContaining(['error', 'errors', 'code', 'status_code', 'is_retryable']))
  })

  it('serves the docs UI from the package, with no external assets', async () => {
    const page = await h.app.inject({ method: 'GET', url: '/docs/' })
    expect(page.statusCode).toBe(200)
    expect(page.body).toContain('swagger-ui')
    expect(page.body).not.toMatch(/src="https?:\/\//)
  })
})

describe('health', () => {
  it('/healthz answers while the process runs; /readyz checks PostgreSQL and Redis', async () => {
    expect((await call(h, 'GET', '/healthz', { token: null })).body).toEqual({ status: 'ok' })
    expect((await call(h, 'GET', '/readyz', { token: null })).body).toEqual({ status: 'ready', checks: { postgres: 'ok', redis: 'ok' } })
  })

  it('/readyz is 503 naming the part that is down', async () => {
    // A Redis client pointed at a port nothing listens on.
    const down = new Redis('redis://127.0.0.1:1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false })
    const app = await buildApp({ config: { logLevel: 'silent' }, db: h.db, redis: down })
    try {
      const res = await app.inject({ method: 'GET', url: '/readyz' })
      expect(res.statusCode).toBe(503)
      expect(res.json()).toMatchObject({ status: 'unavailable', checks: { postgres: 'ok', redis: expect.not.stringMatching(/^ok$/) } })
    } finally {
      await app.close()
      down.disconnect()
    }
  })
})

describe('docs/api/openapi.json', () => {
  it('is the committed copy of the served document (run `npm run generate:all`)', async () => {
    expect(readFileSync(resolve(import.meta.dirname, '../../..', OPENAPI_PATH), 'utf8')).toBe(await openApiDocument())
  })
})
