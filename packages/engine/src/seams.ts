/**
 * What the engine is given rather than reaching for: a clock, a logger, where to report failures, and who may
 * decide a run. Each has a default that later issues replace (the Slack error logger, getPermissions reducers).
 */
import { DEFAULT_REQUEST_PERMISSION, type RequestPermission } from '@opensym/domain'
import type { RunSnapshot } from './snapshot.js'

export type Clock = () => Date
export const systemClock: Clock = () => new Date()

/** The subset of pino's (and Fastify's) logger the engine uses. */
export interface EngineLogger {
  debug(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

export const silentLogger: EngineLogger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} }

/** A step that failed for good and needs a person: above all, a revocation that could not be done or verified. */
export interface EngineFailure {
  readonly orgId: string
  readonly runId: string
  readonly eventId: string
  readonly step: string
  /** The environment's error logger (`sym_error_logger`) is found through the run's flow. */
  readonly environmentId: string | null
  readonly message: string
  readonly cause?: unknown
}

/**
 * Called after a failure is recorded on its event (status error). The default logs at error level; the reporting
 * issue posts to the environment's error logger (Slack). It must not throw: a reporter failure is logged and the
 * step's outcome stands.
 */
export type ErrorReporter = (failure: EngineFailure) => Promise<void> | void

export function logReporter(logger: EngineLogger): ErrorReporter {
  return (f) => logger.error({ orgId: f.orgId, runId: f.runId, eventId: f.eventId, step: f.step, err: f.cause }, `${f.step} failed: ${f.message}`)
}

/**
 * Who may approve, deny and revoke a run. The flow's `getPermissions` reducer answers this in a later issue; until
 * then every flow gets Sym's default (admins decide, no self-approval).
 */
export type PermissionResolver = (run: { readonly id: string; readonly requesterId: string; readonly snapshot: RunSnapshot }) => Promise<RequestPermission> | RequestPermission

export const defaultPermissions: PermissionResolver = () => DEFAULT_REQUEST_PERMISSION
