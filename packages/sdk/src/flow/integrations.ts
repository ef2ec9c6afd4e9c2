/**
 * Integration helpers. Destinations (`slack.channel`, `slack.user`, …) are plain data built here; every other
 * function is an async call that leaves the sandbox and is made by the platform with the environment's
 * integrations (`event.flow.environment.integrations`). A call the platform cannot make rejects with an
 * `IntegrationError`.
 */
import type { JsonObject, JsonValue, SlackDestinationData, UserData } from './data.js'
import { isUser, User, userRef } from './event.js'
import { callHost, type SlackMessageTargetData } from './host.js'
import type {
  RequestDestination,
  RequestDestinationFallback,
  SlackChannelDestination,
  SlackGroupDestination,
  SlackUserDestination,
} from './notifications.js'

/** Legacy `getApprovers` options of a Slack destination. */
export interface DestinationOptions {
  /** Whether the requester may approve their own request (legacy; `getPermissions` has `allowSelfApproval`). */
  readonly allowSelf?: boolean
  /** Seconds before the request expires (legacy; notifications have `timeout`). */
  readonly timeout?: number | null
}

function options(o: DestinationOptions): DestinationOptions {
  return { ...(o.allowSelf !== undefined ? { allowSelf: o.allowSelf } : {}), ...(o.timeout !== undefined ? { timeout: o.timeout } : {}) }
}

const toUsers = (list: UserData[]): User[] => list.map((u) => new User(u))

/** Who `slack.sendMessage` and `slack.mention` address: a channel (`#name`, `C…`), an email or Slack ID, a `User`, or a destination. */
export type SlackTarget = string | User | SlackChannelDestination | SlackUserDestination

function slackTarget(to: SlackTarget): SlackMessageTargetData {
  if (isUser(to)) return { user: userRef(to) }
  if (typeof to === 'string') return /^#|^[CG][A-Z0-9]{6,}$/.test(to) ? { channel: to } : { user: to }
  return to.type === 'slack_channel' ? { channel: to.channel } : { user: to.user }
}

/**
 * Slack: request destinations, messages and lookups in the environment's Slack workspace.
 *
 * @example
 * ```ts
 * export function getRequestNotifications(event: Event): Notification[] {
 *   // Back to the channel the request came from, else #sym-requests.
 *   const origin = event.run.sourceChannel?.identifier
 *   return [{ destinations: [origin ? slack.fallback([slack.channel(origin), slack.channel('#sym-requests')]) : slack.channel('#sym-requests')] }]
 * }
 *
 * export async function afterApprove(event: Event) {
 *   await slack.sendMessage('#audit', `${event.user.email} approved ${event.run.srn}`)
 * }
 * ```
 */
export const slack = {
  /** A channel: `#name` or a channel ID (`C…`). */
  channel(name: string, opts: DestinationOptions = {}): SlackChannelDestination {
    return { type: 'slack_channel', channel: String(name), ...options(opts) }
  },
  /** A direct message to one person: a `User`, an email or a Slack user ID. */
  user(who: string | User, opts: DestinationOptions = {}): SlackUserDestination {
    return { type: 'slack_user', user: isUser(who) ? who.id : String(who), ...options(opts) }
  },
  /** A group direct message. */
  group(users: readonly (string | User)[], opts: DestinationOptions = {}): SlackGroupDestination {
    return { type: 'slack_group', users: users.map((u) => (isUser(u) ? u.id : String(u))), ...options(opts) }
  },
  /**
   * The first of `destinations` that can be delivered to. By default a delivery failure moves on to the next one
   * and a timeout does not.
   */
  fallback(
    destinations: readonly RequestDestination[],
    opts: { readonly continueOnDeliveryFailure?: boolean; readonly continueOnTimeout?: boolean } = {},
  ): RequestDestinationFallback {
    return {
      type: 'fallback',
      destinations: destinations.map((d): SlackDestinationData => ({ ...d })),
      continueOnDeliveryFailure: opts.continueOnDeliveryFailure ?? true,
      continueOnTimeout: opts.continueOnTimeout ?? false,
    }
  },
  /** Posts `message` (Slack mrkdwn) to a channel or a person. */
  async sendMessage(to: SlackTarget, message: string): Promise<void> {
    await callHost('slack.sendMessage', { to: slackTarget(to), message: String(message) })
  },
  /** Replies in the thread of this run's request message. */
  async sendThreadMessage(message: string): Promise<void> {
    await callHost('slack.sendThreadMessage', { message: String(message) })
  },
  /** Slack's `users.info` for this person. */
  getUserInfo(user: User | string): Promise<JsonObject> {
    return callHost('slack.getUserInfo', { user: userRef(user) })
  },
  /** The workspace's users (active ones only unless `activeOnly` is false). */
  async listUsers({ activeOnly = true }: { readonly activeOnly?: boolean } = {}): Promise<User[]> {
    return toUsers(await callHost('slack.listUsers', { activeOnly }))
  },
  /** The members of a channel. */
  async usersInChannel(channel: string): Promise<User[]> {
    return toUsers(await callHost('slack.usersInChannel', { channel: String(channel) }))
  },
  /** Whether the person is in a Slack user group (`S…`). */
  isUserInGroup(user: User | string, { groupId }: { readonly groupId: string }): Promise<boolean> {
    return callHost('slack.isUserInGroup', { user: userRef(user), groupId: String(groupId) })
  },
  /** A mention for a message: `<@U…>` for a person, `<#C…>` for a channel. */
  mention(to: SlackTarget): Promise<string> {
    return callHost('slack.mention', { to: slackTarget(to) })
  },
} as const

