/**
 * `@opensym/sdk/testing`: run a flow implementation's reducers and hooks in a plain unit test (vitest, node:test,
 * jest), against fake events, with your own answers for integration calls. Results are checked exactly as the
 * platform checks them, so a test fails where the platform would refuse the value.
 *
 * @example impl.test.ts
 * ```ts
 * import { describe, expect, it, vi } from 'vitest'
 * import { fakeEvent, fakeUser, runHook, runReducer } from '@opensym/sdk/testing'
 * import * as impl from './impl'
 *
 * it('auto-approves on-call engineers', async () => {
 *   const isOnCall = vi.fn(async () => true)
 *   const event = fakeEvent({ name: 'request', payload: { fields: { reason: 'incident' } } })
 *   expect(await runHook(impl, 'onRequest', event, { host: { 'pagerduty.isOnCall': isOnCall } }))
 *     .toEqual({ type: 'transition', transition: 'approve', fields: { reason: 'On call' } })
 *   expect(isOnCall).toHaveBeenCalledWith({ user: { id: event.user.id, email: event.user.email }, scheduleName: 'Primary' }, expect.anything())
 * })
 *
 * it('routes urgent requests to on-call first', async () => {
 *   const event = fakeEvent({ payload: { fields: { urgency: 'urgent' } }, flow: { vars: { urgent_channel: '#oncall' } } })
 *   const chain = await runReducer(impl, 'getRequestNotifications', event)
 *   expect(chain[0]).toEqual({ destinations: [{ type: 'slack_channel', channel: '#oncall' }], timeout: 900 })
 * })
 * ```
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { randomUUID } from 'node:crypto'
import type { EventData, FieldOptionData, HookResult, IntegrationData, JsonObject, JsonValue, StepName, UserData } from './flow/data.js'
import { IntegrationError } from './flow/errors.js'
import { createEvent, Event, isUser, User } from './flow/event.js'
import type { FlowInfo, FlowsFilterImplementation } from './flow/flows-filter.js'
import type { FlowImplementation, HookName, IdentityRequest } from './flow/handlers.js'
import type { HostArgs, HostMethod, HostResult } from './flow/host.js'
import type { StrategyData, StrategyImplementation } from './flow/strategy.js'
import { describeThrown, installHostBridge, invoke, type InvokeOutcome, type InvokeRequest } from './runtime.js'
import { checkFlowsFilterResult, checkHookResult, checkHostArgs, checkPrefetchResult, checkReducerResult, checkStrategyResult, isHostMethod, type ReducerResults, type StrategyResults } from './validation.js'

/** What a test handler of an integration call is told besides the arguments. */
export interface TestHostContext {
  /** The event of the reducer or hook that made the call. */
  readonly event: EventData
  /** The handler that made it, e.g. `onRequest` or `prefetch.repo`. */
  readonly handler: string
}

/** Answers for integration calls, by method. A call without a handler fails with an `IntegrationError`. */
export type TestHost = {
  readonly [M in HostMethod]?: (args: HostArgs<M>, context: TestHostContext) => HostResult<M> | Promise<HostResult<M>>
}

export interface RunOptions {
  /** Answers for the integration calls the handler makes. */
  readonly host?: TestHost
}

/** A reducer or hook returned something the platform refuses. */
export class InvalidResultError extends Error {
  override name = 'InvalidResultError'
}

/** The implementation does not export the reducer asked for. */
export class NotDefinedError extends Error {
  override name = 'NotDefinedError'
}

let counter = 0

/**
 * A user for tests. Defaults: a member named after a counter (`user1@example.com`), with a Slack identity.
 * @example `const admin = fakeUser({ role: 'admin', email: 'boss@example.com' })`
 */
export function fakeUser(overrides: Partial<UserData> = {}): User {
  return new User(fakeUserData(overrides))
}

function fakeUserData(overrides: Partial<UserData> | User = {}): UserData {
  if (isUser(overrides)) return overrides.toJSON()
  const n = ++counter
  const email = overrides.email === undefined ? `user${n}@example.com` : overrides.email
  return {
    id: randomUUID(),
    email,
    username: email ?? `bot${n}`,
    firstName: null,
    lastName: null,
    type: 'normal',
    role: 'member',
    identities: [{ service: 'slack', serviceId: 'T0000TEST', userId: `U${String(n).padStart(8, '0')}` }],
    ...overrides,
  }
}

