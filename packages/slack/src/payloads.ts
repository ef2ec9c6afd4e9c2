/** What Slack sends (saas-apis.md §7.4), as TypeBox schemas checked at the edge. Unknown extra fields are allowed. */
import { Type, type Static, type TSchema } from 'typebox'
import { Value } from 'typebox/value'

const Id = Type.String({ minLength: 1, maxLength: 64 })

export const SlashCommand = Type.Object({
  command: Type.String({ minLength: 1 }),
  text: Type.String(),
  trigger_id: Type.String({ minLength: 1 }),
  user_id: Id,
  team_id: Id,
  channel_id: Type.String(),
  user_name: Type.Optional(Type.String()),
  response_url: Type.Optional(Type.String()),
})
export type SlashCommand = Static<typeof SlashCommand>

const User = Type.Object({ id: Id, team_id: Type.Optional(Type.String()) })
const Team = Type.Object({ id: Id })
const StateValues = Type.Record(Type.String(), Type.Record(Type.String(), Type.Object({ type: Type.String() })))

export const BlockActions = Type.Object({
  type: Type.Literal('block_actions'),
  user: User,
  team: Team,
  trigger_id: Type.Optional(Type.String()),
  container: Type.Object({ type: Type.String(), message_ts: Type.Optional(Type.String()), channel_id: Type.Optional(Type.String()) }),
  channel: Type.Optional(Type.Object({ id: Id })),
  state: Type.Optional(Type.Object({ values: StateValues })),
  actions: Type.Array(
    Type.Object({ action_id: Type.String({ minLength: 1 }), block_id: Type.Optional(Type.String()), value: Type.Optional(Type.String()), action_ts: Type.Optional(Type.String()) }),
    { minItems: 1 },
  ),
})
export type BlockActions = Static<typeof BlockActions>

const View = Type.Object({
  id: Type.String(),
  callback_id: Type.String(),
  private_metadata: Type.Optional(Type.String()),
  hash: Type.Optional(Type.String()),
  state: Type.Object({ values: StateValues }),
})

export const ViewSubmission = Type.Object({ type: Type.Literal('view_submission'), user: User, team: Team, view: View, trigger_id: Type.Optional(Type.String()) })
export type ViewSubmission = Static<typeof ViewSubmission>

export const ViewClosed = Type.Object({ type: Type.Literal('view_closed'), user: User, team: Team })

export const BlockSuggestion = Type.Object({
  type: Type.Literal('block_suggestion'),
  user: User,
  team: Team,
  action_id: Type.String(),
  block_id: Type.String(),
  value: Type.String(),
  view: Type.Optional(Type.Object({ private_metadata: Type.Optional(Type.String()) })),
})
export type BlockSuggestion = Static<typeof BlockSuggestion>

export const Interaction = Type.Union([BlockActions, ViewSubmission, ViewClosed, BlockSuggestion])
export type Interaction = Static<typeof Interaction>

export const UrlVerification = Type.Object({ type: Type.Literal('url_verification'), challenge: Type.String({ maxLength: 200 }) })

export const EventCallback = Type.Object({
  type: Type.Literal('event_callback'),
  team_id: Id,
  event_id: Type.String({ minLength: 1 }),
  event: Type.Object({
    type: Type.String(),
    tokens: Type.Optional(Type.Object({ oauth: Type.Optional(Type.Array(Type.String())), bot: Type.Optional(Type.Array(Type.String())) })),
    /** `user_change`: the person as Slack now has them. */
    user: Type.Optional(
      Type.Object({
        id: Id,
        team_id: Type.Optional(Type.String()),
        deleted: Type.Optional(Type.Boolean()),
        is_bot: Type.Optional(Type.Boolean()),
        is_restricted: Type.Optional(Type.Boolean()),
        is_ultra_restricted: Type.Optional(Type.Boolean()),
      }),
    ),
  }),
})
export type EventCallback = Static<typeof EventCallback>

export const SlackEvent = Type.Union([UrlVerification, EventCallback])
export type SlackEvent = Static<typeof SlackEvent>

/** The value when it matches the schema, else undefined. */
export function parse<S extends TSchema>(schema: S, value: unknown): Static<S> | undefined {
  return Value.Check(schema, value) ? (value) : undefined
}
