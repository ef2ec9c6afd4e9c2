/** Reading runs: one with its events, or a filtered, paginated list. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { RUN_STATUSES, type RunStatus } from '@opensym/domain'
import type { RunService } from '@opensym/engine'
import { Type } from 'typebox'
import { requirePrincipal } from '../plugins/auth.js'

const ErrorRef = Type.Ref('Error')
const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, ErrorRef]))
const tags = ['runs']

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T, description?: string) =>
  Type.Union([t, Type.Null()], description ? { description } : {})
const Json = Type.Record(Type.String(), Type.Unknown())
const Time = (description: string) => Nullable(Type.String({ format: 'date-time' }), description)

const User = Type.Object({
  id: Type.String(),
  type: Type.Union([Type.Literal('normal'), Type.Literal('bot')]),
  username: Type.String(),
  email: Nullable(Type.String()),
  name: Type.String(),
})

const Status = Type.Unsafe<RunStatus>(
  Type.Union(
    RUN_STATUSES.map((s) => Type.Literal(s)),
    { description: 'requested → approved | denied | expired; approved → escalated (access flows) | errored; escalated → deescalated.' },
  ),
)

const summaryProperties = {
  id: Type.String(),
  srn: Type.String({ description: '`<org>:run:<flow>:<flow version>:<run id>`' }),
  status: Status,
  flow: Type.Object({ id: Nullable(Type.String(), 'Null once the flow is deleted.'), slug: Type.String(), version: Type.Integer(), srn: Type.String() }),
  requester: User,
  target: Nullable(
    Type.Object({
      id: Type.String(),
      srn: Type.String(),
      type: Type.String(),
      name: Type.String(),
      label: Nullable(Type.String()),
      settings: Type.Record(Type.String(), Type.String(), { description: 'With field_bindings applied.' }),
    }),
    'Null for approval-only flows.',
  ),
  fields: Type.Record(Type.String(), Type.Unknown(), { description: 'The validated flow inputs (duration in seconds).' }),
  context: Json,
  duration: Nullable(Type.Integer(), 'Requested duration in seconds.'),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
  request_expires_at: Time('When the request expires unless decided.'),
  decided_at: Time('When it was approved or denied.'),
  escalated_at: Time('When access was granted.'),
  expires_at: Time('When access ends (escalated_at + duration); null when de-escalation is not scheduled.'),
  deescalated_at: Time('When access was removed.'),
  ended_at: Time('When the run reached its final status.'),
}

const RunSummary = Type.Object(summaryProperties)

const Event = Type.Object({
  id: Type.String(),
  seq: Type.Integer(),
  name: Type.String(),
  status: Type.Union([Type.Literal('pending'), Type.Literal('success'), Type.Literal('error')]),
  channel: Type.String(),
  actor: Nullable(User),
  submitted_by: Nullable(User, 'Who submitted the event when not its actor (a bot token requesting for a user).'),
  fields: Json,
  error: Nullable(Type.String()),
  warning: Nullable(Type.String(), "A note on a step that went ahead anyway, e.g. the flow's implementation is Python and cannot run (the flow used the defaults)."),
  output: Type.Unknown({ description: 'The strategy output of escalate/deescalate: `{body, errors}`.' }),
  verified: Nullable(Type.Boolean(), 'Whether reading the target back confirmed the change; null when the target cannot tell.'),
  attempts: Type.Integer(),
  created_at: Type.String({ format: 'date-time' }),
  completed_at: Time('When it succeeded or failed.'),
})

const Run = Type.Object({
  ...summaryProperties,
  actors: Type.Record(Type.String(), User, { description: 'Who performed each step so far, by step name.' }),
  events: Type.Array(Event),
})

const ListQuery = Type.Object(
  {
    flow: Type.Optional(Type.String({ minLength: 1, description: 'A flow slug or id.' })),
    status: Type.Optional(Status),
    requester: Type.Optional(Type.String({ minLength: 1, description: 'A requester’s id or email.' })),
    cursor: Type.Optional(Type.String({ minLength: 1, description: '`next_cursor` of the previous page.' })),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$', description: 'Runs per page, 1–200 (default 50).' })),
  },
  { additionalProperties: false },
)

const runs: FastifyPluginAsyncTypebox<{ service: RunService }> = async (app, { service }) => {
  app.get(
    '/runs/:id',
    {
      schema: {
        tags,
        summary: 'Read a run: status, fields, target, actors, timestamps and events',
        params: Type.Object({ id: Type.String({ description: 'The run id.' }) }, { additionalProperties: false }),
        response: { 200: Run, ...errors(401, 404) },
      },
    },
    async (req) => service.getRun(requirePrincipal(req), req.params.id),
  )

  app.get(
    '/runs',
    {
      schema: {
        tags,
        summary: 'List runs, newest first',
        querystring: ListQuery,
        response: { 200: Type.Object({ runs: Type.Array(RunSummary), next_cursor: Nullable(Type.String(), 'Null on the last page.') }), ...errors(400, 401) },
      },
    },
    async (req) => {
      const { limit, ...q } = req.query
      return service.listRuns(requirePrincipal(req), { ...q, ...(limit !== undefined ? { limit: Number(limit) } : {}) })
    },
  )
}

export default runs
