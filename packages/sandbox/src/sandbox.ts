/**
 * The sandbox: flow implementations run in isolated-vm isolates. Each isolate holds one flow version and serves one
 * call at a time, in a fresh context, under that call's wall-clock time limit and memory limit; concurrent calls of
 * a flow version get isolates of their own (idle ones are kept, a few per version). User code sees the language and the
 * SDK, nothing else: no `require`, `process`, `fetch`, timers, files or network. Integration calls leave through
 * the SDK's host bridge to the handlers the sandbox was created with.
 *
 * Every call resolves to a `CallResult`: a validated value, or a typed failure (`compile`, `unsupported_language`,
 * `not_defined`, `error`, `timeout`, `memory`, `invalid_result`, `closed`, `internal`). It never rejects because of
 * what user code did.
 */
import type {
  EventData,
  FieldOptionData,
  FlowInfo,
  HookResult,
  HostArgs,
  HostMethod,
  HostResult,
  HookName,
  JsonObject,
  ReducerName,
  StrategyData,
  StrategyFunctionName,
  UserData,
} from '@opensym/sdk/flow'
import type { ExportSummary, IdentityRequestData, InvokeRequest, ThrownData } from '@opensym/sdk/runtime'
import {
  checkFlowsFilterResult,
  checkHookResult,
  checkHostArgs,
  checkPrefetchResult,
  checkReducerResult,
  checkStrategyResult,
  isHostMethod,
  type Checked,
  type ReducerResults,
} from '@opensym/sdk/validation'
import ivm from 'isolated-vm'
import { randomUUID } from 'node:crypto'
import { compileFlow, sourceHash, SOURCE_NAME, type CompileDiagnostic } from './compiler.js'
import type { Dispatch } from './isolate/entry.js'
import { flowScript, runtimeScript } from './runtime-script.js'

// ---------------------------------------------------------------------------------------------------------------
// Public types

/** What a host handler is told besides the call's arguments. */
export interface HostCallContext<C = unknown> {
  /** The flow version, as given to `load`. */
  readonly flowKey: string
  /** The reducer or hook that made the call: `onRequest`, `getPermissions`, `prefetch.repo`. */
  readonly handler: string
  /** The event the reducer or hook was called with. */
  readonly event: EventData
  /** Aborted when the call runs out of time: stop waiting on the integration. */
  readonly signal: AbortSignal
  /** What the caller passed as `CallOptions.context` (e.g. org, run and event IDs). */
  readonly context: C | undefined
}

/**
 * The platform's side of the SDK's integration calls, by method. Arguments arrive validated. A handler's thrown
 * error reaches the flow as an `IntegrationError` with the error's `message` (and `code`, if it has one): do not
 * put secrets in messages. A method without a handler fails in the flow with a clear `not_available` error.
 */
export type HostHandlers<C = unknown> = {
  readonly [M in HostMethod]?: (args: HostArgs<M>, context: HostCallContext<C>) => Promise<HostResult<M>> | HostResult<M>
}

export interface SandboxOptions<C = unknown> {
  /** Heap limit of the isolate serving a call, in MB (isolated-vm's minimum is 8). Default 64. */
  readonly memoryLimitMb?: number
  /** Wall-clock limit of one call, module set-up and integration calls included, in ms. Default 1000. */
  readonly timeoutMs?: number
  /** Integration call handlers. Default: none (every call fails with `not_available`). */
  readonly host?: HostHandlers<C>
  /** Largest result (as JSON) a reducer or hook may return. Default 256 KiB. */
  readonly maxResultBytes?: number
  /** Integration calls one reducer or hook may make. Default 50. */
  readonly maxHostCalls?: number
  /** `console` lines kept per call. Default 100. */
  readonly maxLogLines?: number
  /**
   * Isolates kept alive in all: beyond this, the least recently used idle ones are disposed (a call in progress
   * always has one, so peak memory is about concurrent calls × `memoryLimitMb`). Default 64.
   */
  readonly maxIsolates?: number
  /** Compiled flow versions kept. Default 1000. */
  readonly maxFlows?: number
  /**
   * V8 lost control of an isolate (isolated-vm's `onCatastrophicError`): log it and restart the process soon.
   * Default: write to stderr.
   */
  readonly onCatastrophicError?: (message: string) => void
}

export type FailureKind =
  /** The implementation does not compile (TypeScript/JavaScript syntax, or a forbidden import). */
  | 'compile'
  /** A Python implementation (Sym's impl.py): stored, not runnable yet. */
  | 'unsupported_language'
  /** The reducer asked for is not exported. */
  | 'not_defined'
  /** User code threw (or rejected), at module set-up or in the handler. */
  | 'error'
  /** The call ran out of time (a loop, a promise that never settles, slow integration calls). */
  | 'timeout'
  /** The isolate ran out of memory. */
  | 'memory'
  /** The handler returned something the platform refuses (wrong shape, too large, not JSON, a backwards transition). */
  | 'invalid_result'
  /** The sandbox was closed. */
  | 'closed'
  /** A fault of the platform, not of the flow. */
  | 'internal'

