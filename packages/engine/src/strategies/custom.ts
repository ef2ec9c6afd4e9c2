/**
 * The `custom` strategy: the `sym_strategy`'s own `implementation` (TypeScript/JavaScript written with
 * `@opensym/sdk`, reference §4.2) exporting `fetchRemoteIdentity(user, strategy)`, `escalate(targetId, event,
 * strategy)` and `deescalate(targetId, event, strategy)`, run in the sandbox (`@opensym/sandbox`): compiled once per
 * strategy version (keyed by strategy id and source hash), each call in a fresh context under a time and memory limit.
 *
 * - The implementation is the one in the run's snapshot, so a run is de-escalated by the code that escalated it.
 * - The integration (`custom`, with `secret_ids_json`) reaches the module as `strategy.integration`: its string
 *   settings, and `settings.secrets`, the listed `sym_secret`s. `secrets.retrieve` serves those secrets only.
 * - `strategy.fetch` is HTTP made here (`http.fetch`): http/https only (and what `allowUrl` allows), redirects not
 *   followed, responses up to 1 MiB, within the call's time limit. Destinations follow the outbound policy
 *   (../outbound.ts): never link-local/metadata addresses, private ones only with OPENSYM_ALLOW_PRIVATE_NETWORKS.
 * - identity: `fetchRemoteIdentity` (not exported, or returning nothing: none found). Identities are stored under
 *   service `custom` and the integration's `external_id`; `getIdentity` reducers do not apply (§3.10).
 * - Errors: what the module throws fails the step (`StrategyError` with its message); a `RetryableError` from the SDK
 *   is retried (`RetryableStrategyError`, honouring `retryAfterSeconds`), and so are time-outs. A module that does
 *   not compile or lacks `escalate`/`deescalate` fails every call with the compiler's or loader's message.
 * - No read-back (`isGranted` is absent): only the module knows its system.
 */
import { createHash } from 'node:crypto'
import type { LoadedStrategy, Sandbox, SandboxFailure, StrategyHostHandlers } from '@opensym/sandbox'
import type { ChannelData, EventData, IntegrationData, IntegrationSettingData, JsonObject, SecretRef, StrategyData, UserData } from '@opensym/sdk/flow'
import type { LogActor, LogEntry } from '../audit.js'
import { RetryableStrategyError, StrategyError, type Strategy, type StrategyCall } from '../strategy.js'
import { causeText, integrationOf, strategyName } from './common.js'
import { checkOutboundUrl, guardedFetch, outboundBlocked, outboundPolicyFromEnv, readTextLimited, unsendableHeader, type OutboundPolicy } from '../outbound.js'

/** What the custom strategy needs of the sandbox (the worker's, shared with flows or its own). */
export type StrategySandbox = Pick<Sandbox, 'loadStrategy'>

export interface CustomStrategyOptions {
  readonly sandbox: StrategySandbox
  /**
   * Wall-clock limit of one call into the module, `strategy.fetch` calls included. Default 25 s (under the
   * engine's 30 s strategy budget). A call that runs out of time is retried.
   */
  readonly timeoutMs?: number
  /** Makes `strategy.fetch` requests. Default: a `fetch` that enforces {@link network} on every connection. */
  readonly fetch?: typeof fetch
  /** Which addresses `strategy.fetch` may reach. Default: `OPENSYM_ALLOW_PRIVATE_NETWORKS` (private ones refused). */
  readonly network?: OutboundPolicy
  /** Which URLs `strategy.fetch` may reach (after the http/https and network checks). Default: any those allow. */
  readonly allowUrl?: (url: URL) => boolean
  /**
   * The event `escalate`/`deescalate` receive. Default: built from the call's §7.2 payload (user, channel, fields
   * with `target`, flow name and SRN, run id, SRN and actors; no flow vars, environment integrations or step
   * outputs, which the payload does not carry).
   */
  readonly eventData?: (call: StrategyCall, step: 'escalate' | 'deescalate') => EventData | Promise<EventData>
}

const MAX_RESPONSE_BYTES = 1024 * 1024
const DEFAULT_TIMEOUT_MS = 25_000

