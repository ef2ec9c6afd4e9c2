/**
 * Organizations, users, bots and API tokens: what the admin command manages and the API authenticates with.
 * Token secrets are generated here and returned once; only their hash is stored.
 */
import { generateTokenSecret, hashToken } from '@opensym/domain'
import { Prisma, type PrismaClient } from './generated/prisma/client.js'
import type { SqlPool } from './sql.js'
import { isUniqueViolation } from './errors.js'

type Db = PrismaClient

export type Role = 'admin' | 'member' | 'guest'

/** A failure the caller can show as it is (bad input, unknown or duplicate name). */
export class AccountError extends Error {
  override readonly name = 'AccountError'
}

const SLUG_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/
const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/

export async function createOrg(db: Db, input: { slug: string; name?: string }) {
  const slug = input.slug.toLowerCase()
  if (!SLUG_RE.test(slug)) throw new AccountError(`invalid org slug "${input.slug}": use letters, digits, "_" and "-" (at most 63)`)
  try {
    return await db.organization.create({ data: { slug, name: input.name ?? null } })
  } catch (e) {
    if (isUniqueViolation(e)) throw new AccountError(`an org with slug "${slug}" already exists`)
    throw e
  }
}

export async function findOrg(db: Db, slug: string) {
  const org = await db.organization.findUnique({ where: { slug: slug.toLowerCase() } })
  if (!org) throw new AccountError(`no org with slug "${slug}"`)
  return org
}

export async function createUser(db: Db, input: { org: string; email: string; role: Role; firstName?: string; lastName?: string }) {
  const org = await findOrg(db, input.org)
  const email = input.email.trim().toLowerCase()
  if (!EMAIL_RE.test(email)) throw new AccountError(`invalid email "${input.email}"`)
  try {
    return await db.user.create({
      data: {
        orgId: org.id,
        type: 'normal',
        role: input.role,
        email,
        username: email,
        firstName: input.firstName ?? null,
        lastName: input.lastName ?? null,
      },
    })
  } catch (e) {
    if (isUniqueViolation(e)) throw new AccountError(`a user with email "${email}" already exists in org "${org.slug}"`)
    throw e
  }
}

/** Bots have no email, live outside identity services and act with admin rights on configuration. */
export async function createBot(db: Db, input: { org: string; name: string }) {
  const org = await findOrg(db, input.org)
  const name = input.name.toLowerCase()
  if (!SLUG_RE.test(name)) throw new AccountError(`invalid bot name "${input.name}": use letters, digits, "_" and "-"`)
  try {
    return await db.user.create({ data: { orgId: org.id, type: 'bot', role: 'member', email: null, username: name } })
  } catch (e) {
    if (isUniqueViolation(e)) throw new AccountError(`a bot or user named "${name}" already exists in org "${org.slug}"`)
    throw e
  }
}

export interface IssueTokenInput {
  readonly org: string
  /** Exactly one of bot (name) or user (email). */
  readonly bot?: string
  readonly user?: string
  /** Seconds until expiry; none means it never expires. */
  readonly expiresInSeconds?: number
  readonly label?: string
  readonly now?: Date
}

/** Issues a token; `secret` is the only copy of the token and cannot be recovered later. */
export async function issueToken(db: Db, input: IssueTokenInput) {
  const org = await findOrg(db, input.org)
  if (Boolean(input.bot) === Boolean(input.user)) throw new AccountError('give exactly one of --bot <name> or --user <email>')
  const username = (input.bot ?? input.user ?? '').toLowerCase()
  const owner = await db.user.findUnique({ where: { orgId_username: { orgId: org.id, username } } })
  if (!owner || (input.bot && owner.type !== 'bot')) {
    throw new AccountError(`no ${input.bot ? 'bot' : 'user'} "${username}" in org "${org.slug}"`)
  }
  const now = input.now ?? new Date()
  const secret = generateTokenSecret()
  const token = await db.apiToken.create({
    data: {
      orgId: org.id,
      userId: owner.id,
      label: input.label ?? null,
      tokenHash: hashToken(secret),
      expiresAt: input.expiresInSeconds ? new Date(now.getTime() + input.expiresInSeconds * 1000) : null,
    },
  })
  return { token, secret, owner }
}

export async function revokeToken(db: Db, id: string, now = new Date()) {
  const token = await db.apiToken.findUnique({ where: { id } })
  if (!token) throw new AccountError(`no token with id "${id}"`)
  if (token.revokedAt) return token
  return db.apiToken.update({ where: { id }, data: { revokedAt: now } })
}

export async function listTokens(db: Db, filter: { org?: string } = {}) {
  const org = filter.org ? await findOrg(db, filter.org) : undefined
  return db.apiToken.findMany({
    where: org ? { orgId: org.id } : {},
    orderBy: { createdAt: 'asc' },
    include: { user: { select: { username: true, type: true } }, org: { select: { slug: true } } },
  })
}

/** What authentication needs to know about a bearer token, in one round trip. */
export interface TokenPrincipal {
  readonly tokenId: string
  readonly orgId: string
  readonly userId: string
  readonly userType: 'normal' | 'bot'
  readonly role: Role
  readonly expiresAt: Date | null
  readonly revokedAt: Date | null
  readonly lastUsedAt: Date | null
  readonly userDeactivatedAt: Date | null
}

/** The token with this hash and its owner, or undefined. Runs on every API request: one statement, over `db.sql`. */
export async function findTokenPrincipal(db: { readonly sql: SqlPool }, tokenHash: string): Promise<TokenPrincipal | undefined> {
  const [row] = await db.sql.query<TokenPrincipal>(Prisma.sql`
    SELECT t."id" AS "tokenId", t."orgId", u."id" AS "userId", u."type"::text AS "userType", u."role"::text AS "role",
           t."expiresAt", t."revokedAt", t."lastUsedAt", u."deactivatedAt" AS "userDeactivatedAt"
    FROM "ApiToken" t JOIN "User" u ON u."id" = t."userId"
    WHERE t."tokenHash" = ${tokenHash}`)
  return row
}

/** Records that a token was used, unless that was already recorded within `resolutionMs` (by any process). */
export async function touchToken(db: { readonly sql: SqlPool }, tokenId: string, now: Date, resolutionMs: number): Promise<void> {
  await db.sql.execute(Prisma.sql`
    UPDATE "ApiToken" SET "lastUsedAt" = ${now}::timestamptz
    WHERE "id" = ${tokenId}::uuid AND ("lastUsedAt" IS NULL OR "lastUsedAt" < ${new Date(now.getTime() - resolutionMs)}::timestamptz)`)
}
