/**
 * Flow implementation shared by the quickstart flows `approval` and `access` (see main.tf).
 *
 * When someone submits a request, the platform calls two reducers from this module:
 *   - `getPermissions`: who may see the request in the web app, and who may approve or deny it;
 *   - `getRequestNotifications`: where the request message is posted (here, the Slack channel #sym-requests).
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
  /** Seconds until the next notification in the list is tried; `null` waits forever. */
  timeout: number | null
}

/** The parts of the request event this file reads. */
export interface Event {
  user: { email: string | null }
  flow: { name: string; vars: Record<string, string> }
  payload: { fields: Record<string, unknown> }
}

const REQUEST_CHANNEL = '#sym-requests'

/** Any member of the organization may see and approve requests. */
export function getPermissions(_event: Event): RequestPermission {
  return {
    webappView: 'member',
    approveDeny: 'member',
    // Lets you try the flows on your own. Set this to false before real use.
    allowSelfApproval: true,
  }
}

/** Every request is posted to #sym-requests (the channel must exist in your Slack workspace). */
export function getRequestNotifications(_event: Event): Notification[] {
  return [{ destinations: [{ type: 'slack_channel', channel: REQUEST_CHANNEL }], timeout: null }]
}
