/**
 * Flows written before `getPermissions` and `getRequestNotifications` existed return one destination from
 * `getApprovers` (with `allowSelf` and `timeout` on it). This says what that means in today's terms.
 */
import type { NotificationData, RequestPermissionData } from '@opensym/sdk/flow'
import type { ReducerResults } from '@opensym/sdk/validation'

/**
 * The permissions and notification chain equivalent to a legacy `getApprovers` result: members may view and
 * decide (anyone who could see the message could press its buttons), the requester only with `allowSelf`, and the
 * destination's `timeout` is the request's expiry.
 */
export function legacyRouting(approvers: ReducerResults['getApprovers']): { permission: RequestPermissionData; notifications: NotificationData[] } {
  const destinations = approvers.type === 'fallback' ? approvers.destinations : [approvers]
  const allowSelf = destinations.some((d) => d.allowSelf === true)
  const timeout = destinations.find((d) => d.timeout !== undefined)?.timeout ?? null
  return {
    permission: { webappView: 'member', approveDeny: 'member', allowSelfApproval: allowSelf },
    notifications: [{ destinations: [approvers], timeout }],
  }
}
