/**
 * The run state machine of Sym's one template, `sym:template:approval:1.0.0`:
 * prompt → request → approve | deny → escalate → deescalate, forward only. Requests nobody acts on expire; an
 * approval-only flow (no strategy) ends at approved. Every rule about which step may follow which lives here.
 */

export const TEMPLATE_SRN = 'sym:template:approval:1.0.0'

export const RUN_STATUSES = ['requested', 'approved', 'denied', 'expired', 'escalated', 'deescalated', 'errored'] as const
export type RunStatus = (typeof RUN_STATUSES)[number]

/** Steps that are events of the template; `expire` is the platform's own step for an unanswered request. */
export const STEPS = ['prompt', 'request', 'approve', 'deny', 'escalate', 'deescalate', 'expire'] as const
export type Step = (typeof STEPS)[number]

export const EVENT_CHANNELS = ['slack', 'api', 'sdk', 'internal'] as const
export type EventChannel = (typeof EVENT_CHANNELS)[number]

export const EVENT_STATUSES = ['pending', 'success', 'error'] as const
export type EventStatus = (typeof EVENT_STATUSES)[number]

/** Statuses a run never leaves. */
export const TERMINAL_STATUSES: ReadonlySet<RunStatus> = new Set(['denied', 'expired', 'deescalated', 'errored'])

/** From which status each step may start, and where it leads. `prompt` happens before a run has a status. */
const TRANSITIONS: Readonly<Record<Exclude<Step, 'prompt' | 'request'>, { from: RunStatus; to: RunStatus }>> = {
  approve: { from: 'requested', to: 'approved' },
  deny: { from: 'requested', to: 'denied' },
  expire: { from: 'requested', to: 'expired' },
  escalate: { from: 'approved', to: 'escalated' },
  deescalate: { from: 'escalated', to: 'deescalated' },
}

/** The words the messages use, as Sym writes them ("Cannot de-escalate a run…"). */
const VERB: Readonly<Record<Step, string>> = {
  prompt: 'prompt',
  request: 'request',
  approve: 'approve',
  deny: 'deny',
  expire: 'expire',
  escalate: 'escalate',
  deescalate: 'de-escalate',
}

export type TransitionResult = { readonly ok: true; readonly to: RunStatus } | { readonly ok: false; readonly reason: string }

/**
 * Where `step` takes a run in `status`, or why it may not happen, in Sym's words:
 * "Cannot de-escalate a run with status 'requested'. Status must be 'escalated'."
 */
export function transition(status: RunStatus, step: Step): TransitionResult {
  if (step === 'prompt' || step === 'request') {
    return { ok: false, reason: `Cannot ${VERB[step]} on an existing run; start a new run instead.` }
  }
  const rule = TRANSITIONS[step]
  if (status !== rule.from) {
    return { ok: false, reason: `Cannot ${VERB[step]} a run with status '${status}'. Status must be '${rule.from}'.` }
  }
  return { ok: true, to: rule.to }
}

/**
 * Where a run goes when `step` fails for good (its strategy refused, or every retry failed). Only a failed escalate
 * ends the run (`errored`): nothing was granted. Any other failure leaves the run where it is, with the failed event
 * recorded — above all a failed de-escalate, whose access is still in place and must be removed later.
 */
export function failureStatus(status: RunStatus, step: Step): RunStatus | undefined {
  return step === 'escalate' && status === 'approved' ? 'errored' : undefined
}

/** Whether a run in `status` is finished: terminal statuses, and `approved` for approval-only flows. */
export function isFinished(status: RunStatus, hasStrategy: boolean): boolean {
  return TERMINAL_STATUSES.has(status) || (status === 'approved' && !hasStrategy)
}

/** When access granted at `escalatedAt` ends: after the requested duration, unless de-escalation is not scheduled. */
export function accessExpiresAt(escalatedAt: Date, durationSeconds: number | null | undefined, scheduleDeescalation: boolean): Date | null {
  if (!scheduleDeescalation || durationSeconds === null || durationSeconds === undefined) return null
  return new Date(escalatedAt.getTime() + durationSeconds * 1000)
}