/** What `fakeEvent` accepts: any part of the event data; users may be `User`s (e.g. from `fakeUser`). */
export interface FakeEventInput {
  readonly name?: StepName
  readonly user?: Partial<UserData> | User
  readonly channel?: EventData['channel']
  readonly payload?: { readonly fields?: JsonObject }
  readonly flow?: {
    readonly name?: string
    readonly srn?: string
    readonly vars?: Readonly<Record<string, string>>
    readonly environment?: { readonly name?: string; readonly integrations?: Readonly<Record<string, IntegrationData>> }
  }
  readonly run?: {
    readonly id?: string
    readonly srn?: string
    readonly actors?: Readonly<Record<string, Partial<UserData> | User>>
    readonly contexts?: Readonly<Record<string, JsonObject>>
    readonly stepOutputs?: Readonly<Record<string, JsonValue>>
    readonly sourceChannel?: EventData['channel'] | null
  }
  readonly timestamp?: string
}

/**
 * A fake event. Defaults: a `request` event by a member, from Slack, of a flow `test-flow` with no vars, no fields
 * and no integrations; the requester (`run.actors.request`) is the event's user unless you say otherwise.
 *
 * @example
 * ```ts
 * const requester = fakeUser({ email: 'dev@example.com' })
 * const approval = fakeEvent({ name: 'approve', user: fakeUser({ role: 'admin' }), run: { actors: { request: requester } } })
 * ```
 */
export function fakeEvent(input: FakeEventInput = {}): Event {
  return createEvent(fakeEventData(input))
}

/** The data behind `fakeEvent`, for code that takes `EventData` (the sandbox, the engine). */
export function fakeEventData(input: FakeEventInput = {}): EventData {
  const name = input.name ?? 'request'
  const user = fakeUserData(input.user)
  const flowName = input.flow?.name ?? 'test-flow'
  const runId = input.run?.id ?? randomUUID()
  const actors: Record<string, UserData> = {}
  for (const [step, u] of Object.entries(input.run?.actors ?? {})) actors[step] = fakeUserData(u)
  actors.request ??= user
  actors[name] ??= user
  const channel = input.channel ?? { type: 'slack', identifier: null }
  return {
    name,
    id: randomUUID(),
    timestamp: input.timestamp ?? new Date().toISOString(),
    user,
    channel,
    payload: { fields: { ...(input.payload?.fields ?? {}) } },
    flow: {
      name: flowName,
      srn: input.flow?.srn ?? `test:flow:${flowName}:latest`,
      vars: { ...(input.flow?.vars ?? {}) },
      environment: { name: input.flow?.environment?.name ?? 'test', integrations: { ...(input.flow?.environment?.integrations ?? {}) } },
    },
    run: {
      id: runId,
      srn: input.run?.srn ?? `test:run:${runId}`,
      actors,
      contexts: { ...(input.run?.contexts ?? {}) },
      stepOutputs: { ...(input.run?.stepOutputs ?? {}) },
      sourceChannel: input.run?.sourceChannel === undefined ? channel : input.run.sourceChannel,
    },
  }
}

// One bridge for the process; each run finds its own handlers through async context, so concurrent tests with
// different answers do not see each other's.
const current = new AsyncLocalStorage<{ host: TestHost; context: TestHostContext }>()
let bridgeInstalled = false

