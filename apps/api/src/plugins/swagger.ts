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
          description:
            'The entities API Terraform pushes configuration to (every entity path is derived from `packages/provider-schema`), and the Events API that runs access flows.',
        },
        servers: [{ url: '/' }],
        components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
        security: [{ bearer: [] }],
        tags: [
          { name: 'entities', description: 'Configuration objects managed by Terraform.' },
          { name: 'events', description: 'The Events API: request access, approve, deny, revoke, and follow each step.' },
          { name: 'runs', description: 'Access requests (runs) with their status, steps and timestamps.' },
          { name: 'audit', description: 'The audit trail: one hash-chained log entry per completed event (admins and bots).' },
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
