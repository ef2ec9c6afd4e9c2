/** Makes the injected PostgreSQL (Prisma) and Redis clients available as `app.db` / `app.redis`. */
import type { Db } from '@opensym/db'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'

declare module 'fastify' {
  interface FastifyInstance {
    db: Db
    redis: Redis
  }
}

export interface DbPluginOptions {
  db: Db
  redis: Redis
}

export default fp<DbPluginOptions>(
  async function db(app: FastifyInstance, opts: DbPluginOptions) {
    app.decorate('db', opts.db)
    app.decorate('redis', opts.redis)
  },
  { name: 'db' },
)
