/**
 * RunService's statements against real PostgreSQL: what a request is checked against is read in one statement that
 * must give exactly what the Prisma include it replaces gives (the run's snapshot is made of it), and decisions are
 * checked again on the locked run. No worker: the queues only record what would be enqueued.
 */
import { createDb, Prisma, type Db } from '@opensym/db'
import { UNROUTED_PERMISSION, type Principal } from '@opensym/domain'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { FLOW_FOR_REQUEST, flowParams, snapshotOf } from '../src/flows.js'
import type { EngineQueues } from '../src/queues.js'
import { loadRequestContext, RunService } from '../src/service.js'
import type { RunSnapshot } from '../src/snapshot.js'
import { createFlow, eventually, orgWithPrincipals, type FlowFixture, type OrgPrincipals } from './fixtures.js'

const { sql } = Prisma

let db: Db
let service: RunService
let o: OrgPrincipals
/** An access flow whose http strategy has an integration and three targets, listed out of their creation order. */
let flow: FlowFixture
let approvalOnly: FlowFixture
const enqueued: string[] = []

const queues = {
  enqueueEvent: async (step: string, eventId: string) => void enqueued.push(`${step}:${eventId}`),
  scheduleExpiry: async () => {},
} as unknown as EngineQueues

beforeAll(async () => {
  db = createDb(inject('databaseUrl'), { poolSize: 4 })
  service = new RunService({ db, queues })
  o = await orgWithPrincipals(db, 'service')
  flow = await createFlow(db, o.org.id, {
    targets: [
      { slug: 'prod-db', settings: { identifier: 'prod', nested: { a: [1, 2.5, 'x'] } } },
      { slug: 'repo', type: 'github_repo', settings: { org: 'acme' }, fieldBindings: ['repo_name'] },
      { slug: 'cache', settings: {} },
    ],
    params: {
      allow_revoke: false,
      prompt_fields: [
        { name: 'reason', type: 'string', required: true },
        { name: 'repo_name', type: 'string', required: false },
        { name: 'duration', type: 'duration', required: true },
      ],
    },
  })
  const integration = await db.integration.create({
    data: { orgId: o.org.id, type: 'slack', slug: `ws-${flow.flowSlug}`, externalId: 'T123', settings: { team: 'acme', n: 3 } },
  })
  await db.strategy.update({ where: { id: flow.strategyId! }, data: { integrationId: integration.id } })
  await db.flow.update({ where: { id: flow.flowId }, data: { label: 'Access', vars: { channel: '#ops', n: 2 }, version: 3 } })
  // Positions in another order than the targets were created in.
  await db.strategyTarget.update({ where: { strategyId_targetId: { strategyId: flow.strategyId!, targetId: flow.targets[0]!.id } }, data: { position: 2 } })
  await db.strategyTarget.update({ where: { strategyId_targetId: { strategyId: flow.strategyId!, targetId: flow.targets[2]!.id } }, data: { position: 0 } })
  approvalOnly = await createFlow(db, o.org.id, { strategy: null, params: { prompt_fields: [{ name: 'reason', type: 'string', required: true }] } })
})

afterAll(async () => {
  await db?.$disconnect()
})

/** Resolves once some session waits for a lock that the session `pid` holds. */
async function waitingFor(pid: number): Promise<void> {
  await eventually(async () => {
    const [row] = await db.sql.query<{ n: number }>(sql`SELECT count(*)::int AS "n" FROM pg_stat_activity WHERE ${pid}::int = ANY(pg_blocking_pids("pid"))`)
    return row!.n > 0
  }, 10_000, 'a session to wait for the lock')
}

const self = (p: Principal) => Prisma.sql`u."id" = ${p.userId}::uuid`

describe('loadRequestContext', () => {
  it('reads the flow exactly as the Prisma include did: every column, timestamps as Dates, targets by position', async () => {
    for (const f of [flow, approvalOnly]) {
      const viaPrisma = await db.flow.findUnique({ where: { orgId_slug: { orgId: o.org.id, slug: f.flowSlug } }, include: FLOW_FOR_REQUEST })
      const loaded = await loadRequestContext(db.sql, o.bot, f.flowSlug, self(o.bot))
      expect(loaded.flow).toEqual(viaPrisma)
      expect(loaded.flow!.createdAt).toBeInstanceOf(Date)
      expect(loaded.orgSlug).toBe(o.org.slug)
    }
    const loaded = await loadRequestContext(db.sql, o.bot, flow.flowSlug, self(o.bot))
    expect(loaded.flow!.strategy!.targets.map((t) => t.target.id)).toEqual([flow.targets[2]!.id, flow.targets[1]!.id, flow.targets[0]!.id])
    expect(loaded.flow!.strategy!.targets[0]!.target.updatedAt).toBeInstanceOf(Date)
    expect(loaded.flow!.strategy!.integration!.createdAt).toBeInstanceOf(Date)
  })

  it('finds no flow of another slug, and no requester when there is none to look up', async () => {
    expect(await loadRequestContext(db.sql, o.bot, 'no-such-flow', undefined)).toEqual({ orgSlug: o.org.slug, flow: undefined, requester: null })
  })
})

