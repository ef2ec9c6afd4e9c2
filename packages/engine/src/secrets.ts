/**
 * Reading `sym_secret` values at the moment a strategy needs them. A `sym_secret` names a value (`path`, optionally
 * one `json_key` of a JSON value) in a `sym_secrets` source; the value is never stored, logged or returned by the
 * API, and no error message here ever contains it.
 *
 * Source types:
 * - `env` (self-hosted): the value is the environment variable `path` of this process. Only variables whose names
 *   start with {@link ENV_SECRET_PREFIX} can be read, so configuration (a bot token with Terraform rights) can never
 *   read DATABASE_URL or any other variable of the deployment.
 * - `aws_secrets_manager`: `GetSecretValue` of the secret named `path` (its current version, `SecretString`, or a
 *   UTF-8 `SecretBinary`), through the `permission_context` integration named by the source's `settings.context_id`
 *   (its role assumed with STS, its region; see `aws.ts` for endpoints and credentials). Throttling, 5xx and
 *   connection failures are {@link RetryableStrategyError}s; anything else a {@link SecretError}.
 */
import { Prisma, type Sql } from '@opensym/db'
import { Aws, awsFailure, awsSdk, permissionContext } from './aws.js'
import { RetryableStrategyError, type SecretResolver } from './strategy.js'

/** The prefix every variable read through an `env` secret source must have (also documented in provider-schema). */
export const ENV_SECRET_PREFIX = 'OPENSYM_SECRET_'

const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** A secret that cannot be read: missing, misconfigured or from an unsupported source. Not worth retrying. */
export class SecretError extends Error {
  constructor(
    message: string,
    readonly secretId?: string,
  ) {
    super(message)
    this.name = 'SecretError'
  }
}

/** A `sym_secret` with its source, as stored. */
export interface SecretRecord {
  readonly id: string
  readonly path: string
  readonly settings: unknown
  readonly source: { readonly id: string; readonly type: string; readonly settings: unknown }
}

/** A `permission_context` integration, as `aws_secrets_manager` sources need it. */
export interface PermissionContextRecord {
  readonly id: string
  readonly type: string
  readonly externalId: string
  readonly settings: unknown
}

export interface ReadSecretOptions {
  /** The environment `env` sources read. Default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>
  /** AWS clients for `aws_secrets_manager` sources. Default: one shared `Aws()` (SDK defaults and environment). */
  readonly aws?: Aws
  /** Finds the integration a source's `settings.context_id` names (in the secret's org). */
  readonly integration?: (id: string) => Promise<PermissionContextRecord | null | undefined>
}

let sharedAws: Aws | undefined
const defaultAws = () => (sharedAws ??= new Aws())
const asRecord = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {})

const describe = (secret: Pick<SecretRecord, 'id' | 'path'>) => `sym_secret ${secret.id} (path "${secret.path}")`

function jsonKeyOf(settings: unknown): string | undefined {
  if (!settings || typeof settings !== 'object' || Array.isArray(settings)) return undefined
  const key = (settings as Record<string, unknown>).json_key
  return typeof key === 'string' && key !== '' ? key : undefined
}

/** The raw value of a secret in its source, before `json_key`. */
async function readRaw(secret: SecretRecord, options: ReadSecretOptions): Promise<string> {
  switch (secret.source.type) {
    case 'env': {
      const name = secret.path
      if (!name.startsWith(ENV_SECRET_PREFIX) || !ENV_NAME_RE.test(name) || name === ENV_SECRET_PREFIX) {
        throw new SecretError(
          `${describe(secret)}: an env secret source only reads environment variables named ${ENV_SECRET_PREFIX}<NAME> (letters, digits and _); set the sym_secret's path to such a name`,
          secret.id,
        )
      }
      const value = (options.env ?? process.env)[name]
      if (value === undefined || value === '') {
        throw new SecretError(`${describe(secret)}: the environment variable ${name} is not set (or empty) in the OpenSym worker's environment`, secret.id)
      }
      return value
    }
    case 'aws_secrets_manager':
      return readAwsSecret(secret, options)
    default:
      throw new SecretError(`${describe(secret)}: unknown secret source type "${secret.source.type}"`, secret.id)
  }
}