export interface SandboxFailure {
  readonly kind: FailureKind
  /** For the event record and the error logger, e.g. `onRequest threw Error: boom`. */
  readonly message: string
  /** What user code threw, when it threw. */
  readonly thrown?: ThrownData
  /** Compile errors with their lines. */
  readonly diagnostics?: readonly CompileDiagnostic[]
}

export interface LogLine {
  readonly level: 'log' | 'info' | 'warn' | 'error' | 'debug'
  readonly message: string
}

interface CallInfo {
  /** `console` output of the call, in order (at most `maxLogLines`). */
  readonly logs: readonly LogLine[]
  readonly durationMs: number
  /** Integration calls made. */
  readonly hostCalls: number
}

export type CallResult<T> =
  | (CallInfo & {
      readonly ok: true
      readonly value: T
      /** False when the hook is not exported (the value is then `proceed`). */
      readonly defined: boolean
    })
  | (CallInfo & { readonly ok: false; readonly error: SandboxFailure })

export interface CallOptions<C = unknown> {
  /** Passed to host handlers as `context.context`. */
  readonly context?: C
}

export type LoadResult<C = unknown> = { readonly ok: true; readonly flow: LoadedFlow<C> } | { readonly ok: false; readonly error: SandboxFailure }

/** The reducers called with the event only. */
export type EventReducerName = Exclude<ReducerName, 'getIdentity'>

/** A compiled flow version, ready to call. Calls of one flow version may run concurrently. */
export interface LoadedFlow<C = unknown> {
  readonly key: string
  /** The reducers, hooks and prefetch fields the module exports. */
  readonly exports: ExportSummary
  /** Whether the module exports this reducer or hook. */
  has(name: ReducerName | HookName): boolean
  /** Calls `getPermissions`, `getRequestNotifications` or the legacy `getApprovers`. */
  callReducer<N extends EventReducerName>(name: N, event: EventData, options?: CallOptions<C>): Promise<CallResult<ReducerResults[N]>>
  /** Calls `getIdentity`: the user's ID in a service, or null to fall back to email discovery. */
  callIdentity(event: EventData, request: IdentityRequestData, options?: CallOptions<C>): Promise<CallResult<string | null>>
  /** Calls the prefetch reducer of a field: the options of its dropdown. */
  callPrefetch(field: string, event: EventData, options?: CallOptions<C>): Promise<CallResult<FieldOptionData[]>>
  /**
   * Calls a hook. Not exported: `{type: 'proceed'}` with `defined: false`. `after…` hooks always give `proceed`.
   * A transition is one the hook may return (runs only move forward); the engine decides what a hook returning
   * its own step means (processed once).
   */
  callHook(name: HookName, event: EventData, options?: CallOptions<C>): Promise<CallResult<HookResult>>
}

/** What a strategy call's own host handler is told besides the call's arguments. */
export interface StrategyHostCallContext {
  /** The strategy version, as given to `loadStrategy` (prefixed `strategy:`). */
  readonly strategyKey: string
  /** `fetchRemoteIdentity`, `escalate` or `deescalate`. */
  readonly handler: string
  /** Aborted when the call runs out of time. */
  readonly signal: AbortSignal
}

/** Host handlers of one strategy call (e.g. `http.fetch`, `secrets.retrieve` within the strategy's integration). */
export type StrategyHostHandlers = {
  readonly [M in HostMethod]?: (args: HostArgs<M>, context: StrategyHostCallContext) => Promise<HostResult<M>> | HostResult<M>
}

export interface StrategyCallOptions<C = unknown> extends CallOptions<C> {
  /**
   * Handlers for this call only, tried before the sandbox's own. The sandbox's handlers serve `escalate` and
   * `deescalate` (with their event) but not `fetchRemoteIdentity`, which has no event.
   */
  readonly host?: StrategyHostHandlers
  /** Wall-clock limit of this call, in ms (strategies wait on other systems). Default: the sandbox's `timeoutMs`. */
  readonly timeoutMs?: number
}

/** A compiled custom strategy version (`sym_strategy` of type `custom`), ready to call; calls may run concurrently. */
export interface LoadedStrategy<C = unknown> {
  readonly key: string
  readonly exports: ExportSummary
  /** Whether the module exports this function (`escalate` and `deescalate` always are: loading checks). */
  has(name: StrategyFunctionName): boolean
  /** The user's ID in the strategy's system, or null. Not exported: a `not_defined` failure. */
  fetchRemoteIdentity(user: UserData, strategy: StrategyData, options?: StrategyCallOptions<C>): Promise<CallResult<string | null>>
  /** Grants the access: the step's output (`{}` when the function returned nothing). */
  escalate(targetId: string, event: EventData, strategy: StrategyData, options?: StrategyCallOptions<C>): Promise<CallResult<JsonObject>>
  /** Removes the access: the step's output. */
  deescalate(targetId: string, event: EventData, strategy: StrategyData, options?: StrategyCallOptions<C>): Promise<CallResult<JsonObject>>
}

