/**
 * What a destination adapter is given and what it returns. Adapters are thin: they turn a batch into the service's
 * request and its answer into accepted/refused records; batching, ordering and retries are in `../batching.ts`.
 */
import type { Aws } from '@opensym/engine'
import type { TSchema } from 'typebox'
import { Value } from 'typebox/value'
import { DeliveryError, type BatchLimits, type Sender } from '../batching.js'

/** A `sym_log_destination` as stored, with what its adapter needs around it. */
export interface DestinationRecord {
  readonly id: string
  readonly orgId: string
  readonly orgSlug: string
  readonly type: string
  readonly slug: string
  readonly settings: Readonly<Record<string, unknown>>
  /** The `integration_id` integration (permission_context, segment); null for http and datadog. */
  readonly integration: { readonly id: string; readonly type: string; readonly externalId: string; readonly settings: Readonly<Record<string, unknown>> } | null
}

/** Base URLs of the services (tests point them at local fakes). AWS endpoints come with the `Aws` instance. */
export interface ServiceEndpoints {
  /** Default `https://api.segment.io` (an integration's `settings.api_host` wins). */
  readonly segment?: string
  /** Default `https://http-intake.logs.<settings.site>`. */
  readonly datadog?: string
}

export interface DestinationContext {
  /** A `sym_secret` value of the destination's org, read now (never logged). */
  readonly secret: (secretId: string) => Promise<string>
  readonly aws: Aws
  readonly endpoints: ServiceEndpoints
  readonly fetch: typeof fetch
  readonly now: () => number
  /** Per HTTP call. */
  readonly timeoutMs: number
}

export interface Destination extends Sender {
  readonly limits: BatchLimits
}

export type DestinationFactory = (record: DestinationRecord, ctx: DestinationContext) => Promise<Destination>

/** Settings checked against their schema (settings are strings); a misconfiguration fails the attempt, naming the field. */
export function parseSettings<T>(schema: TSchema, record: DestinationRecord, value: unknown, what = 'settings'): T {
  if (Value.Check(schema, value)) return value as T
  const problems = [...Value.Errors(schema, value)].slice(0, 3).map((e) => `${what}${e.instancePath.replace(/\//g, '.')}: ${e.message}`)
  throw new DeliveryError(`${record.type} log destination ${record.slug}: ${problems.join('; ')}`)
}

/** The secret's value; a failure to read it names the setting and the secret, never a value. */
export async function readSecret(ctx: DestinationContext, record: DestinationRecord, setting: string, secretId: string): Promise<string> {
  try {
    return await ctx.secret(secretId)
  } catch (e) {
    throw new DeliveryError(`${record.type} log destination ${record.slug}: cannot read ${setting} (sym_secret ${secretId}): ${e instanceof Error ? e.message : String(e)}`, undefined, { cause: e })
  }
}

/** The URL for messages: no query string or fragment (they may carry tokens). */
export const shownUrl = (url: URL): string => `${url.origin}${url.pathname}`

const NETWORK = /ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|UND_ERR/

/** A fetch failure (timeout, refused connection…) as a short reason. */
export function fetchFailure(e: unknown): string {
  if (e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError')) return 'timed out'
  let x: unknown = e
  for (let i = 0; i < 4 && x instanceof Error; i++, x = x.cause) {
    const code = (x as { code?: unknown }).code
    if (typeof code === 'string' && NETWORK.test(code)) return code
  }
  return e instanceof Error ? e.message : String(e)
}
