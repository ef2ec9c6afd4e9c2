/**
 * `@opensym/sdk/runtime`: how the platform calls a flow implementation, shared by the sandbox (which bundles this
 * into every isolate) and by `@opensym/sdk/testing`. Not for flow authors.
 *
 * `invoke` finds the export, builds the `Event`, calls it, and shapes what it returned into plain data
 * (`HookResult`, `RequestPermissionData`, `NotificationData[]`, …). The shaping is a convenience, not a guarantee:
 * it runs next to user code, which can tamper with it, so the receiving side validates the data again
 * (`@opensym/sdk/validation`).
 */
import type { EventData, JsonObject, UserData } from './flow/data.js'
import { createEvent, isUser, User } from './flow/event.js'
import { FLOWS_FILTER_FUNCTION_NAMES, keptFlowIds, type FlowInfo } from './flow/flows-filter.js'
import { AFTER_HOOK_NAMES, ON_HOOK_NAMES, PREFETCH_EXPORT, REDUCER_NAMES, type HookName, type ReducerName } from './flow/handlers.js'
import { createAccessStrategy, STRATEGY_FUNCTION_NAMES, type StrategyData } from './flow/strategy.js'
import { HOOK_RETURNS, hookReturnKind, type OnHookName } from './flow/templates.js'

export { installHostBridge, HOST_BRIDGE, type HostBridge } from './flow/host.js'

/** What `getIdentity` is asked, as data. */
export interface IdentityRequestData {
  readonly service: string
  readonly externalId: string
  readonly user: UserData
}

/** One call into a flow implementation. */
export type InvokeRequest =
  | { readonly kind: 'reducer'; readonly name: Exclude<ReducerName, 'getIdentity'>; readonly event: EventData }
  | { readonly kind: 'reducer'; readonly name: 'getIdentity'; readonly event: EventData; readonly identity: IdentityRequestData }
  | { readonly kind: 'hook'; readonly name: HookName; readonly event: EventData }
  | { readonly kind: 'prefetch'; readonly field: string; readonly event: EventData }
  | StrategyRequest
  | FlowsFilterRequest

/**
 * One call of a flows filter's `getFlows`. `event` is not passed to it: it is the context its integration calls are
 * made in (a `prompt` event of `user` whose environment integrations are the filter's).
 */
export interface FlowsFilterRequest {
  readonly kind: 'flows_filter'
  readonly name: 'getFlows'
  readonly user: UserData
  readonly flows: readonly FlowInfo[]
  readonly vars: Readonly<Record<string, string>>
  readonly event: EventData
}

/** One call into a custom strategy module. */
export type StrategyRequest =
  | { readonly kind: 'strategy'; readonly name: 'fetchRemoteIdentity'; readonly user: UserData; readonly strategy: StrategyData }
  | { readonly kind: 'strategy'; readonly name: 'escalate' | 'deescalate'; readonly targetId: string; readonly event: EventData; readonly strategy: StrategyData }

/**
 * How it went. `error` carries what user code threw, as thrown; `invalid_result` and `not_defined` say what was
 * wrong in words meant for the flow's author.
 */
export type InvokeOutcome =
  | { readonly ok: true; readonly defined: boolean; readonly value: unknown }
  | { readonly ok: false; readonly kind: 'error'; readonly thrown: unknown }
  | { readonly ok: false; readonly kind: 'invalid_result' | 'not_defined'; readonly message: string }

/** What a flow module exports that the platform would call. */
export interface ExportSummary {
  /** Reducers and hooks, by name (functions only). */
  readonly handlers: readonly string[]
  /** Fields with a prefetch reducer. */
  readonly prefetch: readonly string[]
}

// Strategy functions are listed too, so that the sandbox can tell a strategy module that lacks one.
const KNOWN = new Set<string>([...REDUCER_NAMES, ...ON_HOOK_NAMES, ...AFTER_HOOK_NAMES, ...STRATEGY_FUNCTION_NAMES, ...FLOWS_FILTER_FUNCTION_NAMES])
const AFTER = new Set<string>(AFTER_HOOK_NAMES)

