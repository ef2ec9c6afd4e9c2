/**
 * Bearer-token authentication for everything under /api/v1. A token belongs to one user of one org; the
 * principal it yields scopes every query. Only the token's SHA-256 is looked up; the token is never logged.
 */
import { canReadEntities, canWriteEntities, hashToken, tokenRejection, type Principal } from '@opensym/domain'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { ApiError } from '../errors.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth hook on every authenticated route. */
    principal: Principal | null
  }
}

/** lastUsedAt is bookkeeping: refresh it at most this often to keep reads free of writes. */
const LAST_USED_RESOLUTION_MS = 60_000

const UNAUTHENTICATED_HINT = 'Your Sym access token is missing or invalid. Set SYM_JWT to a token from `token issue`.'

export function requirePrincipal(req: FastifyRequest): Principal {
  if (!req.principal) throw new ApiError('UNAUTHENTICATED', UNAUTHENTICATED_HINT)
  return req.principal
}

export function requireWriter(req: FastifyRequest): Principal {
  const p = requirePrincipal(req)
  if (!canWriteEntities(p)) {
    throw new ApiError('FORBIDDEN', 'You do not have permission to perform this action: entity writes need an admin user or a bot token.')
  }
  return p
}

export function requireReader(req: FastifyRequest): Principal {
  const p = requirePrincipal(req)
  if (!canReadEntities(p)) throw new ApiError('FORBIDDEN', 'You do not have permission to read configuration.')
  return p
}

export default fp(
  async function auth(app: FastifyInstance) {
    app.decorateRequest('principal', null)
    app.addHook('onRequest', async (req) => {
      const header = req.headers.authorization
      const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null
      if (!match) throw new ApiError('UNAUTHENTICATED', UNAUTHENTICATED_HINT)
      const token = await app.db.apiToken.findUnique({
        where: { tokenHash: hashToken(match[1]!) },
        select: {
          id: true,
          orgId: true,
          expiresAt: true,
          revokedAt: true,
          lastUsedAt: true,
          user: { select: { id: true, type: true, role: true, deactivatedAt: true } },
        },
      })
      const now = new Date()
      const rejection = token ? tokenRejection(token, now) : undefined
      if (!token || rejection || token.user.deactivatedAt) {
        req.log.info({ reason: rejection ?? (token ? 'user deactivated' : 'unknown token') }, 'token rejected')
        throw new ApiError('UNAUTHENTICATED', UNAUTHENTICATED_HINT)
      }
      req.principal = { orgId: token.orgId, userId: token.user.id, userType: token.user.type, role: token.user.role }
      if (!token.lastUsedAt || now.getTime() - token.lastUsedAt.getTime() > LAST_USED_RESOLUTION_MS) {
        app.db.apiToken
          .update({ where: { id: token.id }, data: { lastUsedAt: now } })
          .catch((err: unknown) => req.log.warn({ err }, 'could not record token use'))
      }
    })
  },
  { name: 'auth', dependencies: ['db'] },
)