/**
 * Okta, through the environment's `okta` integration.
 * @example
 * ```ts
 * export async function onApprove(event: Event) {
 *   if (!(await okta.isUserInGroup(event.user, { groupId: '00g123' }))) return ApprovalTemplate.ignore({ message: 'Not an approver.' })
 * }
 * ```
 */
export const okta = {
  /** Whether the user is a member of the Okta group. */
  isUserInGroup(user: User | string, { groupId }: { readonly groupId: string }): Promise<boolean> {
    return callHost('okta.isUserInGroup', { user: userRef(user), groupId: String(groupId) })
  },
  /** The platform users who are members of the Okta group. */
  async usersInGroup({ groupId }: { readonly groupId: string }): Promise<User[]> {
    return toUsers(await callHost('okta.usersInGroup', { groupId: String(groupId) }))
  },
  /** Okta's user record (with `profile`, e.g. `profile.department`). */
  getUserInfo(user: User | string): Promise<JsonObject> {
    return callHost('okta.getUserInfo', { user: userRef(user) })
  },
} as const

/**
 * PagerDuty, through the environment's `pagerduty` integration.
 * @example
 * ```ts
 * export async function onRequest(event: Event) {
 *   if (await pagerduty.isOnCall(event.user, { scheduleName: 'Primary' })) return ApprovalTemplate.approve({ reason: 'On call' })
 * }
 * ```
 */
export const pagerduty = {
  /** Whether the user is on call now: on any schedule, or on the one named or given by ID. */
  isOnCall(user: User | string, schedule: { readonly scheduleId?: string; readonly scheduleName?: string } = {}): Promise<boolean> {
    return callHost('pagerduty.isOnCall', {
      user: userRef(user),
      ...(schedule.scheduleId !== undefined ? { scheduleId: String(schedule.scheduleId) } : {}),
      ...(schedule.scheduleName !== undefined ? { scheduleName: String(schedule.scheduleName) } : {}),
    })
  },
  /** Current incidents (by default triggered and acknowledged ones). */
  getIncidents({ statuses }: { readonly statuses?: readonly string[] } = {}): Promise<JsonObject[]> {
    return callHost('pagerduty.getIncidents', statuses ? { statuses: statuses.map(String) } : {})
  },
} as const

/**
 * AWS Lambda, through the environment's `aws_lambda` integration (a permission context allowed to invoke).
 * @example
 * ```ts
 * export async function afterRequest(event: Event) {
 *   await awsLambda.invokeAsync(event.flow.vars.audit_lambda!, { run: event.run.id, user: event.user.email })
 * }
 * ```
 */
export const awsLambda = {
  /** Invokes the function with `payload` (anything `JSON.stringify` encodes, an `Event` too) and waits for its JSON response. */
  invoke(arn: string, payload: unknown): Promise<JsonValue> {
    return callHost('awsLambda.invoke', { arn: String(arn), payload: payload as JsonValue })
  },
  /** Invokes the function without waiting for it to run. */
  async invokeAsync(arn: string, payload: unknown): Promise<void> {
    await callHost('awsLambda.invokeAsync', { arn: String(arn), payload: payload as JsonValue })
  },
} as const