describe('createRequest', () => {
  it('stores the snapshot the Prisma-loaded flow gives, byte for byte, with the run and its request event', async () => {
    const { run_id, event_id } = await service.createRequest(o.bot, {
      flow_srn: `${o.org.slug}:flow:${flow.flowSlug}:latest`,
      flow_inputs: { reason: 'ticket 7', repo_name: 'opensym', duration: '30m', target_id: flow.targets[1]!.id },
      context: { ticket: { id: 7, tags: ['a'] } },
      user_email: ' Member@Example.com ',
    })
    const viaPrisma = await db.flow.findUniqueOrThrow({ where: { id: flow.flowId }, include: FLOW_FOR_REQUEST })
    const target = viaPrisma.strategy!.targets.find((t) => t.target.id === flow.targets[1]!.id)!.target
    const expected = snapshotOf(o.org.slug, viaPrisma, flowParams(viaPrisma.params), target, { org: 'acme', repo_name: 'opensym' })
    const [stored] = await db.sql.query<{ snapshot: string; expected: string }>(sql`
      SELECT "snapshot"::text AS "snapshot", ${JSON.stringify(expected)}::jsonb::text AS "expected" FROM "Run" WHERE "id" = ${run_id}::uuid`)
    expect(stored!.snapshot).toBe(stored!.expected)

    const member = await db.user.findFirstOrThrow({ where: { orgId: o.org.id, email: 'member@example.com' } })
    const run = await db.run.findUniqueOrThrow({ where: { id: run_id }, include: { events: true } })
    expect(run).toMatchObject({
      orgId: o.org.id,
      flowId: flow.flowId,
      flowSlug: flow.flowSlug,
      flowVersion: 3,
      requesterId: member.id,
      targetId: flow.targets[1]!.id,
      durationSeconds: 1800,
      fields: { reason: 'ticket 7', repo_name: 'opensym', duration: 1800, target_id: flow.targets[1]!.id },
      context: { ticket: { id: 7, tags: ['a'] } },
      status: 'requested',
      version: 0,
      permission: null,
    })
    expect(run.requestExpiresAt!.getTime() - run.createdAt.getTime()).toBe(24 * 3600_000)
    expect(run.events).toEqual([
      expect.objectContaining({ id: event_id, seq: 1, name: 'request', actorId: member.id, submittedById: o.bot.userId, channel: 'api', fields: {}, status: 'pending', attempts: 0 }),
    ])
    expect(enqueued).toContain(`request:${event_id}`)
  })

  it('requests for the caller, by user_id, and refuses what resolveRequester refused', async () => {
    const base = { flow_srn: approvalOnly.flowSlug, flow_inputs: { reason: 'deploy' } }
    const mine = await service.createRequest(o.member, base)
    expect(await db.run.findUniqueOrThrow({ where: { id: mine.run_id } })).toMatchObject({ requesterId: o.member.userId, targetId: null, durationSeconds: null })
    expect((await db.runEvent.findUniqueOrThrow({ where: { id: mine.event_id } })).submittedById).toBeNull()
    const byId = await service.createRequest(o.admin, { ...base, user_id: o.member.userId.toUpperCase() })
    expect(await db.run.findUniqueOrThrow({ where: { id: byId.run_id } })).toMatchObject({ requesterId: o.member.userId })

    const refused = (p: Principal, extra: object) => service.createRequest(p, { ...base, ...extra }).catch((e: unknown) => e)
    expect(await refused(o.bot, { user_email: 'member@example.com', user_id: o.member.userId })).toMatchObject({
      status: 400,
      errors: [{ field: 'user_email', message: 'give user_email or user_id, not both' }],
    })
    expect(await refused(o.bot, { user_email: 'nobody@example.com' })).toMatchObject({ status: 400, errors: [{ field: 'user_email', message: 'no such user in this organization' }] })
    expect(await refused(o.bot, { user_id: 'not-a-uuid' })).toMatchObject({ status: 400, errors: [{ field: 'user_id', message: 'no such user in this organization' }] })
    const other = await orgWithPrincipals(db, 'service-other')
    expect(await refused(o.bot, { user_id: other.member.userId })).toMatchObject({ status: 400, errors: [{ field: 'user_id', message: 'no such user in this organization' }] })
    expect(await refused(o.member, { user_email: 'admin@example.com' })).toMatchObject({ status: 403, message: 'Only bots and admins can request access for another user.' })
    // The flow is checked before the requester.
    expect(await refused(o.bot, { flow_srn: 'no-such-flow', user_email: 'nobody@example.com' })).toMatchObject({ status: 400, errors: [{ field: 'flow_srn', message: 'no flow "no-such-flow" in this organization' }] })
    expect(await refused(o.bot, { flow_srn: `other-org:flow:${approvalOnly.flowSlug}:latest` })).toMatchObject({ status: 400, errors: [{ field: 'flow_srn' }] })

    await db.user.update({ where: { id: o.guest.userId }, data: { deactivatedAt: new Date() } })
    expect(await refused(o.bot, { user_id: o.guest.userId })).toMatchObject({ status: 400, errors: [{ field: 'user_id', message: 'this user is deactivated' }] })
  })
})

