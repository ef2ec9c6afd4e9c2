/**
 * A local fake of the PagerDuty REST API v2 (reference saas-apis.md §8), for the SDK's `pagerduty.isOnCall` and
 * `pagerduty.getIncidents`: `Authorization: Token token=<key>` (401 code 2006 otherwise), users found by `query`
 * (matches name or email, as the real API does), schedules by `query`, on-calls computed from fixture shifts
 * (`schedule_ids[]`, `escalation_policy_ids[]`, `user_ids[]`, `since`/`until` defaulting to now, `earliest=true`
 * keeping the earliest shift per policy, level and user), incidents by `statuses[]`, offset paging with
 * `limit`/`offset`/`more`, and `rateLimit()` for 429 with `ratelimit-reset`.
 */
import { randomHex, startFakeServer, type FakeRequest, type FakeResponse, type FakeServer } from './core.js'

export interface FakePagerDutyUser {
  readonly id: string
  readonly name: string
  readonly email: string
}

export interface FakePagerDutySchedule {
  readonly id: string
  readonly name: string
}

/** A shift: `userId` is on call at `level` of `policyId` (through `scheduleId`, or directly) from `start` to `end`. */
export interface FakeOnCall {
  readonly userId: string
  readonly policyId: string
  readonly level: number
  readonly scheduleId: string | null
  readonly start: Date
  readonly end: Date
}

export interface FakeIncident {
  readonly id: string
  readonly title: string
  status: 'triggered' | 'acknowledged' | 'resolved'
}

export interface FakePagerDutyOptions {
  /** API keys accepted. Default one, `pd-token`. */
  readonly tokens?: readonly string[]
  readonly now?: () => number
}

export interface FakePagerDuty extends FakeServer {
  readonly baseUrl: string
  readonly token: string
  addUser(user: { name?: string; email: string }): FakePagerDutyUser
  addSchedule(name: string): FakePagerDutySchedule
  /** A shift; default: level 1 of policy `PPOLICY1`, from an hour ago for a day. */
  addOnCall(shift: { userId: string; scheduleId?: string | null; policyId?: string; level?: number; start?: Date; end?: Date }): FakeOnCall
  addIncident(incident: { title: string; status?: FakeIncident['status'] }): FakeIncident
  /** The next `times` (default 1) calls get 429 with `ratelimit-reset: resetInSeconds`. */
  rateLimit(opts?: { times?: number; resetInSeconds?: number }): void
}

const DEFAULT_LIMIT = 25
const MAX_LIMIT = 100

const pdError = (status: number, code: number, message: string, errors: string[] = []): FakeResponse => ({ status, body: { error: { code, message, errors } } })

