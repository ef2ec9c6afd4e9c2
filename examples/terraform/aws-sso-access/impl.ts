/**
 * Flow implementation of `aws-sso-access` (see main.tf): production permission sets need an admin's approval and
 * are discussed in their own channel; everything else is approved by any member in the request channel.
 *
 * When someone submits a request, the platform calls two reducers from this module:
 *   - `getPermissions`: who may see the request in the web app, and who may approve or deny it;
 *   - `getRequestNotifications`: where the request message is posted.
 * On approval the flow's `aws_sso` strategy creates the account assignment; nothing here grants access.
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

/** The `sym_target` the requester picked. */
export interface Target {
  /** The target's `name` in main.tf. */
  name: string
  /** Here `permission_set_arn` and `account_id`. */
  settings: Record<string, string>
}

/** The parts of the request event this file reads. */
export interface Event {
  /** `vars` are the flow's `vars` from main.tf; a var removed there is missing here. */
  flow: { name: string; vars: Record<string, string | undefined> }
  /** The submitted form: the prompt fields of main.tf and the chosen `target`. */
  payload: { fields: { target?: Target; [name: string]: unknown } }
}

const DEFAULT_CHANNEL = '#sym-requests'

/** `vars` hold strings only, so lists are comma-separated; empty items (from `""` or a trailing comma) are dropped. */
function listVar(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '')
}

/**
 * Whether the request is for a permission set marked `production` in variables.tf. A request without a target
 * counts as production, so that a form changed by mistake fails closed (admins only) rather than open.
 */
function isProduction(event: Event): boolean {
  const target = event.payload.fields.target
  return target === undefined || listVar(event.flow.vars.production_targets).includes(target.name)
}

/** Admins decide on production access, members on the rest; nobody approves their own request. */
export function getPermissions(event: Event): RequestPermission {
  return { webappView: 'member', approveDeny: isProduction(event) ? 'admin' : 'member', allowSelfApproval: false }
}

/** Production requests go to their own channel, so that the people who may approve them see them. */
export function getRequestNotifications(event: Event): Notification[] {
  const general = event.flow.vars.request_channel || DEFAULT_CHANNEL
  const channel = isProduction(event) ? event.flow.vars.production_request_channel || general : general
  return [{ destinations: [{ type: 'slack_channel', channel }], timeout: null }]
}
