/**
 * AWS for strategies and secrets: a `permission_context` integration (settings `role_arn`, `region`, optionally
 * `external_id`) names the IAM role OpenSym assumes with STS before calling IAM Identity Center, IAM, Lambda or
 * Secrets Manager; the clients are the official AWS SDK v3 ones.
 *
 * - Endpoints are configurable (`AwsOptions.endpoint`/`endpoints`, or the SDK's own `AWS_ENDPOINT_URL` and
 *   `AWS_ENDPOINT_URL_<SERVICE>` environment variables), so tests point every client at local fakes.
 * - The worker's own credentials (the SDK's default chain, or `AwsOptions.credentials`) call STS; a context without
 *   `role_arn` uses them directly. Assumed-role credentials are cached per (role, external id, region) until five
 *   minutes before they expire.
 * - {@link awsFailure} turns an SDK error into the engine's classes: throttling, 429, 5xx, timeouts, connection
 *   errors and write conflicts are {@link RetryableStrategyError}s (with the service's `Retry-After` when it sent
 *   one); anything else is a {@link StrategyError} naming the operation and the AWS error code.
 * - The SDK packages are loaded on first use ({@link awsSdk}): each takes 150–250 ms to import, and the API (which
 *   imports the engine for its types and queues) and deployments without AWS strategies never need them.
 */
import type { IAMClient } from '@aws-sdk/client-iam'
import type { IdentitystoreClient } from '@aws-sdk/client-identitystore'
import type { LambdaClient } from '@aws-sdk/client-lambda'
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager'
import type { SSOAdminClient } from '@aws-sdk/client-sso-admin'
import type { STSClient } from '@aws-sdk/client-sts'
import { parseRetryAfter } from './strategies/http.js'
import { RetryableStrategyError, StrategyError } from './strategy.js'

// The SDK warns once per process that versions published after January 2027 need Node 22. The versions are pinned
// (package.json), so the warning says nothing about this deployment; AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=false
// brings it back.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'

/** `load()` once, on first call; a failed load is tried again next time. */
function once<T>(load: () => Promise<T>): () => Promise<T> {
  let loading: Promise<T> | undefined
  return () =>
    (loading ??= load().catch((e: unknown) => {
      loading = undefined
      throw e
    }))
}

/**
 * The AWS SDK v3 packages, each imported on first use and then cached (types come from `import type`, so nothing
 * is loaded before a call needs it). Strategies take their commands from here.
 */
export const awsSdk = {
  iam: once(() => import('@aws-sdk/client-iam')),
  identitystore: once(() => import('@aws-sdk/client-identitystore')),
  lambda: once(() => import('@aws-sdk/client-lambda')),
  secretsManager: once(() => import('@aws-sdk/client-secrets-manager')),
  ssoAdmin: once(() => import('@aws-sdk/client-sso-admin')),
  sts: once(() => import('@aws-sdk/client-sts')),
} as const

/** `firehose`, `kinesis` and `s3` are for log destinations (@opensym/reporting), which load those clients themselves. */
export type AwsService = 'sts' | 'iam' | 'ssoAdmin' | 'identitystore' | 'lambda' | 'secretsManager' | 'firehose' | 'kinesis' | 's3'

export interface AwsCredentials {
  readonly accessKeyId: string
  readonly secretAccessKey: string
  readonly sessionToken?: string
  readonly expiration?: Date
}
export type AwsCredentialsProvider = () => Promise<AwsCredentials>

export interface AwsOptions {
  /** One endpoint for every AWS client (e.g. `http://127.0.0.1:4566`). Default: the SDK's (which honours `AWS_ENDPOINT_URL`). */
  readonly endpoint?: string
  /** Per-service endpoints; they win over `endpoint`. The SDK also honours `AWS_ENDPOINT_URL_<SERVICE>`. */
  readonly endpoints?: Partial<Record<AwsService, string>>
  /** The credentials OpenSym itself calls STS with (or the services, for a context without `role_arn`). Default: the SDK's default chain. */
  readonly credentials?: AwsCredentials | AwsCredentialsProvider
  /** The region when the permission context names none. Default `AWS_REGION`, else `us-east-1`. */
  readonly region?: string
  /** Attempts the SDK makes per call before the engine's own retry takes over. Default 3 (the SDK's). */
  readonly maxAttempts?: number
  /** Assumed-role session length, 900–43200 s. Default 900. */
  readonly sessionDurationSeconds?: number
  readonly now?: () => number
}

/** A `permission_context` integration as AWS calls need it. */
export interface PermissionContext {
  /** The role to assume; undefined: use OpenSym's own credentials. */
  readonly roleArn: string | undefined
  /** STS `ExternalId` (Sym's connectors set `settings.external_id`). */
  readonly externalId: string | undefined
  readonly region: string
}

const ROLE_ARN_RE = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/
const REGION_RE = /^[a-z]{2}(-[a-z]+)+-\d+$/
const EXPIRY_MARGIN_MS = 5 * 60_000
const MAX_CACHED_CONTEXTS = 200

const str = (v: unknown) => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined)

