/** What the AWS strategies share: the permission context of the strategy's integration, and calling the SDK. */
import { awsFailure, permissionContext, type Aws, type AwsClients } from '../aws.js'
import type { StrategyCall } from '../strategy.js'
import { integrationOf } from './common.js'

/** The clients for the strategy's `permission_context` integration (role_arn, region, external_id). */
export function clientsFor(aws: Aws, call: Pick<StrategyCall, 'strategy'>): AwsClients {
  const integration = integrationOf(call, ['permission_context'])
  return aws.clients(permissionContext(integration.settings, `permission_context integration ${integration.externalId || integration.id}`, aws.defaultRegion))
}

/** Runs one SDK call; its failure becomes a RetryableStrategyError or StrategyError naming `what`. */
export async function send<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (e) {
    throw awsFailure(e, what)
  }
}

/** The error's AWS code (its `name`), for the "already a member" / "not a member" cases. */
export const awsCode = (e: unknown): string | undefined => {
  let x: unknown = e
  // awsFailure wraps the SDK error as `cause`.
  for (let i = 0; i < 3 && x && typeof x === 'object'; i++) {
    const meta = (x as { $metadata?: unknown }).$metadata
    if (meta) return (x as { name?: string }).name
    x = (x as { cause?: unknown }).cause
  }
  return undefined
}

/** Runs one SDK call, returning `onCodes[code]()` instead of failing for the given AWS error codes. */
export async function sendOr<T, U>(what: string, fn: () => Promise<T>, onCodes: Readonly<Record<string, (e: unknown) => U>>): Promise<T | U> {
  try {
    return await fn()
  } catch (e) {
    const code = awsCode(e)
    const handler = code !== undefined ? onCodes[code] : undefined
    if (handler) return handler(e)
    throw awsFailure(e, what)
  }
}