function ensureBridge(): void {
  if (bridgeInstalled) return
  bridgeInstalled = true
  installHostBridge(async (method, args) => {
    const run = current.getStore()
    if (!run) throw new IntegrationError(method, `${method} was called outside a runReducer/runHook of @opensym/sdk/testing`, 'not_available')
    if (!isHostMethod(method)) throw new IntegrationError(method, `${method} is not an integration call the platform knows`, 'unknown_method')
    // Through JSON, as across the sandbox boundary (a Date becomes a string, a User its data).
    const plain = JSON.parse(JSON.stringify(args ?? {})) as unknown
    const checked = checkHostArgs(method, plain)
    if (!checked.ok) throw new IntegrationError(method, checked.message, 'invalid_arguments')
    const handler = run.host[method] as ((a: unknown, c: TestHostContext) => unknown) | undefined
    if (!handler) {
      throw new IntegrationError(method, `${method} has no answer in this test: pass runHook/runReducer(..., { host: { '${method}': async (args) => … } })`, 'not_available')
    }
    const result = await handler(checked.value, run.context)
    return result === undefined ? null : (JSON.parse(JSON.stringify(result)) as unknown)
  })
}

/** A flow implementation module, e.g. `import * as impl from './impl'`. */
type Implementation = FlowImplementation

async function run(impl: Implementation | StrategyImplementation | FlowsFilterImplementation, request: InvokeRequest, handler: string, options: RunOptions): Promise<InvokeOutcome> {
  ensureBridge()
  // fetchRemoteIdentity has no event: its integration calls are told about a request by the user in question.
  const event = 'event' in request ? request.event : fakeEventData({ user: request.user })
  const outcome = await current.run({ host: options.host ?? {}, context: { event, handler } }, () =>
    invoke(impl as Readonly<Record<string, unknown>>, request),
  )
  if (outcome.ok) return outcome
  if (outcome.kind === 'error') throw outcome.thrown
  if (outcome.kind === 'not_defined') throw new NotDefinedError(outcome.message)
  throw new InvalidResultError(outcome.message)
}

function roundTrip(value: unknown, what: string): unknown {
  try {
    return JSON.parse(JSON.stringify(value)) as unknown
  } catch (e) {
    throw new InvalidResultError(`${what} returned a value that is not JSON: ${describeThrown(e).message}`)
  }
}

const eventData = (event: Event | EventData): EventData => (event instanceof Event ? event.toJSON() : event)

type ReducerWithEventOnly = 'getPermissions' | 'getRequestNotifications' | 'getApprovers'

/**
 * Runs a reducer as the platform would, and returns the validated result. A reducer that throws rejects with what
 * it threw; an invalid result rejects with an `InvalidResultError`; a missing one with a `NotDefinedError`.
 */
export async function runReducer<N extends ReducerWithEventOnly>(impl: Implementation, name: N, event: Event | EventData, options: RunOptions = {}): Promise<ReducerResults[N]> {
  const outcome = await run(impl, { kind: 'reducer', name, event: eventData(event) }, name, options)
  const checked = checkReducerResult(name, roundTrip(outcome.ok ? outcome.value : undefined, name))
  if (!checked.ok) throw new InvalidResultError(checked.message)
  return checked.value
}

/** Runs `getIdentity` for `request.user` in a service: their ID there, or null. */
export async function runGetIdentity(impl: Implementation, event: Event | EventData, request: IdentityRequest, options: RunOptions = {}): Promise<string | null> {
  const identity = { service: request.service, externalId: request.externalId, user: request.user.toJSON() }
  const outcome = await run(impl, { kind: 'reducer', name: 'getIdentity', event: eventData(event), identity }, 'getIdentity', options)
  const checked = checkReducerResult('getIdentity', roundTrip(outcome.ok ? outcome.value : undefined, 'getIdentity'))
  if (!checked.ok) throw new InvalidResultError(checked.message)
  return checked.value
}

/** Runs the prefetch reducer of a field: the dropdown's options. */
export async function runPrefetch(impl: Implementation, field: string, event: Event | EventData, options: RunOptions = {}): Promise<FieldOptionData[]> {
  const outcome = await run(impl, { kind: 'prefetch', field, event: eventData(event) }, `prefetch.${field}`, options)
  const checked = checkPrefetchResult(field, roundTrip(outcome.ok ? outcome.value : undefined, `prefetch.${field}`))
  if (!checked.ok) throw new InvalidResultError(checked.message)
  return checked.value
}

/**
 * Runs a hook as the platform would: `{type: 'proceed'}` when it returned nothing (or is not defined),
 * `{type: 'transition', transition, fields}` for `ApprovalTemplate.approve/deny/…`, `{type: 'ignore', message}`.
 */