/** How long a request may wait for a decision, when the deployment does not say: a day. */
export const DEFAULT_REQUEST_EXPIRY_SECONDS = 86_400

/** When an unanswered request made at `requestedAt` expires. */
export function requestExpiresAt(requestedAt: Date, expirySeconds: number = DEFAULT_REQUEST_EXPIRY_SECONDS): Date {
  return new Date(requestedAt.getTime() + expirySeconds * 1000)
}

/** What follows a successful step without anyone acting: escalate after approve (access flows only). */
export function nextStep(step: Step, hasStrategy: boolean): Step | undefined {
  if (step === 'approve' && hasStrategy) return 'escalate'
  return undefined
}

/** Where a run was started from, as `allowed_sources` names it. */
export type RunSource = 'slack' | 'api'

/**
 * `allowed_sources`: unset (undefined) allows every source; a list allows those only, so `[]` allows none.
 * Returns the message for a refusal.
 */
export function sourceRefusal(allowedSources: readonly string[] | undefined, source: RunSource, flowSlug: string): string | undefined {
  if (allowedSources === undefined || allowedSources.includes(source)) return undefined
  const allowed = allowedSources.length ? allowedSources.join(', ') : 'none'
  return `Flow '${flowSlug}' cannot be started from ${source === 'api' ? 'the API' : 'Slack'} (allowed_sources: ${allowed}).`
}

/** The roles and ids that matter when someone acts on a run. */
export interface Actor {
  readonly userId: string
  readonly userType: 'normal' | 'bot'
  readonly role: 'admin' | 'member' | 'guest'
}

/**
 * Who may approve or deny, as the flow's permissions say (SDK `RequestPermission.approve_deny`): a level or a list
 * of user ids. Admins always may. Without a getPermissions reducer, Sym implies admin. Bots act for automation
 * that an admin set up with their token, so they count as admins here.
 */
export type ApproveDenyPermission = 'admin' | 'member' | 'all_users' | readonly string[]

export interface RequestPermission {
  readonly approveDeny: ApproveDenyPermission
  readonly allowSelfApproval: boolean
  /** Who may see the request in the web app (stored with the run; admins always may). */
  readonly webappView?: ApproveDenyPermission
}

export const DEFAULT_REQUEST_PERMISSION: RequestPermission = { approveDeny: 'admin', allowSelfApproval: false }

/** Why `actor` may not approve or deny the request of `requesterId`, if they may not. */
export function decisionRefusal(
  actor: Actor,
  requesterId: string,
  permission: RequestPermission,
  options: { allowGuestInteraction: boolean },
): string | undefined {
  if (actor.userId === requesterId && !permission.allowSelfApproval) return 'You cannot approve or deny your own request.'
  if (actor.role === 'guest' && actor.userType === 'normal' && !options.allowGuestInteraction) {
    return 'Guests cannot act on requests of this flow.'
  }
  if (actor.userType === 'bot' || actor.role === 'admin') return undefined
  const rule = permission.approveDeny
  if (typeof rule !== 'string') return rule.includes(actor.userId) ? undefined : 'You are not an approver of this request.'
  if (rule === 'all_users' || (rule === 'member' && actor.role === 'member')) return undefined
  return 'You are not an approver of this request.'
}

/**
 * Revoke (a manual de-escalate) needs `allow_revoke`, and is for the requester or someone who may decide; bots
 * (the Events API) always may when revoking is allowed.
 */
export function revokeRefusal(
  actor: Actor,
  requesterId: string,
  permission: RequestPermission,
  options: { allowRevoke: boolean; allowGuestInteraction: boolean },
): string | undefined {
  if (!options.allowRevoke) return 'This flow does not allow revoking access (allow_revoke is false).'
  if (actor.userId === requesterId || actor.userType === 'bot') return undefined
  return decisionRefusal(actor, requesterId, { ...permission, allowSelfApproval: true }, options) === undefined
    ? undefined
    : 'Only the requester or an approver can revoke this access.'
}
