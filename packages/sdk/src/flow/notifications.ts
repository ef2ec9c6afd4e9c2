/**
 * Notifications: where `getRequestNotifications` sends a request, as a chain. Each `Notification` has destinations
 * and a timeout; when the timeout passes without a decision (or nothing could be delivered), the request moves on
 * to the next notification; after the last one, the request expires and the requester is told.
 */
import type {
  FallbackDestinationData,
  SlackChannelDestinationData,
  SlackGroupDestinationData,
  SlackUserDestinationData,
  UserDestinationData,
} from './data.js'
import type { User } from './event.js'

export type SlackChannelDestination = SlackChannelDestinationData
export type SlackUserDestination = SlackUserDestinationData
export type SlackGroupDestination = SlackGroupDestinationData
export type UserDestination = UserDestinationData
/** A Slack destination: `slack.channel(…)`, `slack.user(…)`, `slack.group(…)`. */
export type RequestDestination = SlackChannelDestination | SlackUserDestination | SlackGroupDestination
/** `slack.fallback(…)`: the first destination that can be delivered to. */
export type RequestDestinationFallback = FallbackDestinationData

/** A destination of a notification. A `User` is notified directly (Slack DM or email). */
export type NotificationDestination = RequestDestination | RequestDestinationFallback | UserDestination | User

/**
 * One link of the chain `getRequestNotifications` returns. At most one Slack destination per notification.
 *
 * @example Post to the team channel; if nobody decides within 15 minutes, DM the on-call manager too:
 * ```ts
 * export function getRequestNotifications(event: Event): Notification[] {
 *   return [
 *     { destinations: [slack.channel('#access-requests')], timeout: 15 * 60 },
 *     { destinations: [slack.user(event.flow.vars.manager_email!)], timeout: null },
 *   ]
 * }
 * ```
 */
export interface Notification {
  /** Where the request is sent (at least one). */
  readonly destinations: readonly NotificationDestination[]
  /** Seconds until the request moves on to the next notification (or expires); `null` or omitted: never. */
  readonly timeout?: number | null
}