export function createCustomStrategy(options: CustomStrategyOptions): Strategy {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const network = options.network ?? outboundPolicyFromEnv()
  // Strategy code picks the URL: the default fetch checks the address it connects to (after DNS), not just the name.
  const doFetch = options.fetch ?? guardedFetch(network)
  const eventData = options.eventData ?? ((call: StrategyCall, step: 'escalate' | 'deescalate') => eventDataFromPayload(call, step))

  async function load(call: Pick<StrategyCall, 'strategy'>): Promise<LoadedStrategy> {
    const source = call.strategy.implementation
    if (source === undefined || source.trim() === '') throw new StrategyError(`${strategyName(call)} has no implementation; set the sym_strategy's implementation to its source`)
    const version = createHash('sha256').update(source).digest('hex').slice(0, 16)
    const loaded = await options.sandbox.loadStrategy({ flowId: call.strategy.id, version }, source)
    if (!loaded.ok) throw failure(call, 'load', loaded.error, 'its implementation cannot be used')
    return loaded.strategy
  }

  /** `secrets.retrieve` for the integration's own secrets, and `http.fetch`. */
  function host(call: Pick<StrategyCall, 'strategy' | 'secrets'>, secretIds: readonly string[]): StrategyHostHandlers {
    return {
      'secrets.retrieve': async ({ secretId }) => {
        if (!secretIds.includes(secretId)) throw new Error(`the sym_secret ${secretId} is not one of this strategy's integration's secrets (its secret_ids_json)`)
        return call.secrets(secretId)
      },
      'http.fetch': async ({ url, method, headers, body }, { signal }) => {
        let parsed: URL
        try {
          parsed = new URL(url)
        } catch {
          throw new Error(`${url.slice(0, 200)} is not a URL`)
        }
        try {
          checkOutboundUrl(parsed, network)
        } catch (e) {
          throw Object.assign(new Error(`${parsed.origin} is not allowed: ${(e as Error).message}`), { code: 'refused' })
        }
        if (options.allowUrl && !options.allowUrl(parsed)) throw Object.assign(new Error(`${parsed.origin} is not allowed for custom strategies here`), { code: 'refused' })
        const bad = unsendableHeader(headers)
        if (bad !== undefined) throw Object.assign(new Error(`header "${bad.slice(0, 100)}" has a control character in its value and cannot be sent (the value is not shown)`), { code: 'invalid_arguments' })
        let res: Response
        try {
          res = await doFetch(parsed, { method, headers, ...(body !== undefined ? { body } : {}), redirect: 'manual', signal })
        } catch (e) {
          const blocked = outboundBlocked(e)
          if (blocked) throw Object.assign(new Error(`${parsed.origin} is not allowed: ${blocked.message}`), { code: 'refused' })
          throw Object.assign(new Error(`${method} ${parsed.origin}${parsed.pathname}: ${causeText(e)}`), { code: 'connection' })
        }
        const text = await readTextLimited(res, MAX_RESPONSE_BYTES)
        const out: Record<string, string> = {}
        res.headers.forEach((v, k) => (out[k] = v))
        return { status: res.status, url: parsed.href, headers: out, body: text }
      },
    }
  }

  function data(call: Pick<StrategyCall, 'strategy'>, identity: string | null): { strategy: StrategyData; secretIds: readonly string[] } {
    const integration = integrationOf(call, ['custom'])
    const { data, secretIds } = integrationData(call, integration)
    return { strategy: { name: call.strategy.slug, settings: stringSettings(call.strategy.settings), integration: data, identity }, secretIds }
  }

  async function step(call: StrategyCall, name: 'escalate' | 'deescalate') {
    const impl = await load(call)
    const { strategy, secretIds } = data(call, call.identity)
    const event = await eventData(call, name)
    const result = await abortable(call.signal, impl[name](call.target.id, event, strategy, { host: host(call, secretIds), timeoutMs }))
    if (!result.ok) throw failure(call, name, result.error)
    return { body: result.value, errors: [] }
  }

  return {
    type: 'custom',
    identityService: 'custom',
    async identity(call) {
      const impl = await load(call)
      if (!impl.has('fetchRemoteIdentity')) return undefined
      const { strategy, secretIds } = data(call, null)
      const user: UserData = {
        id: call.subject.userId,
        email: call.subject.email,
        username: call.subject.username,
        type: call.subject.email ? 'normal' : 'bot',
        // The strategy call does not carry the role; custom strategies find users by email.
        role: 'member',
      }
      const result = await abortable(call.signal, impl.fetchRemoteIdentity(user, strategy, { host: host(call, secretIds), timeoutMs }))
      if (!result.ok) throw failure(call, 'fetchRemoteIdentity', result.error)
      return result.value ?? undefined
    },
    escalate: (call) => step(call, 'escalate'),
    deescalate: (call) => step(call, 'deescalate'),
  }
}

