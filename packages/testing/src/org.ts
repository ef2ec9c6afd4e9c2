import { createBot, createOrg, createUser, issueToken, type Db } from '@opensym/db'
import { uniqueSuffix } from './database.js'

export interface TestOrg {
  readonly id: string
  readonly slug: string
  /** Bearer tokens, one per kind of caller. */
  readonly tokens: { readonly bot: string; readonly admin: string; readonly member: string; readonly guest: string }
}

/** A new org with a bot and an admin, member and guest user, each with a token. */
export async function createTestOrg(db: Db, prefix = 'org'): Promise<TestOrg> {
  const org = await createOrg(db, { slug: `${prefix}-${uniqueSuffix()}`.replace(/_/g, '-') })
  await createBot(db, { org: org.slug, name: 'terraform' })
  const tokens: Record<string, string> = {}
  tokens.bot = (await issueToken(db, { org: org.slug, bot: 'terraform' })).secret
  for (const role of ['admin', 'member', 'guest'] as const) {
    const email = `${role}@example.com`
    await createUser(db, { org: org.slug, email, role })
    tokens[role] = (await issueToken(db, { org: org.slug, user: email })).secret
  }
  return { id: org.id, slug: org.slug, tokens: tokens as unknown as TestOrg['tokens'] }
}
