/**
 * Errors the run service returns to its callers (the Events API), each with a stable code in the Events API's
 * style (`DeescalateAPI:INVALID_RUN` is Sym's own). The API's error registry (`apps/api/src/errors.ts`) lists every
 * code here; codes are never reused for another meaning.
 */

export const ENGINE_ERRORS = {
  /** The request body is wrong: a missing or invalid flow input, an unknown flow, a target not of the flow. */
  INVALID_REQUEST: { code: 'EventsAPI:INVALID_REQUEST', status: 400, retryable: false },
  /** The caller may not do this to this run (approve their own request, revoke without allow_revoke, …). */
  FORBIDDEN: { code: 'EventsAPI:FORBIDDEN', status: 403, retryable: false },
  /** The flow's `allowed_sources` exclude the API. */
  SOURCE_NOT_ALLOWED: { code: 'EventsAPI:SOURCE_NOT_ALLOWED', status: 403, retryable: false },
  /** No run or event with this id in the caller's organization. */
  NOT_FOUND: { code: 'EventsAPI:NOT_FOUND', status: 404, retryable: false },
  /** Approve/deny of a run that is not `requested`. */
  APPROVE_INVALID_RUN: { code: 'ApproveAPI:INVALID_RUN', status: 400, retryable: false },
  DENY_INVALID_RUN: { code: 'DenyAPI:INVALID_RUN', status: 400, retryable: false },
  /** De-escalate (revoke) of a run that is not `escalated`: Sym's code and message. */
  DEESCALATE_INVALID_RUN: { code: 'DeescalateAPI:INVALID_RUN', status: 400, retryable: false },
  /** The run changed while the request was handled; retrying is safe. */
  CONFLICT: { code: 'EventsAPI:CONFLICT', status: 409, retryable: true },
} as const

export type EngineErrorKind = keyof typeof ENGINE_ERRORS

export interface EngineFieldError {
  /** The body path at fault, e.g. `flow_inputs.reason`. */
  readonly field: string
  readonly message: string
}

export class EngineError extends Error {
  override readonly name = 'EngineError'
  constructor(
    readonly kind: EngineErrorKind,
    message: string,
    readonly errors: readonly EngineFieldError[] = [],
  ) {
    super(message)
  }
  get code(): string {
    return ENGINE_ERRORS[this.kind].code
  }
  get status(): number {
    return ENGINE_ERRORS[this.kind].status
  }
}

/** A 400 naming the fields at fault; the message lists them all. */
export function invalidRequest(errors: readonly EngineFieldError[]): EngineError {
  return new EngineError('INVALID_REQUEST', errors.map((e) => `${e.field}: ${e.message}`).join('; '), errors)
}
