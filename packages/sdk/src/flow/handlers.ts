/**
 * The reducers and hooks a flow implementation may export, with their signatures. The platform calls only these
 * names; anything else the module exports is ignored.
 *
 * | Export | When | Returns |
 * |---|---|---|
 * | `getPermissions` | a request is routed | `RequestPermission`: who may view and who may approve/deny |
 * | `getRequestNotifications` | a request is routed | `Notification[]`: the chain of destinations with timeouts |
 * | `getApprovers` (legacy) | a request is routed, without the two above | one Slack destination or a fallback |
 * | `getIdentity` | a user's identity in a service is needed and none is stored | their ID there, or nothing |
 * | `prefetch.<field>` | the request form opens, for a `prefetch = true` field | the dropdown's `FieldOption`s |
 * | `onPrompt` … `onDeescalate` | before the step is processed | nothing, or an `ApprovalTemplate` result |
 * | `afterPrompt` … `afterDeescalate` | after the step was processed | nothing (the value is ignored) |
 */
import type { Event, User } from './event.js'
import type { Notification, RequestDestination, RequestDestinationFallback } from './notifications.js'
import type { RequestPermission } from './permissions.js'
import type { HookReturns, OnHookName } from './templates.js'

type Awaitable<T> = T | Promise<T>

/** An option of a prefetched dropdown: `{value, label}` (both at most 55 characters), or a string for both. */
export type FieldOption = { readonly value: string; readonly label?: string } | string

/** What `getIdentity` is asked. */
export interface IdentityRequest {
  /** The service type, e.g. `okta`, `aws_sso`, `github`. */
  readonly service: string
  /** Which instance of it: the integration's `external_id` (an Okta domain, an AWS account, a GitHub org). */
  readonly externalId: string
  /** Whose identity (usually the requester). */
  readonly user: User
}

export const REDUCER_NAMES = ['getPermissions', 'getRequestNotifications', 'getApprovers', 'getIdentity'] as const
export type ReducerName = (typeof REDUCER_NAMES)[number]

export const ON_HOOK_NAMES = ['onPrompt', 'onRequest', 'onApprove', 'onDeny', 'onEscalate', 'onDeescalate'] as const satisfies readonly OnHookName[]
export const AFTER_HOOK_NAMES = ['afterPrompt', 'afterRequest', 'afterApprove', 'afterDeny', 'afterEscalate', 'afterDeescalate'] as const
export type AfterHookName = (typeof AFTER_HOOK_NAMES)[number]
export const HOOK_NAMES = [...ON_HOOK_NAMES, ...AFTER_HOOK_NAMES] as const
export type HookName = OnHookName | AfterHookName

/** The name of the export holding prefetch reducers, by field name. */
export const PREFETCH_EXPORT = 'prefetch'

/** Reducer signatures. */
export interface Reducers {
  getPermissions(event: Event): Awaitable<RequestPermission>
  getRequestNotifications(event: Event): Awaitable<readonly Notification[]>
  /** Legacy: where the request goes, before `getPermissions` and `getRequestNotifications` existed. */
  getApprovers(event: Event): Awaitable<RequestDestination | RequestDestinationFallback>
  /** The user's ID in the service, or nothing to let the platform look them up by email. */
  getIdentity(event: Event, request: IdentityRequest): Awaitable<string | null | undefined>
}

/** Hook signatures: `on…` hooks may steer the run (see `HOOK_RETURNS`), `after…` hooks only do side effects. */
export type Hooks = { [H in OnHookName]: (event: Event) => Awaitable<HookReturns[H]> } & {
  [H in AfterHookName]: (event: Event) => Awaitable<unknown>
}

/** Prefetch reducers, by prompt field name (fields with `prefetch = true`). */
export type PrefetchReducers = Readonly<Record<string, (event: Event) => Awaitable<readonly FieldOption[]>>>

/**
 * The shape of a flow implementation module. Every export is optional; use it to check a module:
 *
 * @example
 * ```ts
 * // impl.test.ts
 * import * as impl from './impl'
 * import type { FlowImplementation } from '@opensym/sdk'
 * impl satisfies FlowImplementation
 * ```
 * or to type one handler: `export const onRequest: Hooks['onRequest'] = (event) => { … }`.
 */
export type FlowImplementation = Partial<Reducers> & Partial<Hooks> & { readonly prefetch?: PrefetchReducers }
