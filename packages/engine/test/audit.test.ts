import { createDb, toJson, type Db, type RunEvent } from '@opensym/db'
import { createTestOrg, type TestOrg } from '@opensym/testing'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { AuditChainer, buildLogEntry, canonicalJson, chainAudit, chainHash, chainOrgAudit, GENESIS_HASH, recordAudit, verifyAuditChain } from '../src/audit.js'
import type { RunSnapshot } from '../src/snapshot.js'

let db: Db
let org: TestOrg

beforeAll(async () => {
  db = createDb(inject('databaseUrl'), { poolSize: 4 })
  org = await createTestOrg(db, 'audit')
})
afterAll(async () => {
  await db?.$disconnect()
})

/** A run with one completed event per step name given, each audited in its own transaction as the engine does. */
async function runWithEvents(steps: Array<{ name: string; status?: 'success' | 'error'; error?: string; fields?: Record<string, unknown> }>) {
  const requester = await db.user.findFirstOrThrow({ where: { orgId: org.id, role: 'member', type: 'normal' } })
  const approver = await db.user.findFirstOrThrow({ where: { orgId: org.id, role: 'admin', type: 'normal' } })
  const snapshot: RunSnapshot = {
    orgSlug: org.slug,
    flow: { id: '00000000-0000-4000-8000-000000000001', slug: 'db-access', version: 3, label: null, environmentId: '00000000-0000-4000-8000-000000000002', environmentSlug: 'prod', params: {}, vars: {} },
    strategy: { id: '00000000-0000-4000-8000-000000000003', type: 'http', slug: 'grant', integration: null, settings: { url: 'http://127.0.0.1:1/grant' } },
    target: { id: '00000000-0000-4000-8000-000000000004', type: 'custom', slug: 'staging-db', label: 'Staging DB', settings: { identifier: 'staging' } },
  }
  const run = await db.run.create({
    data: { orgId: org.id, flowSlug: 'db-access', flowVersion: 3, requesterId: requester.id, durationSeconds: 3600, fields: { reason: 'incident 42' }, snapshot: toJson(snapshot), status: 'requested' },
  })
  const events = []
  for (const [i, step] of steps.entries()) {
    const actorId = step.name === 'request' ? requester.id : approver.id
    const event = await db.runEvent.create({
      data: { orgId: org.id, runId: run.id, seq: i + 1, name: step.name, actorId, channel: 'api', fields: toJson(step.fields ?? {}), status: step.status ?? 'success', error: step.error ?? null, completedAt: new Date() },
    })
    await db.sql.transaction((tx) => recordAudit(tx, event.id))
    await chainAudit(db.sql)
    events.push(event)
  }
  return { run, events, requester, approver }
}

