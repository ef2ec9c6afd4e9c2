/**
 * `ApprovalTemplate`: what a hook returns to steer the run instead of letting the event proceed.
 */
import type { JsonObject, JsonValue, StepName, TransitionName } from './data.js'

const RESULT = Symbol.for('opensym.sdk.HookReturn')

/** The steps of the approval template, for `getActor`, `getContext`, `getEventCount`. */
export const ApprovalTemplateStep = {
  PROMPT: 'prompt',
  REQUEST: 'request',
  APPROVE: 'approve',
  DENY: 'deny',
  ESCALATE: 'escalate',
  DEESCALATE: 'deescalate',
} as const satisfies Record<string, StepName>
export type ApprovalTemplateStep = StepName

/** A transition a hook returns: "replace this event with a `transition` event carrying these fields". */
export interface Transition<T extends TransitionName = TransitionName> {
  readonly [RESULT]: 'transition'
  readonly transition: T
  readonly fields: Readonly<JsonObject>
  readonly targetSrn?: string
  readonly duration?: number
}

/** What `ApprovalTemplate.ignore` returns: "reject the actor's action with this message". */
export interface Ignore {
  readonly [RESULT]: 'ignore'
  readonly message: string
}

/** What any hook may return. Each hook accepts only some of these: see `HookReturns`. */
export type HookReturn = Transition | Ignore

/**
 * Keyword arguments of a transition. `targetSrn` and `duration` (seconds) are needed only when the run has no
 * submitted request yet (approving from `onPrompt`); every other key becomes a payload field of the new event,
 * e.g. `reason`.
 */
export type TransitionArgs = {
  readonly targetSrn?: string
  readonly duration?: number
  readonly [field: string]: JsonValue | undefined
}

function transition<T extends TransitionName>(name: T, args: TransitionArgs = {}): Transition<T> {
  const { targetSrn, duration, ...rest } = args
  const fields: JsonObject = {}
  for (const [k, v] of Object.entries(rest)) if (v !== undefined) fields[k] = v
  return {
    [RESULT]: 'transition',
    transition: name,
    fields,
    ...(typeof targetSrn === 'string' ? { targetSrn } : {}),
    ...(typeof duration === 'number' ? { duration } : {}),
  }
}

/**
 * The approval template's transitions, for hooks to return.
 *
 * @example Auto-approve from `onRequest` (the run is escalated without anyone pressing Approve):
 * ```ts
 * export function onRequest(event: Event) {
 *   if (event.payload.fields.urgency === 'emergency') return ApprovalTemplate.approve({ reason: 'Emergency: auto-approved' })
 * }
 * ```
 * @example Refuse an approver in `onApprove` (the run stays `requested`; the approver sees the message):
 * ```ts
 * export async function onApprove(event: Event) {
 *   if (!(await okta.isUserInGroup(event.user, { groupId: event.flow.vars.approvers_group! }))) {
 *     return ApprovalTemplate.ignore({ message: 'Only the on-call team can approve this.' })
 *   }
 * }
 * ```
 */
export const ApprovalTemplate = {
  /** Submit the request (from `onPrompt`); from `onRequest` it is the event itself, which is processed once. */
  request: (args?: TransitionArgs): Transition<'request'> => transition('request', args),
  /** Approve the request. Keyword arguments (e.g. `reason`) become the approve event's fields. */
  approve: (args?: TransitionArgs): Transition<'approve'> => transition('approve', args),
  /** Deny the request. Keyword arguments (e.g. `reason`) become the deny event's fields. */
  deny: (args?: TransitionArgs): Transition<'deny'> => transition('deny', args),
  /** End the access now (from `onEscalate`), or let a de-escalation through with these fields. */
  deescalate: (args?: Omit<TransitionArgs, 'duration'>): Transition<'deescalate'> => transition('deescalate', args),
  /** Reject the action of the person who triggered the event, telling them `message`. Not a transition. */
  ignore: ({ message }: { readonly message: string }): Ignore => ({ [RESULT]: 'ignore', message: String(message) }),
} as const

/** Whether `value` was made by `ApprovalTemplate` (also across copies of the SDK module). */
export function hookReturnKind(value: unknown): 'transition' | 'ignore' | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const kind = (value as { [RESULT]?: unknown })[RESULT]
  return kind === 'transition' || kind === 'ignore' ? kind : undefined
}

/**
 * What each `on…` hook may return besides nothing. Runs only move forward: `onRequest` may approve, but
 * `onEscalate` cannot ignore (escalation is not a person's action) and nothing can go back to `request` once it
 * was decided. Returning the hook's own step (`request` from `onRequest`) is processed once, as the event itself.
 */
export const HOOK_RETURNS = {
  onPrompt: ['request', 'approve', 'deny', 'ignore'],
  onRequest: ['request', 'approve', 'deny', 'ignore'],
  onApprove: ['approve', 'deny', 'ignore'],
  onDeny: ['deny', 'ignore'],
  onEscalate: ['deescalate'],
  onDeescalate: ['deescalate', 'ignore'],
} as const satisfies Record<string, readonly (TransitionName | 'ignore')[]>

export type OnHookName = keyof typeof HOOK_RETURNS

type Allowed<H extends OnHookName> = (typeof HOOK_RETURNS)[H][number]
type ReturnOf<A> = A extends 'ignore' ? Ignore : A extends TransitionName ? Transition<A> : never
/** The return type of each `on…` hook: nothing, or one of its allowed results. */
export type HookReturns = { [H in OnHookName]: void | undefined | ReturnOf<Allowed<H>> }
