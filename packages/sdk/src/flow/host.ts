/**
 * Integration calls leave the sandbox through one door: `callHost(method, args)`. On the platform the door leads
 * to the worker, which makes the call (Slack, Okta, PagerDuty, AWS Lambda, secrets) with the environment's
 * integrations and answers asynchronously; in `@opensym/sdk/testing` it leads to the handlers a test provides.
 * With neither, every call fails with an `IntegrationError`: the SDK never makes up an answer.
 *
 * `HostCalls` is the catalogue of calls, with their arguments and results as plain JSON: the contract between
 * the in-sandbox SDK and the platform's handlers.
 */
import type { JsonObject, JsonValue, UserData } from './data.js'
import { IntegrationError } from './errors.js'

/**
 * A user as an integration call receives it: an email or a service's user ID (a string), or a platform user
 * (`{id, email}`; the platform looks up their identity in the service).
 */
export type UserRefData = string | { readonly id: string; readonly email: string | null }

/** Where `slack.sendMessage` posts: a channel (`#name`, `C…`), a user, or a platform user. */
export type SlackMessageTargetData =
  | { readonly channel: string }
  | { readonly user: UserRefData }

/**
 * Every call a flow implementation can make through the platform: `method: { args, result }`. Arguments come from
 * user code: a handler must check they are within the flow's reach (e.g. that a `secrets.retrieve` secret is one
 * of its environment's integrations' secrets, that an `awsLambda` ARN is allowed by the integration).
 */
export interface HostCalls {
  'slack.sendMessage': { args: { readonly to: SlackMessageTargetData; readonly message: string }; result: null }
  'slack.sendThreadMessage': { args: { readonly message: string }; result: null }
  'slack.getUserInfo': { args: { readonly user: UserRefData }; result: JsonObject }
  'slack.listUsers': { args: { readonly activeOnly: boolean }; result: UserData[] }
  'slack.usersInChannel': { args: { readonly channel: string }; result: UserData[] }
  'slack.isUserInGroup': { args: { readonly user: UserRefData; readonly groupId: string }; result: boolean }
  'slack.mention': { args: { readonly to: SlackMessageTargetData }; result: string }
  'okta.isUserInGroup': { args: { readonly user: UserRefData; readonly groupId: string }; result: boolean }
  'okta.usersInGroup': { args: { readonly groupId: string }; result: UserData[] }
  'okta.getUserInfo': { args: { readonly user: UserRefData }; result: JsonObject }
  'pagerduty.isOnCall': {
    args: { readonly user: UserRefData; readonly scheduleId?: string; readonly scheduleName?: string }
    result: boolean
  }
  'pagerduty.getIncidents': { args: { readonly statuses?: readonly string[] }; result: JsonObject[] }
  'awsLambda.invoke': { args: { readonly arn: string; readonly payload: JsonValue }; result: JsonValue }
  'awsLambda.invokeAsync': { args: { readonly arn: string; readonly payload: JsonValue }; result: null }
  'secrets.retrieve': { args: { readonly secretId: string }; result: string }
  /** An HTTP request for a custom strategy (`strategy.fetch`): any status resolves; redirects are not followed. */
  'http.fetch': {
    args: { readonly url: string; readonly method: string; readonly headers: Readonly<Record<string, string>>; readonly body?: string }
    result: { readonly status: number; readonly url: string; readonly headers: Readonly<Record<string, string>>; readonly body: string }
  }
  'users.getEventCount': {
    args: {
      readonly user: UserRefData
      readonly eventName: string
      readonly since?: string
      readonly until?: string
      readonly filterOn: 'flow' | 'target'
      readonly includeErrored: boolean
    }
    result: number
  }
}

export type HostMethod = keyof HostCalls
export type HostArgs<M extends HostMethod> = HostCalls[M]['args']
export type HostResult<M extends HostMethod> = HostCalls[M]['result']

/**
 * What a host bridge does with one call. It resolves with the result, or rejects with an `IntegrationError`-like
 * error; it must not be called outside a reducer or hook invocation.
 */
export type HostBridge = (method: string, args: unknown) => Promise<unknown>

/** Where the bridge is installed. A registered symbol, so that every copy of the SDK in a realm finds it. */
export const HOST_BRIDGE = Symbol.for('opensym.sdk.hostBridge')

type BridgeHolder = { [HOST_BRIDGE]?: HostBridge }

/** Installs the bridge of this realm (the sandbox runtime and the test helpers do; flow code never does). */
export function installHostBridge(bridge: HostBridge | undefined): void {
  const holder = globalThis as BridgeHolder
  if (bridge) holder[HOST_BRIDGE] = bridge
  else delete holder[HOST_BRIDGE]
}

/** Makes one integration call through the platform. The SDK's integration helpers are thin wrappers of this. */
export async function callHost<M extends HostMethod>(method: M, args: HostArgs<M>): Promise<HostResult<M>> {
  const bridge = (globalThis as BridgeHolder)[HOST_BRIDGE]
  if (typeof bridge !== 'function') {
    throw new IntegrationError(
      method,
      `${method} is only available when the flow runs on the platform (or in @opensym/sdk/testing with a handler for it)`,
      'not_available',
    )
  }
  return (await bridge(method, args)) as HostResult<M>
}