export type LoadStrategyResult<C = unknown> = { readonly ok: true; readonly strategy: LoadedStrategy<C> } | { readonly ok: false; readonly error: SandboxFailure }

/** A compiled flows filter (`sym_flows_filter`), ready to call; calls may run concurrently. */
export interface LoadedFlowsFilter<C = unknown> {
  readonly key: string
  readonly exports: ExportSummary
  /**
   * Calls `getFlows(user, flows, vars)`: the IDs of the flows of `flows` to show, in their order. `event` is the
   * context of its integration calls (the sandbox's host handlers get it): a `prompt` event of `user` whose
   * environment integrations are the filter's.
   */
  getFlows(user: UserData, flows: readonly FlowInfo[], vars: Readonly<Record<string, string>>, event: EventData, options?: CallOptions<C>): Promise<CallResult<string[]>>
}

export type LoadFlowsFilterResult<C = unknown> = { readonly ok: true; readonly filter: LoadedFlowsFilter<C> } | { readonly ok: false; readonly error: SandboxFailure }

/** Identifies a flow version; a string is used as is. */
export type FlowKey = string | { readonly flowId: string; readonly version: number | string }

export interface SandboxStats {
  /** Flow versions loaded (compiled, or failed to compile). */
  readonly flows: number
  /** Isolates alive. */
  readonly isolates: number
}

export interface Sandbox<C = unknown> {
  /**
   * Compiles a flow version (once: later loads of the same key and source return the cached flow) and checks that
   * its module sets up. A failure (`compile`, `unsupported_language`, `error`, `timeout`, `memory`) is what every
   * run of this version should record.
   */
  load(key: FlowKey, source: string): Promise<LoadResult<C>>
  /**
   * Compiles a custom strategy version like `load` (once per key and source; keys live apart from flows') and
   * checks that it exports `escalate` and `deescalate`.
   */
  loadStrategy(key: FlowKey, source: string): Promise<LoadStrategyResult<C>>
  /** Compiles a flows filter like `load` (keys kept apart from flows' and strategies') and checks it exports `getFlows`. */
  loadFlowsFilter(key: FlowKey, source: string): Promise<LoadFlowsFilterResult<C>>
  stats(): SandboxStats
  /** Disposes every isolate. Calls in flight fail with `closed`. */
  close(): Promise<void>
}

// ---------------------------------------------------------------------------------------------------------------
// Implementation

const DEFAULTS = {
  memoryLimitMb: 64,
  timeoutMs: 1000,
  maxResultBytes: 256 * 1024,
  maxHostCalls: 50,
  maxLogLines: 100,
  maxIsolates: 64,
  maxFlows: 1000,
}

/** Integration call arguments and results larger than this are refused. */
const MAX_HOST_MESSAGE = 1024 * 1024

const LOG_LEVELS = new Set(['log', 'info', 'warn', 'error', 'debug'])

/** A context that ran the runtime and the flow's module, ready to serve one call. */
interface Warm {
  readonly context: ivm.Context
  readonly dispatch: ivm.Reference<Dispatch>
}

/** A call in progress, found by its token when the isolate calls the host or logs. */
interface ActiveCall<C> {
  readonly state: CallState
  readonly handler: string
  /** Undefined for a strategy's `fetchRemoteIdentity`. */
  readonly event: EventData | undefined
  readonly signal: AbortSignal
  readonly context: C | undefined
  /** The call's own handlers (strategy calls). */
  readonly host: StrategyHostHandlers | undefined
}

/**
 * An isolate holding one flow version's script. A slot serves one call at a time, so a call's time and memory
 * limits are its own: disposing a runaway call's isolate touches no other call.
 */
interface Slot<C> {
  readonly isolate: ivm.Isolate
  readonly script: ivm.Script
  readonly host: ivm.Reference
  readonly log: ivm.Callback
  readonly calls: Map<string, ActiveCall<C>>
  /** The next call's context, made ready while the slot is idle. */
  spare?: Promise<Warm | undefined>
  lastUsed: number
  disposed: boolean
}

interface Cached<C> {
  readonly hash: string
  readonly result: LoadResult<C>
  readonly record?: FlowRecord
}

interface FlowRecord {
  readonly key: string
  readonly hash: string
  readonly code: string
  exports: ExportSummary
  /** Idle isolates of this flow version, most recently used last. */
  readonly idle: Slot<never>[]
  /** Isolates of this flow version serving a call now. */
  busy: number
  lastUsed: number
}

/** What one call ended with, before validation. */
type Raw = { readonly type: 'reply'; readonly reply: unknown } | { readonly type: 'failure'; readonly error: SandboxFailure }

interface CallState {
  hostCalls: number
  finished: boolean
  readonly logs: LogLine[]
  droppedLogs: number
}

/** Idle isolates kept per flow version (more are made when calls overlap, and disposed after). */
const IDLE_PER_FLOW = 2

const keyOf = (key: FlowKey): string => (typeof key === 'string' ? key : `${key.flowId}@${key.version}`)

const now = () => performance.now()

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e)
}

const newState = (): CallState => ({ hostCalls: 0, finished: false, logs: [], droppedLogs: 0 })