/** A sandbox failure as the engine's error: time-outs, a closing sandbox and platform faults are retried. */
function failure(call: Pick<StrategyCall, 'strategy'>, what: string, error: SandboxFailure, prefix?: string): Error {
  const message = `${strategyName(call)}: ${prefix ? `${prefix}: ` : ''}${error.message}`
  if (error.kind === 'error' && error.thrown?.name === 'RetryableError') {
    const wait = error.thrown.retryAfterSeconds
    return new RetryableStrategyError(`${strategyName(call)}: ${what} asked to be retried: ${error.thrown.message}`, wait === undefined ? undefined : wait * 1000)
  }
  if (error.kind === 'timeout' || error.kind === 'closed' || error.kind === 'internal') return new RetryableStrategyError(message)
  return new StrategyError(message, [error.kind === 'error' && error.thrown ? error.thrown.message : error.message])
}

/** Rejects with a retryable error when the engine's budget runs out before the sandbox's own limit. */
function abortable<T>(signal: AbortSignal, work: Promise<T>): Promise<T> {
  if (signal.aborted) return Promise.reject(new RetryableStrategyError('custom strategy: out of time before the call'))
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new RetryableStrategyError('custom strategy: the call ran out of the engine\'s time budget'))
    signal.addEventListener('abort', onAbort, { once: true })
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

const stringSettings = (settings: Readonly<Record<string, unknown>>): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(settings)) if (v !== undefined && v !== null) out[k] = typeof v === 'string' ? v : JSON.stringify(v)
  return out
}

/** The integration as the module sees it: string settings, and `secrets` from `secret_ids_json` (in order). */
function integrationData(call: Pick<StrategyCall, 'strategy'>, integration: NonNullable<StrategyCall['strategy']['integration']>): { data: IntegrationData; secretIds: string[] } {
  const settings: Record<string, IntegrationSettingData> = {}
  let secretIds: string[] = []
  for (const [k, v] of Object.entries(stringSettings(integration.settings))) {
    if (k !== 'secret_ids_json') {
      settings[k] = v
      continue
    }
    let parsed: unknown
    try {
      parsed = JSON.parse(v)
    } catch {
      parsed = undefined
    }
    if (!Array.isArray(parsed) || !parsed.every((x): x is string => typeof x === 'string')) {
      throw new StrategyError(`${strategyName(call)}: its custom integration's settings.secret_ids_json is not a JSON list of sym_secret IDs`)
    }
    secretIds = parsed
  }
  settings.secrets = secretIds.map((id): SecretRef => ({ $secret: id }))
  return { data: { type: integration.type, externalId: integration.externalId, settings }, secretIds }
}

// -------------------------------------------------------------------------------------------------------------
// The event, from the §7.2 payload

const CHANNELS = new Set<ChannelData['type']>(['slack', 'sdk', 'sym', 'internal', 'web'])

/** `<org>:user:<type>:<id>:latest` → a user (the payload has no role: `member`). */
function userOf(actor: LogActor): UserData {
  const [, , type, id] = actor.user.split(':')
  const email = actor.identity.email ?? null
  return { id: id ?? actor.user, email, username: actor.username, type: type === 'bot' ? 'bot' : 'normal', role: 'member', identities: [] }
}

/** The SDK event of an escalate/deescalate, from the payload the engine hands strategies. */
export function eventDataFromPayload(call: StrategyCall, step: 'escalate' | 'deescalate'): EventData {
  const entry = call.payload as unknown as Partial<LogEntry>
  const requester: UserData = {
    id: call.subject.userId,
    email: call.subject.email,
    username: call.subject.username,
    type: call.subject.email ? 'normal' : 'bot',
    role: 'member',
    identities: [],
  }
  const actors: Record<string, UserData> = {}
  for (const [s, a] of Object.entries(entry.run?.actors ?? {})) actors[s] = userOf(a)
  actors.request ??= requester
  const runSrn = entry.run?.srn ?? ''
  const flowSrn = entry.run?.flow ?? ''
  const channel = entry.event?.channel
  return {
    name: step,
    ...(entry.id ? { id: entry.id } : {}),
    ...(entry.event?.srn ? { srn: entry.event.srn } : {}),
    timestamp: entry.event?.timestamp ?? new Date().toISOString(),
    user: entry.actor ? userOf(entry.actor) : actors.request,
    channel: { type: channel && CHANNELS.has(channel as ChannelData['type']) ? (channel as ChannelData['type']) : 'internal', identifier: null },
    payload: { fields: JSON.parse(JSON.stringify(entry.fields ?? {})) as JsonObject },
    flow: { name: flowSrn.split(':')[2] ?? '', srn: flowSrn, vars: {}, environment: { name: '', integrations: {} } },
    run: { id: runSrn.split(':').at(-1) ?? '', srn: runSrn, actors, contexts: {}, stepOutputs: {} },
  }
}
