/** Building strategy calls for strategy tests against the local fakes of @opensym/testing. */
import { expect } from 'vitest'
import { Aws } from '../src/aws.js'
import type { StrategyCall, StrategySnapshot, TargetSnapshot } from '../src/strategy.js'

export const ROLE_ARN = 'arn:aws:iam::123456789012:role/opensym-access'
export const EXTERNAL_ID = 'c0ffee00-1111-4222-8333-444455556666'
export const TOKEN_SECRET_ID = '00000000-0000-4000-8000-00000000aaaa'

export interface CallOptions {
  readonly type: string
  readonly integration?: StrategySnapshot['integration']
  readonly strategySettings?: Record<string, unknown>
  readonly target: { type: string; settings: Record<string, string>; slug?: string }
  readonly identity?: string
  readonly email?: string | null
  /** sym_secret id → value. */
  readonly secrets?: Readonly<Record<string, string>>
  readonly payload?: Record<string, unknown>
  readonly signal?: AbortSignal
}

export function strategyCall(o: CallOptions): StrategyCall {
  const target: TargetSnapshot = { id: '00000000-0000-4000-8000-000000000004', type: o.target.type, slug: o.target.slug ?? 'target', label: null, settings: o.target.settings }
  const email = o.email === undefined ? 'alice@example.com' : o.email
  return {
    strategy: { id: '00000000-0000-4000-8000-000000000003', type: o.type, slug: `${o.type}-grant`, integration: o.integration ?? null, settings: o.strategySettings ?? {} },
    target,
    subject: { userId: '00000000-0000-4000-8000-000000000010', email, username: email ?? 'alice' },
    identity: o.identity ?? '',
    payload: o.payload ?? { id: '00000000-0000-4000-8000-000000000030', event: { type: 'escalate' } },
    secrets: async (id) => {
      const v = o.secrets?.[id]
      if (v === undefined) throw new Error(`no sym_secret ${id}`)
      return v
    },
    signal: o.signal ?? new AbortController().signal,
  }
}

/** A permission_context integration for the fake AWS role. */
export const permissionContextIntegration = (externalId = '123456789012', settings: Record<string, unknown> = {}): NonNullable<StrategySnapshot['integration']> => ({
  id: '00000000-0000-4000-8000-0000000000c1',
  type: 'permission_context',
  externalId,
  settings: { cloud: 'aws', role_arn: ROLE_ARN, region: 'us-east-1', external_id: EXTERNAL_ID, ...settings },
})

/** AWS clients pointed at a fake, one attempt per call (the engine retries). */
export function fakeAwsClients(fake: { url: string; credentials: { accessKeyId: string; secretAccessKey: string } }, maxAttempts = 1): Aws {
  return new Aws({ endpoint: fake.url, credentials: fake.credentials, region: 'us-east-1', maxAttempts })
}

/** Runs `fn`, expecting it to throw an error of `type`; returns the error. */
export async function failure<E extends Error>(fn: () => Promise<unknown>, type: new (...args: never[]) => E): Promise<E> {
  try {
    await fn()
  } catch (error) {
    expect(error).toBeInstanceOf(type)
    return error as E
  }
  throw new Error('expected a failure')
}

/** A loopback URL nothing listens on: a service that is down. */
export async function deadUrl(): Promise<string> {
  const { createServer } = await import('node:net')
  const server = createServer()
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as { port: number }
  await new Promise<void>((r) => server.close(() => r()))
  return `http://127.0.0.1:${port}`
}