export async function runHook(impl: Implementation, name: HookName, event: Event | EventData, options: RunOptions = {}): Promise<HookResult> {
  const outcome = await run(impl, { kind: 'hook', name, event: eventData(event) }, name, options)
  const checked = checkHookResult(name, roundTrip(outcome.ok ? outcome.value : undefined, name))
  if (!checked.ok) throw new InvalidResultError(checked.message)
  return checked.value
}

// ---------------------------------------------------------------------------------------------------------------
// Custom strategies

/** The strategy a custom strategy's functions are called with, in a test. */
export interface FakeStrategyInput {
  /** Default `test-strategy`. */
  readonly name?: string
  readonly settings?: Readonly<Record<string, string>>
  /** The `custom` integration. Default: external id `test`, no settings. Secrets as `{ $secret: id }`. */
  readonly integration?: Partial<IntegrationData>
}

export interface StrategyRunOptions extends RunOptions {
  readonly strategy?: FakeStrategyInput
  /** What `strategy.getRequesterIdentity(event)` gives in `escalate`/`deescalate`. Default `remote-<requester id>`. */
  readonly identity?: string
  /** The target id passed to `escalate`/`deescalate`. Default: the event's `payload.fields.target_id`, else `test-target`. */
  readonly targetId?: string
  /**
   * Answers `strategy.fetch`, as a standard fetch handler (a `Request` in, a `Response` out), e.g.
   * `fetch: async (req) => Response.json({ id: 'u-1' })`. Same as a `host['http.fetch']` handler, in web terms.
   */
  readonly fetch?: (request: Request) => Response | Promise<Response>
}

function strategyData(options: StrategyRunOptions, identity: string | null): StrategyData {
  const i = options.strategy?.integration ?? {}
  return {
    name: options.strategy?.name ?? 'test-strategy',
    settings: { ...(options.strategy?.settings ?? {}) },
    integration: { type: i.type ?? 'custom', externalId: i.externalId ?? 'test', settings: { ...(i.settings ?? {}) } },
    identity,
  }
}

function strategyHost(options: StrategyRunOptions): TestHost {
  const handler = options.fetch
  if (!handler) return options.host ?? {}
  const fetchHandler = async (args: HostArgs<'http.fetch'>): Promise<HostResult<'http.fetch'>> => {
    const res = await handler(new Request(args.url, { method: args.method, headers: args.headers, ...(args.body !== undefined ? { body: args.body } : {}) }))
    const headers: Record<string, string> = {}
    res.headers.forEach((v, k) => (headers[k] = v))
    return { status: res.status, url: args.url, headers, body: await res.text() }
  }
  return { ...options.host, 'http.fetch': fetchHandler }
}

async function runStrategy<N extends keyof StrategyResults>(name: N, impl: StrategyImplementation, request: InvokeRequest, options: StrategyRunOptions): Promise<StrategyResults[N]> {
  const outcome = await run(impl, request, name, { host: strategyHost(options) })
  const checked = checkStrategyResult(name, roundTrip(outcome.ok ? outcome.value : undefined, name))
  if (!checked.ok) throw new InvalidResultError(checked.message)
  return checked.value
}

/**
 * Runs a custom strategy's `fetchRemoteIdentity` as the platform would: the user's ID in the system, or null.
 * What it throws rejects as thrown (a `RetryableError` stays one).
 *
 * @example
 * ```ts
 * const id = await runFetchRemoteIdentity(strategy, fakeUser({ email: 'dev@example.com' }), {
 *   strategy: { integration: { settings: { api_url: 'https://backoffice.test' } } },
 *   fetch: async (req) => (new URL(req.url).searchParams.get('email') === 'dev@example.com' ? Response.json({ id: 'u-7' }) : new Response(null, { status: 404 })),
 * })
 * expect(id).toBe('u-7')
 * ```
 */
export function runFetchRemoteIdentity(impl: StrategyImplementation, user: User | Partial<UserData>, options: StrategyRunOptions = {}): Promise<string | null> {
  const data = fakeUserData(user)
  return runStrategy('fetchRemoteIdentity', impl, { kind: 'strategy', name: 'fetchRemoteIdentity', user: data, strategy: strategyData(options, null) }, options)
}