/**
 * The permission context of an integration's settings (`role_arn`, `region`, `external_id`). `what` names the
 * integration in messages. Throws a {@link StrategyError} for a malformed role ARN or region.
 */
export function permissionContext(settings: Readonly<Record<string, unknown>>, what: string, defaultRegion: string): PermissionContext {
  const roleArn = str(settings.role_arn)
  if (roleArn !== undefined && !ROLE_ARN_RE.test(roleArn)) throw new StrategyError(`${what}: settings.role_arn "${roleArn}" is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)`)
  const region = str(settings.region) ?? defaultRegion
  if (!REGION_RE.test(region)) throw new StrategyError(`${what}: settings.region "${region}" is not an AWS region`)
  return { roleArn, externalId: str(settings.external_id), region }
}

/** Clients for one permission context, sharing its (cached) credentials; each is made (and its SDK loaded) on first use. */
export interface AwsClients {
  readonly context: PermissionContext
  readonly iam: () => Promise<IAMClient>
  readonly ssoAdmin: () => Promise<SSOAdminClient>
  readonly identitystore: () => Promise<IdentitystoreClient>
  readonly lambda: () => Promise<LambdaClient>
  readonly secretsManager: () => Promise<SecretsManagerClient>
  /**
   * The configuration (region, endpoint, this context's cached credentials) of any other SDK client, for code that
   * loads that client itself (log destinations); `adopt` it to have `Aws.destroy()` close it.
   */
  readonly configFor: (service: AwsService) => AwsClientConfig
  readonly adopt: <T extends { destroy(): void }>(client: T) => T
}

export interface AwsClientConfig {
  region: string
  endpoint?: string
  credentials?: AwsCredentials | AwsCredentialsProvider
  maxAttempts?: number
}

/** Builds and caches AWS clients per permission context. One per process (or per test). */
export class Aws {
  readonly defaultRegion: string
  private readonly contexts = new Map<string, AwsClients>()
  private readonly stsClients = new Map<string, Promise<STSClient>>()
  /** Every client made, to close on `destroy()`. */
  private readonly made = new Set<{ destroy(): void }>()

  constructor(private readonly options: AwsOptions = {}) {
    this.defaultRegion = options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1'
  }

  /** The clients of a context (created on first use). */
  clients(context: PermissionContext): AwsClients {
    const key = `${context.roleArn ?? ''}|${context.externalId ?? ''}|${context.region}`
    const cached = this.contexts.get(key)
    if (cached) return cached
    if (this.contexts.size >= MAX_CACHED_CONTEXTS) {
      // Forget the oldest context; its clients stay usable by calls in flight and are closed on destroy().
      const oldest = this.contexts.keys().next().value
      if (oldest !== undefined) this.contexts.delete(oldest)
    }
    const credentials = context.roleArn ? this.assumedRole(context) : this.options.credentials
    const config = (service: AwsService): AwsClientConfig => this.config(service, context.region, credentials)
    const lazy = <T extends { destroy(): void }>(make: () => Promise<T>) =>
      once(async () => {
        const client = await make()
        this.made.add(client)
        return client
      })
    const clients: AwsClients = {
      context,
      iam: lazy(async () => new (await awsSdk.iam()).IAMClient(config('iam'))),
      ssoAdmin: lazy(async () => new (await awsSdk.ssoAdmin()).SSOAdminClient(config('ssoAdmin'))),
      identitystore: lazy(async () => new (await awsSdk.identitystore()).IdentitystoreClient(config('identitystore'))),
      lambda: lazy(async () => new (await awsSdk.lambda()).LambdaClient(config('lambda'))),
      secretsManager: lazy(async () => new (await awsSdk.secretsManager()).SecretsManagerClient(config('secretsManager'))),
      configFor: config,
      adopt: (client) => {
        this.made.add(client)
        return client
      },
    }
    this.contexts.set(key, clients)
    return clients
  }

  private config(service: AwsService, region: string, credentials: AwsCredentials | AwsCredentialsProvider | undefined): AwsClientConfig {
    const endpoint = this.options.endpoints?.[service] ?? this.options.endpoint
    return {
      region,
      ...(endpoint ? { endpoint } : {}),
      ...(credentials ? { credentials } : {}),
      ...(this.options.maxAttempts ? { maxAttempts: this.options.maxAttempts } : {}),
    }
  }

  private sts(region: string): Promise<STSClient> {
    let client = this.stsClients.get(region)
    if (!client) {
      client = awsSdk.sts().then((sdk) => new sdk.STSClient(this.config('sts', region, this.options.credentials)))
      // A failed load is not cached, so the next call tries again.
      client.catch(() => this.stsClients.delete(region))
      this.stsClients.set(region, client)
    }
    return client
  }

