/**
 * Bearer-token authentication for everything under /api/v1. A token belongs to one user of one org; the
 * principal it yields scopes every query. Only the token's SHA-256 is looked up; the token is never logged.
 */
import { findTokenPrincipal, touchToken, type TokenPrincipal } from '@opensym/db'
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
/** Bounds the per-process memory of recent touches; it only saves redundant updates, so forgetting is harmless. */
const MAX_REMEMBERED_TOUCHES = 10_000

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
    // Concurrent requests with one token would each send the same lastUsedAt update; one per process suffices.
    const touched = new Map<string, number>()
    // Requests that come with a token whose lookup is in flight share its answer (a bot sends many at once): one
    // statement instead of one each. The answer is at most that lookup's age older than theirs, as if they had come
    // that moment earlier; a revocation is seen by every lookup that starts after it commits.
    const lookups = new Map<string, Promise<TokenPrincipal | undefined>>()
    const lookup = (tokenHash: string): Promise<TokenPrincipal | undefined> => {
      let pending = lookups.get(tokenHash)
      if (!pending) {
        pending = findTokenPrincipal(app.db, tokenHash).finally(() => lookups.delete(tokenHash))
        lookups.set(tokenHash, pending)
      }
      return pending
    }
    app.addHook('onRequest', async (req) => {
      const header = req.headers.authorization
      const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null
      if (!match) throw new ApiError('UNAUTHENTICATED', UNAUTHENTICATED_HINT)
      const token = await lookup(hashToken(match[1]!))
      const now = new Date()
      const rejection = token ? tokenRejection(token, now) : undefined
      if (!token || rejection || token.userDeactivatedAt) {
        req.log.info({ reason: rejection ?? (token ? 'user deactivated' : 'unknown token') }, 'token rejected')
        throw new ApiError('UNAUTHENTICATED', UNAUTHENTICATED_HINT)
      }
      req.principal = { orgId: token.orgId, userId: token.userId, userType: token.userType, role: token.role }
      const last = Math.max(token.lastUsedAt?.getTime() ?? 0, touched.get(token.tokenId) ?? 0)
      if (now.getTime() - last > LAST_USED_RESOLUTION_MS) {
        if (touched.size >= MAX_REMEMBERED_TOUCHES) touched.clear()
        touched.set(token.tokenId, now.getTime())
        touchToken(app.db, token.tokenId, now, LAST_USED_RESOLUTION_MS).catch((err: unknown) => req.log.warn({ err }, 'could not record token use'))
      }
    })
  },
  { name: 'auth', dependencies: ['db'] },
)