async function readAwsSecret(secret: SecretRecord, options: ReadSecretOptions): Promise<string> {
  const contextId = asRecord(secret.source.settings).context_id
  if (typeof contextId !== 'string' || contextId === '') {
    throw new SecretError(`${describe(secret)}: its aws_secrets_manager source has no settings.context_id (the ID of a permission_context sym_integration)`, secret.id)
  }
  const integration = UUID_RE.test(contextId) && options.integration ? await options.integration(contextId) : undefined
  if (!integration) throw new SecretError(`${describe(secret)}: its source's settings.context_id ${contextId} is not a sym_integration of this organization`, secret.id)
  if (integration.type !== 'permission_context') {
    throw new SecretError(`${describe(secret)}: its source's settings.context_id names a "${integration.type}" integration; it must be a permission_context`, secret.id)
  }
  const aws = options.aws ?? defaultAws()
  let context
  try {
    context = permissionContext(asRecord(integration.settings), `permission_context integration ${integration.externalId || integration.id}`, aws.defaultRegion)
  } catch (e) {
    throw new SecretError(`${describe(secret)}: ${e instanceof Error ? e.message : String(e)}`, secret.id)
  }
  let out
  try {
    const [client, { GetSecretValueCommand }] = await Promise.all([aws.clients(context).secretsManager(), awsSdk.secretsManager()])
    out = await client.send(new GetSecretValueCommand({ SecretId: secret.path }))
  } catch (e) {
    const failure = awsFailure(e, 'secretsmanager GetSecretValue')
    if (failure instanceof RetryableStrategyError) throw new RetryableStrategyError(`${describe(secret)}: ${failure.message}`, failure.retryAfterMs, { cause: failure })
    throw new SecretError(`${describe(secret)}: ${failure.message}`, secret.id)
  }
  if (typeof out.SecretString === 'string' && out.SecretString !== '') return out.SecretString
  if (out.SecretBinary && out.SecretBinary.byteLength > 0) return Buffer.from(out.SecretBinary).toString('utf8')
  throw new SecretError(`${describe(secret)}: the AWS Secrets Manager secret has no value (neither SecretString nor SecretBinary)`, secret.id)
}

/** A secret's value: the source's value, or the `json_key` of it when the secret's settings name one. */
export async function readSecretValue(secret: SecretRecord, options: ReadSecretOptions = {}): Promise<string> {
  const raw = await readRaw(secret, options)
  const key = jsonKeyOf(secret.settings)
  if (key === undefined) return raw
  let parsed: unknown
  try {
    parsed = JSON.parse(raw)
  } catch {
    // Never quote the value: it is the secret.
    throw new SecretError(`${describe(secret)}: settings.json_key is "${key}" but the value is not JSON`, secret.id)
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new SecretError(`${describe(secret)}: settings.json_key is "${key}" but the value is not a JSON object`, secret.id)
  }
  const value = (parsed as Record<string, unknown>)[key]
  if (value === undefined || value === null || value === '') {
    throw new SecretError(`${describe(secret)}: the JSON value has no key "${key}" (settings.json_key)`, secret.id)
  }
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  throw new SecretError(`${describe(secret)}: the JSON key "${key}" holds an object or array, not a string`, secret.id)
}

export interface SecretResolverOptions extends ReadSecretOptions {
  /** Where the secret rows are read: the pool, or the caller's transaction (a strategy call inside one). */
  readonly db: Sql
  /** Only this org's secrets can be read. */
  readonly orgId: string
}

/**
 * A {@link SecretResolver} for one org: `sym_secret` id → its source → its value, read at call time (nothing is
 * cached, so a rotated value is used by the next call). Fails with a {@link SecretError} naming the secret (never
 * its value) when the secret does not exist in the org or cannot be read.
 */
export function createSecretResolver(options: SecretResolverOptions): SecretResolver {
  const { db, orgId } = options
  return async (secretId: string) => {
    if (!UUID_RE.test(secretId)) throw new SecretError(`"${secretId}" is not a sym_secret id (a UUID)`, secretId)
    const [secret] = await db.query<SecretRecord>(Prisma.sql`
      SELECT s."id", s."path", s."settings", json_build_object('id', src."id", 'type', src."type", 'settings', src."settings") AS "source"
      FROM "Secret" s JOIN "SecretSource" src ON src."id" = s."sourceId"
      WHERE s."id" = ${secretId}::uuid AND s."orgId" = ${orgId}::uuid`)
    if (!secret) throw new SecretError(`no sym_secret with id ${secretId} in this organization`, secretId)
    return readSecretValue(secret, {
      ...options,
      integration: async (id) =>
        (
          await db.query<PermissionContextRecord>(Prisma.sql`
            SELECT "id", "type", "externalId", "settings" FROM "Integration" WHERE "id" = ${id}::uuid AND "orgId" = ${orgId}::uuid`)
        )[0] ?? null,
    })
  }
}
