/** The OpenAPI 3.1 document (generated from the route schemas, which come from provider-schema) and its UI. */
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { apiSchemas } from '@opensym/provider-schema'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { ErrorBody } from '../errors.js'

export const API_VERSION = '0.1.0'

export default fp(
  async function openapi(app: FastifyInstance) {
    app.addSchema(ErrorBody)
    for (const { body, view } of Object.values(apiSchemas)) {
      app.addSchema(body)
      app.addSchema(view)
    }
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'Sym Access Flows API',
          version: API_VERSION,
          description: 'The entities API Terraform pushes configuration to. Every entity path is derived from `packages/provider-schema`.',
        },
        servers: [{ url: '/' }],
        components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
        security: [{ bearer: [] }],
        tags: [
          { name: 'entities', description: 'Configuration objects managed by Terraform.' },
          { name: 'health', description: 'Liveness and readiness.' },
        ],
      },
      hideUntagged: true,
      // Shared schemas appear under their own names instead of def-0, def-1, …
      refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    })
    await app.register(swaggerUi, { routePrefix: '/docs' })
  },
  { name: 'openapi' },
)
