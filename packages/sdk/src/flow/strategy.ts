/**
 * Custom strategies: a `sym_strategy` of type `custom` is a module (its `implementation`) exporting the three
 * functions of Sym's `AccessStrategy` class (`fetch_remote_identity`, `escalate`, `deescalate`), as plain functions
 * with camelCase names. Where the Python methods had `self`, the functions take the strategy as their last
 * argument: its integration, `getRequesterIdentity`, and `fetch` (HTTP through the platform: the sandbox has no
 * network of its own).
 *
 * | Export | When | Returns |
 * |---|---|---|
 * | `fetchRemoteIdentity(user, strategy)` | the requester has no identity stored for the strategy's integration | their ID in the system, or nothing (the escalate then fails naming the user) |
 * | `escalate(targetId, event, strategy)` | the request was approved | the step's output (an object, for `getStepOutput()` and the audit log), or nothing |
 * | `deescalate(targetId, event, strategy)` | the access expires or is revoked | the same |
 *
 * A thrown error fails the step (nothing is recorded as granted on escalate) and reaches the error logger with its
 * message; a {@link RetryableError} asks for the step to be tried again later instead (the system is down, rate
 * limited). Both steps may run more than once: "already granted" and "already removed" must be success.
 *
 * @example strategy.ts
 * ```ts
 * import { RetryableError, type AccessStrategy, type Event, type User } from '@opensym/sdk'
 *
 * export async function fetchRemoteIdentity(user: User, strategy: AccessStrategy) {
 *   const res = await strategy.fetch(`https://backoffice.example.com/users?email=${encodeURIComponent(user.email ?? '')}`)
 *   return res.ok ? ((await res.json()) as { id: string }).id : null
 * }
 *
 * export async function escalate(targetId: string, event: Event, strategy: AccessStrategy) {
 *   const userId = await strategy.getRequesterIdentity(event)
 *   const role = event.payload.fields.target?.settings.role
 *   const res = await strategy.fetch(`https://backoffice.example.com/users/${userId}/roles/${role}`, { method: 'PUT' })
 *   if (res.status === 503) throw new RetryableError('the back-office is down', { retryAfterSeconds: 30 })
 *   if (!res.ok) throw new Error(`the back-office answered ${res.status}`)
 *   return { user_id: userId, role }
 * }
 * ```
 */
import type { IntegrationData, JsonObject } from './data.js'
import { SdkError } from './errors.js'
import { createIntegration, type Event, type Integration, type User } from './event.js'
import { callHost } from './host.js'

type Awaitable<T> = T | Promise<T>

/** The functions a custom strategy module exports (`escalate` and `deescalate` are required). */
export const STRATEGY_FUNCTION_NAMES = ['fetchRemoteIdentity', 'escalate', 'deescalate'] as const
export type StrategyFunctionName = (typeof STRATEGY_FUNCTION_NAMES)[number]

/** What `strategy.fetch` sends. Bodies are text (use `JSON.stringify`). */
export interface FetchInit {
  /** Default `GET`. */
  readonly method?: string
  readonly headers?: Readonly<Record<string, string>>
  readonly body?: string
}

/** What `strategy.fetch` resolves to: the parts of the standard `Response` a strategy needs. */
export interface FetchResponse {
  /** Status 200–299. */
  readonly ok: boolean
  readonly status: number
  /** The final URL (redirects are not followed, so the URL asked for). */
  readonly url: string
  /** Header names in lower case. */
  readonly headers: Readonly<Record<string, string>>
  text(): Promise<string>
  /** The body parsed as JSON; rejects when it is not JSON. */
  json(): Promise<unknown>
}

