import { chainAudit, recordAudit } from '@opensym/engine'
import type { TestOrg } from '@opensym/testing'
import { beforeAll, describe, expect, it } from 'vitest'
import { createGraph } from './graph.js'
import { call, useApi, type Harness } from './helpers.js'

const h = useApi()

type Entry = { id: string; run: { srn: string; flow: string }; event: { type: string; timestamp: string }; actor: { user: string } | null; fields: Record<string, unknown> }
type Page = { entries: Entry[]; next_cursor: string | null }
type ErrorResponse = { code: string; status_code: number; errors: { field: string; message: string }[] }

const T0 = Date.parse('2026-03-01T10:00:00.000Z')
const at = (minutes: number) => new Date(T0 + minutes * 60_000)
let clock = 0

/** A run with one completed, audited event per step (each a minute after the last), as the engine records them. */
async function auditedRun(h: Harness, org: TestOrg, flow: { id: string | null; slug: string }, steps: Array<'request' | 'approve' | 'deny' | 'escalate' | 'deescalate'>) {
  const requester = await h.db.user.findFirstOrThrow({ where: { orgId: org.id, role: 'member', type: 'normal' } })
  const admin = await h.db.user.findFirstOrThrow({ where: { orgId: org.id, role: 'admin', type: 'normal' } })
  const run = await h.db.run.create({
    data: { orgId: org.id, flowId: flow.id, flowSlug: flow.slug, flowVersion: 1, requesterId: requester.id, fields: { reason: 'incident 7' } },
  })
  const events = []
  for (const [i, name] of steps.entries()) {
    const actorId = name === 'request' ? requester.id : name === 'approve' || name === 'deny' ? admin.id : null
    const event = await h.db.runEvent.create({
      data: { orgId: org.id, runId: run.id, seq: i + 1, name, actorId, channel: actorId ? 'api' : 'internal', status: 'success', completedAt: at(clock++) },
    })
    await h.db.sql.transaction((tx) => recordAudit(tx, event.id))
    await chainAudit(h.db.sql)
    events.push(event)
  }
  return { run, events, requester, admin }
}

const get = async (query: string, token?: string) => call(h, 'GET', `audit${query}`, token === undefined ? {} : { token })
const page = async (query = '', token?: string) => {
  const res = await get(query, token)
  if (res.status !== 200) throw new Error(`GET /audit${query} → ${res.status}: ${JSON.stringify(res.body)}`)
  return res.body as Page
}
const ids = (p: Page) => p.entries.map((e) => e.id)

let flow: { id: string; slug: string }
let first: Awaited<ReturnType<typeof auditedRun>>
let second: Awaited<ReturnType<typeof auditedRun>>
let theirs: Awaited<ReturnType<typeof auditedRun>>

beforeAll(async () => {
  const g = await createGraph(h)
  flow = { id: g.flow.id, slug: g.flow.slug as string }
  first = await auditedRun(h, h.a, flow, ['request', 'approve', 'escalate', 'deescalate']) // minutes 0–3
  second = await auditedRun(h, h.a, { id: null, slug: 'retired-flow' }, ['request', 'deny']) // minutes 4–5
  theirs = await auditedRun(h, h.b, { id: null, slug: 'okta_access' }, ['request']) // minute 6, org b
})

