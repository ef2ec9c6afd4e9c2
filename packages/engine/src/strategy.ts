/**
 * The strategy interface: how access is granted (escalate) and removed (deescalate) in a target system, how the
 * change is read back, and how a user is known there. Each strategy type (http, okta, aws_sso, aws_iam, github,
 * aws_lambda, custom) implements it; the engine owns the ledger, retries, identities and recording.
 */

/** The strategy as configured, copied into the run when it is requested (it must outlive configuration changes). */
export interface StrategySnapshot {
  readonly id: string
  readonly type: string
  readonly slug: string
  /** The integration's id, type, external id and settings, or null for types that need none (http). */
  readonly integration: { readonly id: string; readonly type: string; readonly externalId: string; readonly settings: Readonly<Record<string, unknown>> } | null
  readonly settings: Readonly<Record<string, unknown>>
  /** A `custom` strategy's source (so a run is de-escalated by the code that escalated it); absent for other types. */
  readonly implementation?: string
}

/** The requested target, with `field_bindings` already applied to its settings. */
export interface TargetSnapshot {
  readonly id: string
  readonly type: string
  readonly slug: string
  readonly label: string | null
  readonly settings: Readonly<Record<string, string>>
}

/** The user whose access changes. */
export interface Subject {
  readonly userId: string
  readonly email: string | null
  readonly username: string
}

/** Reads a `sym_secret`'s value at call time (never stored, logged or returned). */
export type SecretResolver = (secretId: string) => Promise<string>

export interface StrategyCall {
  readonly strategy: StrategySnapshot
  readonly target: TargetSnapshot
  readonly subject: Subject
  /** The user's id in the target system, from {@link Strategy.identity}. */
  readonly identity: string
  /** The §7.2 log entry of the escalate/deescalate event: the payload http and aws_lambda strategies send. */
  readonly payload: Readonly<Record<string, unknown>>
  readonly secrets: SecretResolver
  readonly signal: AbortSignal
}

/** What a strategy call returned; stored on the event (`getStepOutput()` in hooks). */
export interface StrategyOutput {
  readonly body: Readonly<Record<string, unknown>>
  readonly errors: readonly string[]
  /**
   * Problems that did not fail the step, e.g. an http/aws_lambda reply that was not `{body, errors}` (reference
   * §4.1: "missing/unformatted response → success + warning"). Stored with the output; worth a log line.
   */
  readonly warnings?: readonly string[]
}

/**
 * The target system answered and reported a failure: a non-empty `errors` in an http/aws_lambda reply, a 4xx, a
 * refusal. Not retried. `errors` are the messages to show (the error channel posts them as bullets). Any thrown
 * error that is not a {@link RetryableStrategyError} fails the step without retrying; this class only adds the list.
 */
export class StrategyError extends Error {
  readonly errors: readonly string[]
  /** What the target returned alongside the errors (e.g. the reply's `body`), worth storing on the event. */
  readonly output: StrategyOutput | undefined
  constructor(message: string, errors?: readonly string[], options?: ErrorOptions & { readonly output?: StrategyOutput }) {
    super(message, options)
    this.name = 'StrategyError'
    this.errors = errors ?? [message]
    this.output = options?.output
  }
}

/**
 * A failure worth retrying (timeout, 5xx, 429, throttling). `retryAfterMs` is the service's own hint
 * (`Retry-After`). Any other thrown error fails the step without retrying.
 */
export class RetryableStrategyError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
    options?: ErrorOptions,
  ) {
    super(message, options)
    this.name = 'RetryableStrategyError'
  }
}

export interface Strategy {
  readonly type: string
  /**
   * The service users' identities are stored under (`UserIdentity.service`; the service id is the integration's
   * `external_id`), e.g. `okta`, `aws_sso`, `github`. Set: the engine resolves identities in the reference's order
   * (`identities.ts`: stored → getIdentity reducer → {@link identity} → error) and persists what it found. Unset
   * (http, aws_lambda): {@link identity} alone answers and nothing is stored.
   */
  readonly identityService?: string
  /**
   * The user's id in the target system (email for http; Okta user id; IAM user ARN…): discovery, by the user's
   * email. Undefined when the target has no such user (the engine then fails the step naming the user and the
   * service); a {@link StrategyError} for an ambiguous or refused lookup.
   */
  identity(call: Omit<StrategyCall, 'identity' | 'payload'>): Promise<string | undefined>
  /** Grants the access. Idempotent: "already granted" is success. */
  escalate(call: StrategyCall): Promise<StrategyOutput>
  /** Removes the access. Idempotent: "not granted" is success. */
  deescalate(call: StrategyCall): Promise<StrategyOutput>
  /**
   * Reads the target back: whether the access is in place now. Undefined when the target's API cannot tell
   * (http, aws_lambda); the event then records `verified: null`.
   */
  isGranted?(call: StrategyCall): Promise<boolean>
}

/** Strategy implementations by type. */
export type StrategyRegistry = ReadonlyMap<string, Strategy>
