import { execFile } from 'node:child_process'
import { resolve } from 'node:path'
import { promisify } from 'node:util'
import { createDb, type Db } from '@opensym/db'
import { chainAudit, recordAudit } from '@opensym/engine'
import { createTestOrg, type TestOrg } from '@opensym/testing'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { run } from '../src/cli.js'

let db: Db
beforeAll(() => {
  db = createDb(inject('databaseUrl'), { poolSize: 2 })
})
afterAll(async () => {
  await db.$disconnect()
})

async function admin(...argv: string[]) {
  const lines: string[] = []
  const code = await run(argv, db, { out: (t) => lines.push(t) })
  const text = lines.join('\n')
  return { code, text, json: () => JSON.parse(text) as unknown }
}

/** A run of `org` with one completed, audited event per step, as the engine records them. */
async function auditedRun(org: TestOrg, steps: string[]) {
  const requester = await db.user.findFirstOrThrow({ where: { orgId: org.id, role: 'member', type: 'normal' } })
  const run = await db.run.create({ data: { orgId: org.id, flowSlug: 'db-access', flowVersion: 1, requesterId: requester.id, fields: { reason: 'deploy' } } })
  const events = []
  for (const [i, name] of steps.entries()) {
    const event = await db.runEvent.create({
      data: { orgId: org.id, runId: run.id, seq: i + 1, name, actorId: requester.id, channel: 'api', status: 'success', completedAt: new Date() },
    })
    await db.sql.transaction((tx) => recordAudit(tx, event.id))
    await chainAudit(db.sql)
    events.push(event)
  }
  return events
}

/** Changes a stored entry the way only someone with superuser rights can: around the append-only trigger. */
async function tamper(eventId: string) {
  await db.$transaction(async (tx) => {
    await tx.$executeRawUnsafe(`SET LOCAL session_replication_role = replica`)
    await tx.$executeRaw`UPDATE "AuditEntry" SET "entry" = jsonb_set("entry", '{fields,reason}', '"nothing to see"') WHERE "eventId" = ${eventId}::uuid`
  })
}

describe('admin audit verify', () => {
  it('reports an intact chain with its length, and an org without entries as intact', async () => {
    const org = await createTestOrg(db, 'verify-ok')
    const empty = await admin('audit', 'verify', '--org', org.slug, '--json')
    expect(empty.code).toBe(0)
    expect(empty.json()).toEqual({ ok: true, org: org.slug, entries: 0 })
    await auditedRun(org, ['request', 'approve'])
    await auditedRun(org, ['request', 'deny'])
    const res = await admin('audit', 'verify', '--org', org.slug, '--json')
    expect(res.code).toBe(0)
    expect(res.json()).toEqual({ ok: true, org: org.slug, entries: 4 })
    expect((await admin('audit', 'verify', '--org', org.slug)).text).toBe(`the audit chain of org ${org.slug} is intact: 4 entries verified`)
  })

  it('names the first altered entry and exits 1', async () => {
    const org = await createTestOrg(db, 'verify-bad')
    const events = await auditedRun(org, ['request', 'approve', 'escalate', 'deescalate'])
    await tamper(events[2]!.id)
    await tamper(events[3]!.id)
    const res = await admin('audit', 'verify', '--org', org.slug, '--json')
    expect(res.code).toBe(1)
    expect(res.json()).toEqual({ ok: false, org: org.slug, entries: 2, first_break: { seq: 3, id: events[2]!.id, reason: 'its content does not match its hash' } })
    const text = await admin('audit', 'verify', '--org', org.slug)
    expect(text.code).toBe(1)
    expect(text.text).toBe(
      `error: the audit chain of org ${org.slug} is broken at entry 3 (id ${events[2]!.id}): its content does not match its hash (2 entries before it verified)`,
    )
  })

  it.each([
    [['audit', 'verify'], 2, '--org is required'],
    [['audit', 'verify', '--org', 'no-such-org'], 1, 'no org with slug "no-such-org"'],
  ])('%j exits %i with one line', async (argv, code, message) => {
    const res = await admin(...argv)
    expect(res.code).toBe(code)
    expect(res.text).toBe(`error: ${message}`)
  })

  it('through npm run -s admin: the JSON result on stdout and exit code 1 on a break', async () => {
    const org = await createTestOrg(db, 'verify-cli')
    const events = await auditedRun(org, ['request', 'approve'])
    await tamper(events[0]!.id)
    const root = resolve(import.meta.dirname, '../../..')
    const env = { ...process.env, DATABASE_URL: inject('databaseUrl') }
    const res = await promisify(execFile)('npm', ['run', '-s', 'admin', '--', 'audit', 'verify', '--org', org.slug, '--json'], { cwd: root, env }).catch(
      (e: { code: number; stdout: string; stderr: string }) => e,
    )
    expect('code' in res && res.code).toBe(1)
    expect(JSON.parse(res.stdout)).toMatchObject({ ok: false, entries: 0, first_break: { seq: 1, id: events[0]!.id } })
    expect(res.stderr).toBe('')
  }, 60_000)
})
