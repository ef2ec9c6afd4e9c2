/**
 * The event model: what a reducer or hook receives. `createEvent` wraps the platform's `EventData` (plain JSON) in
 * these objects; `toJSON()` gives the data back (so `JSON.stringify(event)` works, e.g. to pass it to a Lambda).
 */
import type {
  ChannelData,
  EventData,
  IntegrationData,
  IntegrationSettingData,
  JsonObject,
  JsonValue,
  SecretRef,
  StepName,
  UserData,
  UserIdentityData,
} from './data.js'
import { callHost, type UserRefData } from './host.js'

const USER = Symbol.for('opensym.sdk.User')

/** A user's account in another service (`slack`, `okta`, `aws_sso`, …). */
export type UserIdentity = UserIdentityData

/** Options of `User.getEventCount`. */
export interface EventCountOptions {
  /** Count events from this time on. */
  readonly since?: Date
  /** Count events up to this time. */
  readonly until?: Date
  /** `flow` (default): events of this flow; `target`: events of any flow for the same target. */
  readonly filterOn?: 'flow' | 'target'
  /** Whether events that ended in an error count (default false). */
  readonly includeErrored?: boolean
}

/**
 * A person (or bot) of the organization: the requester, an approver, anyone named by an integration.
 *
 * Compare users with `equals`, not `===` (each event builds its own objects):
 * @example
 * ```ts
 * export function onApprove(event: Event) {
 *   if (event.user.equals(event.getActor('request'))) return ApprovalTemplate.ignore({ message: 'Ask someone else.' })
 * }
 * ```
 */
export class User {
  readonly [USER] = true
  /** The platform's user ID (a UUID). Permission lists (`approveDeny: [...]`) hold these. */
  readonly id: string
  /** `null` for bots. */
  readonly email: string | null
  /** The email for people, the bot's name for bots. */
  readonly username: string
  readonly firstName: string | null
  readonly lastName: string | null
  readonly type: 'normal' | 'bot'
  readonly role: 'admin' | 'member' | 'guest'
  /** Accounts in other services, by service type. */
  readonly identities: Readonly<Record<string, readonly UserIdentity[]>>

  constructor(data: UserData) {
    this.id = data.id
    this.email = data.email
    this.username = data.username
    this.firstName = data.firstName ?? null
    this.lastName = data.lastName ?? null
    this.type = data.type
    this.role = data.role
    const identities: Record<string, UserIdentity[]> = {}
    for (const i of data.identities ?? []) (identities[i.service] ??= []).push({ service: i.service, serviceId: i.serviceId, userId: i.userId })
    this.identities = identities
  }

  /**
   * The user's identity in a service, or `undefined`. With several (e.g. two Slack workspaces), pass `serviceId`.
   * @example `event.user.identity('slack')?.userId // 'U0123ABC'`
   */
  identity(service: string, serviceId?: string): UserIdentity | undefined {
    return this.identities[service]?.find((i) => serviceId === undefined || i.serviceId === serviceId)
  }

  /** Whether `other` is the same user (by ID). */
  equals(other: User | UserData | null | undefined): boolean {
    return other != null && other.id === this.id
  }

  /**
   * How many events of this kind the user triggered, e.g. to auto-approve people with a recent approved request.
   * Asks the platform (an async call).
   * @example
   * ```ts
   * const recent = await event.user.getEventCount('escalate', { since: new Date(Date.now() - 7 * 86_400_000) })
   * ```
   */
  getEventCount(eventName: StepName, options: EventCountOptions = {}): Promise<number> {
    return callHost('users.getEventCount', {
      user: userRef(this),
      eventName,
      ...(options.since ? { since: options.since.toISOString() } : {}),
      ...(options.until ? { until: options.until.toISOString() } : {}),
      filterOn: options.filterOn ?? 'flow',
      includeErrored: options.includeErrored ?? false,
    })
  }

  toJSON(): UserData {
    return {
      id: this.id,
      email: this.email,
      username: this.username,
      firstName: this.firstName,
      lastName: this.lastName,
      type: this.type,
      role: this.role,
      identities: Object.values(this.identities).flat(),
    }
  }
}

/** Whether `value` is a `User` of this SDK (also across copies of the SDK module). */
export function isUser(value: unknown): value is User {
  return typeof value === 'object' && value !== null && (value as { [USER]?: unknown })[USER] === true
}

/** A user as integration calls take it: an email or service ID as is, a `User` by ID and email. */
export function userRef(user: User | string): UserRefData {
  return typeof user === 'string' ? user : { id: user.id, email: user.email }
}

/** The IDs of these users, for permission lists. @example `approveDeny: userIds(await okta.usersInGroup({ groupId }))` */
export function userIds(users: readonly User[]): string[] {
  return users.map((u) => u.id)
}

/**
 * A `sym_secret`. Its value is fetched through the platform when asked for, and never stored in the flow.
 * @example `const token = await (event.flow.environment.integrations.circleci?.settings.api_token as Secret).retrieveValue()`
 */
export class Secret {
  constructor(
    /** The `sym_secret`'s ID. */
    readonly id: string,
  ) {}
  retrieveValue(): Promise<string> {
    return callHost('secrets.retrieve', { secretId: this.id })
  }
  toJSON(): SecretRef {
    return { $secret: this.id }
  }
}

export type IntegrationSetting = string | Secret | readonly Secret[]

/** An integration of the flow's environment. Secret-valued settings are `Secret`s. */
export interface Integration {
  readonly type: string
  readonly externalId: string
  readonly settings: Readonly<Record<string, IntegrationSetting>>
}

/** Where an event came from: `slack`, `sdk` (a hook), `sym` (the Events API), `internal` (scheduled), `web`. */
export type Channel = ChannelData