describe('decide', () => {
  it('appends concurrent decisions one after the other: the lock orders them', async () => {
    const { run_id } = await service.createRequest(o.bot, { flow_srn: approvalOnly.flowSlug, flow_inputs: { reason: 'deploy' }, user_email: 'member@example.com' })
    // No worker moves the run, so both find it requested; the worker settles which decision counts.
    const [approved, denied] = await Promise.all([service.decide(o.admin, 'approve', { run_id }), service.decide(o.bot, 'deny', { run_id, decision_message: '  no  ' })])
    const events = await db.runEvent.findMany({ where: { runId: run_id }, orderBy: { seq: 'asc' } })
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3])
    expect(events.find((e) => e.id === approved.event_id)).toMatchObject({ name: 'approve', actorId: o.admin.userId, submittedById: null, channel: 'api', fields: {}, status: 'pending' })
    expect(events.find((e) => e.id === denied.event_id)).toMatchObject({ name: 'deny', actorId: o.bot.userId, fields: { decision_message: 'no' } })
    expect(enqueued).toEqual(expect.arrayContaining([`approve:${approved.event_id}`, `deny:${denied.event_id}`]))
  })

  it('checks who may decide on the snapshot without implementation sources (large, and no check reads them)', async () => {
    const seen: RunSnapshot[] = []
    const checking = new RunService({ db, queues, permissions: (run) => (seen.push(run.snapshot), UNROUTED_PERMISSION) })
    await db.flow.update({ where: { id: approvalOnly.flowId }, data: { implementation: `export async function onApprove() {}\n// ${'x'.repeat(20_000)}` } })
    const { run_id } = await checking.createRequest(o.bot, { flow_srn: approvalOnly.flowSlug, flow_inputs: { reason: 'deploy' }, user_email: 'member@example.com' })
    const stored = await db.run.findUniqueOrThrow({ where: { id: run_id } })
    expect((stored.snapshot as unknown as RunSnapshot).flow.implementation).toContain('x'.repeat(20_000))
    await checking.decide(o.admin, 'approve', { run_id })
    const { implementation, ...flowRest } = (stored.snapshot as unknown as RunSnapshot).flow
    expect(implementation).toBeDefined()
    expect(seen).toEqual([{ ...(stored.snapshot as unknown as RunSnapshot), flow: flowRest }])
    await db.flow.update({ where: { id: approvalOnly.flowId }, data: { implementation: 'export {}' } })
  })

  it('gives a decision that waited for the run the seq after the events appended meanwhile', async () => {
    const { run_id } = await service.createRequest(o.bot, { flow_srn: approvalOnly.flowSlug, flow_inputs: { reason: 'deploy' }, user_email: 'member@example.com' })
    const { decision } = await db.sql.transaction(async (tx) => {
      // Another step holds the run and appends an event (seq 2) the waiting decision's statement cannot see.
      const [{ pid }] = (await tx.query<{ pid: number }>(sql`SELECT pg_backend_pid() AS "pid"`)) as [{ pid: number }]
      await tx.query(sql`SELECT 1 FROM "Run" WHERE "id" = ${run_id}::uuid FOR UPDATE`)
      const decision = service.decide(o.admin, 'approve', { run_id })
      await waitingFor(pid)
      await tx.execute(sql`
        INSERT INTO "RunEvent" ("id", "orgId", "runId", "seq", "name", "channel", "status", "attempts", "createdAt")
        VALUES (gen_random_uuid(), ${o.org.id}::uuid, ${run_id}::uuid, 2, 'deny', 'api', 'pending', 0, now())`)
      return { decision }
    })
    const { event_id } = await decision
    expect(await db.runEvent.findUniqueOrThrow({ where: { id: event_id } })).toMatchObject({ seq: 3, name: 'approve' })
  })

  it('checks the status again on the locked run: a run that moved while the decision waited for it is refused', async () => {
    const { run_id } = await service.createRequest(o.bot, { flow_srn: approvalOnly.flowSlug, flow_inputs: { reason: 'deploy' }, user_email: 'member@example.com' })
    const { decision } = await db.sql.transaction(async (tx) => {
      // Another step holds the run and denies it; the decision reads it as requested (not committed yet), then waits.
      const [{ pid }] = (await tx.query<{ pid: number }>(sql`SELECT pg_backend_pid() AS "pid"`)) as [{ pid: number }]
      await tx.execute(sql`UPDATE "Run" SET "status" = 'denied', "version" = "version" + 1 WHERE "id" = ${run_id}::uuid`)
      const decision = service.decide(o.admin, 'approve', { run_id }).catch((e: unknown) => e)
      await waitingFor(pid)
      return { decision }
    })
    expect(await decision).toMatchObject({ status: 400, message: "Cannot approve a run with status 'denied'. Status must be 'requested'." })
    expect(await db.runEvent.count({ where: { runId: run_id } })).toBe(1)
    expect(await service.decide(o.admin, 'approve', { run_id: '00000000-0000-4000-8000-000000000000' }).catch((e: unknown) => e)).toMatchObject({ status: 404 })
  })
})
