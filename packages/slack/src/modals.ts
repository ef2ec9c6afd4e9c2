/**
 * The `/sym` modals: flow selection and the request form (reference §5, §3.8), and reading a submitted form back
 * into Events-API-style `flow_inputs`. Pure functions; the widget for each prompt field type:
 *
 * | type | widget |
 * |---|---|
 * | `string` | text input (multi-line for `reason`); a select with `allowed_values`; an external select with `prefetch` |
 * | `int` | number input; a select with `allowed_values` |
 * | `bool` | one checkbox (always optional: an unticked box is `false`) |
 * | `duration` | a select of `allowed_values` (`30m`, `1h`…); else a text input taking `3600` or `1h` |
 * | `str_list`, `int_list` | a multi-select of `allowed_values`; else a multi-line text input, one value per line |
 * | `slack_user`, `slack_user_list` | user picker, multi-user picker |
 *
 * Every input's block id is `field:<name>` (the target is `target_id`), so validation errors map back to blocks.
 */
import type { PromptField } from '@opensym/domain'
import { context, LIMITS, option, plain, section, truncate, type Block, type ModalView, type SelectOption } from './blocks.js'

export const CALLBACK_REQUEST = 'sym_request'
export const CALLBACK_SELECT_FLOW = 'sym_select_flow'
export const SELECT_FLOW_BLOCK = 'flow'
export const TARGET_BLOCK = 'target_id'
export const VALUE_ACTION = 'value'
/** Offered when an access flow schedules de-escalation but declares no duration field. */
export const DEFAULT_DURATIONS = ['30m', '1h', '4h', '1d'] as const

/** A prompt field with the form-only attributes the domain's rules do not need. */
export interface ModalField extends PromptField {
  readonly visible?: boolean
  readonly prefetch?: boolean
}

export interface ModalFlow {
  readonly id: string
  readonly slug: string
  readonly label: string | null
  readonly environmentSlug: string
  readonly hasStrategy: boolean
  readonly scheduleDeescalation: boolean
  readonly additionalHeaderText?: string
  readonly fields: readonly ModalField[]
  /** The strategy's targets, in order. */
  readonly targets: ReadonlyArray<{ readonly id: string; readonly label: string }>
}

export interface FlowChoice {
  readonly id: string
  readonly slug: string
  readonly label: string | null
  readonly environmentSlug: string
}

/** What a modal carries between open and submit (`private_metadata`). */
export interface ModalMetadata {
  /** The flow id (request modal). */
  readonly flowId?: string
  /** The channel `/sym` was typed in: the run's source channel. */
  readonly channelId?: string | null
}

export const fieldBlockId = (name: string) => (name === 'target_id' ? TARGET_BLOCK : `field:${name}`)
/** A field's element `action_id`: its block's id, since an action_id must be unique within a view. */
export const fieldActionId = fieldBlockId
export const flowTitle = (f: { slug: string; label: string | null }) => f.label ?? f.slug

export function encodeMetadata(m: ModalMetadata): string {
  return truncate(JSON.stringify(m), LIMITS.privateMetadata)
}

export function decodeMetadata(text: string | undefined): ModalMetadata {
  try {
    const v: unknown = JSON.parse(text ?? '')
    if (!v || typeof v !== 'object' || Array.isArray(v)) return {}
    const o = v as Record<string, unknown>
    return {
      ...(typeof o.flowId === 'string' ? { flowId: o.flowId } : {}),
      ...(typeof o.channelId === 'string' ? { channelId: o.channelId } : {}),
    }
  } catch {
    return {}
  }
}

