import { createDb, type Db } from '@opensym/db'
import { chainAudit, recordAudit } from '@opensym/engine'
import { LogDeliverer } from '@opensym/reporting'
import { createTestOrg, startHttpReceiver, type HttpReceiver } from '@opensym/testing'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { run } from '../src/cli.js'

let db: Db
let receiver: HttpReceiver
beforeAll(async () => {
  db = createDb(inject('databaseUrl'), { poolSize: 2 })
  receiver = await startHttpReceiver()
})
afterAll(async () => {
  await receiver?.close()
  await db?.$disconnect()
})

async function admin(...argv: string[]) {
  const lines: string[] = []
  const code = await run(argv, db, { out: (t) => lines.push(t) })
  const text = lines.join('\n')
  return { code, text, json: () => JSON.parse(text) as unknown }
}

describe('admin log-destinations', () => {
  it('shows a dead destination with its backlog and error, replays it, and replays from an entry', async () => {
    const org = await createTestOrg(db, 'admin-logs')
    const env = await db.environment.create({ data: { orgId: org.id, slug: 'prod' } })
    const requester = await db.user.findFirstOrThrow({ where: { orgId: org.id, role: 'member' } })
    const dest = await db.logDestination.create({ data: { orgId: org.id, type: 'http', slug: 'audit-example-com', settings: { url: `${receiver.url}/audit` } } })
    await db.environmentLogDestination.create({ data: { environmentId: env.id, logDestinationId: dest.id, position: 0 } })
    const runRow = await db.run.create({ data: { orgId: org.id, environmentId: env.id, flowSlug: 'db-access', flowVersion: 1, requesterId: requester.id } })
    const ids: string[] = []
    for (const [i, name] of ['request', 'approve', 'escalate'].entries()) {
      const event = await db.runEvent.create({ data: { orgId: org.id, runId: runRow.id, seq: i + 1, name, actorId: requester.id, channel: 'api', status: 'success', completedAt: new Date() } })
      await db.sql.transaction((tx) => recordAudit(tx, event.id))
      await chainAudit(db.sql)
      ids.push(event.id)
    }
    const fresh = await admin('log-destinations', 'status', '--org', org.slug, '--json')
    expect(fresh.json()).toEqual([expect.objectContaining({ slug: 'audit-example-com', status: 'pending', backlog: 3, delivered_seq: 0, head_seq: 3, environments: ['prod'] })])

    // Two failed attempts with no backoff: dead.
    receiver.respondWith(() => ({ status: 500 }))
    const deliverer = new LogDeliverer({ db, maxAttempts: 2, backoff: { baseMs: 0, maxMs: 0 }, retry: { partialRetries: 0 } })
    expect(await deliverer.pump(dest.id)).toMatchObject({ kind: 'failed', failures: 1 })
    expect(await deliverer.pump(dest.id)).toMatchObject({ kind: 'dead' })
    expect(await deliverer.pump(dest.id)).toMatchObject({ kind: 'dead' })
    const dead = await admin('log-destinations', 'status', '--org', org.slug, '--destination', 'audit-example-com')
    expect(dead.code).toBe(0)
    expect(dead.text).toBe(`http audit-example-com (${dest.id}): dead, 3 pending, at 0/3, 2 failed attempts, last: 1 of 1 records refused (first: entry ${ids[0]}: http_500: POST ${receiver.url}/audit answered 500)`)

    receiver.reset()
    const replay = await admin('log-destinations', 'replay', '--org', org.slug, '--destination', 'audit-example-com', '--json')
    expect(replay.code).toBe(0)
    expect(replay.json()).toEqual({ id: dest.id, type: 'http', slug: 'audit-example-com', previous_status: 'dead', previous_seq: 0, delivered_seq: 0 })
    expect(await deliverer.pump(dest.id)).toEqual({ kind: 'delivered', entries: 3, to: 3n })
    expect(receiver.requests.map((r) => (r.json as { id: string }).id).sort()).toEqual([...ids].sort())
    expect((await admin('log-destinations', 'status', '--org', org.slug, '--json')).json()).toEqual([
      expect.objectContaining({ status: 'active', backlog: 0, delivered_seq: 3, delivered: 3, failures: 0, last_error: null }),
    ])

    // From the second entry: it and the third are sent again.
    receiver.reset()
    const again = await admin('log-destinations', 'replay', '--org', org.slug, '--destination', dest.id, '--from', '2')
    expect(again.text).toBe('http audit-example-com is active again; entries after 1 are sent again')
    expect(await deliverer.pump(dest.id)).toEqual({ kind: 'delivered', entries: 2, to: 3n })
    expect(receiver.requests.map((r) => (r.json as { id: string }).id).sort()).toEqual(ids.slice(1).sort())
    deliverer.close()
  })

  it('refuses unknown destinations, bad --from values and moving past undelivered entries', async () => {
    const org = await createTestOrg(db, 'admin-logs-err')
    expect(await admin('log-destinations', 'replay', '--org', org.slug, '--destination', 'nope')).toEqual(expect.objectContaining({ code: 1, text: `error: no log destination "nope" in this organization` }))
    await db.logDestination.create({ data: { orgId: org.id, type: 'http', slug: 'twice', settings: { url: 'http://127.0.0.1:1/a' } } })
    await db.logDestination.create({ data: { orgId: org.id, type: 'datadog', slug: 'twice', settings: {} } })
    const ambiguous = await admin('log-destinations', 'replay', '--org', org.slug, '--destination', 'twice')
    expect(ambiguous.code).toBe(1)
    expect(ambiguous.text).toMatch(/^error: "twice" names 2 log destinations \(datadog .*, http .*\); give --type or the id$/)
    expect((await admin('log-destinations', 'replay', '--org', org.slug, '--destination', 'twice', '--type', 'http', '--from', 'yesterday')).code).toBe(2)
    const forward = await admin('log-destinations', 'replay', '--org', org.slug, '--destination', 'twice', '--type', 'http', '--from', '5')
    expect(forward).toEqual(expect.objectContaining({ code: 1, text: 'error: --from is past entries not yet delivered (the cursor is at 0); replay only moves back' }))
    expect((await admin('log-destinations', 'status', '--org', org.slug)).text).toMatch(/^datadog twice .*: pending, 0 pending, at 0\/0\nhttp twice .*: pending, 0 pending, at 0\/0$/)
  })
})
