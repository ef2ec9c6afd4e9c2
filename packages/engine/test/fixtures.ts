/** Configuration and harness for engine tests: an access flow in the database, queues under a prefix of their own. */
import { randomBytes } from 'node:crypto'
import type { Db, Prisma } from '@opensym/db'
import type { Principal } from '@opensym/domain'
import { createTestOrg, type TestOrg } from '@opensym/testing'
import { Redis } from 'ioredis'
import { inject } from 'vitest'

export interface FlowFixture {
  readonly flowId: string
  readonly flowSlug: string
  readonly strategyId: string | null
  readonly targets: ReadonlyArray<{ id: string; slug: string }>
}

export interface FlowOptions {
  readonly slug?: string
  /** Null: an approval-only flow. */
  readonly strategy?: { type?: string; settings?: Record<string, unknown> } | null
  readonly targets?: ReadonlyArray<{ slug: string; type?: string; settings?: Record<string, unknown>; fieldBindings?: string[] }>
  readonly params?: Record<string, unknown>
}

const uid = () => randomBytes(3).toString('hex')

/** A flow (with an http strategy and targets unless `strategy: null`) in the org's environment `main`. */
export async function createFlow(db: Db, orgId: string, o: FlowOptions = {}): Promise<FlowFixture> {
  const env = await db.environment.upsert({ where: { orgId_slug: { orgId, slug: 'main' } }, update: {}, create: { orgId, slug: 'main' } })
  let strategyId: string | null = null
  const targets: Array<{ id: string; slug: string }> = []
  if (o.strategy !== null) {
    const strategy = await db.strategy.create({
      data: { orgId, type: o.strategy?.type ?? 'http', slug: `grant-${uid()}`, settings: (o.strategy?.settings ?? { url: 'http://127.0.0.1:1/unused' }) as Prisma.InputJsonValue },
    })
    strategyId = strategy.id
    for (const [position, t] of (o.targets ?? [{ slug: 'staging-db', settings: { identifier: 'staging' } }]).entries()) {
      const target = await db.target.create({
        data: { orgId, type: t.type ?? 'custom', slug: `${t.slug}-${uid()}`, label: t.slug, settings: (t.settings ?? {}) as Prisma.InputJsonValue, fieldBindings: t.fieldBindings ?? [] },
      })
      await db.strategyTarget.create({ data: { strategyId, targetId: target.id, position } })
      targets.push({ id: target.id, slug: target.slug })
    }
  }
  const slug = o.slug ?? `access-${uid()}`
  const flow = await db.flow.create({
    data: {
      orgId,
      slug,
      implementation: 'export {}',
      environmentId: env.id,
      strategyId,
      params: (o.params ?? {
        allow_revoke: true,
        prompt_fields: [
          { name: 'reason', type: 'string', required: true },
          { name: 'duration', type: 'duration', required: true },
        ],
      }) as Prisma.InputJsonValue,
    },
  })
  return { flowId: flow.id, flowSlug: slug, strategyId, targets }
}

export interface OrgPrincipals {
  readonly org: TestOrg
  readonly bot: Principal
  readonly admin: Principal
  readonly member: Principal
  readonly guest: Principal
}

export async function orgWithPrincipals(db: Db, prefix: string): Promise<OrgPrincipals> {
  const org = await createTestOrg(db, prefix)
  const users = await db.user.findMany({ where: { orgId: org.id } })
  const p = (pick: (u: (typeof users)[number]) => boolean): Principal => {
    const u = users.find(pick)!
    return { orgId: org.id, userId: u.id, userType: u.type, role: u.role }
  }
  return {
    org,
    bot: p((u) => u.type === 'bot'),
    admin: p((u) => u.type === 'normal' && u.role === 'admin'),
    member: p((u) => u.type === 'normal' && u.role === 'member'),
    guest: p((u) => u.type === 'normal' && u.role === 'guest'),
  }
}

/** A BullMQ prefix of this test file's own, under the run's prefix (removed when the run ends). */
export function queuePrefix(name: string): string {
  return `${inject('redisPrefix')}-${name}-${uid()}`
}

/** A Redis client BullMQ accepts (no keyPrefix; blocking commands not retried). */
export function redisClient(): Redis {
  return new Redis(inject('redisUrl'), { maxRetriesPerRequest: null })
}

/** Polls `check` until it returns a value that is not undefined/false, or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined | false>, timeoutMs = 15_000, what = 'condition'): Promise<T> {
  const until = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await check()
      if (v !== undefined && v !== false) return v
    } catch (e) {
      last = e
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** Deletes every key under a BullMQ prefix: what a Redis flush does to this stack. */
export async function deleteKeys(redis: Redis, prefix: string): Promise<number> {
  let cursor = '0'
  let deleted = 0
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500)
    if (keys.length) deleted += await redis.del(...keys)
    cursor = next
  } while (cursor !== '0')
  return deleted
}