/** The flow-selection modal; `note` explains why it opened instead of a flow (an unknown name). */
export function flowSelectionModal(flows: readonly FlowChoice[], meta: ModalMetadata, note?: string): ModalView {
  const blocks: Block[] = []
  if (note) blocks.push(section(`:warning: ${note}`, 'note'))
  if (flows.length === 0) {
    blocks.push(section('There are no flows you can run here.'))
    return { type: 'modal', callback_id: CALLBACK_SELECT_FLOW, title: plain('Request access', LIMITS.modalTitle), close: plain('Close', 24), private_metadata: encodeMetadata(meta), blocks }
  }
  const multiEnv = new Set(flows.map((f) => f.environmentSlug)).size > 1
  blocks.push({
    type: 'input',
    block_id: SELECT_FLOW_BLOCK,
    label: plain('Flow', LIMITS.label),
    element: {
      type: 'static_select',
      action_id: VALUE_ACTION,
      placeholder: plain('Choose a flow', 150),
      options: flows.slice(0, LIMITS.options).map((f) => option(multiEnv ? `${flowTitle(f)} (${f.environmentSlug})` : flowTitle(f), f.id)),
    },
  })
  return {
    type: 'modal',
    callback_id: CALLBACK_SELECT_FLOW,
    title: plain('Request access', LIMITS.modalTitle),
    submit: plain('Next', 24),
    close: plain('Cancel', 24),
    private_metadata: encodeMetadata(meta),
    blocks,
  }
}

const optionsOf = (values: readonly string[]): SelectOption[] => values.slice(0, LIMITS.options).map((v) => option(v, v))
const initialOf = (options: readonly SelectOption[], value: string | undefined) => (value === undefined ? undefined : options.find((o) => o.value === value))

/** The element for one prompt field. */
export function fieldElement(field: ModalField): Record<string, unknown> {
  const allowed = field.allowed_values?.length ? field.allowed_values : undefined
  const dflt = field.default !== undefined && field.default !== '' ? field.default : undefined
  const base = { action_id: fieldActionId(field.name) }
  const select = (values: readonly string[]) => {
    const options = optionsOf(values)
    const initial = initialOf(options, dflt)
    return { ...base, type: 'static_select', options, ...(initial ? { initial_option: initial } : {}) }
  }
  switch (field.type) {
    case 'slack_user':
      return { ...base, type: 'users_select' }
    case 'slack_user_list':
      return { ...base, type: 'multi_users_select' }
    case 'bool': {
      const box = option(field.label ?? field.name, 'true')
      return { ...base, type: 'checkboxes', options: [box], ...(dflt === 'true' ? { initial_options: [box] } : {}) }
    }
    case 'duration':
      return allowed ? select(allowed) : { ...base, type: 'plain_text_input', placeholder: plain('e.g. 30m, 1h, 1d', 150), ...(dflt ? { initial_value: dflt } : {}) }
    case 'str_list':
    case 'int_list':
      return allowed
        ? { ...base, type: 'multi_static_select', options: optionsOf(allowed) }
        : { ...base, type: 'plain_text_input', multiline: true, placeholder: plain('One value per line', 150) }
    case 'int':
      if (allowed) return select(allowed)
      return { ...base, type: 'number_input', is_decimal_allowed: false, ...(dflt ? { initial_value: dflt } : {}) }
    default:
      if (field.prefetch) return { ...base, type: 'external_select', min_query_length: 0, placeholder: plain('Search…', 150) }
      if (allowed) return select(allowed)
      return { ...base, type: 'plain_text_input', multiline: field.name === 'reason', ...(dflt ? { initial_value: dflt } : {}) }
  }
}

/** The request modal of one flow. */
export function requestModal(flow: ModalFlow, meta: ModalMetadata): ModalView {
  const title = flowTitle(flow)
  const blocks: Block[] = [section(`*${title}*\nRequest access with the form below.`, 'header')]
  if (flow.additionalHeaderText) blocks.push(section(flow.additionalHeaderText, 'additional_header'))
  blocks.push(context(`Flow \`${flow.slug}\` · environment \`${flow.environmentSlug}\``))
  if (flow.hasStrategy) {
    blocks.push({
      type: 'input',
      block_id: TARGET_BLOCK,
      label: plain('Target', LIMITS.label),
      element: { type: 'static_select', action_id: fieldActionId('target_id'), placeholder: plain('Choose what to access', 150), options: flow.targets.slice(0, LIMITS.options).map((t) => option(t.label, t.id)) },
    })
  }
  const declaresDuration = flow.fields.some((f) => f.name === 'duration')
  for (const field of flow.fields) {
    if (field.name === 'target_id' || field.visible === false) continue
    blocks.push({
      type: 'input',
      block_id: fieldBlockId(field.name),
      label: plain(field.label ?? field.name, LIMITS.label),
      // A checkbox cannot be required in Slack: unticked means false.
      optional: field.required === false || field.type === 'bool',
      element: fieldElement(field),
    })
  }
  if (flow.hasStrategy && flow.scheduleDeescalation && !declaresDuration) {
    blocks.push({ type: 'input', block_id: fieldBlockId('duration'), label: plain('Duration', LIMITS.label), optional: false, element: fieldElement({ name: 'duration', type: 'duration', allowed_values: DEFAULT_DURATIONS }) })
  }
  return {
    type: 'modal',
    callback_id: CALLBACK_REQUEST,
    title: plain(title, LIMITS.modalTitle),
    submit: plain('Request', 24),
    close: plain('Cancel', 24),
    private_metadata: encodeMetadata({ ...meta, flowId: flow.id }),
    blocks: blocks.slice(0, LIMITS.modalBlocks),
  }
}