describe('log entries', () => {
  it('have the §7.2 shape, schema version 6, the event id as their stable id, and the run actors so far', async () => {
    const { run, events, requester, approver } = await runWithEvents([{ name: 'request' }, { name: 'approve', fields: { decision_message: 'ok' } }])
    const stored = await db.auditEntry.findUniqueOrThrow({ where: { eventId: events[1]!.id } })
    expect(stored.id).toBe(events[1]!.id)
    expect(stored.entry).toMatchObject({
      id: events[1]!.id,
      type: 'event',
      meta: { schema_version: 6 },
      state: { status: 'completed', errors: [] },
      run: {
        srn: `${org.slug}:run:db-access:3:${run.id}`,
        flow: `${org.slug}:flow:db-access:3`,
        actors: {
          request: { user: `${org.slug}:user:normal:${requester.id}:latest`, username: requester.username },
          approve: { user: `${org.slug}:user:normal:${approver.id}:latest` },
        },
      },
      event: { srn: 'sym:event-spec:approval:1.0.0:approve', type: 'approve', template: 'sym:template:approval:1.0.0', channel: 'api' },
      actor: { username: approver.username, identity: { service: 'sym', external_id: 'cloud', email: approver.email } },
      fields: {
        reason: 'incident 42',
        decision_message: 'ok',
        duration: 3600,
        target_id: '00000000-0000-4000-8000-000000000004',
        target: { name: 'staging-db', type: 'custom', label: 'Staging DB', settings: { identifier: 'staging' }, srn: `${org.slug}:access_target:custom:staging-db:latest:00000000-0000-4000-8000-000000000004` },
      },
    })
  })

  it('carry the error of a failed event, and a pending event is "processing"', async () => {
    const { events } = await runWithEvents([{ name: 'request' }, { name: 'deescalate', status: 'error', error: 'All de-escalate events will be rejected!' }])
    const stored = await db.auditEntry.findUniqueOrThrow({ where: { eventId: events[1]!.id } })
    expect(stored.entry).toMatchObject({ state: { status: 'completed', errors: [{ message: 'All de-escalate events will be rejected!', code: 'deescalate_failed' }] } })
    const pending = buildLogEntry({
      orgSlug: 'o',
      run: { id: 'r', flowSlug: 'f', flowVersion: 1, fields: {}, durationSeconds: null, snapshot: null },
      event: { id: 'e', name: 'escalate', channel: 'internal', status: 'pending', error: null, fields: {}, timestamp: new Date(0), actor: null },
      actors: [],
    })
    expect(pending.state).toEqual({ status: 'processing', errors: [] })
    expect(pending.fields).toEqual({})
  })

  it('are written once per event however often the step is retried', async () => {
    const { events } = await runWithEvents([{ name: 'request' }])
    await db.sql.transaction((tx) => recordAudit(tx, events[0]!.id))
    await chainAudit(db.sql)
    expect(await db.auditEntry.count({ where: { eventId: events[0]!.id } })).toBe(1)
  })
})

