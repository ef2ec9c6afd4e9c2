/** Errors the SDK throws. A hook or reducer that lets one escape fails its step; the message is recorded. */

/** Base class of the SDK's errors (Sym's `SymException`). Catch it to handle any SDK failure. */
export class SdkError extends Error {
  override name = 'SdkError'
}

/**
 * An integration call (`slack.…`, `okta.…`, `pagerduty.…`, `awsLambda.…`, a secret) failed on the platform's side,
 * or the platform cannot make it here (no integration configured, or no handler in this worker or test).
 *
 * @example
 * ```ts
 * try {
 *   if (await pagerduty.isOnCall(event.user, { scheduleName: 'primary' })) return ApprovalTemplate.approve()
 * } catch (e) {
 *   if (!(e instanceof IntegrationError)) throw e
 *   // PagerDuty is down: fall through to a human approval
 * }
 * ```
 */
export class IntegrationError extends SdkError {
  override name = 'IntegrationError'
  constructor(
    /** The call, e.g. `pagerduty.isOnCall`. */
    readonly method: string,
    message: string,
    /** A machine-readable reason when the platform gave one, e.g. `not_available`. */
    readonly code?: string,
  ) {
    super(message)
  }
}
