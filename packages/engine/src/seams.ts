/**
 * What the engine is given rather than reaching for: a clock, a logger, where to report failures, and who may
 * decide a run. Each has a default that later issues replace (the Slack error logger, getPermissions reducers).
 */
import { parseRequestPermission, UNROUTED_PERMISSION, type RequestPermission } from '@opensym/domain'
import type { DestinationData } from '@opensym/sdk/flow'
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
 * Who may approve, deny and revoke a run, as the API checks it. The worker computes the permission when it routes
 * the request (the flow's `getPermissions`, legacy `getApprovers`, or Sym's default: admins decide, no
 * self-approval) and stores it on the run (`permission`); the worker checks every decision again when it
 * processes it, so it is the authority.
 */
export type PermissionResolver = (run: {
  readonly id: string
  readonly requesterId: string
  /** The run's snapshot without implementation sources (`flow.implementation`, `strategy.implementation`). */
  readonly snapshot: RunSnapshot
  /** `Run.permission` as stored; null until the request is routed. */
  readonly permission: unknown
}) => Promise<RequestPermission> | RequestPermission

/**
 * The stored permission; before routing, only what holds for every flow (no self-approval, guests per
 * `allow_guest_interaction`: `UNROUTED_PERMISSION`), and the worker decides the rest.
 */
export const defaultPermissions: PermissionResolver = (run) => parseRequestPermission(run.permission) ?? UNROUTED_PERMISSION

/**
 * Where requests go and who hears what happened: the Slack app implements this (apps/api + the worker wire it in).
 * The engine calls it from its `notify` queue after the change is committed, with retries; both methods must be
 * idempotent (the same notice may arrive more than once) and may throw to be retried. Implementations read
 * whatever else they need (the run, its events, the actor) from PostgreSQL.
 */
export interface RunNotifier {
  /**
   * A link of the run's notification chain (`getRequestNotifications`, or the default) is due: deliver the request
   * card to its destinations. Idempotent per (runId, index). Throwing `NotificationUndeliverable` for a link whose
   * destinations cannot be reached at all (no Slack install, unknown channel) moves the chain on when the link asks
   * for it (`fallback.continueOnDeliveryFailure`); any other error is retried.
   */
  notifyRequest(notice: RequestNotice): Promise<void>
  /**
   * An event of the run completed (status success or error; approve, deny, escalate, deescalate, expire, or a
   * refused/ignored action): update every copy of the run's card, DM the requester where the event calls for it,
   * and tell a refused actor (event status error on a decision) privately. Idempotent per eventId.
   */
  notifyEvent(notice: EventNotice): Promise<void>
}

export interface RequestNotice {
  readonly orgId: string
  readonly runId: string
  readonly environmentId: string
  /** Position in the chain, from 0. */
  readonly index: number
  readonly destinations: readonly DestinationData[]
  /** Seconds before the chain moves on (or the request expires after the last link); null: never. */
  readonly timeoutSeconds: number | null
}

export interface EventNotice {
  readonly orgId: string
  readonly runId: string
  readonly environmentId: string
  readonly eventId: string
}

/** The destinations of one notification link cannot be delivered to (not retried). */
export class NotificationUndeliverable extends Error {
  override readonly name = 'NotificationUndeliverable'
}

/** No notifier configured (API-only deployments, most tests): nothing is posted anywhere. */
export const silentNotifier: RunNotifier = { notifyRequest: async () => {}, notifyEvent: async () => {} }