function stepRequest(name: 'escalate' | 'deescalate', event: Event | EventData, options: StrategyRunOptions): InvokeRequest {
  const data = eventData(event)
  const fromEvent = data.payload.fields.target_id
  const targetId = options.targetId ?? (typeof fromEvent === 'string' ? fromEvent : 'test-target')
  const requester = data.run.actors.request ?? data.user
  return { kind: 'strategy', name, targetId, event: data, strategy: strategyData(options, options.identity ?? `remote-${requester.id}`) }
}

/**
 * Runs a custom strategy's `escalate` as the platform would, with the event (e.g. `fakeEvent({ name: 'escalate',
 * payload: { fields: { target: {...}, target_id: '…' } } })`); resolves with the step's output (`{}` for nothing).
 */
export function runEscalate(impl: StrategyImplementation, event: Event | EventData, options: StrategyRunOptions = {}): Promise<StrategyResults['escalate']> {
  return runStrategy('escalate', impl, stepRequest('escalate', event, options), options)
}

/** Runs a custom strategy's `deescalate` as the platform would; resolves with the step's output. */
export function runDeescalate(impl: StrategyImplementation, event: Event | EventData, options: StrategyRunOptions = {}): Promise<StrategyResults['deescalate']> {
  return runStrategy('deescalate', impl, stepRequest('deescalate', event, options), options)
}

// ---------------------------------------------------------------------------------------------------------------
// Flows filters

/** A flow for `runGetFlows`: `name` is required; the ID defaults to a new UUID, the environment to `test`. */
export type FakeFlowInput = Partial<FlowInfo> & { readonly name: string }

/** Flows as the filter is given them. @example `fakeFlows('aws-access', { name: 'break-glass', environment: 'prod' })` */
export function fakeFlows(...flows: ReadonlyArray<FakeFlowInput | string>): FlowInfo[] {
  return flows.map((f) => {
    const input = typeof f === 'string' ? { name: f } : f
    return { id: input.id ?? randomUUID(), name: input.name, label: input.label ?? null, environment: input.environment ?? 'test' }
  })
}

export interface FlowsFilterRunOptions extends RunOptions {
  /** The filter's `vars`. Default none. */
  readonly vars?: Readonly<Record<string, string>>
  /** Its `integrations` (what its integration calls use), by name: `{ pagerduty: { type: 'pagerduty', externalId: '…', settings: {} } }`. */
  readonly integrations?: Readonly<Record<string, IntegrationData>>
}

/**
 * Runs a flows filter's `getFlows` as the platform would, for `user`: resolves with the flows of `flows` it keeps, in
 * their order (what the person would see in `/sym`).
 *
 * @example
 * ```ts
 * import * as filter from './flows_filter'
 * const flows = fakeFlows('okta-access', 'break-glass')
 * const shown = await runGetFlows(filter, fakeUser(), flows, { host: { 'pagerduty.getIncidents': async () => [] } })
 * expect(shown.map((f) => f.name)).toEqual(['okta-access'])
 * ```
 */
export async function runGetFlows(impl: FlowsFilterImplementation, user: User | Partial<UserData>, flows: readonly FlowInfo[], options: FlowsFilterRunOptions = {}): Promise<FlowInfo[]> {
  const data = fakeUserData(user)
  const event = fakeEventData({ name: 'prompt', user: data, flow: { name: 'flows-filter', environment: { name: 'flows-filter', integrations: { ...(options.integrations ?? {}) } } } })
  const request = { kind: 'flows_filter', name: 'getFlows', user: data, flows, vars: { ...(options.vars ?? {}) }, event } as const
  const outcome = await run(impl, request, 'getFlows', options)
  const checked = checkFlowsFilterResult(roundTrip(outcome.ok ? outcome.value : undefined, 'getFlows'))
  if (!checked.ok) throw new InvalidResultError(checked.message)
  const kept = new Set(checked.value)
  return flows.filter((f) => kept.has(f.id))
}
