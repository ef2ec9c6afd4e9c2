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
import type { FlowImplementation, HookName, IdentityRequest } from './flow/handlers.js'
import type { HostArgs, HostMethod, HostResult } from './flow/host.js'
import { describeThrown, installHostBridge, invoke, type InvokeOutcome, type InvokeRequest } from './runtime.js'
import { checkHookResult, checkHostArgs, checkPrefetchResult, checkReducerResult, isHostMethod, type ReducerResults } from './validation.js'

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

async function run(impl: Implementation, request: InvokeRequest, handler: string, options: RunOptions): Promise<InvokeOutcome> {
  ensureBridge()
  const outcome = await current.run({ host: options.host ?? {}, context: { event: request.event, handler } }, () =>
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
