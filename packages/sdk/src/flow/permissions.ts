/**
 * `RequestPermission`: who may see a request in the web app and who may approve or deny it, as `getPermissions`
 * returns it.
 */
import type { User } from './event.js'

/**
 * Role levels, from the most to the least restrictive: `admin` (admins only), `member` (admins and members),
 * `all_users` (also guests, when the flow sets `allow_guest_interaction`).
 */
export const PermissionLevel = {
  ADMIN: 'admin',
  MEMBER: 'member',
  ALL_USERS: 'all_users',
} as const
export type PermissionLevel = (typeof PermissionLevel)[keyof typeof PermissionLevel]

/**
 * A role level, or the users who may: their IDs (`userIds(users)`) or the `User`s themselves. Admins always may.
 */
export type Permission = PermissionLevel | readonly (string | User)[]

/**
 * What `getPermissions` returns.
 *
 * @example
 * ```ts
 * import { PermissionLevel, userIds, okta, type Event, type RequestPermission } from '@opensym/sdk'
 *
 * export async function getPermissions(event: Event): Promise<RequestPermission> {
 *   const approvers = await okta.usersInGroup({ groupId: event.flow.vars.approvers_group! })
 *   return { webappView: PermissionLevel.MEMBER, approveDeny: userIds(approvers), allowSelfApproval: false }
 * }
 * ```
 */
export interface RequestPermission {
  /** Who may view the request in the web app. */
  readonly webappView: Permission
  /** Who may press Approve or Deny. Admins always can. */
  readonly approveDeny: Permission
  /** Whether requesters may approve or deny their own requests. Default false. */
  readonly allowSelfApproval?: boolean
}
