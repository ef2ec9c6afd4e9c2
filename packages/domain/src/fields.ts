/**
 * Request inputs checked against a flow's prompt fields (`params.prompt_fields`): required fields, types,
 * `allowed_values`, defaults, and the duration of an access request. One rule set for the Events API and Slack.
 */
import { parseDuration } from './durations.js'

/** A prompt field as the entities API stores it (`params.prompt_fields[]`). */
export interface PromptField {
  readonly name: string
  readonly type: string
  readonly required?: boolean
  readonly label?: string
  readonly default?: string
  readonly allowed_values?: readonly string[]
}

export type FieldValue = string | number | boolean | readonly string[] | readonly number[]

export interface FieldError {
  /** The input's key, e.g. `reason` or `duration`. */
  readonly field: string
  readonly message: string
}

/** Fields that are not prompt fields but part of every access request. */
export const RESERVED_FIELDS = ['target_id', 'target_srn', 'duration'] as const

/** Bounds on a requested duration: at least a second, at most a year. */
export const MIN_DURATION_SECONDS = 1
export const MAX_DURATION_SECONDS = 365 * 86_400

export interface FlowInputRules {
  readonly promptFields: readonly PromptField[]
  /** Access flows (with a strategy) need a target and, when de-escalation is scheduled, a duration. */
  readonly hasStrategy: boolean
  readonly scheduleDeescalation: boolean
}

export interface ValidInputs {
  /** Prompt field values (defaults applied), plus `duration` in seconds when there is one. */
  readonly fields: Record<string, FieldValue>
  readonly durationSeconds: number | undefined
  /** `target_id` or `target_srn` as given; resolving it to one of the strategy's targets needs the database. */
  readonly target: { readonly by: 'id' | 'srn'; readonly value: string } | undefined
}

export type InputsResult = { readonly ok: true; readonly value: ValidInputs } | { readonly ok: false; readonly errors: readonly FieldError[] }

/** Seconds from `3600`, `"3600"` or `"1h"`; undefined when it is none of these. */
export function durationSeconds(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : undefined
  if (typeof value !== 'string') return undefined
  if (/^\d{1,9}$/.test(value.trim())) return Number(value.trim())
  return parseDuration(value)
}

function describeAllowed(values: readonly string[]): string {
  return values.map((v) => `"${v}"`).join(', ')
}

/** One field's value converted to its type, or the reason it is not one. */
function convert(field: PromptField, raw: unknown): { value: FieldValue } | { error: string } {
  const allowed = field.allowed_values?.length ? field.allowed_values : undefined
  const oneOf = (text: string) => (allowed && !allowed.includes(text) ? `must be one of ${describeAllowed(allowed)}` : undefined)
  switch (field.type) {
    case 'string':
    case 'slack_user': {
      if (typeof raw !== 'string') return { error: 'must be a string' }
      if (field.type === 'slack_user' && !/^[UW][A-Z0-9]{2,}$/.test(raw)) return { error: 'must be a Slack user ID such as U0123ABCD' }
      const refusal = oneOf(raw)
      return refusal ? { error: refusal } : { value: raw }
    }
    case 'int': {
      const n = typeof raw === 'string' && /^-?\d{1,15}$/.test(raw.trim()) ? Number(raw) : raw
      if (typeof n !== 'number' || !Number.isSafeInteger(n)) return { error: 'must be an integer' }
      const refusal = oneOf(String(n))
      return refusal ? { error: refusal } : { value: n }
    }
    case 'bool': {
      const b = raw === 'true' ? true : raw === 'false' ? false : raw
      return typeof b === 'boolean' ? { value: b } : { error: 'must be true or false' }
    }
    case 'duration': {
      const seconds = durationSeconds(raw)
      if (seconds === undefined) return { error: 'must be a duration in seconds, or like "30m", "1h", "1d"' }
      if (seconds < MIN_DURATION_SECONDS || seconds > MAX_DURATION_SECONDS) return { error: DURATION_BOUNDS }
      if (allowed && !allowed.some((a) => durationSeconds(a) === seconds)) return { error: `must be one of ${describeAllowed(allowed)}` }
      return { value: seconds }
    }
    case 'str_list':
    case 'slack_user_list': {
      if (!Array.isArray(raw) || !raw.every((v): v is string => typeof v === 'string')) return { error: 'must be a list of strings' }
      const bad = allowed ? raw.find((v) => !allowed.includes(v)) : undefined
      return bad !== undefined ? { error: `has "${bad}", which is not one of ${describeAllowed(allowed!)}` } : { value: raw }
    }
    case 'int_list': {
      const list = Array.isArray(raw) ? raw.map((v: unknown) => (typeof v === 'string' && /^-?\d{1,15}$/.test(v) ? Number(v) : v)) : undefined
      if (!list || !list.every((v): v is number => typeof v === 'number' && Number.isSafeInteger(v))) return { error: 'must be a list of integers' }
      const bad = allowed ? list.find((v) => !allowed.includes(String(v))) : undefined
      return bad !== undefined ? { error: `has ${bad}, which is not one of ${describeAllowed(allowed!)}` } : { value: list }
    }
    default:
      return { error: `has an unknown field type "${field.type}"` }
  }
}