/** The strategy a custom strategy's functions are called with: Sym's `AccessStrategy` base class, as an argument. */
export interface AccessStrategy {
  /** The `sym_strategy`'s name (slug). */
  readonly name: string
  /** The `sym_strategy`'s `settings`. */
  readonly settings: Readonly<Record<string, string>>
  /**
   * The strategy's `custom` integration: its `externalId`, its string settings, and `settings.secrets`, the
   * `sym_secret`s listed in its `secret_ids_json`, in that order (`await secrets[0].retrieveValue()`).
   */
  readonly integration: Integration
  /**
   * The requester's ID in the strategy's system: the one stored for them (under service `custom` and the
   * integration's `external_id`), else what `fetchRemoteIdentity` found (then stored). In `escalate` and
   * `deescalate` only: the platform resolved it before calling them.
   */
  getRequesterIdentity(event: Event): Promise<string>
  /**
   * An HTTP request made by the platform (the sandbox has no network). Rejects with an `IntegrationError` when the
   * request cannot be made (refused address, timeout, connection error); any HTTP status resolves.
   */
  fetch(url: string, init?: FetchInit): Promise<FetchResponse>
}

/** What `escalate` and `deescalate` may return: kept as the step's output. */
export type StrategyOutput = JsonObject

/** The signatures of a custom strategy's functions. */
export interface StrategyFunctions {
  /** The user's ID in the strategy's system, or nothing when they have none there. */
  fetchRemoteIdentity(user: User, strategy: AccessStrategy): Awaitable<string | null | undefined>
  /** Grants the access. Must succeed when it is already granted. */
  escalate(targetId: string, event: Event, strategy: AccessStrategy): Awaitable<StrategyOutput | null | undefined | void>
  /** Removes the access. Must succeed when it is already gone. */
  deescalate(targetId: string, event: Event, strategy: AccessStrategy): Awaitable<StrategyOutput | null | undefined | void>
}

/**
 * The shape of a custom strategy module.
 * @example `import * as strategy from './strategy'; strategy satisfies StrategyImplementation`
 */
export type StrategyImplementation = Partial<Pick<StrategyFunctions, 'fetchRemoteIdentity'>> & Pick<StrategyFunctions, 'escalate' | 'deescalate'>

/**
 * Thrown by `escalate` or `deescalate` (or `fetchRemoteIdentity`): the failure is temporary, try the step again
 * later (with backoff; `retryAfterSeconds` when the system said how long to wait). Any other error fails the step.
 */
export class RetryableError extends SdkError {
  override name = 'RetryableError'
  readonly retryAfterSeconds: number | undefined
  constructor(message: string, options: { readonly retryAfterSeconds?: number; readonly cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.retryAfterSeconds = options.retryAfterSeconds
  }
}

/** The strategy as the platform sends it. */
export interface StrategyData {
  readonly name: string
  readonly settings: Readonly<Record<string, string>>
  /** Secret-valued settings as `{ $secret: id }` (`secrets`: the list from `secret_ids_json`). */
  readonly integration: IntegrationData
  /** The requester's resolved identity; null in `fetchRemoteIdentity`. */
  readonly identity: string | null
}

/** Wraps the platform's strategy data in an {@link AccessStrategy}. The sandbox and the test helpers call this. */
export function createAccessStrategy(data: StrategyData): AccessStrategy {
  return {
    name: data.name,
    settings: { ...data.settings },
    integration: createIntegration(data.integration),
    getRequesterIdentity: async () => {
      if (data.identity === null) throw new SdkError('getRequesterIdentity is available in escalate and deescalate only: fetchRemoteIdentity is how the identity is found')
      return data.identity
    },
    fetch: async (url, init = {}) => {
      const res = await callHost('http.fetch', {
        url,
        method: (init.method ?? 'GET').toUpperCase(),
        headers: { ...(init.headers ?? {}) },
        ...(init.body !== undefined ? { body: init.body } : {}),
      })
      return {
        ok: res.status >= 200 && res.status < 300,
        status: res.status,
        url: res.url,
        headers: res.headers,
        text: async () => res.body,
        json: async () => JSON.parse(res.body) as unknown,
      }
    },
  }
}
