/** Liveness (`/healthz`: the process answers) and readiness (`/readyz`: PostgreSQL and Redis answer). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'

const CHECK_TIMEOUT_MS = 2000

const Check = Type.Union([Type.Literal('ok'), Type.String()])
const Readiness = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('unavailable')]),
  checks: Type.Object({ postgres: Check, redis: Check }),
})

async function check(fn: () => Promise<unknown>): Promise<string> {
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS)
      }),
    ])
    return 'ok'
  } catch (e) {
    return e instanceof Error ? e.message : String(e)
  } finally {
    clearTimeout(timer)
  }
}

const health: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/healthz', { schema: { tags: ['health'], response: { 200: Type.Object({ status: Type.Literal('ok') }) } } }, async () => ({
    status: 'ok' as const,
  }))
  app.get('/readyz', { schema: { tags: ['health'], response: { 200: Readiness, 503: Readiness } } }, async (req, reply) => {
    const [postgres, redis] = await Promise.all([check(() => app.db.$queryRaw`SELECT 1`), check(() => app.redis.ping())])
    const ready = postgres === 'ok' && redis === 'ok'
    if (!ready) req.log.warn({ postgres, redis }, 'not ready')
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'unavailable', checks: { postgres, redis } })
  })
}

export default health