/** The `sym_target` a request is for (`event.payload.fields.target`). */
export type Target = {
  readonly name: string
  readonly label?: string | null
  readonly type: string
  readonly srn?: string
  readonly settings: Readonly<Record<string, string>>
}

/**
 * The submitted values of the request form, by prompt field name, plus what the platform adds: `target` and
 * `target_id` for access flows, `duration` (seconds), `decision_message` on approve/deny, `deescalate_type`, and
 * the keyword arguments of a hook's `ApprovalTemplate.approve({...})`.
 */
export type Fields = Readonly<{
  target?: Target
  target_id?: string
  duration?: number
  reason?: string
  decision_message?: string
  [name: string]: JsonValue | Target | undefined
}>

export interface Flow {
  /** The flow's name (slug). */
  readonly name: string
  readonly srn: string
  /** The flow's `vars` from Terraform. Always strings: parse lists and numbers yourself. */
  readonly vars: Readonly<Record<string, string | undefined>>
  readonly environment: {
    readonly name: string
    /** By name: `event.flow.environment.integrations.pagerduty`. */
    readonly integrations: Readonly<Record<string, Integration | undefined>>
  }
}

export interface Run {
  readonly id: string
  readonly srn: string
  /** Who performed each step so far: `run.actors.request` is the requester. */
  readonly actors: Readonly<Record<string, User | undefined>>
  readonly contexts: Readonly<Record<string, Readonly<JsonObject> | undefined>>
  /** The channel of the run's first event (e.g. the Slack channel the request was started from). */
  readonly sourceChannel: Channel | null
}

/**
 * One step of a run, as a reducer or hook sees it.
 *
 * @example
 * ```ts
 * import { ApprovalTemplate, type Event } from '@opensym/sdk'
 *
 * export function onRequest(event: Event) {
 *   const requester = event.getActor('request')
 *   if (event.payload.fields.urgency === 'low' && requester?.role === 'admin') {
 *     return ApprovalTemplate.approve({ reason: `Auto-approved for ${requester.email}` })
 *   }
 * }
 * ```
 */
export class Event {
  /** The step: `prompt`, `request`, `approve`, `deny`, `escalate`, `deescalate`. */
  readonly name: StepName
  readonly id: string | null
  readonly srn: string | null
  readonly timestamp: Date
  /** Who triggered this event (for `approve`, the approver). */
  readonly user: User
  readonly channel: Channel
  readonly payload: { readonly fields: Fields }
  readonly flow: Flow
  readonly run: Run
  readonly #data: EventData
  readonly #stepOutputs: Readonly<Record<string, JsonValue>>

  constructor(data: EventData) {
    this.#data = data
    this.name = data.name
    this.id = data.id ?? null
    this.srn = data.srn ?? null
    this.timestamp = new Date(data.timestamp)
    this.user = new User(data.user)
    this.channel = { type: data.channel.type, identifier: data.channel.identifier }
    this.payload = { fields: data.payload.fields ?? {} }
    const integrations: Record<string, Integration> = {}
    for (const [name, i] of Object.entries(data.flow.environment.integrations)) integrations[name] = integration(i)
    this.flow = {
      name: data.flow.name,
      srn: data.flow.srn,
      vars: { ...data.flow.vars },
      environment: { name: data.flow.environment.name, integrations },
    }
    const actors: Record<string, User> = {}
    for (const [step, u] of Object.entries(data.run.actors)) actors[step] = u.id === data.user.id ? this.user : new User(u)
    this.run = {
      id: data.run.id,
      srn: data.run.srn,
      actors,
      contexts: { ...(data.run.contexts ?? {}) },
      sourceChannel: data.run.sourceChannel ?? null,
    }
    this.#stepOutputs = data.run.stepOutputs ?? {}
  }

  /** Older name of `payload.fields`. */
  get fields(): Fields {
    return this.payload.fields
  }

  /** Who performed a step of this run: `getActor('request')` is the requester. */
  getActor(step: StepName): User | undefined {
    return this.run.actors[step]
  }

  /**
   * The context attached to a step (e.g. the Events API `context` of the request); `{}` when there is none.
   * @example `const diff = event.getContext('request')['diff.txt']`
   */
  getContext(step: StepName): Readonly<JsonObject> {
    return this.run.contexts[step] ?? {}
  }

  /**
   * The output of a strategy step, by default this event's: an AWS Lambda's `{body, errors}`, a custom strategy's
   * return value. `undefined` when the step has none (yet).
   * @example
   * ```ts
   * export async function afterEscalate(event: Event) {
   *   const output = event.getStepOutput() as { body?: { url?: string } } | undefined
   *   if (output?.body?.url) await slack.sendMessage(event.user, `Your access: ${output.body.url}`)
   * }
   * ```
   */
  getStepOutput(step: StepName = this.name): JsonValue | undefined {
    return this.#stepOutputs[step]
  }

  toJSON(): EventData {
    return this.#data
  }
}

function integration(data: IntegrationData): Integration {
  const settings: Record<string, IntegrationSetting> = {}
  for (const [k, v] of Object.entries(data.settings)) settings[k] = setting(v)
  return { type: data.type, externalId: data.externalId, settings }
}

function setting(v: IntegrationSettingData): IntegrationSetting {
  if (typeof v === 'string') return v
  if (Array.isArray(v)) return (v as readonly SecretRef[]).map((s) => new Secret(s.$secret))
  return new Secret((v as SecretRef).$secret)
}

/** Wraps the platform's event data in the SDK's objects. The sandbox and the test helpers call this. */
export function createEvent(data: EventData): Event {
  return new Event(data)
}

/** An integration's data as the SDK's `Integration` (secret-valued settings as `Secret`s), for custom strategies. */
export { integration as createIntegration }