type Module = Readonly<Record<string, unknown>>

export function summarizeExports(impl: Module): ExportSummary {
  const handlers = Object.keys(impl).filter((k) => KNOWN.has(k) && typeof impl[k] === 'function')
  const prefetch = impl[PREFETCH_EXPORT]
  const fields =
    typeof prefetch === 'object' && prefetch !== null
      ? Object.keys(prefetch).filter((k) => typeof (prefetch as Module)[k] === 'function')
      : []
  return { handlers: handlers.sort(), prefetch: fields.sort() }
}

/** A short description of a value, for messages: its type and the start of its JSON. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'undefined'
  if (typeof value === 'function') return 'a function'
  let json: string | undefined
  try {
    json = JSON.stringify(value)
  } catch {
    json = undefined
  }
  const kind = Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value === 'object' ? 'an object' : `a ${typeof value}`
  if (json === undefined) return kind
  return `${kind} ${json.length > 80 ? `${json.slice(0, 77)}...` : json}`
}

/** Calls the handler `request` names, and shapes its result. Rejects only if the platform's own code fails. */
export async function invoke(impl: Module, request: InvokeRequest): Promise<InvokeOutcome> {
  if (request.kind === 'strategy') return invokeStrategy(impl, request)
  if (request.kind === 'flows_filter') return invokeFlowsFilter(impl, request)
  if (request.kind === 'prefetch') {
    const table = impl[PREFETCH_EXPORT]
    const fn = typeof table === 'object' && table !== null ? (table as Module)[request.field] : undefined
    if (typeof fn !== 'function') return { ok: false, kind: 'not_defined', message: `the implementation has no prefetch reducer for the field "${request.field}" (export const prefetch = { ${request.field}: (event) => [...] })` }
    return call(() => fn(createEvent(request.event)) as unknown, (v) => prefetchOptions(request.field, v))
  }

  const fn = impl[request.name]
  if (fn !== undefined && typeof fn !== 'function') {
    return { ok: false, kind: 'invalid_result', message: `the export ${request.name} must be a function; it is ${describeValue(fn)}` }
  }
  if (request.kind === 'hook') {
    if (fn === undefined) return { ok: true, defined: false, value: { type: 'proceed' } }
    if (AFTER.has(request.name)) return call(() => fn(createEvent(request.event)) as unknown, () => ({ ok: true, value: { type: 'proceed' } }))
    return call(() => fn(createEvent(request.event)) as unknown, (v) => hookResult(request.name as OnHookName, v))
  }
  if (fn === undefined) return { ok: false, kind: 'not_defined', message: `the implementation does not export ${request.name}` }
  if (request.name === 'getIdentity') {
    const event = createEvent(request.event)
    const args = { service: request.identity.service, externalId: request.identity.externalId, user: new User(request.identity.user) }
    return call(() => fn(event, args) as unknown, identity)
  }
  const shape = { getPermissions: permission, getRequestNotifications: notifications, getApprovers: approvers }[request.name]
  return call(() => fn(createEvent(request.event)) as unknown, shape)
}

type Shaped = { ok: true; value: unknown } | { ok: false; message: string }

async function invokeStrategy(impl: Module, request: StrategyRequest): Promise<InvokeOutcome> {
  const fn = impl[request.name]
  if (fn === undefined) return { ok: false, kind: 'not_defined', message: `the strategy implementation does not export ${request.name}` }
  if (typeof fn !== 'function') return { ok: false, kind: 'invalid_result', message: `the export ${request.name} must be a function; it is ${describeValue(fn)}` }
  const strategy = createAccessStrategy(request.strategy)
  if (request.name === 'fetchRemoteIdentity') {
    return call(() => fn(new User(request.user), strategy) as unknown, (v) => (v === undefined || v === null || typeof v === 'string' ? identity(v) : invalid(`fetchRemoteIdentity must return the user's ID (a string) or nothing; it returned ${describeValue(v)}`)))
  }
  const name = request.name
  return call(() => fn(request.targetId, createEvent(request.event), strategy) as unknown, (v) => {
    if (v === undefined || v === null) return { ok: true, value: {} }
    if (typeof v === 'object' && !Array.isArray(v)) return { ok: true, value: v }
    return invalid(`${name} must return an object (the step's output) or nothing; it returned ${describeValue(v)}`)
  })
}

