/**
 * Outbound calls to Slack: `@slack/web-api` clients pointed at the configured API URL (tests: the local fake). A 429
 * is retried after its `Retry-After` by the client itself; network and 5xx errors by `retryConfig`. The token is
 * never logged: the client's own logger only gets warnings, without arguments.
 */
import { ErrorCode, LogLevel, WebClient, type Logger, type RetryOptions } from '@slack/web-api'
import type { EngineLogger } from '@opensym/engine'

export const DEFAULT_SLACK_API_URL = 'https://slack.com/api/'

export interface SlackClientOptions {
  /** Slack's Web API base, ending in `/api/`. */
  readonly apiUrl?: string
  /** Retries of network errors and 5xx; 429s are always waited out. Default: 3 quick retries. */
  readonly retryConfig?: RetryOptions
  /** Per-request timeout. Default 10 s. */
  readonly timeoutMs?: number
  readonly logger?: EngineLogger
}

/** `@slack/web-api`'s logger interface over ours, at warn level only. */
function clientLogger(log: EngineLogger | undefined): Logger {
  let level = LogLevel.WARN
  let name = 'slack'
  const out = (fn: 'debug' | 'info' | 'warn' | 'error') => (...msg: unknown[]) => log?.[fn]({ component: name }, msg.map(String).join(' '))
  return {
    debug: () => {},
    info: () => {},
    warn: out('warn'),
    error: out('error'),
    setLevel: (l: LogLevel) => (level = l),
    getLevel: () => level,
    setName: (n: string) => (name = n),
  }
}

export class SlackClients {
  private readonly byToken = new Map<string, WebClient>()
  readonly apiUrl: string

  constructor(private readonly options: SlackClientOptions = {}) {
    const url = options.apiUrl ?? DEFAULT_SLACK_API_URL
    this.apiUrl = url.endsWith('/') ? url : `${url}/`
  }

  /** A client for a bot token (cached: clients hold their rate-limit queue). */
  forToken(token: string): WebClient {
    let client = this.byToken.get(token)
    if (!client) {
      client = this.create(token)
      if (this.byToken.size > 1000) this.byToken.clear()
      this.byToken.set(token, client)
    }
    return client
  }

  /** A client without a token (`oauth.v2.access`). */
  anonymous(): WebClient {
    return this.create(undefined)
  }

  private create(token: string | undefined): WebClient {
    return new WebClient(token, {
      slackApiUrl: this.apiUrl,
      logger: clientLogger(this.options.logger),
      logLevel: LogLevel.WARN,
      retryConfig: this.options.retryConfig ?? { retries: 3, factor: 2, minTimeout: 200, maxTimeout: 2000 },
      timeout: this.options.timeoutMs ?? 10_000,
      rejectRateLimitedCalls: false,
    })
  }
}

/** Slack's `error` string of a failed call (`channel_not_found`…), or undefined for transport errors. */
export function slackError(e: unknown): string | undefined {
  if (e && typeof e === 'object' && (e as { code?: unknown }).code === ErrorCode.PlatformError) {
    const data = (e as { data?: { error?: unknown } }).data
    return typeof data?.error === 'string' ? data.error : 'unknown_error'
  }
  return undefined
}

/** Errors that mean this destination (channel or user) cannot be delivered to: retrying will not help. */
export const UNDELIVERABLE = new Set([
  'channel_not_found',
  'not_in_channel',
  'is_archived',
  'user_not_found',
  'users_not_found',
  'user_disabled',
  'user_not_visible',
  'cannot_dm_bot',
  'restricted_action',
  'invalid_arguments',
])

/** Errors that mean the installation's token no longer works. */
export const TOKEN_DEAD = new Set(['invalid_auth', 'token_revoked', 'account_inactive', 'not_authed', 'team_access_not_granted'])
