/**
 * Every error the API returns, declared once with a stable code. Codes are never reused for another meaning.
 * The body shape is Sym's: `{error, errors: [{field, message}], code, status_code, is_retryable}` plus `message`.
 */
import { Type } from 'typebox'

export const ERRORS = {
  INVALID_REQUEST: { code: 'EntityAPI:INVALID_REQUEST', status: 400, retryable: false },
  UNAUTHENTICATED: { code: 'Auth:UNAUTHENTICATED', status: 401, retryable: false },
  FORBIDDEN: { code: 'Auth:FORBIDDEN', status: 403, retryable: false },
  NOT_FOUND: { code: 'EntityAPI:NOT_FOUND', status: 404, retryable: false },
  ROUTE_NOT_FOUND: { code: 'API:ROUTE_NOT_FOUND', status: 404, retryable: false },
  DUPLICATE: { code: 'EntityAPI:DUPLICATE', status: 409, retryable: false },
  IN_USE: { code: 'EntityAPI:IN_USE', status: 409, retryable: false },
  CONFLICT: { code: 'EntityAPI:CONFLICT', status: 409, retryable: true },
  PAYLOAD_TOO_LARGE: { code: 'API:PAYLOAD_TOO_LARGE', status: 413, retryable: false },
  UNSUPPORTED_MEDIA_TYPE: { code: 'API:UNSUPPORTED_MEDIA_TYPE', status: 415, retryable: false },
  UNAVAILABLE: { code: 'API:UNAVAILABLE', status: 503, retryable: true },
  // The Events API (runs), in Sym's style: `{error, message, code, status_code}` plus our `errors` and `is_retryable`.
  // The engine raises these (`ENGINE_ERRORS` in @opensym/engine); a test checks that every one is listed here.
  EVENTS_INVALID_REQUEST: { code: 'EventsAPI:INVALID_REQUEST', status: 400, retryable: false },
  EVENTS_FORBIDDEN: { code: 'EventsAPI:FORBIDDEN', status: 403, retryable: false },
  EVENTS_SOURCE_NOT_ALLOWED: { code: 'EventsAPI:SOURCE_NOT_ALLOWED', status: 403, retryable: false },
  EVENTS_NOT_FOUND: { code: 'EventsAPI:NOT_FOUND', status: 404, retryable: false },
  EVENTS_CONFLICT: { code: 'EventsAPI:CONFLICT', status: 409, retryable: true },
  APPROVE_INVALID_RUN: { code: 'ApproveAPI:INVALID_RUN', status: 400, retryable: false },
  DENY_INVALID_RUN: { code: 'DenyAPI:INVALID_RUN', status: 400, retryable: false },
  DEESCALATE_INVALID_RUN: { code: 'DeescalateAPI:INVALID_RUN', status: 400, retryable: false },
  // Idempotency-Key (plugins/idempotency.ts): the key was used for another request / its first request still runs.
  IDEMPOTENCY_KEY_REUSED: { code: 'API:IDEMPOTENCY_KEY_REUSED', status: 422, retryable: false },
  IDEMPOTENCY_KEY_IN_PROGRESS: { code: 'API:IDEMPOTENCY_KEY_IN_PROGRESS', status: 409, retryable: true },
  INTERNAL: { code: 'API:INTERNAL', status: 500, retryable: true },
} as const

export type ErrorKind = keyof typeof ERRORS

export interface FieldError {
  readonly field: string
  readonly message: string
}

export class ApiError extends Error {
  readonly kind: ErrorKind
  readonly errors: readonly FieldError[]
  constructor(kind: ErrorKind, message: string, errors: readonly FieldError[] = []) {
    super(message)
    this.name = 'ApiError'
    this.kind = kind
    this.errors = errors
  }
  get status(): number {
    return ERRORS[this.kind].status
  }
}

/** The registry entry with this code (engine errors carry their code). */
export function kindOfCode(code: string): ErrorKind | undefined {
  return (Object.keys(ERRORS) as ErrorKind[]).find((k) => ERRORS[k].code === code)
}

/** A 400 naming the fields at fault. */
export const invalid = (errors: readonly FieldError[]) =>
  new ApiError('INVALID_REQUEST', errors.map((e) => (e.field ? `${e.field}: ${e.message}` : e.message)).join('; '), errors)

export const ErrorBody = Type.Object(
  {
    error: Type.Literal(true),
    message: Type.String(),
    errors: Type.Array(Type.Object({ field: Type.String(), message: Type.String() })),
    code: Type.String(),
    status_code: Type.Integer(),
    is_retryable: Type.Boolean(),
  },
  { $id: 'Error', description: 'Every error response has this shape.' },
)

export function errorBody(kind: ErrorKind, message: string, errors: readonly FieldError[] = []) {
  const def = ERRORS[kind]
  return { error: true as const, message, errors: [...errors], code: def.code, status_code: def.status, is_retryable: def.retryable }
}