  /** A credentials provider that assumes the context's role, refreshing five minutes before expiry. */
  private assumedRole(context: PermissionContext): AwsCredentialsProvider {
    const now = this.options.now ?? Date.now
    let cached: AwsCredentials | undefined
    let inFlight: Promise<AwsCredentials> | undefined
    const roleArn = context.roleArn!
    const assume = async (): Promise<AwsCredentials> => {
      try {
        const [sts, { AssumeRoleCommand }] = await Promise.all([this.sts(context.region), awsSdk.sts()])
        const out = await sts.send(
          new AssumeRoleCommand({
            RoleArn: roleArn,
            RoleSessionName: 'opensym',
            DurationSeconds: this.options.sessionDurationSeconds ?? 900,
            ...(context.externalId ? { ExternalId: context.externalId } : {}),
          }),
        )
        const c = out.Credentials
        if (!c?.AccessKeyId || !c.SecretAccessKey) throw new StrategyError(`sts AssumeRole ${roleArn}: the reply has no credentials`)
        return { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken, expiration: c.Expiration }
      } catch (e) {
        throw awsFailure(e, `sts AssumeRole ${roleArn}`)
      }
    }
    return async () => {
      if (cached && (!cached.expiration || cached.expiration.getTime() - now() > EXPIRY_MARGIN_MS)) return cached
      inFlight ??= assume().finally(() => (inFlight = undefined))
      cached = await inFlight
      return cached
    }
  }

  /** Closes every client's connections. */
  destroy(): void {
    for (const client of this.made) client.destroy()
    for (const s of this.stsClients.values()) void s.then((c) => c.destroy(), () => undefined)
    this.made.clear()
    this.contexts.clear()
    this.stsClients.clear()
  }
}

/** Error names the SDK's retry strategy counts as throttling (`@smithy/core` retry constants) and as transient. */
const THROTTLING = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottledException',
  'RequestThrottled',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'TransactionInProgressException',
  'RequestLimitExceeded',
  'BandwidthLimitExceeded',
  'SlowDown',
  'PriorRequestNotComplete',
  'EC2ThrottledException',
])
const TRANSIENT = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException', 'InternalServerException', 'InternalFailure', 'ServiceUnavailable', 'ServiceFailure', 'ServiceException', 'InternalServiceError'])
/** Write conflicts the SDK does not retry but that go away (Identity Center "retry with backoff", IAM concurrent modification). */
const CONFLICTS = new Set(['ConflictException', 'ConcurrentModification', 'ConcurrentModificationException'])
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_SOCKET'])
const CONFLICT_RETRY_MS = 1000

interface SdkError {
  name?: string
  message?: string
  code?: string
  $fault?: string
  $metadata?: { httpStatusCode?: number }
  $response?: { headers?: Record<string, string | undefined> }
  $retryable?: { throttling?: boolean }
  RetryAfterSeconds?: number
  cause?: unknown
  errors?: unknown[]
}

function networkCode(e: unknown): string | undefined {
  for (let i = 0, x = e as SdkError | undefined; i < 5 && x; i++, x = x.cause as SdkError | undefined) {
    if (typeof x.code === 'string' && NETWORK_CODES.has(x.code)) return x.code
    const inner = Array.isArray(x.errors) ? (x.errors[0] as SdkError | undefined) : undefined
    if (inner && typeof inner.code === 'string' && NETWORK_CODES.has(inner.code)) return inner.code
  }
  return undefined
}

/** The service's `Retry-After` hint, from the header or the error's `RetryAfterSeconds`. */
function retryAfterOf(e: SdkError): number | undefined {
  const header = e.$response?.headers?.['retry-after'] ?? e.$response?.headers?.['Retry-After']
  const fromHeader = parseRetryAfter(header)
  if (fromHeader !== undefined) return fromHeader
  return typeof e.RetryAfterSeconds === 'number' ? e.RetryAfterSeconds * 1000 : undefined
}

/**
 * An AWS SDK error as the engine's error: {@link RetryableStrategyError} for throttling, 429, 5xx, timeouts,
 * connection failures and write conflicts; {@link StrategyError} otherwise. `what` names the call ("iam
 * AddUserToGroup"). Engine errors pass through unchanged.
 */
export function awsFailure(error: unknown, what: string): Error {
  if (error instanceof StrategyError || error instanceof RetryableStrategyError) return error
  const e = (error ?? {}) as SdkError
  const name = typeof e.name === 'string' ? e.name : 'Error'
  const text = typeof e.message === 'string' ? e.message.split('\n')[0] : String(error)
  const status = e.$metadata?.httpStatusCode
  const detail = `${what}: ${name}${text && text !== name ? `: ${text}` : ''}${status ? ` (HTTP ${status})` : ''}`
  if (name === 'AbortError') return new RetryableStrategyError(`${what}: aborted (${text})`, undefined, { cause: error })
  if (THROTTLING.has(name) || status === 429 || e.$retryable?.throttling) return new RetryableStrategyError(detail, retryAfterOf(e), { cause: error })
  if (CONFLICTS.has(name)) return new RetryableStrategyError(detail, CONFLICT_RETRY_MS, { cause: error })
  if (TRANSIENT.has(name) || (status !== undefined && status >= 500) || e.$fault === 'server') return new RetryableStrategyError(detail, retryAfterOf(e), { cause: error })
  const code = networkCode(error)
  if (code) return new RetryableStrategyError(`${what}: ${code}`, undefined, { cause: error })
  return new StrategyError(detail, undefined, { cause: error })
}
