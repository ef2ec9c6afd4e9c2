/**
 * `@opensym/sdk/validation`: the checks at the sandbox boundary, with TypeBox. What a reducer or hook returned, and
 * the arguments of an integration call, come from user code; they are data to check, never to trust. The sandbox
 * and `@opensym/sdk/testing` both use these, so a test catches what the platform would refuse.
 */
import { Type, type Static, type TSchema } from 'typebox'
import { Compile } from 'typebox/compile'
import type {
  DestinationData,
  JsonObject as JsonObjectData,
  FieldOptionData,
  HookResult,
  JsonValue,
  NotificationData,
  RequestPermissionData,
  SlackDestinationData,
} from './flow/data.js'
import { AFTER_HOOK_NAMES, type HookName, type ReducerName } from './flow/handlers.js'
import type { HostArgs, HostMethod } from './flow/host.js'
import { HOOK_RETURNS, type OnHookName } from './flow/templates.js'

/** Limits on results; the sandbox also caps a result's total size (its `maxResultBytes`). */
export const LIMITS = {
  notifications: 20,
  destinations: 10,
  groupUsers: 50,
  permissionUsers: 1000,
  prefetchOptions: 100,
  /** Slack's limit for a dropdown option's text, which Sym applies to values and labels. */
  optionText: 55,
  /** Seconds: 30 days. */
  maxTimeout: 30 * 24 * 3600,
  ignoreMessage: 3000,
  /** Flows a flows filter may keep (it is given at most this many). */
  flows: 1000,
} as const

const Text = (max: number, options: object = {}) => Type.String({ minLength: 1, maxLength: max, ...options })
const Json: TSchema = Type.Unsafe<JsonValue>({})
const JsonObject = Type.Record(Type.String(), Json)

const Level = Type.Union([Type.Literal('admin'), Type.Literal('member'), Type.Literal('all_users')])
const Permission = Type.Union([Level, Type.Array(Text(320), { maxItems: LIMITS.permissionUsers })])

export const RequestPermissionSchema = Type.Object(
  { webappView: Permission, approveDeny: Permission, allowSelfApproval: Type.Boolean() },
  { additionalProperties: false },
)

const Timeout = Type.Union([Type.Integer({ minimum: 1, maximum: LIMITS.maxTimeout }), Type.Null()])
const legacy = { allowSelf: Type.Optional(Type.Boolean()), timeout: Type.Optional(Timeout) }
const SlackChannel = Type.Object({ type: Type.Literal('slack_channel'), channel: Text(255), ...legacy }, { additionalProperties: false })
const SlackUser = Type.Object({ type: Type.Literal('slack_user'), user: Text(320), ...legacy }, { additionalProperties: false })
const SlackGroup = Type.Object(
  { type: Type.Literal('slack_group'), users: Type.Array(Text(320), { minItems: 1, maxItems: LIMITS.groupUsers }), ...legacy },
  { additionalProperties: false },
)
const SlackDestination = Type.Union([SlackChannel, SlackUser, SlackGroup])
const Fallback = Type.Object(
  {
    type: Type.Literal('fallback'),
    destinations: Type.Array(SlackDestination, { minItems: 1, maxItems: LIMITS.destinations }),
    continueOnDeliveryFailure: Type.Boolean(),
    continueOnTimeout: Type.Boolean(),
  },
  { additionalProperties: false },
)
const UserDestination = Type.Object({ type: Type.Literal('user'), userId: Text(320) }, { additionalProperties: false })
const Destination = Type.Union([SlackChannel, SlackUser, SlackGroup, Fallback, UserDestination])

export const NotificationsSchema = Type.Array(
  Type.Object(
    { destinations: Type.Array(Destination, { minItems: 1, maxItems: LIMITS.destinations }), timeout: Timeout },
    { additionalProperties: false },
  ),
  { minItems: 1, maxItems: LIMITS.notifications },
)

export const ApproversSchema = Type.Union([SlackChannel, SlackUser, SlackGroup, Fallback])

export const IdentitySchema = Type.Union([Text(512), Type.Null()])

/** What a custom strategy's `escalate`/`deescalate` returned, as kept on the event: a JSON object. */
export const StrategyOutputSchema = JsonObject

export const FieldOptionsSchema = Type.Array(
  Type.Object({ value: Text(LIMITS.optionText), label: Text(LIMITS.optionText) }, { additionalProperties: false }),
  { maxItems: LIMITS.prefetchOptions },
)

