/**
 * The data the platform hands a flow implementation, and the plain data it gets back: what crosses the sandbox
 * boundary as JSON. Flow authors work with the richer objects of `event.ts` (an `Event` with methods); the engine
 * builds `EventData` and reads the result shapes at the end of this file (after the sandbox validated them).
 */

/** Any JSON value. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }
/** A JSON object. */
export type JsonObject = { [key: string]: JsonValue }

/** The steps of the approval template, in order (`approve` and `deny` are alternatives). */
export const STEPS = ['prompt', 'request', 'approve', 'deny', 'escalate', 'deescalate'] as const
export type StepName = (typeof STEPS)[number]

/** A user's account in another service, e.g. `{service: 'slack', serviceId: 'T0123', userId: 'U0456'}`. */
export interface UserIdentityData {
  /** The service type: `slack`, `okta`, `aws_sso`, `pagerduty`, … (`sym` for the login email). */
  readonly service: string
  /** Which instance of the service: a Slack workspace ID, an AWS account, an Okta domain; `cloud` for `sym`. */
  readonly serviceId: string
  /** The user's ID there: a Slack member ID, an IAM user ARN, an Okta user ID… */
  readonly userId: string
}

export interface UserData {
  /** The platform's user ID (a UUID). */
  readonly id: string
  /** `null` for bots. */
  readonly email: string | null
  /** The email for normal users; the bot's name for bots. */
  readonly username: string
  readonly firstName?: string | null
  readonly lastName?: string | null
  readonly type: 'normal' | 'bot'
  readonly role: 'admin' | 'member' | 'guest'
  readonly identities?: readonly UserIdentityData[]
}

/** Where an event came from. */
export interface ChannelData {
  /** `slack` (a person in Slack), `sdk` (returned by a hook), `sym` (the Events API), `internal` (scheduled). */
  readonly type: 'slack' | 'sdk' | 'sym' | 'internal' | 'web'
  /** The Slack channel name or ID, when there is one. */
  readonly identifier: string | null
}

/** A `sym_secret`, passed by reference: its value is fetched through the platform only when asked for. */
export interface SecretRef {
  readonly $secret: string
}

/** A setting of an integration: text, or (for secret-valued settings) one or more secrets. */
export type IntegrationSettingData = string | SecretRef | readonly SecretRef[]

/** A `sym_integration` of the flow's environment. */
export interface IntegrationData {
  /** The integration type: `slack`, `okta`, `pagerduty`, `permission_context`, `custom`, … */
  readonly type: string
  /** Its `external_id`: a Slack workspace ID, an Okta domain, an AWS account… */
  readonly externalId: string
  readonly settings: Readonly<Record<string, IntegrationSettingData>>
}

export interface FlowData {
  /** The flow's name (slug), e.g. `aws-sso-access`. */
  readonly name: string
  readonly srn: string
  /** The flow's `vars` from Terraform: always strings. */
  readonly vars: Readonly<Record<string, string>>
  readonly environment: {
    readonly name: string
    /** By integration name: `environment.integrations = { slack_id = … }` in Terraform gives `slack` here. */
    readonly integrations: Readonly<Record<string, IntegrationData>>
  }
}

export interface RunData {
  readonly id: string
  readonly srn: string
  /** Who performed each step so far, by step name (`request` is the requester). */
  readonly actors: Readonly<Record<string, UserData>>
  /** Context attached to each step, e.g. the Events API `context` of `request`. */
  readonly contexts?: Readonly<Record<string, JsonObject>>
  /** The output of strategy steps (`escalate`, `deescalate`), e.g. an AWS Lambda's `{body, errors}`. */
  readonly stepOutputs?: Readonly<Record<string, JsonValue>>
  /** The channel of the run's first event. */
  readonly sourceChannel?: ChannelData | null
}

/** Everything a reducer or hook is told about the event being handled. */
export interface EventData {
  /** The step: `prompt`, `request`, `approve`, `deny`, `escalate`, `deescalate`. */
  readonly name: StepName
  readonly id?: string
  readonly srn?: string
  /** ISO 8601. */
  readonly timestamp: string
  /** Who triggered this event. */
  readonly user: UserData
  readonly channel: ChannelData
  /** The submitted values: prompt fields, `target`, `target_id`, `duration` (seconds), `decision_message`, … */
  readonly payload: { readonly fields: Readonly<JsonObject> }
  readonly flow: FlowData
  readonly run: RunData
}

// ---------------------------------------------------------------------------------------------------------------
// Results, as the platform receives them.

/** Who may act: a role level (`admin` ⊂ `member` ⊂ `all_users`), or a list of user IDs. Admins always may. */
export type PermissionData = 'admin' | 'member' | 'all_users' | readonly string[]

/** What `getPermissions` returns, normalized. */
export interface RequestPermissionData {
  readonly webappView: PermissionData
  readonly approveDeny: PermissionData
  readonly allowSelfApproval: boolean
}

/** A Slack channel, `#name` or an ID (`C…`). `allowSelf` and `timeout` are for the legacy `getApprovers`. */
export interface SlackChannelDestinationData {
  readonly type: 'slack_channel'
  readonly channel: string
  readonly allowSelf?: boolean
  readonly timeout?: number | null
}

/** A direct message to one person: an email, a Slack user ID (`U…`) or a platform user ID. */
export interface SlackUserDestinationData {
  readonly type: 'slack_user'
  readonly user: string
  readonly allowSelf?: boolean
  readonly timeout?: number | null
}

/** A group direct message (emails, Slack user IDs or platform user IDs). */
export interface SlackGroupDestinationData {
  readonly type: 'slack_group'
  readonly users: readonly string[]
  readonly allowSelf?: boolean
  readonly timeout?: number | null
}

/** A platform user, notified directly (Slack DM or email, whichever they can receive). */
export interface UserDestinationData {
  readonly type: 'user'
  readonly userId: string
}

export type SlackDestinationData = SlackChannelDestinationData | SlackUserDestinationData | SlackGroupDestinationData

/** Tries each destination in order until one can be delivered to. */
export interface FallbackDestinationData {
  readonly type: 'fallback'
  readonly destinations: readonly SlackDestinationData[]
  readonly continueOnDeliveryFailure: boolean
  readonly continueOnTimeout: boolean
}

export type DestinationData = SlackDestinationData | FallbackDestinationData | UserDestinationData

/** One link of the notification chain that `getRequestNotifications` returns, normalized. */
export interface NotificationData {
  readonly destinations: readonly DestinationData[]
  /** Seconds before the request moves on to the next notification (or expires after the last); null: never. */
  readonly timeout: number | null
}

/** An option of a prefetched dropdown. */
export interface FieldOptionData {
  readonly value: string
  readonly label: string
}

/** The transitions a hook can ask for instead of the event it was called for. */
export type TransitionName = 'request' | 'approve' | 'deny' | 'deescalate'

/**
 * What a hook decided:
 * - `proceed`: handle the event as usual (the hook returned nothing);
 * - `transition`: replace the event with this one (`ApprovalTemplate.approve(…)` and friends); `fields` are the
 *   keyword arguments, which become the new event's payload fields;
 * - `ignore`: reject the actor's action with `message` (`ApprovalTemplate.ignore({message})`); the run stays where
 *   it was and the event is recorded as an error with this message.
 */
export type HookResult =
  | { readonly type: 'proceed' }
  | {
      readonly type: 'transition'
      readonly transition: TransitionName
      readonly fields: Readonly<JsonObject>
      readonly targetSrn?: string
      readonly duration?: number
    }
  | { readonly type: 'ignore'; readonly message: string }