function release(warm: Warm | undefined): void {
  try {
    warm?.dispatch.release()
    warm?.context.release()
  } catch {
    // The isolate is gone.
  }
}

/**
 * Creates a sandbox. One per worker process is enough: it caches flow versions and their isolates.
 *
 * @example
 * ```ts
 * const sandbox = createSandbox({ memoryLimitMb: 64, timeoutMs: 1000, host: { 'slack.sendMessage': sendSlackMessage } })
 * const loaded = await sandbox.load({ flowId: flow.id, version: flow.version }, flow.implementation)
 * if (!loaded.ok) return recordEventError(loaded.error.message)
 * const hook = await loaded.flow.callHook('onRequest', eventData, { context: { runId } })
 * if (!hook.ok) return recordEventError(hook.error.message) // no grant
 * if (hook.value.type === 'transition' && hook.value.transition === 'approve') …
 * ```
 */
export function createSandbox<C = unknown>(options: SandboxOptions<C> = {}): Sandbox<C> {
  return new IsolatedSandbox<C>(options)
}

class IsolatedSandbox<C> implements Sandbox<C> {
  readonly #o: typeof DEFAULTS
  readonly #host: HostHandlers<C>
  readonly #onCatastrophicError: (message: string) => void
  readonly #flows = new Map<string, Cached<C>>()
  readonly #loading = new Map<string, Promise<LoadResult<C>>>()
  #closed = false