/** What a flows filter's `getFlows` gives, after `invoke` matched it against the flows it was given: their IDs. */
export const FlowIdsSchema = Type.Array(Text(64), { maxItems: LIMITS.flows })

export const HookResultSchema = Type.Union([
  Type.Object({ type: Type.Literal('proceed') }, { additionalProperties: false }),
  Type.Object(
    {
      type: Type.Literal('transition'),
      transition: Type.Union([Type.Literal('request'), Type.Literal('approve'), Type.Literal('deny'), Type.Literal('deescalate')]),
      fields: JsonObject,
      targetSrn: Type.Optional(Text(1000)),
      duration: Type.Optional(Type.Integer({ minimum: 1 })),
    },
    { additionalProperties: false },
  ),
  Type.Object({ type: Type.Literal('ignore'), message: Text(LIMITS.ignoreMessage) }, { additionalProperties: false }),
])

// What passes validation must be what the SDK's types promise; these fail to compile when the two drift apart.
const drift: [
  Static<typeof RequestPermissionSchema> extends RequestPermissionData ? true : false,
  Static<typeof NotificationsSchema>[number] extends NotificationData ? true : false,
  Static<typeof Destination> extends DestinationData ? true : false,
  Static<typeof SlackDestination> extends SlackDestinationData ? true : false,
  Static<typeof FieldOptionsSchema>[number] extends FieldOptionData ? true : false,
] = [true, true, true, true, true]
void drift

/** The data each reducer returns, after validation. */
export interface ReducerResults {
  getPermissions: RequestPermissionData
  getRequestNotifications: NotificationData[]
  getApprovers: Exclude<DestinationData, { type: 'user' }>
  getIdentity: string | null
}

const compiled = {
  getPermissions: Compile(RequestPermissionSchema),
  getRequestNotifications: Compile(NotificationsSchema),
  getApprovers: Compile(ApproversSchema),
  getIdentity: Compile(IdentitySchema),
  strategyOutput: Compile(StrategyOutputSchema),
  prefetch: Compile(FieldOptionsSchema),
  flowIds: Compile(FlowIdsSchema),
  hook: Compile(HookResultSchema),
}

export type Checked<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly message: string }

type Validator = (typeof compiled)[keyof typeof compiled]

function check<T>(validator: Validator, value: unknown, what: string): Checked<T> {
  if (validator.Check(value)) return { ok: true, value: value as T }
  const errors = validator.Errors(value).slice(0, 3)
  const detail = errors.map((e) => `${e.instancePath || '(the value)'} ${e.message}`).join('; ')
  return { ok: false, message: `${what} returned an invalid value: ${detail}` }
}

/** Validates what a reducer returned (after `invoke` shaped it). */
export function checkReducerResult<N extends ReducerName>(name: N, value: unknown): Checked<ReducerResults[N]> {
  const result = check<ReducerResults[N]>(compiled[name], value, name)
  if (!result.ok || name !== 'getRequestNotifications') return result
  // Sym allows one Slack destination per notification (a fallback counts as one).
  const chain = value as NotificationData[]
  const index = chain.findIndex((n) => n.destinations.filter((d) => d.type !== 'user').length > 1)
  if (index >= 0) {
    return { ok: false, message: `getRequestNotifications returned an invalid value: /${index}/destinations has more than one Slack destination (use slack.fallback([...]) to try several)` }
  }
  return result
}

/** What each custom strategy function gives, after validation. */
export interface StrategyResults {
  fetchRemoteIdentity: string | null
  escalate: JsonObjectData
  deescalate: JsonObjectData
}

/** Validates what a custom strategy function returned (after `invoke` shaped it). */
export function checkStrategyResult<N extends keyof StrategyResults>(name: N, value: unknown): Checked<StrategyResults[N]> {
  return check(name === 'fetchRemoteIdentity' ? compiled.getIdentity : compiled.strategyOutput, value, name)
}

/** Validates what a prefetch reducer returned. */
export function checkPrefetchResult(field: string, value: unknown): Checked<FieldOptionData[]> {
  return check(compiled.prefetch, value, `the prefetch reducer of "${field}"`)
}

/** Validates what a flows filter's `getFlows` gave (the IDs of the flows to show). */
export function checkFlowsFilterResult(value: unknown): Checked<string[]> {
  return check(compiled.flowIds, value, 'getFlows')
}

const AFTER = new Set<string>(AFTER_HOOK_NAMES)

