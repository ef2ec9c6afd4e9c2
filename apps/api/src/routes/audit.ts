/**
 * `GET /api/v1/audit`: the org's audit trail, the §7.2 log entries exactly as stored (and hash-chained), filtered by
 * run, flow, user, event type and time, oldest first, with cursor pagination. Admins and bots only.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { canReadAudit, STEPS, type Principal } from '@opensym/domain'
import { chainAudit } from '@opensym/engine'
import type { FastifyRequest } from 'fastify'
import { Type, type Static } from 'typebox'
import { DEFAULT_AUDIT_LIMIT, MAX_AUDIT_LIMIT, decodeAuditCursor, encodeAuditCursor, queryAudit } from '../audit/query.js'
import { ApiError, invalid, type FieldError } from '../errors.js'
import { requirePrincipal } from '../plugins/auth.js'

const ErrorRef = Type.Ref('Error')
const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, ErrorRef]))
const open = { additionalProperties: true }
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

const LogActor = Type.Object(
  {
    user: Type.String({ description: '`<org>:user:<normal|bot>:<user id>:latest`' }),
    name: Type.String(),
    username: Type.String(),
    identity: Type.Object({ service: Type.String(), external_id: Type.String(), email: Type.Optional(Type.String()) }, open),
  },
  open,
)

/** The §7.2 log entry (schema version 6). Objects allow more keys: entries are returned exactly as stored. */
const LogEntry = Type.Object(
  {
    id: Type.String({ description: 'Stable: every delivery of the entry (and the strategy payload of the event) has this id.' }),
    type: Type.Literal('event'),
    meta: Type.Object({ schema_version: Type.Integer() }, open),
    state: Type.Object(
      {
        status: Type.String({ description: '`completed` (or `processing` for payloads of events still running).' }),
        errors: Type.Array(Type.Object({ message: Type.String(), code: Type.String() }, open)),
      },
      open,
    ),
    run: Type.Object(
      {
        srn: Type.String({ description: '`<org>:run:<flow slug>:<flow version>:<run id>`' }),
        flow: Type.String({ description: '`<org>:flow:<flow slug>:<flow version>`' }),
        actors: Type.Record(Type.String(), LogActor, { description: 'Who performed each step of the run so far, by step name.' }),
      },
      open,
    ),
    event: Type.Object(
      {
        srn: Type.String(),
        type: Type.String({ description: 'The step: prompt, request, approve, deny, escalate, deescalate or expire.' }),
        template: Type.String(),
        timestamp: Type.String({ format: 'date-time' }),
        channel: Type.String(),
      },
      open,
    ),
    actor: Type.Union([LogActor, Type.Null()], { description: 'Who caused the event; null for steps the engine takes itself.' }),
    fields: Type.Record(Type.String(), Type.Unknown(), { description: 'The run’s fields and the event’s, plus target and duration.' }),
  },
  { ...open, description: 'A log entry in Sym’s shape (reference §7.2, schema version 6).' },
)

const AuditQuery = Type.Object(
  {
    run_id: Type.Optional(Type.String({ format: 'uuid', description: 'Only entries of this run.' })),
    flow: Type.Optional(
      Type.String({ minLength: 1, description: 'Only entries of runs of this flow: its id, or its slug (which also finds runs of a deleted flow).' }),
    ),
    user_id: Type.Optional(Type.String({ format: 'uuid', description: 'Only entries whose actor (the user who caused the event) is this user.' })),
    event_type: Type.Optional(Type.Enum([...STEPS], { description: 'Only entries of this step.' })),
    since: Type.Optional(Type.String({ format: 'date-time', description: 'Only events at or after this time (ISO 8601 with a time zone).' })),
    until: Type.Optional(Type.String({ format: 'date-time', description: 'Only events before this time (ISO 8601 with a time zone).' })),
    limit: Type.Optional(Type.String({ description: `Entries per page, 1–${MAX_AUDIT_LIMIT} (default ${DEFAULT_AUDIT_LIMIT}).` })),
    cursor: Type.Optional(Type.String({ minLength: 1, description: '`next_cursor` of the previous page.' })),
  },
  { additionalProperties: false },
)

const AuditPage = Type.Object({
  entries: Type.Array(LogEntry, { description: 'Oldest first, in the order of the org’s hash chain.' }),
  next_cursor: Type.Union([Type.String(), Type.Null()], {
    description: 'Pass as `cursor` for the next page; null on the last page. Entries appended meanwhile never shift a page.',
  }),
})

function requireAuditReader(req: FastifyRequest): Principal {
  const p = requirePrincipal(req)
  if (!canReadAudit(p)) throw new ApiError('FORBIDDEN', 'You do not have permission to read the audit trail: it needs an admin user or a bot token.')
  return p
}

const audit: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/audit',
    {
      schema: {
        tags: ['audit'],
        summary: 'Query the audit trail',
        description: 'The org’s log entries, one per completed event, as stored in its hash chain. Admins and bots only.',
        querystring: AuditQuery,
        response: { 200: AuditPage, ...errors(400, 401, 403) },
      },
    },
    async (req) => {
      const p = requireAuditReader(req)
      const q = req.query
      const problems: FieldError[] = []
      let limit = DEFAULT_AUDIT_LIMIT
      if (q.limit !== undefined) {
        limit = /^[0-9]{1,4}$/.test(q.limit) ? Number(q.limit) : 0
        if (limit < 1 || limit > MAX_AUDIT_LIMIT) problems.push({ field: 'querystring.limit', message: `must be an integer from 1 to ${MAX_AUDIT_LIMIT}` })
      }
      const afterSeq = q.cursor === undefined ? undefined : decodeAuditCursor(q.cursor)
      if (q.cursor !== undefined && afterSeq === undefined) problems.push({ field: 'querystring.cursor', message: 'is not a next_cursor returned by this endpoint' })
      const since = q.since === undefined ? undefined : new Date(q.since)
      const until = q.until === undefined ? undefined : new Date(q.until)
      if (since && until && since.getTime() > until.getTime()) problems.push({ field: 'querystring.until', message: 'must not be before since' })
      const flow = q.flow?.trim()
      if (flow === '') problems.push({ field: 'querystring.flow', message: 'must not be empty' })
      if (problems.length) throw invalid(problems)

      // Read your writes: entries a step staged a moment ago are chained (the worker's chainer runs right after steps).
      await chainAudit(app.db.sql, p.orgId)
      const page = await queryAudit(app.db, p.orgId, {
        runId: q.run_id,
        ...(flow ? (UUID.test(flow) ? { flowId: flow.toLowerCase() } : { flowSlug: flow.toLowerCase() }) : {}),
        userId: q.user_id,
        eventType: q.event_type,
        since,
        until,
        afterSeq,
        limit,
      })
      return { entries: page.entries as Array<Static<typeof LogEntry>>, next_cursor: page.nextSeq === undefined ? null : encodeAuditCursor(page.nextSeq) }
    },
  )
}

export default audit
