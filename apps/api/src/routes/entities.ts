/**
 * The entities API Terraform pushes to: POST/GET/PATCH/DELETE under /api/v1/entities/<path> for every resource in
 * `provider-schema`, with the paths, bodies and status codes Sym's provider uses. Routes are generated from the
 * definitions; each one is schema, auth, one service call.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { apiSchemas, article, resourceList, type ResourceDef } from '@opensym/provider-schema'
import { Type } from 'typebox'
import { EntityService, type EntityJson, type EntityView } from '../entities/service.js'
import { requireReader, requireWriter } from '../plugins/auth.js'

const ErrorRef = Type.Ref('Error')
const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, ErrorRef]))
const IdParams = Type.Object({ id: Type.String({ format: 'uuid', description: 'The entity UUID.' }) }, { additionalProperties: false })
const NoContent = Type.Null({ description: 'Deleted.' })

/** A reference to a schema registered with `addSchema`, typed as the JSON it describes. */
const ref = <T>(id: string) => Type.Unsafe<T>(Type.Ref(id))

function routesFor(r: ResourceDef): FastifyPluginAsyncTypebox<{ service: EntityService }> {
  return async (app, { service }) => {
    const { kind, title } = r
    const ids = apiSchemas[kind].ids
    const Body = ref<EntityJson>(ids.body)
    const View = ref<EntityView>(ids.view)
    const tags = ['entities']
    const base = `/entities/${r.path}`

    if (r.lookup === 'singleton') {
      // One per org: no id in the path (Sym's provider ignores the id for the flows filter).
      app.post(base, { schema: { tags, summary: `Create the ${title}`, body: Body, response: { 201: View, ...errors(400, 401, 403, 409) } } }, async (req, reply) =>
        reply.code(201).send(await service.create(kind, requireWriter(req), req.body)),
      )
      app.get(base, { schema: { tags, summary: `Read the ${title}`, response: { 200: View, ...errors(401, 403, 404) } } }, async (req) => {
        const p = requireReader(req)
        return service.get(kind, p, await service.singletonId(kind, p))
      })
      app.patch(base, { schema: { tags, summary: `Replace the ${title}`, body: Body, response: { 200: View, ...errors(400, 401, 403, 404) } } }, async (req) => {
        const p = requireWriter(req)
        const id = await service.singletonId(kind, p)
        return service.update(kind, p, id, { ...req.body, id })
      })
      app.delete(base, { schema: { tags, summary: `Delete the ${title}`, response: { 204: NoContent, ...errors(401, 403, 404, 409) } } }, async (req, reply) => {
        const p = requireWriter(req)
        await service.remove(kind, p, await service.singletonId(kind, p))
        return reply.code(204).send(null)
      })
      return
    }

    const typed = 'type' in r.attributes
    const Query = Type.Object(
      {
        slug: Type.Optional(Type.String({ minLength: 1, description: `Only the ${title} with this slug (case-insensitive).` })),
        type: Type.Optional(Type.String({ minLength: 1, description: typed ? 'Only this type.' : `Not supported: ${title}s have no type.` })),
      },
      { additionalProperties: false },
    )
    app.post(base, { schema: { tags, summary: `Create ${article(title)}`, body: Body, response: { 201: View, ...errors(400, 401, 403, 409) } } }, async (req, reply) =>
      reply.code(201).send(await service.create(kind, requireWriter(req), req.body)),
    )
    app.get(
      base,
      { schema: { tags, summary: `Find ${title}s by slug${typed ? ' and type' : ''}`, querystring: Query, response: { 200: Type.Array(View), ...errors(400, 401, 403) } } },
      async (req) => service.find(kind, requireReader(req), req.query),
    )
    app.get(`${base}/:id`, { schema: { tags, summary: `Read ${article(title)}`, params: IdParams, response: { 200: View, ...errors(400, 401, 403, 404) } } }, async (req) =>
      service.get(kind, requireReader(req), req.params.id),
    )
    app.patch(
      `${base}/:id`,
      { schema: { tags, summary: `Replace ${article(title)} (the full object)`, params: IdParams, body: Body, response: { 200: View, ...errors(400, 401, 403, 404, 409) } } },
      async (req) => service.update(kind, requireWriter(req), req.params.id, req.body),
    )
    app.delete(
      `${base}/:id`,
      { schema: { tags, summary: `Delete ${article(title)}`, params: IdParams, response: { 204: NoContent, ...errors(400, 401, 403, 404, 409) } } },
      async (req, reply) => {
        await service.remove(kind, requireWriter(req), req.params.id)
        return reply.code(204).send(null)
      },
    )
  }
}

const entities: FastifyPluginAsyncTypebox = async (app) => {
  const service = new EntityService(app.db)
  for (const r of resourceList) await app.register(routesFor(r), { service })
}

export default entities