/** Validates what a hook returned, including that it moves the run forward only. `after…` hooks always proceed. */
export function checkHookResult(name: HookName, value: unknown): Checked<HookResult> {
  if (AFTER.has(name)) return { ok: true, value: { type: 'proceed' } }
  const result = check<HookResult>(compiled.hook, value, name)
  if (!result.ok || result.value.type === 'proceed') return result
  const allowed: readonly string[] = HOOK_RETURNS[name as OnHookName]
  const what = result.value.type === 'ignore' ? 'ignore' : result.value.transition
  if (!allowed.includes(what)) return { ok: false, message: `${name} cannot return ApprovalTemplate.${what}(…): runs only move forward (allowed: ${allowed.join(', ')})` }
  return result
}

// ---------------------------------------------------------------------------------------------------------------
// Integration calls: arguments as the sandbox receives them.

const UserRef = Type.Union([Text(320), Type.Object({ id: Text(320), email: Type.Union([Text(320), Type.Null()]) }, { additionalProperties: false })])
const MessageTarget = Type.Union([
  Type.Object({ channel: Text(255) }, { additionalProperties: false }),
  Type.Object({ user: UserRef }, { additionalProperties: false }),
])
const Message = Type.String({ minLength: 1, maxLength: 40_000 })
const Id = Text(1000)
const strict = { additionalProperties: false }

export const HOST_CALL_ARGS = {
  'slack.sendMessage': Type.Object({ to: MessageTarget, message: Message }, strict),
  'slack.sendThreadMessage': Type.Object({ message: Message }, strict),
  'slack.getUserInfo': Type.Object({ user: UserRef }, strict),
  'slack.listUsers': Type.Object({ activeOnly: Type.Boolean() }, strict),
  'slack.usersInChannel': Type.Object({ channel: Text(255) }, strict),
  'slack.isUserInGroup': Type.Object({ user: UserRef, groupId: Id }, strict),
  'slack.mention': Type.Object({ to: MessageTarget }, strict),
  'okta.isUserInGroup': Type.Object({ user: UserRef, groupId: Id }, strict),
  'okta.usersInGroup': Type.Object({ groupId: Id }, strict),
  'okta.getUserInfo': Type.Object({ user: UserRef }, strict),
  'pagerduty.isOnCall': Type.Object({ user: UserRef, scheduleId: Type.Optional(Id), scheduleName: Type.Optional(Id) }, strict),
  'pagerduty.getIncidents': Type.Object({ statuses: Type.Optional(Type.Array(Text(100), { maxItems: 20 })) }, strict),
  'awsLambda.invoke': Type.Object({ arn: Text(2048), payload: Json }, strict),
  'awsLambda.invokeAsync': Type.Object({ arn: Text(2048), payload: Json }, strict),
  'secrets.retrieve': Type.Object({ secretId: Id }, strict),
  'http.fetch': Type.Object(
    {
      url: Type.String({ minLength: 1, maxLength: 8192, pattern: '^https?://' }),
      method: Type.Union(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'].map((m) => Type.Literal(m))),
      headers: Type.Record(Type.String({ minLength: 1, maxLength: 256 }), Type.String({ maxLength: 8192 }), { maxProperties: 50 }),
      body: Type.Optional(Type.String({ maxLength: 1024 * 1024 })),
    },
    strict,
  ),
  'users.getEventCount': Type.Object(
    {
      user: UserRef,
      eventName: Type.Union(['prompt', 'request', 'approve', 'deny', 'escalate', 'deescalate'].map((s) => Type.Literal(s))),
      since: Type.Optional(Type.String({ format: 'date-time' })),
      until: Type.Optional(Type.String({ format: 'date-time' })),
      filterOn: Type.Union([Type.Literal('flow'), Type.Literal('target')]),
      includeErrored: Type.Boolean(),
    },
    strict,
  ),
} satisfies Record<HostMethod, TSchema>

const hostValidators = Object.fromEntries(Object.entries(HOST_CALL_ARGS).map(([m, s]) => [m, Compile(s as TSchema)])) as Record<HostMethod, Validator>

/** Whether `method` is an integration call the SDK knows. */
export function isHostMethod(method: string): method is HostMethod {
  return Object.hasOwn(HOST_CALL_ARGS, method)
}

/** Validates the arguments of an integration call. */
export function checkHostArgs<M extends HostMethod>(method: M, args: unknown): Checked<HostArgs<M>> {
  const validator = hostValidators[method]
  if (validator.Check(args)) return { ok: true, value: args as HostArgs<M> }
  const detail = validator.Errors(args).slice(0, 3).map((e) => `${e.instancePath || '(the arguments)'} ${e.message}`).join('; ')
  return { ok: false, message: `${method} was called with invalid arguments: ${detail}` }
}