async function invokeFlowsFilter(impl: Module, request: FlowsFilterRequest): Promise<InvokeOutcome> {
  const fn = impl[request.name]
  if (fn === undefined) return { ok: false, kind: 'not_defined', message: 'the flows filter does not export getFlows (export function getFlows(user, flows, vars) { return flows })' }
  if (typeof fn !== 'function') return { ok: false, kind: 'invalid_result', message: `the export getFlows must be a function; it is ${describeValue(fn)}` }
  // Copies: what the filter does to its arguments must not change which flows the platform compares against.
  const flows = request.flows.map((f) => Object.freeze({ id: f.id, name: f.name, label: f.label, environment: f.environment }))
  return call(
    () => fn(new User(request.user), Object.freeze([...flows]), Object.freeze({ ...request.vars })) as unknown,
    (v) => (Array.isArray(v) ? { ok: true, value: keptFlowIds(request.flows, v) } : invalid(`getFlows must return an array of flows (or their names); it returned ${describeValue(v)}`)),
  )
}

async function call(run: () => unknown, shape: (value: unknown) => Shaped): Promise<InvokeOutcome> {
  let value: unknown
  try {
    value = await run()
  } catch (thrown) {
    return { ok: false, kind: 'error', thrown }
  }
  const shaped = shape(value)
  return shaped.ok ? { ok: true, defined: true, value: shaped.value } : { ok: false, kind: 'invalid_result', message: shaped.message }
}

const invalid = (message: string): Shaped => ({ ok: false, message })

function hookResult(name: OnHookName, value: unknown): Shaped {
  if (value === undefined || value === null) return { ok: true, value: { type: 'proceed' } }
  const kind = hookReturnKind(value)
  const allowed: readonly string[] = HOOK_RETURNS[name]
  const choices = allowed.map((a) => `ApprovalTemplate.${a}(…)`).join(', ')
  if (kind === undefined) return invalid(`${name} must return nothing or one of ${choices}; it returned ${describeValue(value)}`)
  const r = value as { transition?: unknown; fields?: unknown; targetSrn?: unknown; duration?: unknown; message?: unknown }
  const what = kind === 'ignore' ? 'ignore' : String(r.transition)
  if (!allowed.includes(what)) {
    return invalid(`${name} cannot return ApprovalTemplate.${what}(…): runs only move forward, and ${name} may return ${choices}`)
  }
  if (kind === 'ignore') return { ok: true, value: { type: 'ignore', message: r.message } }
  return {
    ok: true,
    value: {
      type: 'transition',
      transition: r.transition,
      fields: r.fields,
      ...(r.targetSrn !== undefined ? { targetSrn: r.targetSrn } : {}),
      ...(r.duration !== undefined ? { duration: r.duration } : {}),
    },
  }
}

const userId = (u: unknown): unknown => (isUser(u) ? u.id : u)

function permissionList(value: unknown): unknown {
  return Array.isArray(value) ? value.map(userId) : value
}

function permission(value: unknown): Shaped {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return invalid(`getPermissions must return a RequestPermission ({ webappView, approveDeny, allowSelfApproval }); it returned ${describeValue(value)}`)
  }
  const p = value as { webappView?: unknown; approveDeny?: unknown; allowSelfApproval?: unknown }
  return {
    ok: true,
    value: { webappView: permissionList(p.webappView), approveDeny: permissionList(p.approveDeny), allowSelfApproval: p.allowSelfApproval ?? false },
  }
}

