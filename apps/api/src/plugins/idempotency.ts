/**
 * `Idempotency-Key` on every POST (draft-ietf-httpapi-idempotency-key-header): a client that retries a POST with the
 * same key gets the first response again instead of a second effect. Keys are per (org, user), live 24 hours and
 * are bound to the request they were first used with: SHA-256 over method, URL and the raw body bytes.
 *
 * - first use: the key is claimed (a row with no response) before the handler runs, and the response is stored
 *   before it is sent, so a retry that sees the response sees it stored;
 * - a retry of the same request replays the stored status and body with `Idempotent-Replayed: true`;
 * - the claim of a request still running is renewed; only one its process left (it died) is taken over by a retry;
 * - the same key with another request is a 422; a retry while the first request still runs is a retryable 409;
 * - responses the client is told to retry (5xx, 429, `is_retryable` errors) are not stored: the key is released;
 * - requests rejected before the handler (bad body, unknown route) never claim the key.
 *
 * Registered with fastify-plugin in the authenticated `/api/v1` context after `auth`, it applies to every POST
 * route registered there later without per-route code, and adds the header to each POST's schema (OpenAPI).
 */
import { createHash, type Hash } from 'node:crypto'
import { Transform, pipeline } from 'node:stream'
import { Prisma } from '@opensym/db'
import type { FastifyInstance, FastifyRequest, FastifySchema } from 'fastify'
import fp from 'fastify-plugin'
import { Type } from 'typebox'
import { ApiError, invalid } from '../errors.js'

export const IDEMPOTENCY_HEADER = 'idempotency-key'
export const REPLAYED_HEADER = 'idempotent-replayed'
/** A key is honoured for this long after its first use; later it is free again. */
export const IDEMPOTENCY_KEY_TTL_MS = 24 * 3600_000
/**
 * A claim not renewed for this long was left by a process that died, and a retry of the same request may take it
 * over. A request still running renews its claim every fifth of this, so however long it takes (a Redis outage,
 * say), no retry runs it a second time meanwhile.
 */
export const ABANDONED_CLAIM_MS = 5 * 60_000
/** Expired keys are deleted at most this often per process, a bounded batch at a time. */
const SWEEP_INTERVAL_MS = 5 * 60_000
const SWEEP_BATCH = 1000
const KEY_RE = /^[\x20-\x7e]{1,255}$/
const CLAIM_ATTEMPTS = 3

const HeaderSchema = Type.String({
  minLength: 1,
  maxLength: 255,
  pattern: '^[\\x20-\\x7e]+$',
  description:
    'Makes a retried POST safe: a retry with the same key and the same request (method, URL and body) within 24 hours returns the ' +
    'first response again, with `Idempotent-Replayed: true`, instead of acting twice. The same key with another request is a 422; ' +
    'a retry while the first request still runs is a 409 (retryable). Errors the client may retry (5xx, 429, `is_retryable`) are ' +
    'not stored. Keys are per user; 1–255 printable ASCII characters (e.g. a UUID).',
})

/** The request hash stored with a key: SHA-256 over `<METHOD> <url>\n` and the raw body bytes. */
export function requestHash(method: string, url: string, body: string | Buffer = ''): string {
  return startHash(method, url).update(body).digest('hex')
}

const startHash = (method: string, url: string) => createHash('sha256').update(`${method} ${url}\n`)

interface Claim {
  readonly key: string
  readonly hash: Hash
  digest?: string
  claimedAt?: Date
  /** pending: not yet claimed; claimed: the handler runs; done: stored or released; replayed: answered from the store. */
  phase: 'pending' | 'claimed' | 'done' | 'replayed'
  /** Renews the claim while the handler runs; `renewing` is the renewal in flight (it moves `claimedAt`). */
  renewal?: ReturnType<typeof setInterval>
  renewing?: Promise<void>
}

export interface IdempotencyOptions {
  /** How long an unrenewed claim lasts before a retry may take it over. Default {@link ABANDONED_CLAIM_MS}. */
  readonly abandonedClaimMs?: number
}

const { sql } = Prisma

/** The body to store for a response: its JSON text, null for no body; undefined when the response must not be stored. */
function storable(status: number, payload: unknown): { json: string | null } | undefined {
  if (status >= 500 || status === 429) return undefined
  const text = typeof payload === 'string' ? payload : Buffer.isBuffer(payload) ? payload.toString('utf8') : payload == null ? '' : undefined
  if (text === undefined) return undefined // a stream: not replayable
  if (text === '') return { json: null }
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    return undefined
  }
  if (body && typeof body === 'object' && (body as { is_retryable?: unknown }).is_retryable === true) return undefined
  return { json: text }
}