/** A missing value is undefined, null, an empty string (what an untouched Slack input sends) or an empty list. */
const isMissing = (v: unknown) => v === undefined || v === null || v === '' || (Array.isArray(v) && v.length === 0)

const DURATION_BOUNDS = `must be between ${MIN_DURATION_SECONDS} second and ${MAX_DURATION_SECONDS / 86_400} days`

/**
 * Checks request inputs (Events API `flow_inputs`, or a submitted Slack modal) against the flow's rules. Every
 * problem is reported, each naming its field.
 */
export function validateFlowInputs(rules: FlowInputRules, inputs: Readonly<Record<string, unknown>>): InputsResult {
  const errors: FieldError[] = []
  const fields: Record<string, FieldValue> = {}
  const declared = new Map(rules.promptFields.map((f) => [f.name, f]))

  for (const key of Object.keys(inputs)) {
    if (!declared.has(key) && !(RESERVED_FIELDS as readonly string[]).includes(key)) {
      errors.push({ field: key, message: `is not a prompt field of this flow (fields: ${[...declared.keys()].join(', ') || 'none'})` })
    }
  }
  for (const field of rules.promptFields) {
    if (field.name === 'target_id') continue // the strategy's targets, checked below
    let raw = inputs[field.name]
    if (isMissing(raw) && field.default !== undefined && field.default !== '') raw = field.default
    if (isMissing(raw)) {
      if (field.required !== false) errors.push({ field: field.name, message: 'is required' })
      continue
    }
    const converted = convert(field, raw)
    if ('error' in converted) errors.push({ field: field.name, message: converted.error })
    else fields[field.name] = converted.value
  }

  let seconds: number | undefined
  if (rules.hasStrategy && rules.scheduleDeescalation && !errors.some((e) => e.field === 'duration')) {
    // Access ends after `duration` seconds. A flow without a duration field still needs one; a duration declared
    // with another type (`int` seconds, or a `string` such as "1h") is read as a duration, within the same bounds.
    const given = declared.has('duration') ? fields.duration : isMissing(inputs.duration) ? undefined : inputs.duration
    if (given === undefined) errors.push({ field: 'duration', message: 'is required' })
    else {
      const s = durationSeconds(given)
      if (s === undefined) errors.push({ field: 'duration', message: 'must be a duration in seconds, or like "30m", "1h", "1d"' })
      else if (s < MIN_DURATION_SECONDS || s > MAX_DURATION_SECONDS) errors.push({ field: 'duration', message: DURATION_BOUNDS })
      else fields.duration = seconds = s
    }
  }

  let target: ValidInputs['target']
  if (rules.hasStrategy) {
    const given = (['target_id', 'target_srn'] as const).filter((key) => !isMissing(inputs[key]))
    const [key] = given
    if (given.length > 1) errors.push({ field: 'target_id', message: 'give target_id or target_srn, not both' })
    else if (key === undefined) errors.push({ field: 'target_id', message: 'is required for an access flow (the target to grant)' })
    else if (typeof inputs[key] !== 'string') errors.push({ field: key, message: 'must be a string' })
    else target = { by: key === 'target_id' ? 'id' : 'srn', value: (inputs[key]).trim() }
  } else {
    for (const key of ['target_id', 'target_srn'] as const) {
      if (!isMissing(inputs[key])) errors.push({ field: key, message: 'this is an approval-only flow: it has no targets' })
    }
  }
  return errors.length ? { ok: false, errors } : { ok: true, value: { fields, durationSeconds: seconds, target } }
}
