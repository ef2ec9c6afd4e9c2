/**
 * Flow implementation of `backoffice-access` (see main.tf): who may approve back-office roles, and where requests
 * go. Granting is strategy.ts's job; this file only routes the request.
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
}

const DEFAULT_CHANNEL = '#sym-requests'

/** How long the request channel has to decide before the request also goes to the backup channel. */
const BACKUP_AFTER_SECONDS = 60 * 60

/** Any member may approve, but not their own request: these roles act on customers' data. */
export function getPermissions(_event: Event): RequestPermission {
  return { webappView: 'member', approveDeny: 'member', allowSelfApproval: false }
}

/**
 * Requests go to the request channel; if nobody decides within an hour, to the backup channel, where they wait
 * until someone does.
 */
export function getRequestNotifications(event: Event): Notification[] {
  const requests = event.flow.vars.request_channel || DEFAULT_CHANNEL
  const backup = event.flow.vars.backup_channel
  const channel = (name: string): SlackChannelDestination => ({ type: 'slack_channel', channel: name })
  if (!backup || backup === requests) return [{ destinations: [channel(requests)], timeout: null }]
  return [
    { destinations: [channel(requests)], timeout: BACKUP_AFTER_SECONDS },
    { destinations: [channel(backup)], timeout: null },
  ]
}