describe('the hash chain', () => {
  it('hashes canonical JSON, so key order does not matter', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { f: 2, e: 3 }], c: null } })).toBe('{"a":{"c":null,"d":[1,{"e":3,"f":2}]},"b":1}')
    expect(chainHash(GENESIS_HASH, { a: 1, b: 2 })).toBe(chainHash(GENESIS_HASH, { b: 2, a: 1 }))
  })

  it('verifies, refuses changes to stored entries, and names the first altered entry', async () => {
    const other = await createTestOrg(db, 'chain')
    org = other
    const { events } = await runWithEvents([{ name: 'request' }, { name: 'approve' }, { name: 'escalate' }, { name: 'deescalate' }])
    expect(await verifyAuditChain(db, other.id)).toEqual({ ok: true, entries: 4 })
    expect(await verifyAuditChain(db, other.id, { batchSize: 3 })).toEqual({ ok: true, entries: 4 })

    const altered = await db.auditEntry.findUniqueOrThrow({ where: { eventId: events[1]!.id } })
    await expect(db.$executeRaw`UPDATE "AuditEntry" SET "eventType" = 'deny' WHERE "id" = ${altered.id}::uuid`).rejects.toThrow(/append-only/)
    await expect(db.$executeRaw`DELETE FROM "AuditEntry" WHERE "id" = ${altered.id}::uuid`).rejects.toThrow(/append-only/)

    // Someone with the database's superuser rights goes around the trigger.
    await db.$transaction(async (tx) => {
      await tx.$executeRawUnsafe(`SET LOCAL session_replication_role = replica`)
      await tx.$executeRaw`UPDATE "AuditEntry" SET "entry" = jsonb_set("entry", '{fields,reason}', '"nothing to see"') WHERE "id" = ${altered.id}::uuid`
    })
    expect(await verifyAuditChain(db, other.id)).toEqual({
      ok: false,
      entries: 1,
      firstBreak: { seq: 2n, id: altered.id, reason: 'its content does not match its hash' },
    })
  })

  it('notices a removed last entry through the chain head', async () => {
    const other = await createTestOrg(db, 'tail')
    org = other
    const { events } = await runWithEvents([{ name: 'request' }, { name: 'approve' }])
    await db.$transaction(async (tx) => {
      await tx.$executeRawUnsafe(`SET LOCAL session_replication_role = replica`)
      await tx.$executeRaw`DELETE FROM "AuditEntry" WHERE "eventId" = ${events[1]!.id}::uuid`
    })
    const result = await verifyAuditChain(db, other.id)
    expect(result).toMatchObject({ ok: false, entries: 1, firstBreak: { seq: 2n } })
    expect(result.firstBreak?.reason).toMatch(/entries were removed/)
  })

  it('chains staged entries once, in staging order, whoever chains them and however many at once', async () => {
    const other = await createTestOrg(db, 'staged')
    org = other
    // Staged by their steps' transactions, not chained yet.
    const events: string[] = []
    for (let i = 0; i < 3; i++) {
      const run = await db.run.create({ data: { orgId: other.id, flowSlug: 'db-access', flowVersion: 1, requesterId: (await db.user.findFirstOrThrow({ where: { orgId: other.id } })).id, status: 'requested' } })
      for (const [seq, name] of ['request', 'approve', 'escalate'].entries()) {
        const event = await db.runEvent.create({ data: { orgId: other.id, runId: run.id, seq: seq + 1, name, channel: 'api', status: 'success', completedAt: new Date() } })
        await db.sql.transaction(async (tx) => {
          expect(await recordAudit(tx, event.id)).toMatchObject({ id: event.id })
          // A retried step stages nothing more.
          expect(await recordAudit(tx, event.id)).toBeUndefined()
        })
        events.push(event.id)
      }
    }
    expect(await db.auditEntry.count({ where: { orgId: other.id } })).toBe(0)
    expect(await db.auditStaged.count({ where: { orgId: other.id } })).toBe(9)

    // Three chainers at once (two processes' passes and one for the org): they take turns on the head.
    const chained = await Promise.all([chainAudit(db.sql), chainAudit(db.sql, other.id), chainOrgAudit(db.sql, other.id)])
    expect(chained.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(9)
    expect(await db.auditStaged.count({ where: { orgId: other.id } })).toBe(0)
    const entries = await db.auditEntry.findMany({ where: { orgId: other.id }, orderBy: { seq: 'asc' } })
    expect(entries.map((e) => e.eventId)).toEqual(events)
    expect(await verifyAuditChain(db, other.id)).toEqual({ ok: true, entries: 9 })

    // Once chained, the entry is not staged again.
    await db.sql.transaction(async (tx) => expect(await recordAudit(tx, events[0]!)).toBeUndefined())
    expect(await db.auditStaged.count({ where: { orgId: other.id } })).toBe(0)
  })

  it('the chainer chains after a kick, and everything staged when it closes', async () => {
    const other = await createTestOrg(db, 'chainer')
    org = other
    const chainer = new AuditChainer(db.sql, { minIntervalMs: 5 })
    const requester = await db.user.findFirstOrThrow({ where: { orgId: other.id } })
    const run = await db.run.create({ data: { orgId: other.id, flowSlug: 'db-access', flowVersion: 1, requesterId: requester.id, status: 'requested' } })
    const events: RunEvent[] = []
    for (const [seq, name] of ['request', 'approve'].entries()) {
      events.push(await db.runEvent.create({ data: { orgId: other.id, runId: run.id, seq: seq + 1, name, channel: 'api', status: 'success', completedAt: new Date() } }))
    }
    await db.sql.transaction((tx) => recordAudit(tx, events[0]!.id))
    chainer.kick()
    chainer.kick()
    await expect.poll(() => db.auditEntry.count({ where: { orgId: other.id } })).toBe(1)
    await db.sql.transaction((tx) => recordAudit(tx, events[1]!.id))
    await chainer.close()
    expect(await verifyAuditChain(db, other.id)).toEqual({ ok: true, entries: 2 })
  })
})