/** One input's state as Slack sends it in `view.state.values[block][action]`. */
export interface InputState {
  readonly type: string
  readonly value?: string | null
  readonly selected_option?: { readonly value: string } | null
  readonly selected_options?: ReadonlyArray<{ readonly value: string }>
  readonly selected_user?: string | null
  readonly selected_users?: readonly string[]
}

export type StateValues = Readonly<Record<string, Readonly<Record<string, InputState>>>>

const splitList = (text: string) => text.split(/[\n,]/).map((s) => s.trim()).filter((s) => s !== '')

/** An input's raw value: a string, a list of strings, a boolean, or undefined when empty. */
function rawValue(s: InputState | undefined, field: ModalField | undefined): unknown {
  if (!s) return undefined
  switch (s.type) {
    case 'checkboxes':
      return (s.selected_options ?? []).some((o) => o.value === 'true')
    case 'static_select':
    case 'external_select':
      return s.selected_option?.value ?? undefined
    case 'multi_static_select':
    case 'multi_external_select':
      return (s.selected_options ?? []).map((o) => o.value)
    case 'users_select':
      return s.selected_user ?? undefined
    case 'multi_users_select':
      return s.selected_users ?? []
    default: {
      const text = s.value?.trim() ?? ''
      if (text === '') return undefined
      return field && (field.type === 'str_list' || field.type === 'int_list') ? splitList(text) : text
    }
  }
}

/** The state of an input block's one element, whatever its action_id (views opened before it changed included). */
export function inputState(values: StateValues | undefined, blockId: string): InputState | undefined {
  const block = values?.[blockId]
  return block ? Object.values(block)[0] : undefined
}

/**
 * The submitted form as `flow_inputs`: field values by name (hidden fields left out, so their defaults apply),
 * `target_id`, `duration`. Type checks are the domain's (`validateFlowInputs`), with errors mapped back by block id.
 */
export function readRequestForm(flow: ModalFlow, values: StateValues): Record<string, unknown> {
  const inputs: Record<string, unknown> = {}
  const read = (name: string, field?: ModalField) => {
    const v = rawValue(inputState(values, fieldBlockId(name)), field)
    if (v !== undefined) inputs[name] = v
  }
  if (flow.hasStrategy) read('target_id')
  for (const field of flow.fields) if (field.name !== 'target_id' && field.visible !== false) read(field.name, field)
  if (!flow.fields.some((f) => f.name === 'duration')) read('duration')
  return inputs
}

/**
 * `response_action: errors` for field errors (`reason`, `flow_inputs.reason`, `target_srn`…): each on its input
 * block; errors of fields without a block (hidden ones) go on the first input so they are still seen.
 */
export function modalErrors(view: Pick<ModalView, 'blocks'>, errors: ReadonlyArray<{ field: string; message: string }>): Record<string, string> {
  const inputs = view.blocks.filter((b) => b.type === 'input' && b.block_id).map((b) => b.block_id!)
  const out: Record<string, string> = {}
  for (const e of errors) {
    const name = e.field.replace(/^flow_inputs\./, '').replace(/^target_srn$/, 'target_id')
    const id = inputs.includes(fieldBlockId(name)) ? fieldBlockId(name) : inputs[0]
    if (!id) continue
    const text = id === fieldBlockId(name) ? e.message : `${name}: ${e.message}`
    out[id] = truncate(out[id] ? `${out[id]}; ${text}` : text, 2000)
  }
  return out
}

