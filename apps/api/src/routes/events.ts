/**
 * The Events API: start a run (`request`), decide it (`approve`, `deny` — beyond Sym), revoke its access
 * (`deescalate`), and poll an event. Each route is schema, principal, one RunService call; the rules live in the
 * engine and `@opensym/domain`.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { RunService } from '@opensym/engine'
import { Type } from 'typebox'
import { requirePrincipal } from '../plugins/auth.js'

const ErrorRef = Type.Ref('Error')
const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, ErrorRef]))
const tags = ['events']
const RunId = Type.String({ format: 'uuid', description: 'The run id (`run_id` of `POST /events/request`).' })

const RequestBody = Type.Object(
  {
    flow_srn: Type.String({
      minLength: 1,
      description: 'The flow: `<org>:flow:<slug>:latest` (or `:<version>`), or just its slug.',
      examples: ['healthy-health:flow:approval-ci-deploy-prod:latest'],
    }),
    flow_inputs: Type.Record(Type.String(), Type.Unknown(), {
      description:
        'The values of the flow\'s prompt fields by name; access flows also take `target_id` or `target_srn`, and `duration` in seconds (or like "1h") unless the flow does not schedule de-escalation.',
    }),
    context: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'Any JSON, kept with the request (SDK: `event.get_context("request")`).' })),
    user_email: Type.Optional(Type.String({ minLength: 1, description: 'The requester, when not the caller (bot and admin tokens only).' })),
    user_id: Type.Optional(Type.String({ format: 'uuid', description: 'The requester by id, instead of `user_email`.' })),
  },
  { additionalProperties: false },
)

const DecisionBody = Type.Object(
  {
    run_id: RunId,
    decision_message: Type.Optional(Type.String({ maxLength: 3000, description: 'Shown with the decision; hooks read it as `event.payload.fields["decision_message"]`.' })),
  },
  { additionalProperties: false },
)

const RunEventIds = Type.Object({ run_id: Type.String(), event_id: Type.String() })

const EventStatus = Type.Object({
  run_id: Type.String(),
  name: Type.String({ description: 'The step: request, approve, deny, escalate, deescalate, expire.' }),
  timestamp: Type.String({ description: 'When the event completed (or was created, while pending), ISO 8601.' }),
  status: Type.Union([Type.Literal('pending'), Type.Literal('success'), Type.Literal('error')], {
    description: 'Poll until `success` or `error`.',
  }),
  error: Type.Optional(Type.String({ description: 'Why the event failed; only when `status` is `error`.' })),
})

const events: FastifyPluginAsyncTypebox<{ service: RunService }> = async (app, { service }) => {
  app.post(
    '/events/request',
    {
      schema: {
        tags,
        summary: 'Request access: start a run of a flow',
        description: 'Validates the inputs against the flow (400 naming the field), records the run and its `request` event, and processes it in the background.',
        body: RequestBody,
        response: { 200: RunEventIds, ...errors(400, 401, 403) },
      },
    },
    async (req) => service.createRequest(requirePrincipal(req), req.body),
  )

  app.post(
    '/events/approve',
    {
      schema: {
        tags,
        summary: 'Approve a requested run, as the caller',
        description: 'Access flows escalate next. Refused (403) for the requester themself and for callers the flow does not let decide.',
        body: DecisionBody,
        response: { 200: RunEventIds, ...errors(400, 401, 403, 404) },
      },
    },
    async (req) => service.decide(requirePrincipal(req), 'approve', req.body),
  )

  app.post(
    '/events/deny',
    {
      schema: { tags, summary: 'Deny a requested run, as the caller', body: DecisionBody, response: { 200: RunEventIds, ...errors(400, 401, 403, 404) } },
    },
    async (req) => service.decide(requirePrincipal(req), 'deny', req.body),
  )

  app.post(
    '/events/deescalate',
    {
      schema: {
        tags,
        summary: 'Revoke an escalated run’s access now',
        description: "Needs the flow's `allow_revoke`. A run that is not escalated gets `DeescalateAPI:INVALID_RUN`.",
        body: Type.Object({ run_id: RunId }, { additionalProperties: false }),
        response: {
          200: Type.Object({ event_id: Type.String(), request_body: Type.Object({ run_id: Type.String() }) }),
          ...errors(400, 401, 403, 404),
        },
      },
    },
    async (req) => service.revoke(requirePrincipal(req), req.body.run_id),
  )

  app.get(
    '/events/:id',
    {
      schema: {
        tags,
        summary: 'Read an event’s status',
        params: Type.Object({ id: Type.String({ description: 'The event id.' }) }, { additionalProperties: false }),
        response: { 200: EventStatus, ...errors(401, 404) },
      },
    },
    async (req) => service.getEvent(requirePrincipal(req), req.params.id),
  )
}

export default events