  constructor(options: SandboxOptions<C>) {
    this.#o = {
      memoryLimitMb: Math.max(8, options.memoryLimitMb ?? DEFAULTS.memoryLimitMb),
      timeoutMs: Math.max(1, options.timeoutMs ?? DEFAULTS.timeoutMs),
      maxResultBytes: options.maxResultBytes ?? DEFAULTS.maxResultBytes,
      maxHostCalls: options.maxHostCalls ?? DEFAULTS.maxHostCalls,
      maxLogLines: options.maxLogLines ?? DEFAULTS.maxLogLines,
      maxIsolates: Math.max(1, options.maxIsolates ?? DEFAULTS.maxIsolates),
      maxFlows: Math.max(1, options.maxFlows ?? DEFAULTS.maxFlows),
    }
    this.#host = options.host ?? {}
    this.#onCatastrophicError = options.onCatastrophicError ?? ((m) => process.stderr.write(`[sandbox] isolated-vm catastrophic error: ${m}\n`))
  }

  stats(): SandboxStats {
    let isolates = 0
    for (const c of this.#flows.values()) if (c.record) isolates += c.record.idle.length + c.record.busy
    return { flows: this.#flows.size, isolates }
  }

  async close(): Promise<void> {
    this.#closed = true
    await Promise.all([...this.#loading.values()].map((p) => p.catch(() => undefined)))
    for (const c of this.#flows.values()) if (c.record) this.#drop(c.record)
    this.#flows.clear()
  }

  async load(flowKey: FlowKey, source: string): Promise<LoadResult<C>> {
    if (this.#closed) return { ok: false, error: { kind: 'closed', message: 'the sandbox is closed' } }
    const key = keyOf(flowKey)
    const pending = this.#loading.get(key)
    if (pending) return pending
    const promise = this.#load(key, source).finally(() => this.#loading.delete(key))
    this.#loading.set(key, promise)
    return promise
  }

  async loadStrategy(strategyKey: FlowKey, source: string): Promise<LoadStrategyResult<C>> {
    const key = `strategy:${keyOf(strategyKey)}`
    const loaded = await this.load(key, source)
    if (!loaded.ok) return loaded
    const record = this.#flows.get(key)?.record
    if (!record) return { ok: false, error: { kind: this.#closed ? 'closed' : 'internal', message: `the strategy ${key} was unloaded while loading; try again` } }
    const missing = (['escalate', 'deescalate'] as const).filter((n) => !record.exports.handlers.includes(n))
    if (missing.length) {
      return { ok: false, error: { kind: 'not_defined', message: `the strategy implementation does not export ${missing.join(' or ')} (export async function ${missing[0]}(targetId, event, strategy) { … })` } }
    }
    const step = (name: 'escalate' | 'deescalate') => (targetId: string, event: EventData, strategy: StrategyData, options?: StrategyCallOptions<C>) =>
      this.#call(record, { kind: 'strategy', name, targetId, event, strategy }, name, options, (v) => checkStrategyResult(name, v))
    return {
      ok: true,
      strategy: {
        key,
        exports: record.exports,
        has: (name) => record.exports.handlers.includes(name),
        fetchRemoteIdentity: (user, strategy, options) =>
          this.#call(record, { kind: 'strategy', name: 'fetchRemoteIdentity', user, strategy }, 'fetchRemoteIdentity', options, (v) => checkStrategyResult('fetchRemoteIdentity', v)),
        escalate: step('escalate'),
        deescalate: step('deescalate'),
      },
    }
  }

  async loadFlowsFilter(filterKey: FlowKey, source: string): Promise<LoadFlowsFilterResult<C>> {
    const key = `flows-filter:${keyOf(filterKey)}`
    const loaded = await this.load(key, source)
    if (!loaded.ok) return loaded
    const record = this.#flows.get(key)?.record
    if (!record) return { ok: false, error: { kind: this.#closed ? 'closed' : 'internal', message: `the flows filter ${key} was unloaded while loading; try again` } }
    if (!record.exports.handlers.includes('getFlows')) {
      return { ok: false, error: { kind: 'not_defined', message: 'the flows filter does not export getFlows (export function getFlows(user, flows, vars) { return flows })' } }
    }
    return {
      ok: true,
      filter: {
        key,
        exports: record.exports,
        getFlows: (user, flows, vars, event, options) =>
          this.#call(record, { kind: 'flows_filter', name: 'getFlows', user, flows, vars, event }, 'getFlows', options, (v) => {
            // The IDs must be of flows it was given: a filter can hide flows, never add one.
            const checked = checkFlowsFilterResult(v)
            if (!checked.ok) return checked
            const given = new Set(flows.map((f) => f.id))
            return { ok: true, value: checked.value.filter((id) => given.has(id)) }
          }),
      },
    }
  }

  async #load(key: string, source: string): Promise<LoadResult<C>> {
    const cached = this.#flows.get(key)
    if (cached && cached.hash === sourceHash(source)) {
      this.#flows.delete(key)
      this.#flows.set(key, cached)
      if (cached.record) cached.record.lastUsed = now()
      return cached.result
    }
    // The same key with other source (versions should change with the source): the new source wins.
    if (cached?.record) this.#drop(cached.record)
    const compiled = await compileFlow(source)
    if (!compiled.ok) {
      const error: SandboxFailure =
        compiled.language === 'python'
          ? { kind: 'unsupported_language', message: compiled.message }
          : { kind: 'compile', message: `the implementation does not compile: ${compiled.message}`, diagnostics: compiled.diagnostics }
      return this.#remember(key, { hash: compiled.hash, result: { ok: false, error } })
    }

    const record: FlowRecord = { key, hash: compiled.hash, code: compiled.code, exports: { handlers: [], prefetch: [] }, idle: [], busy: 0, lastUsed: now() }
    const summary = await this.#summarize(record)
    if (summary.type === 'failure') {
      this.#drop(record)
      // A set-up that timed out or ran out of memory may go better next time; a module that throws will not.
      if (summary.error.kind === 'error') return this.#remember(key, { hash: compiled.hash, result: { ok: false, error: summary.error } })
      return { ok: false, error: summary.error }
    }
    record.exports = summary.exports
    return this.#remember(key, { hash: compiled.hash, result: { ok: true, flow: this.#handle(record) }, record })
  }

  #remember(key: string, entry: Cached<C>): LoadResult<C> {
    this.#flows.delete(key)
    this.#flows.set(key, entry)
    while (this.#flows.size > this.#o.maxFlows) {
      const [oldest, value] = this.#flows.entries().next().value as [string, Cached<C>]
      this.#flows.delete(oldest)
      if (value.record) this.#drop(value.record)
    }
    return entry.result
  }

  #handle(record: FlowRecord): LoadedFlow<C> {
    return {
      key: record.key,
      exports: record.exports,
      has: (name) => record.exports.handlers.includes(name),
      callReducer: (name, event, options) =>
        this.#call(record, { kind: 'reducer', name, event }, name, options, (v) => checkReducerResult(name, v)),
      callIdentity: (event, identity, options) =>
        this.#call(record, { kind: 'reducer', name: 'getIdentity', event, identity }, 'getIdentity', options, (v) => checkReducerResult('getIdentity', v)),
      callPrefetch: (field, event, options) =>
        this.#call(record, { kind: 'prefetch', field, event }, `prefetch.${field}`, options, (v) => checkPrefetchResult(field, v)),
      callHook: (name, event, options) => this.#call(record, { kind: 'hook', name, event }, name, options, (v) => checkHookResult(name, v)),
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // Isolates and contexts

  /** An isolate of this flow version for one call: an idle one, or a new one. */
  async #acquire(record: FlowRecord): Promise<Slot<C>> {
    record.busy++
    try {
      for (let slot = record.idle.pop(); slot; slot = record.idle.pop()) {
        if (!slot.disposed && !slot.isolate.isDisposed) return slot
      }
      return await this.#createSlot(record)
    } catch (e) {
      record.busy--
      throw e
    }
  }

  /** Back to the idle list (with its next context being made ready), or disposed. */
  #release(record: FlowRecord, slot: Slot<C>): void {
    record.busy--
    slot.lastUsed = now()
    record.lastUsed = slot.lastUsed
    const cached = this.#flows.get(record.key)
    if (slot.disposed || slot.isolate.isDisposed || this.#closed || cached?.record !== record || record.idle.length >= IDLE_PER_FLOW) {
      this.#dispose(slot)
      return
    }
    record.idle.push(slot as Slot<never>)
    this.#refill(slot)
    this.#evictIdle()
  }

  async #createSlot(record: FlowRecord): Promise<Slot<C>> {
    const runtime = await runtimeScript()
    const isolate = new ivm.Isolate({ memoryLimit: this.#o.memoryLimitMb, onCatastrophicError: this.#onCatastrophicError })
    try {
      const script = await isolate.compileScript(flowScript(runtime, record.code), { filename: SOURCE_NAME.replace(/\.ts$/, '.js') })
      const calls = new Map<string, ActiveCall<C>>()
      const host = new ivm.Reference(this.#hostFunction(record, calls))
      const log = new ivm.Callback((token: unknown, level: unknown, text: unknown) => {
        const call = typeof token === 'string' ? calls.get(token) : undefined
        if (call) this.#log(call.state, level, text)
      })
      return { isolate, script, host, log, calls, lastUsed: now(), disposed: false }
    } catch (e) {
      if (!isolate.isDisposed) isolate.dispose()
      throw e
    }
  }

  /** A fresh context with the runtime and the flow's module set up. Throws isolated-vm's errors. */
  async #warm(slot: Slot<C>): Promise<Warm> {
    const context = await slot.isolate.createContext()
    try {
      const boot = (await slot.script.run(context, { reference: true, timeout: this.#o.timeoutMs })) as ivm.Reference<(host: unknown, log: unknown) => Dispatch>
      const dispatch = await boot.apply(undefined, [slot.host, slot.log], { result: { reference: true }, timeout: this.#o.timeoutMs })
      boot.release()
      return { context, dispatch }
    } catch (e) {
      try {
        context.release()
      } catch {
        // The isolate is gone.
      }
      throw e
    }
  }

  /** Makes the slot's next context ready in the background. A set-up that does not end disposes the slot. */
  #refill(slot: Slot<C>): void {
    if (slot.spare || slot.disposed || this.#closed) return
    let timer: NodeJS.Timeout | undefined
    slot.spare = Promise.race([
      this.#warm(slot),
      new Promise<undefined>((resolve) => {
        timer = setTimeout(() => {
          this.#dispose(slot)
          resolve(undefined)
        }, this.#o.timeoutMs)
      }),
    ])
      .catch(() => undefined)
      .finally(() => clearTimeout(timer))
  }

  /** The spare context if it is good, else a new one. */
  async #context(slot: Slot<C>): Promise<Warm> {
    const spare = slot.spare
    slot.spare = undefined
    const warm = spare ? await spare : undefined
    if (warm && !slot.disposed) return warm
    release(warm)
    return this.#warm(slot)
  }

  /** Disposes the least recently used idle isolates beyond `maxIsolates`. */
  #evictIdle(): void {
    const idle: [FlowRecord, Slot<never>][] = []
    let total = 0
    for (const c of this.#flows.values()) {
      if (!c.record) continue
      total += c.record.idle.length + c.record.busy
      for (const s of c.record.idle) idle.push([c.record, s])
    }
    if (total <= this.#o.maxIsolates) return
    idle.sort((a, b) => a[1].lastUsed - b[1].lastUsed)
    for (const [record, slot] of idle.slice(0, total - this.#o.maxIsolates)) {
      record.idle.splice(record.idle.indexOf(slot), 1)
      this.#dispose(slot)
    }
  }

  /** Forgets a flow version's idle isolates; busy ones are disposed when their call ends. */
  #drop(record: FlowRecord): void {
    for (const slot of record.idle.splice(0)) this.#dispose(slot)
  }

  #dispose(slot: Slot<C> | Slot<never>): void {
    slot.disposed = true
    if (!slot.isolate.isDisposed) {
      try {
        slot.isolate.dispose()
      } catch {
        // Already being disposed (memory limit).
      }
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // Calls

  /** Sets the module up once (its exports are read without calling anything) and keeps that context as the spare. */
  async #summarize(record: FlowRecord): Promise<{ type: 'exports'; exports: ExportSummary } | (Raw & { type: 'failure' })> {
    let kept = false
    const raw = await this.#attempt(record, 'the module', newState(), async (slot) => {
      const warm = await this.#context(slot)
      try {
        const reply = await warm.dispatch.apply(undefined, [null, '{"kind":"exports"}', this.#o.maxResultBytes], {
          arguments: { copy: true },
          result: { promise: true, copy: true },
          timeout: this.#o.timeoutMs,
        })
        // Reading the exports called nothing: the context is as fresh as a spare.
        slot.spare = Promise.resolve(warm)
        kept = true
        return reply
      } finally {
        if (!kept) release(warm)
      }
    })
    if (raw.type === 'failure') return raw
    try {
      const summary = JSON.parse(String(raw.reply)) as ExportSummary
      if (Array.isArray(summary.handlers) && Array.isArray(summary.prefetch)) {
        return { type: 'exports', exports: { handlers: summary.handlers.map(String), prefetch: summary.prefetch.map(String) } }
      }
    } catch {
      // below
    }
    return { type: 'failure', error: { kind: 'invalid_result', message: 'the module replaced the sandbox runtime; its exports cannot be read' } }
  }

  async #call<T>(
    record: FlowRecord,
    request: InvokeRequest,
    handler: string,
    options: StrategyCallOptions<C> | undefined,
    check: (value: unknown) => Checked<T>,
  ): Promise<CallResult<T>> {
    const started = now()
    const state = newState()
    const info = (): CallInfo => ({ logs: withDropped(state), durationMs: now() - started, hostCalls: state.hostCalls })
    if (this.#closed) return { ok: false, error: { kind: 'closed', message: 'the sandbox is closed' }, ...info() }
    const requestJson = JSON.stringify(request)
    const token = randomUUID()
    const timeoutMs = Math.max(1, options?.timeoutMs ?? this.#o.timeoutMs)
    const event = 'event' in request ? request.event : undefined
    const raw = await this.#attempt(record, handler, state, async (slot, signal) => {
      const warm = await this.#context(slot)
      slot.calls.set(token, { state, handler, event, signal, context: options?.context, host: options?.host })
      try {
        return await warm.dispatch.apply(undefined, [token, requestJson, this.#o.maxResultBytes], {
          arguments: { copy: true },
          result: { promise: true, copy: true },
          timeout: timeoutMs,
        })
      } finally {
        slot.calls.delete(token)
        release(warm)
      }
    }, timeoutMs)
    if (raw.type === 'failure') return { ok: false, error: raw.error, ...info() }
    const outcome = this.#reply(raw.reply, handler, check)
    return outcome.ok ? { ok: true, value: outcome.value, defined: outcome.defined, ...info() } : { ok: false, error: outcome.error, ...info() }
  }

  #reply<T>(reply: unknown, handler: string, check: (value: unknown) => Checked<T>): { ok: true; value: T; defined: boolean } | { ok: false; error: SandboxFailure } {
    const replaced: SandboxFailure = { kind: 'invalid_result', message: `${handler}: the module replaced the sandbox runtime` }
    if (typeof reply !== 'string') return { ok: false, error: replaced }
    if (reply.length > this.#o.maxResultBytes + 1024) {
      return { ok: false, error: { kind: 'invalid_result', message: `${handler} returned too large a value (more than ${this.#o.maxResultBytes} characters as JSON)` } }
    }
    let r: { ok?: unknown; defined?: unknown; value?: unknown; kind?: unknown; message?: unknown; error?: unknown }
    try {
      r = JSON.parse(reply) as typeof r
    } catch {
      return { ok: false, error: replaced }
    }
    if (typeof r !== 'object' || r === null) return { ok: false, error: replaced }
    if (r.ok === true) {
      const checked = check(r.value)
      if (!checked.ok) return { ok: false, error: { kind: 'invalid_result', message: checked.message } }
      return { ok: true, value: checked.value, defined: r.defined !== false }
    }
    if (r.kind === 'error') {
      const thrown = sanitizeThrown(r.error)
      return { ok: false, error: { kind: 'error', message: `${handler} threw ${thrown.name}: ${thrown.message}`, thrown } }
    }
    const kind: FailureKind = r.kind === 'not_defined' ? 'not_defined' : 'invalid_result'
    const message = typeof r.message === 'string' ? r.message.slice(0, 4000) : 'invalid result'
    return { ok: false, error: { kind, message: kind === 'not_defined' ? message : `${handler}: ${message}` } }
  }

  /**
   * Runs `work` on an isolate of the flow version that serves nothing else meanwhile, under the call's wall-clock
   * limit. When the limit passes, the isolate is disposed: a loop that runs after an `await` is beyond
   * isolated-vm's own timeout, and only disposing stops it. Time-outs, memory exhaustion and failed module
   * set-ups become typed failures here.
   */
  async #attempt(
    record: FlowRecord,
    handler: string,
    state: CallState,
    work: (slot: Slot<C>, signal: AbortSignal) => Promise<unknown>,
    timeoutMs: number = this.#o.timeoutMs,
  ): Promise<Raw> {
    let slot: Slot<C>
    try {
      slot = await this.#acquire(record)
    } catch (e) {
      state.finished = true
      return { type: 'failure', error: { kind: 'internal', message: `the sandbox could not start: ${errorText(e)}` } }
    }
    const abort = new AbortController()
    let timedOut = false
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => {
        timedOut = true
        abort.abort(new Error(`${handler} ran out of time`))
        this.#dispose(slot)
        resolve('timeout')
      }, timeoutMs)
    })
    const run = work(slot, abort.signal)
    run.catch(() => undefined) // may settle after a time-out, when nobody waits for it any more
    try {
      const reply = await Promise.race([run, deadline])
      if (timedOut) return this.#timeout(handler, timeoutMs)
      return { type: 'reply', reply }
    } catch (e) {
      return this.#classify(e, slot, handler, timedOut, timeoutMs)
    } finally {
      state.finished = true
      clearTimeout(timer)
      this.#release(record, slot)
    }
  }

  #timeout(handler: string, timeoutMs: number = this.#o.timeoutMs): Raw {
    return { type: 'failure', error: { kind: 'timeout', message: `${handler} did not finish within ${timeoutMs} ms` } }
  }

  #classify(e: unknown, slot: Slot<C>, handler: string, timedOut: boolean, timeoutMs: number): Raw {
    const text = errorText(e)
    if (timedOut || /Script execution timed out/i.test(text)) return this.#timeout(handler, timeoutMs)
    if (/memory limit/i.test(text)) {
      this.#dispose(slot)
      return { type: 'failure', error: { kind: 'memory', message: `${handler} ran out of memory (the limit is ${this.#o.memoryLimitMb} MB)` } }
    }
    if (this.#closed) return { type: 'failure', error: { kind: 'closed', message: 'the sandbox is closed' } }
    if (slot.disposed || slot.isolate.isDisposed) {
      return { type: 'failure', error: { kind: 'internal', message: `${handler} was stopped: its isolate was disposed (${text})` } }
    }
    // What the module's own set-up threw (a top-level `throw`).
    const thrown = sanitizeThrown({ name: (e as { name?: unknown }).name, message: text, stack: (e as { stack?: unknown }).stack })
    return { type: 'failure', error: { kind: 'error', message: `${handler} could not run: the module threw while setting up: ${thrown.name}: ${thrown.message}`, thrown } }
  }

  #log(state: CallState, level: unknown, text: unknown): void {
    if (state.finished) return
    if (state.logs.length >= this.#o.maxLogLines) {
      state.droppedLogs++
      return
    }
    state.logs.push({ level: LOG_LEVELS.has(String(level)) ? (String(level) as LogLine['level']) : 'log', message: String(text).slice(0, 2000) })
  }

  /** The host side of the SDK's integration calls for one isolate. Always resolves with a JSON reply. */
  #hostFunction(record: FlowRecord, calls: Map<string, ActiveCall<C>>) {
    return async (token: unknown, method: unknown, argsJson: unknown): Promise<string> => {
      const fail = (message: string, code: string) => JSON.stringify({ ok: false, error: { message, code } })
      const call = typeof token === 'string' ? calls.get(token) : undefined
      if (!call || call.state.finished) return fail('the call has already ended', 'ended')
      const { state, handler } = call
      if (typeof method !== 'string' || typeof argsJson !== 'string') return fail('invalid integration call', 'invalid_arguments')
      state.hostCalls++
      if (state.hostCalls > this.#o.maxHostCalls) return fail(`${handler} made more than ${this.#o.maxHostCalls} integration calls`, 'too_many_calls')
      if (!isHostMethod(method)) return fail(`${method.slice(0, 100)} is not an integration call the platform knows`, 'unknown_method')
      if (argsJson.length > MAX_HOST_MESSAGE) return fail(`${method}: the arguments are too large`, 'invalid_arguments')
      let args: unknown
      try {
        args = JSON.parse(argsJson)
      } catch {
        return fail(`${method}: the arguments are not JSON`, 'invalid_arguments')
      }
      const checked = checkHostArgs(method, args)
      if (!checked.ok) return fail(checked.message, 'invalid_arguments')
      const own = call.host?.[method] as ((a: unknown, c: StrategyHostCallContext) => unknown) | undefined
      const fn = this.#host[method] as ((a: unknown, c: HostCallContext<C>) => unknown) | undefined
      const event = call.event
      let run: (() => unknown) | undefined
      if (own) run = () => own(checked.value, { strategyKey: record.key, handler, signal: call.signal })
      else if (fn && event) run = () => fn(checked.value, { flowKey: record.key, handler, event, signal: call.signal, context: call.context })
      else if (fn) return fail(`${method} is not available in ${handler}`, 'not_available')
      if (!run) return fail(`${method} is not available: this worker has no handler for it`, 'not_available')
      try {
        const value = await run()
        if (state.finished) return fail('the call has already ended', 'ended')
        const json = JSON.stringify({ ok: true, value: value === undefined ? null : value })
        if (json.length > MAX_HOST_MESSAGE) return fail(`${method}: the answer is too large`, 'too_large')
        return json
      } catch (e) {
        const code = (e as { code?: unknown }).code
        return fail(`${method} failed: ${errorText(e).slice(0, 1000)}`, typeof code === 'string' ? code : 'failed')
      }
    }
  }
}

function withDropped(state: CallState): LogLine[] {
  return state.droppedLogs ? [...state.logs, { level: 'warn', message: `(${state.droppedLogs} more console lines dropped)` }] : state.logs
}

function sanitizeThrown(t: unknown): ThrownData {
  const o = (typeof t === 'object' && t !== null ? t : {}) as { name?: unknown; message?: unknown; stack?: unknown; retryAfterSeconds?: unknown }
  const wait = o.retryAfterSeconds
  return {
    name: typeof o.name === 'string' ? o.name.slice(0, 200) : 'Error',
    message: typeof o.message === 'string' ? o.message.slice(0, 4000) : 'unknown error',
    ...(typeof o.stack === 'string' ? { stack: o.stack.slice(0, 8000) } : {}),
    // A RetryableError's wait (custom strategies).
    ...(typeof wait === 'number' && Number.isFinite(wait) && wait >= 0 ? { retryAfterSeconds: Math.min(wait, 86_400) } : {}),
  }
}