describe('GET /api/v1/audit', () => {
  it('returns the org’s entries as stored, oldest first, in chain order', async () => {
    const p = await page()
    const stored = await h.db.auditEntry.findMany({ where: { orgId: h.a.id }, orderBy: { seq: 'asc' } })
    expect(p.next_cursor).toBeNull()
    expect(p.entries).toEqual(stored.map((s) => s.entry))
    expect(ids(p)).toEqual([...first.events, ...second.events].map((e) => e.id))
    expect(p.entries[1]).toMatchObject({
      type: 'event',
      meta: { schema_version: 6 },
      state: { status: 'completed', errors: [] },
      run: { srn: `${h.a.slug}:run:okta_access:1:${first.run.id}`, flow: `${h.a.slug}:flow:okta_access:1` },
      event: { type: 'approve', timestamp: at(1).toISOString(), channel: 'api' },
      actor: { user: `${h.a.slug}:user:normal:${first.admin.id}:latest` },
      fields: { reason: 'incident 7' },
    })
    expect(p.entries[2]!.actor).toBeNull()
  })

  it('filters by run, flow (id or slug), user, event type and time range, combined with AND', async () => {
    const [req1, approve, escalate, deescalate] = first.events.map((e) => e.id)
    const [req2, deny] = second.events.map((e) => e.id)
    expect(ids(await page(`?run_id=${second.run.id}`))).toEqual([req2, deny])
    expect(ids(await page(`?flow=${flow.id}`))).toEqual([req1, approve, escalate, deescalate])
    expect(ids(await page(`?flow=${flow.id.toUpperCase()}`))).toEqual([req1, approve, escalate, deescalate])
    expect(ids(await page('?flow=Okta_Access'))).toEqual([req1, approve, escalate, deescalate])
    // A slug also finds runs whose flow is gone (their flow id is null).
    expect(ids(await page('?flow=retired-flow'))).toEqual([req2, deny])
    expect(ids(await page('?flow=no-such-flow'))).toEqual([])
    expect(ids(await page(`?user_id=${first.admin.id}`))).toEqual([approve, deny])
    expect(ids(await page('?event_type=request'))).toEqual([req1, req2])
    // since is inclusive, until exclusive.
    expect(ids(await page(`?since=${at(3).toISOString()}&until=${at(5).toISOString()}`))).toEqual([deescalate, req2])
    expect(ids(await page(`?since=${encodeURIComponent('2026-03-01T11:04:00+01:00')}`))).toEqual([req2, deny])
    expect(ids(await page(`?event_type=request&user_id=${first.requester.id}&flow=okta_access`))).toEqual([req1])
  })

  it('pages with a cursor that stays stable while entries are appended', async () => {
    const all = ids(await page())
    const p1 = await page('?limit=2')
    expect(ids(p1)).toEqual(all.slice(0, 2))
    expect(p1.next_cursor).toEqual(expect.any(String))
    // New entries arrive while the client pages through.
    const late = await auditedRun(h, h.a, flow, ['request'])
    const p2 = await page(`?limit=2&cursor=${encodeURIComponent(p1.next_cursor!)}`)
    expect(ids(p2)).toEqual(all.slice(2, 4))
    const p3 = await page(`?limit=2&cursor=${encodeURIComponent(p2.next_cursor!)}`)
    expect(ids(p3)).toEqual(all.slice(4, 6))
    const p4 = await page(`?limit=2&cursor=${encodeURIComponent(p3.next_cursor!)}`)
    expect(ids(p4)).toEqual([late.events[0]!.id])
    expect(p4.next_cursor).toBeNull()
    // Filters and cursors combine; an exact last page has no cursor.
    const r1 = await page('?event_type=request&limit=1')
    const r2 = await page(`?event_type=request&limit=2&cursor=${r1.next_cursor!}`)
    expect([...ids(r1), ...ids(r2)]).toEqual([first.events[0]!.id, second.events[0]!.id, late.events[0]!.id])
    expect(r2.next_cursor).toBeNull()
  })

  it('is scoped to the token’s org', async () => {
    expect(ids(await page('', h.b.tokens.bot))).toEqual([theirs.events[0]!.id])
    expect(ids(await page(`?run_id=${first.run.id}`, h.b.tokens.bot))).toEqual([])
    expect(ids(await page(`?run_id=${theirs.run.id}`))).toEqual([])
  })

  it('is for admins and bots: members and guests get 403, no token 401', async () => {
    expect((await get('', h.a.tokens.admin)).status).toBe(200)
    for (const token of [h.a.tokens.member, h.a.tokens.guest]) {
      const res = await get('', token)
      expect(res.status).toBe(403)
      expect(res.body).toMatchObject({ code: 'Auth:FORBIDDEN', message: expect.stringContaining('audit trail') })
    }
    expect((await call(h, 'GET', 'audit', { token: null })).status).toBe(401)
  })

  it.each([
    ['?limit=0', 'querystring.limit', 'must be an integer from 1 to 1000'],
    ['?limit=1001', 'querystring.limit', 'must be an integer from 1 to 1000'],
    ['?limit=ten', 'querystring.limit', 'must be an integer from 1 to 1000'],
    ['?cursor=bm90LWEtY3Vyc29y', 'querystring.cursor', 'is not a next_cursor returned by this endpoint'],
    ['?cursor=%25%25', 'querystring.cursor', 'is not a next_cursor returned by this endpoint'],
    ['?since=yesterday', 'querystring.since', 'must be a valid date-time'],
    ['?until=2026-03-01', 'querystring.until', 'must be a valid date-time'],
    ['?since=2026-03-02T00:00:00Z&until=2026-03-01T00:00:00Z', 'querystring.until', 'must not be before since'],
    ['?run_id=42', 'querystring.run_id', 'must be a UUID'],
    ['?user_id=someone', 'querystring.user_id', 'must be a UUID'],
    ['?event_type=approved', 'querystring.event_type', 'must be one of: prompt, request, approve, deny, escalate, deescalate, expire'],
    ['?flow=%20', 'querystring.flow', 'must not be empty'],
    ['?flow_id=x', 'querystring.flow_id', 'is not a known field'],
  ])('%s is a 400 naming the parameter', async (query, field, message) => {
    const res = await get(query)
    expect(res.status).toBe(400)
    expect(res.body as ErrorResponse).toMatchObject({ code: 'EntityAPI:INVALID_REQUEST', status_code: 400, errors: [{ field, message }] })
  })
})
