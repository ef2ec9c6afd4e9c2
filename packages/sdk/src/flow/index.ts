/**
 * `@opensym/sdk/flow`: everything a flow implementation uses, with no dependencies, so that it runs unchanged in
 * the platform's sandbox, in an editor and in unit tests. `@opensym/sdk` re-exports all of it; in the sandbox,
 * both names resolve to this module. Custom strategies (`sym_strategy` of type `custom`) use it too: see
 * `AccessStrategy` and `RetryableError`.
 *
 * @example impl.ts
 * ```ts
 * import { ApprovalTemplate, slack, type Event, type Notification, type RequestPermission } from '@opensym/sdk'
 *
 * export function getPermissions(event: Event): RequestPermission {
 *   return { webappView: 'member', approveDeny: 'member', allowSelfApproval: false }
 * }
 *
 * export function getRequestNotifications(event: Event): Notification[] {
 *   return [{ destinations: [slack.channel(event.flow.vars.request_channel ?? '#sym-requests')], timeout: null }]
 * }
 *
 * export function onRequest(event: Event) {
 *   if (event.payload.fields.urgency === 'emergency') return ApprovalTemplate.approve({ reason: 'Emergency' })
 * }
 * ```
 */
export type {
  ChannelData,
  DestinationData,
  EventData,
  FallbackDestinationData,
  FieldOptionData,
  FlowData,
  HookResult,
  IntegrationData,
  IntegrationSettingData,
  JsonObject,
  JsonValue,
  NotificationData,
  PermissionData,
  RequestPermissionData,
  RunData,
  SecretRef,
  SlackDestinationData,
  StepName,
  TransitionName,
  UserData,
  UserIdentityData,
} from './data.js'
export { STEPS } from './data.js'
export { IntegrationError, SdkError } from './errors.js'
export {
  createEvent,
  Event,
  isUser,
  Secret,
  User,
  userIds,
  type Channel,
  type EventCountOptions,
  type Fields,
  type Flow,
  type Integration,
  type IntegrationSetting,
  type Run,
  type Target,
  type UserIdentity,
} from './event.js'
export {
  AFTER_HOOK_NAMES,
  HOOK_NAMES,
  ON_HOOK_NAMES,
  PREFETCH_EXPORT,
  REDUCER_NAMES,
  type AfterHookName,
  type FieldOption,
  type FlowImplementation,
  type HookName,
  type Hooks,
  type IdentityRequest,
  type PrefetchReducers,
  type ReducerName,
  type Reducers,
} from './handlers.js'
export { FLOWS_FILTER_FUNCTION_NAMES, keptFlowIds, type FlowInfo, type FlowsFilterFunctions, type FlowsFilterImplementation } from './flows-filter.js'
export { callHost, type HostArgs, type HostCalls, type HostMethod, type HostResult, type SlackMessageTargetData, type UserRefData } from './host.js'
export { awsLambda, okta, pagerduty, slack, type DestinationOptions, type SlackTarget } from './integrations.js'
export {
  createAccessStrategy,
  RetryableError,
  STRATEGY_FUNCTION_NAMES,
  type AccessStrategy,
  type FetchInit,
  type FetchResponse,
  type StrategyData,
  type StrategyFunctionName,
  type StrategyFunctions,
  type StrategyImplementation,
  type StrategyOutput,
} from './strategy.js'
export type {
  Notification,
  NotificationDestination,
  RequestDestination,
  RequestDestinationFallback,
  SlackChannelDestination,
  SlackGroupDestination,
  SlackUserDestination,
  UserDestination,
} from './notifications.js'
export { PermissionLevel, type Permission, type RequestPermission } from './permissions.js'
export {
  ApprovalTemplate,
  ApprovalTemplateStep,
  HOOK_RETURNS,
  type HookReturn,
  type HookReturns,
  type Ignore,
  type OnHookName,
  type Transition,
  type TransitionArgs,
} from './templates.js'
