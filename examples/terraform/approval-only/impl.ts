/**
 * Flow implementation of `change-approval` (see main.tf): who may approve a change, and where the request goes.
 *
 * When someone submits a request, the platform calls two reducers from this module:
 *   - `getPermissions`: who may see the request in the web app, and who may approve or deny it;
 *   - `getRequestNotifications`: where the request message is posted, as a chain: when a notification times out
 *     without a decision, the request moves on to the next one; after the last, the request expires.
 *
 * This file has no imports, so that it type-checks on its own; the platform runs it as it is. The few types below
 * describe only what it uses, in the shapes of the SDK's types of the same names: with
 * `import { slack, type Event, type Notification, type RequestPermission } from '@opensym/sdk'` they can go, and
 * `slack.channel(name)` builds the same destination (see packages/sdk/README.md).
 */

/** Who may act: a role level, or a list of user IDs. */
export type PermissionLevel = 'admin' | 'member' | 'all_users'

export interface RequestPermission {
  /** Who may view the request in the web app. */
  webappView: PermissionLevel | string[]
  /** Who may press Approve or Deny. Admins always can. */
  approveDeny: PermissionLevel | string[]
  /** Whether requesters may approve their own requests. */
  allowSelfApproval: boolean
}

export interface SlackChannelDestination {
  type: 'slack_channel'
  /** `#name` or a channel ID (`C…`). */
  channel: string
}

export interface Notification {
  /** Where the request message is sent. */
  destinations: SlackChannelDestination[]
  /** Seconds until the request moves on to the next notification in the list; `null` waits forever. */
  timeout: number | null
}

/** The parts of the request event this file reads. */
export interface Event {
  /** `vars` are the flow's `vars` from main.tf; a var removed there is missing here. */
  flow: { name: string; vars: Record<string, string | undefined> }
  /** The submitted form: one entry per prompt_field of main.tf (optional fields may be missing). */
  payload: { fields: Record<string, unknown> }
}

/** Used when a var is missing from main.tf, so a trimmed-down configuration still routes somewhere. */
const DEFAULT_CHANNEL = '#sym-requests'

/** How long the on-call channel has to react to an urgent change before everyone in the request channel sees it. */
const URGENT_TIMEOUT_SECONDS = 15 * 60

/**
 * Any member may see and decide on a change, but never their own: the point of a change approval is a second
 * pair of eyes. (To try the flow alone, set `allowSelfApproval` to true.)
 */
export function getPermissions(_event: Event): RequestPermission {
  return { webappView: 'member', approveDeny: 'member', allowSelfApproval: false }
}

/**
 * Normal changes go to the request channel and wait there. Urgent ones go to the on-call channel first, and to
 * the request channel as well if nobody decides within 15 minutes.
 */
export function getRequestNotifications(event: Event): Notification[] {
  const requests = event.flow.vars.request_channel || DEFAULT_CHANNEL
  const urgent = event.flow.vars.urgent_channel || requests
  const channel = (name: string): SlackChannelDestination => ({ type: 'slack_channel', channel: name })

  if (event.payload.fields.urgency !== 'urgent' || urgent === requests) return [{ destinations: [channel(requests)], timeout: null }]
  return [
    { destinations: [channel(urgent)], timeout: URGENT_TIMEOUT_SECONDS },
    { destinations: [channel(requests)], timeout: null },
  ]
}
