/** Orgs, environments, destinations and audited runs for delivery tests, written as the engine and the API write them. */
import { randomBytes } from 'node:crypto'
import type { Db, Prisma } from '@opensym/db'
import { chainAudit, recordAudit } from '@opensym/engine'
import { createTestOrg, type TestOrg } from '@opensym/testing'
import { expect } from 'vitest'

const uid = () => randomBytes(3).toString('hex')

export interface OrgFixture {
  readonly org: TestOrg
  readonly env: { id: string }
  /** An environment no destination listens to. */
  readonly otherEnv: { id: string }
  readonly requesterId: string
}

export async function orgFixture(db: Db, prefix: string): Promise<OrgFixture> {
  const org = await createTestOrg(db, prefix)
  const env = await db.environment.create({ data: { orgId: org.id, slug: 'prod' } })
  const otherEnv = await db.environment.create({ data: { orgId: org.id, slug: 'sandbox' } })
  const requester = await db.user.findFirstOrThrow({ where: { orgId: org.id, role: 'member', type: 'normal' } })
  return { org, env, otherEnv, requesterId: requester.id }
}

/** An `env` secret (`OPENSYM_SECRET_<name>`) of the org; returns its id. */
export async function envSecret(db: Db, orgId: string, variable: string): Promise<string> {
  const source = await db.secretSource.create({ data: { orgId, type: 'env', slug: `env-${uid()}` } })
  const secret = await db.secret.create({ data: { orgId, slug: variable.toLowerCase(), path: variable, sourceId: source.id } })
  return secret.id
}

export async function integration(db: Db, orgId: string, type: string, settings: Record<string, unknown>): Promise<string> {
  const i = await db.integration.create({ data: { orgId, type, slug: `${type}-${uid()}`, externalId: '123456789012', settings: settings as Prisma.InputJsonValue } })
  return i.id
}

/** A `sym_log_destination` listed by the environments `envIds`. */
export async function destination(db: Db, orgId: string, envIds: readonly string[], d: { type: string; settings: Record<string, unknown>; integrationId?: string }): Promise<{ id: string; slug: string }> {
  const slug = `${d.type.replace(/_/g, '-')}-${uid()}`
  const created = await db.logDestination.create({ data: { orgId, type: d.type, slug, integrationId: d.integrationId ?? null, settings: d.settings as Prisma.InputJsonValue } })
  for (const environmentId of envIds) {
    const position = await db.environmentLogDestination.count({ where: { environmentId } })
    await db.environmentLogDestination.create({ data: { environmentId, logDestinationId: created.id, position } })
  }
  return { id: created.id, slug }
}

export interface AuditedRuns {
  /** Entry ids per run, in audit order. */
  readonly byRun: Map<string, string[]>
  /** Every entry id, in audit order. */
  readonly all: string[]
}

/**
 * `runs` runs in `envId`, their events recorded interleaved (step k of every run before step k+1 of any), each in
 * its own transaction as the engine records them.
 */
export async function auditedRuns(db: Db, f: OrgFixture, envId: string, runs: number, steps = ['request', 'approve', 'escalate', 'deescalate']): Promise<AuditedRuns> {
  const created = []
  for (let i = 0; i < runs; i++) {
    created.push(await db.run.create({ data: { orgId: f.org.id, environmentId: envId, flowSlug: 'db-access', flowVersion: 1, requesterId: f.requesterId, fields: { reason: `run ${i}` } } }))
  }
  const byRun = new Map<string, string[]>(created.map((r) => [r.id, []]))
  const all: string[] = []
  for (const [k, name] of steps.entries()) {
    for (const run of created) {
      const event = await db.runEvent.create({
        data: { orgId: f.org.id, runId: run.id, seq: k + 1, name, actorId: f.requesterId, channel: 'api', status: 'success', completedAt: new Date() },
      })
      await db.sql.transaction((tx) => recordAudit(tx, event.id))
      await chainAudit(db.sql)
      byRun.get(run.id)!.push(event.id)
      all.push(event.id)
    }
  }
  return { byRun, all }
}

/** Merges several {@link AuditedRuns}. */
export function merged(...parts: AuditedRuns[]): AuditedRuns {
  return { byRun: new Map(parts.flatMap((p) => [...p.byRun])), all: parts.flatMap((p) => p.all) }
}

/**
 * At least once and in order per run: every expected id arrived, nothing else did, and keeping the first copy of
 * each id, every run's entries are in audit order.
 */
export function expectDeliveredInOrder(received: readonly string[], expected: AuditedRuns, label = 'destination'): void {
  const first: string[] = []
  const seen = new Set<string>()
  for (const id of received) {
    if (seen.has(id)) continue
    first.push(id)
    seen.add(id)
  }
  expect(new Set(first), `${label}: entries`).toEqual(new Set(expected.all))
  for (const [runId, ids] of expected.byRun) {
    const set = new Set(ids)
    expect(first.filter((id) => set.has(id)), `${label}: order of run ${runId}`).toEqual(ids)
  }
}

/** Waits until `check` returns true (polling); fails after `timeoutMs` with `what`. */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}