/** A key's row as a claim that finds it taken reads it. */
interface KeyRow {
  readonly method: string
  readonly path: string
  readonly requestHash: string
  readonly responseStatus: number | null
  readonly responseBody: unknown
}

export default fp(
  async function idempotency(app: FastifyInstance, options: IdempotencyOptions) {
    const abandonedClaimMs = options.abandonedClaimMs ?? ABANDONED_CLAIM_MS
    const claims = new WeakMap<FastifyRequest, Claim>()
    let lastSweep = 0
    let sweeping: Promise<unknown> | undefined

    /** This request's own claim: its key, still without a response, as claimed (a takeover by a retry changes createdAt). */
    const ownClaim = (req: FastifyRequest, c: Claim) => sql`
      "orgId" = ${req.principal!.orgId}::uuid AND "userId" = ${req.principal!.userId}::uuid AND "key" = ${c.key}
      AND "requestHash" = ${c.digest!} AND "createdAt" = ${c.claimedAt!}::timestamptz AND "responseStatus" IS NULL`

    /** Keeps the claim of a request that still runs from looking abandoned. */
    function renew(req: FastifyRequest, c: Claim) {
      c.renewing = (c.renewing ?? Promise.resolve())
        .then(async () => {
          if (c.phase !== 'claimed') return
          const now = new Date()
          const renewed = await app.db.sql.execute(sql`UPDATE "IdempotencyKey" SET "createdAt" = ${now}::timestamptz WHERE ${ownClaim(req, c)}`)
          if (renewed > 0) c.claimedAt = now
        })
        .catch((err: unknown) => req.log.warn({ err }, 'could not renew the idempotency key claim'))
    }

    /** Stops renewing; afterwards `claimedAt` is what the row holds. */
    async function stopRenewing(c: Claim) {
      clearInterval(c.renewal)
      await c.renewing
    }

    /** Ends this request's claim without a response, so the client can retry with the key. */
    async function release(req: FastifyRequest, c: Claim) {
      c.phase = 'done'
      await stopRenewing(c)
      try {
        await app.db.sql.execute(sql`DELETE FROM "IdempotencyKey" WHERE ${ownClaim(req, c)}`)
      } catch (err) {
        req.log.error({ err }, 'could not release the idempotency key')
      }
    }

    function maybeSweep(now: Date) {
      if (sweeping || now.getTime() - lastSweep < SWEEP_INTERVAL_MS) return
      lastSweep = now.getTime()
      const before = new Date(now.getTime() - IDEMPOTENCY_KEY_TTL_MS)
      sweeping = app.db.sql
        .execute(sql`
          DELETE FROM "IdempotencyKey" WHERE ("orgId", "userId", "key") IN (
            SELECT "orgId", "userId", "key" FROM "IdempotencyKey" WHERE "createdAt" < ${before}::timestamptz LIMIT ${SWEEP_BATCH}::int)`)
        .then((n) => n > 0 && app.log.debug({ deleted: n }, 'expired idempotency keys deleted'))
        .catch((err: unknown) => app.log.warn({ err }, 'could not delete expired idempotency keys'))
        .finally(() => (sweeping = undefined))
    }

    app.addHook('onClose', async () => {
      await sweeping
    })

    // Document (and type-check) the header on every POST route registered after this plugin.
    app.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method]
      if (!methods.includes('POST')) return
      const schema: FastifySchema = route.schema ?? {}
      const headers = (schema.headers ?? { type: 'object', properties: {} }) as { properties?: Record<string, unknown> }
      route.schema = { ...schema, headers: { ...headers, properties: { ...headers.properties, [IDEMPOTENCY_HEADER]: HeaderSchema } } }
    })

    // After auth (registered before this plugin): only authenticated requests get here.
    app.addHook('onRequest', async (req) => {
      if (req.method !== 'POST' || !req.principal) return
      const key = req.headers[IDEMPOTENCY_HEADER]
      if (key === undefined) return
      if (typeof key !== 'string' || !KEY_RE.test(key)) {
        throw invalid([{ field: `headers.${IDEMPOTENCY_HEADER}`, message: 'must be 1 to 255 printable ASCII characters' }])
      }
      claims.set(req, { key, hash: startHash(req.method, req.url), phase: 'pending' })
    })

    // Hash the raw body as the body parser reads it.
    app.addHook('preParsing', async (req, _reply, payload) => {
      const c = claims.get(req)
      if (!c) return payload
      const tap = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          c.hash.update(chunk)
          done(null, chunk)
        },
      })
      return pipeline(payload, tap, () => {})
    })

    // After validation: a request the schema rejects never claims the key.
    app.addHook('preHandler', async (req, reply) => {
      const c = claims.get(req)
      if (!c || c.phase !== 'pending') return
      const digest = (c.digest = c.hash.digest('hex'))
      const { orgId, userId } = req.principal!
      const path = req.url.split('?')[0]!
      for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
        const now = new Date()
        const expired = new Date(now.getTime() - IDEMPOTENCY_KEY_TTL_MS)
        const abandoned = new Date(now.getTime() - abandonedClaimMs)
        // Claim a new key, an expired one, or this request's own claim that a dead process left unfinished.
        const claimed = await app.db.sql.execute(sql`
          INSERT INTO "IdempotencyKey" ("orgId", "userId", "key", "method", "path", "requestHash", "createdAt")
          VALUES (${orgId}::uuid, ${userId}::uuid, ${c.key}, ${req.method}, ${path}, ${digest}, ${now}::timestamptz)
          ON CONFLICT ("orgId", "userId", "key") DO UPDATE SET
            "method" = EXCLUDED."method", "path" = EXCLUDED."path", "requestHash" = EXCLUDED."requestHash",
            "responseStatus" = NULL, "responseBody" = NULL, "createdAt" = EXCLUDED."createdAt"
          WHERE "IdempotencyKey"."createdAt" < ${expired}::timestamptz
             OR ("IdempotencyKey"."responseStatus" IS NULL AND "IdempotencyKey"."createdAt" < ${abandoned}::timestamptz
                 AND "IdempotencyKey"."requestHash" = EXCLUDED."requestHash")`)
        if (claimed > 0) {
          c.phase = 'claimed'
          c.claimedAt = now
          c.renewal = setInterval(() => renew(req, c), abandonedClaimMs / 5).unref()
          maybeSweep(now)
          return
        }
        const [row] = await app.db.sql.query<KeyRow>(sql`
          SELECT "method", "path", "requestHash", "responseStatus", "responseBody" FROM "IdempotencyKey"
          WHERE "orgId" = ${orgId}::uuid AND "userId" = ${userId}::uuid AND "key" = ${c.key}`)
        if (!row) continue // released between the two statements: claim again
        if (row.requestHash !== digest) {
          throw new ApiError(
            'IDEMPOTENCY_KEY_REUSED',
            `Idempotency-Key "${c.key}" was already used for a different request (${row.method} ${row.path}) in the last 24 hours; use a new key for a new request.`,
          )
        }
        if (row.responseStatus === null) break
        c.phase = 'replayed'
        reply.code(row.responseStatus).header(REPLAYED_HEADER, 'true')
        const body = row.responseBody
        if (body === null) return reply.send()
        // A JSON string body would otherwise go out as plain text.
        return typeof body === 'string' ? reply.type('application/json; charset=utf-8').send(JSON.stringify(body)) : reply.send(body)
      }
      throw new ApiError('IDEMPOTENCY_KEY_IN_PROGRESS', `A request with Idempotency-Key "${c.key}" is still in progress; retry it later.`)
    })

    // Store the response before it is sent, so any retry that follows it replays it.
    app.addHook('onSend', async (req, reply, payload) => {
      const c = claims.get(req)
      if (!c || c.phase !== 'claimed') return payload
      const body = storable(reply.statusCode, payload)
      if (!body) {
        await release(req, c)
        return payload
      }
      c.phase = 'done'
      await stopRenewing(c)
      try {
        await app.db.sql.execute(sql`
          UPDATE "IdempotencyKey" SET "responseStatus" = ${reply.statusCode}::int, "responseBody" = ${body.json}::jsonb WHERE ${ownClaim(req, c)}`)
      } catch (err) {
        // The request succeeded or failed for good already; the claim stays until a retry may take it over.
        req.log.error({ err }, 'could not store the response for the idempotency key')
      }
      return payload
    })

    // A claimed request that ended without a response being sent (e.g. the client went away) frees its key.
    app.addHook('onResponse', async (req) => {
      const c = claims.get(req)
      if (c?.phase === 'claimed') await release(req, c)
    })
  },
  { name: 'idempotency', dependencies: ['db', 'auth'] },
)
