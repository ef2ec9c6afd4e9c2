/**
 * hclog-style JSON logging on stderr, the format go-plugin reads from a plugin: one JSON object per line with
 * `@level`, `@message`, `@module`, `@timestamp` and the fields as further keys. Terraform then shows the line at
 * that level as `[INFO]  provider.terraform-provider-sym: message: key=value`.
 *
 * go-plugin parses `@timestamp` with Go's layout `2006-01-02T15:04:05.000000Z07:00` — microseconds. A
 * millisecond timestamp (`Date#toISOString`) fails that parse and the whole line is logged raw at DEBUG.
 *
 * The level comes from `TF_LOG_PROVIDER`, else `TF_LOG` (as Terraform itself decides what to show); nothing is
 * formatted below it, and nothing at all when neither is set, since Terraform would discard it.
 */

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]
/** `off` logs nothing. */
export type LogThreshold = LogLevel | 'off'

/** Structured fields of a log line, e.g. `{ tf_rpc: 'PlanResourceChange', tf_resource_type: 'sym_flow' }`. */
export type LogFields = Readonly<Record<string, unknown>>

/** A leveled, structured logger. Checking {@link Logger.enabled} first avoids building fields for nothing. */
export interface Logger {
  readonly threshold: LogThreshold
  enabled(level: LogLevel): boolean
  trace(message: string, fields?: LogFields): void
  debug(message: string, fields?: LogFields): void
  info(message: string, fields?: LogFields): void
  warn(message: string, fields?: LogFields): void
  error(message: string, fields?: LogFields): void
  /** A logger that adds `fields` to every line (later fields win). */
  with(fields: LogFields): Logger
}

/** Where log lines go: one string per line, newline included. */
export type LogSink = (line: string) => void

/**
 * The threshold for a `TF_LOG`-style value: TRACE, DEBUG, INFO, WARN, ERROR (any case), OFF, or JSON (Terraform's
 * "trace, as JSON"). Unset or empty → `off`; an unknown value → `trace`, as Terraform treats it.
 */
export function parseLogLevel(value: string | undefined): LogThreshold {
  const v = (value ?? '').trim().toLowerCase()
  if (v === '' || v === 'off') return 'off'
  if (v === 'json') return 'trace'
  return (LOG_LEVELS as readonly string[]).includes(v) ? (v as LogLevel) : 'trace'
}

/** The provider's threshold from the environment: `TF_LOG_PROVIDER`, else `TF_LOG`. */
export function logThresholdFromEnv(env: Readonly<Record<string, string | undefined>>): LogThreshold {
  const provider = env.TF_LOG_PROVIDER
  return parseLogLevel(provider !== undefined && provider !== '' ? provider : env.TF_LOG)
}

/** `2006-01-02T15:04:05.000000Z07:00` in UTC: an ISO timestamp with microseconds. */
export function hclogTimestamp(epochMicros: number): string {
  const millis = Math.floor(epochMicros / 1000)
  const micros = Math.floor(epochMicros - millis * 1000)
  const iso = new Date(millis).toISOString() // …T15:04:05.123Z
  return `${iso.slice(0, -1)}${String(micros).padStart(3, '0')}Z`
}

function nowMicros(): number {
  return (performance.timeOrigin + performance.now()) * 1000
}

/** JSON for a field value: Errors keep their message, bigint becomes a string, anything unserializable a string. */
function fieldValue(value: unknown): unknown {
  if (value instanceof Error) return value.message
  if (typeof value === 'bigint') return value.toString()
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64')
  return value
}

const RANK: Record<LogThreshold, number> = { trace: 0, debug: 1, info: 2, warn: 3, error: 4, off: 5 }

export interface LoggerOptions {
  /** `@module`, e.g. `sym` (go-plugin shows it after `provider.terraform-provider-NAME`). */
  readonly module: string
  readonly threshold: LogThreshold
  /** Defaults to a synchronous write to stderr. */
  readonly sink?: LogSink
  /** Microseconds since the epoch; for tests. */
  readonly clock?: () => number
}

export function createLogger(options: LoggerOptions, baseFields: LogFields = {}): Logger {
  const sink: LogSink = options.sink ?? ((line) => process.stderr.write(line))
  const clock = options.clock ?? nowMicros
  const min = RANK[options.threshold]

  const log = (level: LogLevel, message: string, fields?: LogFields): void => {
    if (RANK[level] < min) return
    const entry: Record<string, unknown> = {
      '@level': level,
      '@message': message,
      '@module': options.module,
      '@timestamp': hclogTimestamp(clock()),
    }
    for (const source of [baseFields, fields ?? {}]) {
      for (const [key, value] of Object.entries(source)) if (value !== undefined && !key.startsWith('@')) entry[key] = fieldValue(value)
    }
    let line: string
    try {
      line = JSON.stringify(entry)
    } catch {
      line = JSON.stringify({ ...entry, ...Object.fromEntries(Object.keys(fields ?? {}).map((k) => [k, String(entry[k])])) })
    }
    sink(`${line}\n`)
  }

  return {
    threshold: options.threshold,
    enabled: (level) => RANK[level] >= min,
    trace: (message, fields) => log('trace', message, fields),
    debug: (message, fields) => log('debug', message, fields),
    info: (message, fields) => log('info', message, fields),
    warn: (message, fields) => log('warn', message, fields),
    error: (message, fields) => log('error', message, fields),
    with: (fields) => createLogger(options, { ...baseFields, ...fields }),
  }
}
