/**
 * The sandbox runtime, bundled with the SDK by esbuild (`runtime-script.ts`) into the start of every flow
 * version's script; it never runs in Node. The script's last value is `boot(host, log)`: the sandbox calls it once
 * per context, before any call, and gets back the dispatcher.
 *
 * `setup` takes the two doors to the host (integration calls, console lines) as arguments, so they never appear
 * on the global object; puts the SDK where compiled flows import it from; replaces `console`; and removes globals
 * that flows do not need and that would be ways around the limits. Then the flow's module runs (`setImpl`), and
 * the dispatcher serves exactly one call: the context is thrown away after it.
 */
import * as sdk from '@opensym/sdk/flow'
import { describeThrown, installHostBridge, invoke, summarizeExports, type InvokeRequest } from '@opensym/sdk/runtime'

/** An isolated-vm Reference to the host's integration-call function, as seen from inside the isolate. */
interface HostReference {
  apply(receiver: undefined, args: unknown[], options: object): Promise<unknown>
}

/** The host's console-line function (an isolated-vm Callback). */
type LogDoor = (token: string, level: string, text: string) => void

/** `dispatch(token, requestJson, maxBytes)` → the reply as JSON. `token` ties integration calls and logs to the call. */
export type Dispatch = (token: string | null, requestJson: string, maxBytes: number) => Promise<string>

const g = globalThis as typeof globalThis & Record<PropertyKey, unknown>
const stringify = JSON.stringify
const parse = JSON.parse

let impl: Record<string, unknown> = {}
let token: string | null = null
let used = false
const early: [string, string][] = []

const MAX_LINE = 2000
const MAX_EARLY = 100

function format(value: unknown): string {
  if (typeof value === 'string') return value
  try {
    return value instanceof Error ? String(value.stack ?? value) : (stringify(value) ?? String(value))
  } catch {
    try {
      return String(value)
    } catch {
      return '[value]'
    }
  }
}

export function setup(host: HostReference, log: LogDoor): Dispatch {
  // Not needed by flows, and each is a way around the limits (WebAssembly memory, shared buffers, blocking waits).
  for (const name of ['WebAssembly', 'SharedArrayBuffer', 'Atomics']) delete g[name]

  const line = (level: string) => (...args: unknown[]) => {
    let text = ''
    for (const a of args) {
      text += (text ? ' ' : '') + format(a)
      if (text.length > MAX_LINE) break
    }
    text = text.slice(0, MAX_LINE)
    // Lines written while the module sets up (before the call) are sent with the call.
    if (token === null) {
      if (early.length < MAX_EARLY) early.push([level, text])
    } else log(token, level, text)
  }
  g.console = { log: line('log'), info: line('info'), warn: line('warn'), error: line('error'), debug: line('debug') } as unknown as Console

  installHostBridge(async (method, args) => {
    if (token === null) throw new sdk.IntegrationError(method, `${method} cannot be called while the module sets up; call it from a reducer or hook`, 'not_available')
    const reply = await host.apply(undefined, [token, method, stringify(args ?? {})], { arguments: { copy: true }, result: { promise: true, copy: true } })
    const r = parse(String(reply)) as { ok: true; value: unknown } | { ok: false; error: { message: string; code?: string } }
    if (r.ok) return r.value
    throw new sdk.IntegrationError(method, r.error.message, r.error.code)
  })

  g[Symbol.for('opensym.sdk')] = Object.freeze({ ...sdk })

  return async (callToken, requestJson, maxBytes) => {
    const request = parse(requestJson) as InvokeRequest | { kind: 'exports' }
    if (request.kind === 'exports') return stringify(summarizeExports(impl))
    if (used || callToken === null) return stringify({ ok: false, kind: 'internal', message: 'a sandbox context serves one call' })
    used = true
    token = callToken
    for (const [level, text] of early.splice(0)) log(token, level, text)
    let reply: unknown
    try {
      const outcome = await invoke(impl, request)
      if (outcome.ok) reply = { ok: true, defined: outcome.defined, value: outcome.value }
      else if (outcome.kind === 'error') reply = { ok: false, kind: 'error', error: describeThrown(outcome.thrown) }
      else reply = { ok: false, kind: outcome.kind, message: outcome.message }
    } catch (e) {
      reply = { ok: false, kind: 'error', error: describeThrown(e) }
    }
    let json: string | undefined
    try {
      json = stringify(reply)
    } catch (e) {
      return stringify({ ok: false, kind: 'invalid_result', message: `the value returned cannot be sent as JSON: ${describeThrown(e).message}` })
    }
    if (typeof json !== 'string') return stringify({ ok: false, kind: 'invalid_result', message: 'the value returned cannot be sent as JSON' })
    if (json.length > maxBytes) {
      return stringify({ ok: false, kind: 'invalid_result', message: `the value returned is too large (${json.length} characters as JSON; the limit is ${maxBytes})` })
    }
    return json
  }
}

/** The flow module's exports, once its script ran. */
export function setImpl(exports: unknown): void {
  impl = typeof exports === 'object' && exports !== null ? (exports as Record<string, unknown>) : {}
}
