/** Helpers the strategies share: reading settings, integrations and secrets with messages that name what is wrong. */
import { RetryableStrategyError, StrategyError, type StrategyCall, type StrategySnapshot, type TargetSnapshot } from '../strategy.js'

type Integration = NonNullable<StrategySnapshot['integration']>
type CallBase = Pick<StrategyCall, 'strategy' | 'target'>

/** `<type> strategy "<slug>"`, the prefix of configuration messages. */
export const strategyName = (call: Pick<StrategyCall, 'strategy'>) => `${call.strategy.type} strategy "${call.strategy.slug}"`

/** The strategy's integration, which must be of one of `types`. */
export function integrationOf(call: Pick<StrategyCall, 'strategy'>, types: readonly string[]): Integration {
  const integration = call.strategy.integration
  if (!integration) throw new StrategyError(`${strategyName(call)} has no integration; set its integration_id to a ${types.join(' or ')} sym_integration`)
  if (!types.includes(integration.type)) {
    throw new StrategyError(`${strategyName(call)}: its integration is of type "${integration.type}"; it needs a ${types.join(' or ')} sym_integration`)
  }
  return integration
}

/** A required, non-empty string setting of the target. */
export function targetSetting(call: CallBase, name: string): string {
  const value = call.target.settings[name]
  if (typeof value !== 'string' || value.trim() === '') {
    throw new StrategyError(`target "${call.target.slug}" (${call.target.type}) has no settings.${name}; the ${call.strategy.type} strategy needs it`)
  }
  return value.trim()
}

/** The target must be of one of `types`. */
export function requireTargetType(call: CallBase, types: readonly string[]): TargetSnapshot['type'] {
  if (!types.includes(call.target.type)) {
    throw new StrategyError(`target "${call.target.slug}" is of type "${call.target.type}"; the ${call.strategy.type} strategy grants ${types.join(' or ')} targets`)
  }
  return call.target.type
}

/** An optional string setting of the strategy or its integration. */
export function optionalSetting(settings: Readonly<Record<string, unknown>>, name: string): string | undefined {
  const v = settings[name]
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined
}

/**
 * The value of the `sym_secret` an integration setting names (e.g. `api_token_secret`). Failures name the setting,
 * never the value; a retryable failure stays retryable.
 */
export async function integrationSecret(call: Pick<StrategyCall, 'strategy' | 'secrets'>, integration: Integration, setting: string): Promise<string> {
  const id = optionalSetting(integration.settings, setting)
  if (!id) throw new StrategyError(`${strategyName(call)}: its ${integration.type} integration has no settings.${setting} (the ID of a sym_secret)`)
  try {
    return await call.secrets(id)
  } catch (error) {
    if (error instanceof RetryableStrategyError) throw error
    const message = error instanceof Error ? error.message : String(error)
    throw new StrategyError(`${strategyName(call)}: cannot read the ${integration.type} integration's ${setting}: ${message}`, undefined, { cause: error })
  }
}

/** The cause chain's network code (ECONNREFUSED…) or message, for connection failures. */
export function causeText(error: unknown): string {
  let e: unknown = error
  for (let i = 0; i < 5 && e instanceof Error; i++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string') return code
    if (!e.cause) return e.message
    e = e.cause
  }
  return String(error)
}

/** Polls `check` until it returns a value, honouring `signal`; resolves undefined after `attempts`. */
export async function poll<T>(check: () => Promise<T | undefined>, opts: { intervalMs: number; attempts: number; signal: AbortSignal }): Promise<T | undefined> {
  for (let i = 0; i < opts.attempts; i++) {
    const v = await check()
    if (v !== undefined) return v
    if (i + 1 < opts.attempts) await delay(opts.intervalMs, opts.signal)
  }
  return undefined
}

export function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)))
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = () => {
      clearTimeout(t)
      reject(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)))
    }
    signal.addEventListener('abort', onAbort, { once: true })
  })
}
