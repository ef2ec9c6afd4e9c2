/**
 * Sandbox metrics and spans without touching the sandbox: `instrumentSandbox(createSandbox(…))` returns the same
 * sandbox whose loads (`load`, `loadStrategy`, …) and calls (`callHook`, `callReducer`, … of what they load) are
 * timed into `opensym_sandbox_call_duration_seconds` / `opensym_sandbox_call_failures_total`, run in spans, and
 * whose `stats()` feed the sandbox gauges until `close()`. Structural, so it follows the sandbox's API as it grows.
 */
import { recordSandboxCall } from './registry.js'
import { watchSandbox, type SandboxStatsLike } from './sources.js'
import { inSpan, SpanKind } from './tracing.js'

type AnyFn = (...args: unknown[]) => unknown

interface Outcome {
  readonly ok?: unknown
  readonly durationMs?: unknown
  readonly error?: { readonly kind?: unknown }
}

function outcomeOf(result: unknown): string {
  const r = (result ?? {}) as Outcome
  return r.ok === false ? (typeof r.error?.kind === 'string' ? r.error.kind : 'internal') : 'ok'
}

/** `callHook` → `hook`, `callReducer` → `reducer`, `loadStrategy` → `load_strategy`. */
const kindOf = (method: string, prefix: string) =>
  (method.slice(prefix.length) || prefix).replace(/^[A-Z]/, (c) => c.toLowerCase()).replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)

function wrapMethods<T extends object>(target: T, wrap: (name: string, fn: AnyFn) => AnyFn | undefined): T {
  return new Proxy(target, {
    get(t, prop) {
      const value: unknown = Reflect.get(t, prop, t)
      if (typeof value !== 'function') return value
      const bound = (value as AnyFn).bind(t)
      return (typeof prop === 'string' && wrap(prop, bound)) || bound
    },
  })
}

/** A loaded flow or strategy: its `call…` methods timed (the sandbox's own `durationMs`) and in spans. */
function instrumentLoaded<T extends object>(loaded: T): T {
  return wrapMethods(loaded, (name, fn) => {
    if (!name.startsWith('call')) return undefined
    const kind = kindOf(name, 'call')
    return (...args: unknown[]) =>
      inSpan(`sandbox ${kind}${typeof args[0] === 'string' ? ` ${args[0]}` : ''}`, { kind: SpanKind.INTERNAL, attributes: { 'opensym.sandbox.call': kind } }, async (span) => {
        const started = performance.now()
        const result = await (fn(...args) as Promise<unknown>)
        const r = (result ?? {}) as Outcome
        const outcome = outcomeOf(result)
        recordSandboxCall(kind, typeof r.durationMs === 'number' ? r.durationMs : performance.now() - started, outcome)
        span.setAttribute('opensym.sandbox.outcome', outcome)
        return result
      })
  })
}

export function instrumentSandbox<S extends { stats(): SandboxStatsLike; close(): Promise<void> }>(sandbox: S): S {
  const dispose = watchSandbox(() => sandbox.stats())
  return wrapMethods(sandbox, (name, fn) => {
    if (name === 'close') {
      return (...args: unknown[]) => {
        dispose()
        return fn(...args)
      }
    }
    if (!name.startsWith('load')) return undefined
    const kind = kindOf(name, 'load') === 'load' ? 'load' : `load_${kindOf(name, 'load')}`
    return async (...args: unknown[]) => {
      const started = performance.now()
      const result = await (fn(...args) as Promise<unknown>)
      recordSandboxCall(kind, performance.now() - started, outcomeOf(result))
      if (!result || typeof result !== 'object') return result
      // The loaded flow (or strategy) is the one object of the result besides `error`.
      const entries = Object.entries(result).map(([k, v]) => [k, k !== 'error' && v && typeof v === 'object' && !Array.isArray(v) ? instrumentLoaded(v) : v] as const)
      return Object.fromEntries(entries)
    }
  })
}
