/**
 * Where the provider talks to and with which token, resolved as Sym's provider does: the token comes from the
 * environment variable named by `jwt_env_var` (default `SYM_JWT`), else from the `symflow` config file, whose
 * `org` must then match the provider's `org` (unless `SYM_TF_SKIP_VALIDATION` is set).
 */
import { join } from 'node:path'
import { DEFAULT_API_URL } from '@opensym/provider-schema'
import { parse } from 'yaml'

export interface ProviderSettings {
  readonly org: string
  readonly jwtEnvVar?: string | null
  readonly apiUrl?: string | null
}

export interface Connection {
  readonly apiUrl: string
  readonly token: string
  readonly tokenSource: 'environment' | 'symflow'
}

/** A problem with the provider configuration: a summary and a detail, as a Terraform diagnostic shows them. */
export class ConnectionError extends Error {
  override readonly name = 'ConnectionError'
  constructor(
    readonly summary: string,
    readonly detail: string,
    /** The provider attribute at fault, when there is one. */
    readonly attribute?: string,
  ) {
    super(`${summary}: ${detail}`)
  }
}

export const DEFAULT_JWT_ENV_VAR = 'SYM_JWT'
const DOCS = 'For more details, see docs/terraform/index.md.'

export interface ConnectionEnv {
  readonly env: Readonly<Record<string, string | undefined>>
  /** Reads a file as text; undefined when it does not exist. */
  readonly readFile: (path: string) => string | undefined
}

export function symflowConfigPath(env: Readonly<Record<string, string | undefined>>): string {
  return join(env.HOME ?? '', '.config', 'symflow', 'default', 'config.yml')
}

export function resolveConnection(settings: ProviderSettings, { env, readFile }: ConnectionEnv): Connection {
  const apiUrl = (settings.apiUrl || env.SYM_API_URL || DEFAULT_API_URL).replace(/\/+$/, '')
  if (!/^https?:\/\//.test(apiUrl)) {
    throw new ConnectionError('Invalid API URL', `"${apiUrl}" is not an http(s) URL. ${DOCS}`, settings.apiUrl ? 'api_url' : undefined)
  }
  const varName = settings.jwtEnvVar || DEFAULT_JWT_ENV_VAR
  const fromEnv = env[varName]
  if (fromEnv) return { apiUrl, token: fromEnv, tokenSource: 'environment' }

  const path = symflowConfigPath(env)
  const text = readFile(path)
  if (text === undefined) {
    throw new ConnectionError(
      'No Sym token',
      `No local Sym config was found at ${path}, and $${varName} is empty. Set $${varName} to a bot token (\`npm run -s admin -- token issue …\`) or log in with symflow. ${DOCS}`,
    )
  }
  let config: unknown
  try {
    config = parse(text)
  } catch (e) {
    throw new ConnectionError('Invalid Sym config', `failed to parse Sym configuration at ${path}: ${(e as Error).message}. ${DOCS}`)
  }
  const c = (typeof config === 'object' && config !== null ? config : {}) as { auth_token?: { access_token?: unknown }; org?: unknown }
  const token = c.auth_token?.access_token
  if (typeof token !== 'string' || !token) {
    throw new ConnectionError('No Sym token', `You do not have an org configured via \`symflow\`: ${path} has no auth_token.access_token. ${DOCS}`)
  }
  if (!env.SYM_TF_SKIP_VALIDATION && c.org !== settings.org) {
    throw new ConnectionError(
      'Org mismatch',
      `You are logged in to org "${String(c.org)}" but the provider is configured with org "${settings.org}". Log in to the right org, fix \`org\`, or set SYM_TF_SKIP_VALIDATION. ${DOCS}`,
      'org',
    )
  }
  return { apiUrl, token, tokenSource: 'symflow' }
}