function destination(d: unknown): unknown {
  if (isUser(d)) return { type: 'user', userId: d.id }
  if (typeof d !== 'object' || d === null) return d
  const copy = { ...(d as JsonObject) }
  if (copy.type === 'fallback' && Array.isArray(copy.destinations)) copy.destinations = copy.destinations.map((x) => destination(x) as JsonObject)
  return copy
}

function notifications(value: unknown): Shaped {
  if (!Array.isArray(value)) {
    return invalid(`getRequestNotifications must return an array of notifications ({ destinations, timeout }); it returned ${describeValue(value)}`)
  }
  return {
    ok: true,
    value: value.map((n: unknown) => {
      if (typeof n !== 'object' || n === null) return n
      const { destinations, timeout } = n as { destinations?: unknown; timeout?: unknown }
      return { destinations: Array.isArray(destinations) ? destinations.map(destination) : destinations, timeout: timeout ?? null }
    }),
  }
}

function approvers(value: unknown): Shaped {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return invalid(`getApprovers must return a destination such as slack.channel('#approvals') or slack.fallback([...]); it returned ${describeValue(value)}`)
  }
  return { ok: true, value: destination(value) }
}

function identity(value: unknown): Shaped {
  if (value === undefined || value === null) return { ok: true, value: null }
  if (typeof value !== 'string') return invalid(`getIdentity must return a string (the user's ID in the service) or nothing; it returned ${describeValue(value)}`)
  return { ok: true, value }
}

function prefetchOptions(field: string, value: unknown): Shaped {
  if (!Array.isArray(value)) return invalid(`the prefetch reducer of "${field}" must return an array of options; it returned ${describeValue(value)}`)
  return {
    ok: true,
    value: value.map((o: unknown) => {
      if (typeof o === 'string' || typeof o === 'number') return { value: String(o), label: String(o) }
      if (typeof o !== 'object' || o === null) return o
      const { value: v, label } = o as { value?: unknown; label?: unknown }
      const text = typeof v === 'number' ? String(v) : v
      return { value: text, label: label ?? text }
    }),
  }
}

/** What a thrown value says, as data (for the far side of the sandbox). */
export interface ThrownData {
  readonly name: string
  readonly message: string
  readonly stack?: string
  /** A `RetryableError`'s wait, in seconds. */
  readonly retryAfterSeconds?: number
}

const MAX_MESSAGE = 4000
const MAX_STACK = 8000

/** Describes a thrown value without letting a hostile one (throwing getters, odd prototypes) throw again. */
export function describeThrown(thrown: unknown): ThrownData {
  const text = (read: () => unknown, max: number): string | undefined => {
    try {
      const v = read()
      return typeof v === 'string' ? v.slice(0, max) : undefined
    } catch {
      return undefined
    }
  }
  if (typeof thrown === 'object' && thrown !== null) {
    const e = thrown as { name?: unknown; message?: unknown; stack?: unknown }
    const message = text(() => e.message, MAX_MESSAGE)
    if (message !== undefined) {
      const stack = text(() => e.stack, MAX_STACK)
      const wait = retryAfter(thrown)
      return { name: text(() => e.name, 200) ?? 'Error', message, ...(stack !== undefined ? { stack } : {}), ...(wait !== undefined ? { retryAfterSeconds: wait } : {}) }
    }
  }
  const message = text(() => String(thrown), MAX_MESSAGE) ?? 'a value that cannot be shown'
  return { name: 'Thrown', message: `threw ${typeof thrown === 'string' ? JSON.stringify(message) : message}` }
}

/** A thrown `RetryableError`'s `retryAfterSeconds`, when it is a sane number. */
function retryAfter(thrown: object): number | undefined {
  try {
    const v = (thrown as { retryAfterSeconds?: unknown }).retryAfterSeconds
    return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.min(v, 86_400) : undefined
  } catch {
    return undefined
  }
}