export async function startFakePagerDuty(options: FakePagerDutyOptions = {}): Promise<FakePagerDuty> {
  const tokens = new Set(options.tokens ?? ['pd-token'])
  const token = [...tokens][0]!
  const now = options.now ?? Date.now
  const users = new Map<string, FakePagerDutyUser>()
  const schedules = new Map<string, FakePagerDutySchedule>()
  const oncalls: FakeOnCall[] = []
  const incidents: FakeIncident[] = []
  let base = ''

  const id = () => `P${randomHex(3).toUpperCase()}`
  const userRef = (u: FakePagerDutyUser) => ({ id: u.id, type: 'user_reference', summary: u.name, self: `${base}/users/${u.id}`, html_url: `https://example.pagerduty.com/users/${u.id}` })
  const userView = (u: FakePagerDutyUser) => ({ id: u.id, type: 'user', name: u.name, email: u.email, time_zone: 'UTC', role: 'user', teams: [], contact_methods: [] })

  /** `limit`/`offset` paging with `more`; `total` only when asked (`total=true`). */
  function page<T>(req: FakeRequest, items: readonly T[]) {
    const limit = Math.min(Math.max(Number(req.query.get('limit') ?? DEFAULT_LIMIT) || DEFAULT_LIMIT, 1), MAX_LIMIT)
    const offset = Math.max(Number(req.query.get('offset') ?? 0) || 0, 0)
    return { items: items.slice(offset, offset + limit), meta: { limit, offset, more: offset + limit < items.length, total: req.query.get('total') === 'true' ? items.length : null } }
  }

  /** `since`/`until` (ISO; default now), or an error response. */
  function interval(req: FakeRequest): { since: number; until: number } | FakeResponse {
    const since = req.query.get('since') ? Date.parse(req.query.get('since')!) : now()
    const until = req.query.get('until') ? Date.parse(req.query.get('until')!) : since
    if (Number.isNaN(since) || Number.isNaN(until)) return pdError(400, 2001, 'Invalid Input Provided', ['since/until must be ISO 8601 times'])
    if (until < since) return pdError(400, 2001, 'Invalid Input Provided', ['until must not be before since'])
    return { since, until }
  }

  function classify(req: FakeRequest): void {
    req.service = 'pagerduty'
    req.operation = `${req.method} ${req.pathname.replace(/\/P[0-9A-Z]+/g, '/{id}')}`
  }

  function handle(req: FakeRequest): FakeResponse {
    const m = /^Token token=(.+)$/.exec(req.headers.authorization ?? '')
    if (!m || !tokens.has(m[1]!)) return { status: 401, body: { error: { message: 'Authentication failed', code: 2006 } } }
    req.principal = `token:${m[1]!.slice(0, 4)}…`
    if (req.method !== 'GET') return pdError(404, 2100, 'Not Found')
    const seg = req.pathname.split('/').filter(Boolean)

    if (seg.length === 1 && seg[0] === 'users') {
      const q = req.query.get('query')?.toLowerCase()
      const found = [...users.values()].filter((u) => !q || u.name.toLowerCase().includes(q) || u.email.toLowerCase().includes(q))
      const pg = page(req, found)
      return { status: 200, body: { users: pg.items.map(userView), ...pg.meta } }
    }
    if (seg.length === 2 && seg[0] === 'users') {
      const u = users.get(seg[1]!)
      return u ? { status: 200, body: { user: userView(u) } } : pdError(404, 2100, 'Not Found')
    }
    if (seg.length === 1 && seg[0] === 'schedules') {
      const q = req.query.get('query')?.toLowerCase()
      const pg = page(req, [...schedules.values()].filter((s) => !q || s.name.toLowerCase().includes(q)))
      return { status: 200, body: { schedules: pg.items.map((s) => ({ id: s.id, type: 'schedule', name: s.name, summary: s.name })), ...pg.meta } }
    }
    if (seg.length === 3 && seg[0] === 'schedules' && seg[2] === 'users') {
      if (!schedules.has(seg[1]!)) return pdError(404, 2100, 'Not Found')
      const i = interval(req)
      if ('status' in i) return i
      const ids = new Set(oncalls.filter((o) => o.scheduleId === seg[1] && o.start.getTime() <= i.until && o.end.getTime() > i.since).map((o) => o.userId))
      return { status: 200, body: { users: [...ids].map((x) => users.get(x)!).filter(Boolean).map(userView) } }
    }
    if (seg.length === 1 && seg[0] === 'oncalls') {
      const i = interval(req)
      if ('status' in i) return i
      const scheduleIds = req.query.getAll('schedule_ids[]')
      const policyIds = req.query.getAll('escalation_policy_ids[]')
      const userIds = req.query.getAll('user_ids[]')
      let found = oncalls.filter(
        (o) =>
          o.start.getTime() <= i.until &&
          o.end.getTime() > i.since &&
          (!scheduleIds.length || (o.scheduleId !== null && scheduleIds.includes(o.scheduleId))) &&
          (!policyIds.length || policyIds.includes(o.policyId)) &&
          (!userIds.length || userIds.includes(o.userId)),
      )
      if (req.query.get('earliest') === 'true') {
        const earliest = new Map<string, FakeOnCall>()
        for (const o of found) {
          const key = `${o.policyId}|${o.level}|${o.userId}`
          const seen = earliest.get(key)
          if (!seen || o.start < seen.start) earliest.set(key, o)
        }
        found = [...earliest.values()]
      }
      const pg = page(req, found)
      const oncallsView = pg.items.map((o) => ({
        user: userRef(users.get(o.userId)!),
        schedule: o.scheduleId ? { id: o.scheduleId, type: 'schedule_reference', summary: schedules.get(o.scheduleId)?.name ?? '' } : null,
        escalation_policy: { id: o.policyId, type: 'escalation_policy_reference' },
        escalation_level: o.level,
        start: o.start.toISOString(),
        end: o.end.toISOString(),
      }))
      return { status: 200, body: { oncalls: oncallsView, ...pg.meta } }
    }
    if (seg.length === 1 && seg[0] === 'incidents') {
      const statuses = req.query.getAll('statuses[]')
      const pg = page(req, incidents.filter((x) => !statuses.length || statuses.includes(x.status)))
      return { status: 200, body: { incidents: pg.items.map((x) => ({ id: x.id, type: 'incident', title: x.title, status: x.status })), ...pg.meta } }
    }
    return pdError(404, 2100, 'Not Found')
  }

  const server = await startFakeServer({
    classify,
    handle,
    onReset: () => {
      users.clear()
      schedules.clear()
      oncalls.length = 0
      incidents.length = 0
    },
  })
  base = server.url

  return Object.assign(server, {
    baseUrl: server.url,
    token,
    addUser(u: { name?: string; email: string }): FakePagerDutyUser {
      const user = { id: id(), name: u.name ?? u.email.split('@')[0]!, email: u.email }
      users.set(user.id, user)
      return user
    },
    addSchedule(name: string): FakePagerDutySchedule {
      const s = { id: id(), name }
      schedules.set(s.id, s)
      return s
    },
    addOnCall(shift: { userId: string; scheduleId?: string | null; policyId?: string; level?: number; start?: Date; end?: Date }): FakeOnCall {
      const o: FakeOnCall = {
        userId: shift.userId,
        scheduleId: shift.scheduleId ?? null,
        policyId: shift.policyId ?? 'PPOLICY1',
        level: shift.level ?? 1,
        start: shift.start ?? new Date(now() - 3_600_000),
        end: shift.end ?? new Date(now() + 86_400_000),
      }
      oncalls.push(o)
      return o
    },
    addIncident(incident: { title: string; status?: FakeIncident['status'] }): FakeIncident {
      const x: FakeIncident = { id: id(), title: incident.title, status: incident.status ?? 'triggered' }
      incidents.push(x)
      return x
    },
    rateLimit(opts: { times?: number; resetInSeconds?: number } = {}) {
      const reset = String(opts.resetInSeconds ?? 2)
      server.fail({
        match: { service: 'pagerduty' },
        times: opts.times ?? 1,
        respond: { status: 429, headers: { 'ratelimit-limit': '960', 'ratelimit-remaining': '0', 'ratelimit-reset': reset }, body: { error: { code: 2020, message: 'Rate Limit Exceeded' } } },
      })
    },
  })
}
