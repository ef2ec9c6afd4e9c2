/**
 * Reading configuration for a run: a flow's params with the schema's defaults, the target a request names among
 * its strategy's targets, `field_bindings`, and the snapshot a run keeps of all of it.
 */
import type { Prisma } from '@opensym/db'
import { parseTargetRef, type FieldError, type FieldValue, type PromptField } from '@opensym/domain'
import { applyDefaults, resources } from '@opensym/provider-schema'
import type { RunSnapshot } from './snapshot.js'
import type { StrategySnapshot, TargetSnapshot } from './strategy.js'

/** A flow's `params` as the engine reads them: stored as sent by Terraform, with the schema's defaults applied. */
export interface FlowParams {
  readonly allow_revoke: boolean
  readonly schedule_deescalation: boolean
  readonly include_decision_message: boolean
  readonly allow_guest_interaction: boolean
  /** Undefined: every source. */
  readonly allowed_sources: readonly string[] | undefined
  readonly prompt_fields: readonly PromptField[]
  readonly additional_header_text?: string
}

export function flowParams(stored: unknown): FlowParams {
  const params = (stored && typeof stored === 'object' && !Array.isArray(stored) ? stored : {}) as Record<string, unknown>
  const withDefaults = applyDefaults(resources.flow, { params }).params as Record<string, unknown>
  const sources = withDefaults.allowed_sources
  return {
    ...withDefaults,
    allow_revoke: withDefaults.allow_revoke !== false,
    schedule_deescalation: withDefaults.schedule_deescalation !== false,
    include_decision_message: withDefaults.include_decision_message === true,
    allow_guest_interaction: withDefaults.allow_guest_interaction === true,
    allowed_sources: Array.isArray(sources) ? sources.filter((s): s is string => typeof s === 'string') : undefined,
    prompt_fields: Array.isArray(withDefaults.prompt_fields) ? (withDefaults.prompt_fields as PromptField[]) : [],
  }
}

/** The flow as the request step loads it. */
export type FlowForRequest = Prisma.FlowGetPayload<{
  include: {
    environment: true
    strategy: { include: { integration: true; targets: { include: { target: true } } } }
  }
}>

export const FLOW_FOR_REQUEST = {
  environment: true,
  strategy: { include: { integration: true, targets: { include: { target: true }, orderBy: { position: 'asc' } } } },
} as const satisfies Prisma.FlowInclude

export type TargetRow = NonNullable<FlowForRequest['strategy']>['targets'][number]['target']

const asRecord = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {})

/**
 * The strategy target a request names by `target_id` or `target_srn`; a target of another strategy, or of another
 * org, is refused naming the input.
 */
export function resolveTarget(flow: FlowForRequest, orgSlug: string, ref: { by: 'id' | 'srn'; value: string }): { target: TargetRow } | { error: FieldError } {
  const targets = flow.strategy?.targets.map((t) => t.target) ?? []
  const field = ref.by === 'id' ? 'target_id' : 'target_srn'
  const list = targets.map((t) => `${t.slug} (${t.id})`).join(', ') || 'none'
  const notOurs = { error: { field, message: `is not a target of strategy "${flow.strategy?.slug ?? ''}" (its targets: ${list})` } }
  if (ref.by === 'id') {
    const target = targets.find((t) => t.id === ref.value.toLowerCase())
    return target ? { target } : notOurs
  }
  const parsed = parseTargetRef(ref.value)
  if (!parsed.ok) return { error: { field, message: parsed.reason } }
  const { org, type, slug, id } = parsed.value
  if (org !== orgSlug) return { error: { field, message: `names org "${org}", but this request is for org "${orgSlug}"` } }
  const target = targets.find((t) => t.type === type && t.slug === slug && (id === null || t.id === id))
  return target ? { target } : notOurs
}

/**
 * A target's settings with its `field_bindings` filled from the request's fields: a dynamic target (e.g. a GitHub
 * repo named by the `repo_name` prompt field) takes the setting from the field of the same name.
 */
export function bindTargetSettings(target: TargetRow, fields: Readonly<Record<string, FieldValue>>): { settings: Record<string, string> } | { errors: FieldError[] } {
  const settings: Record<string, string> = {}
  for (const [k, v] of Object.entries(asRecord(target.settings))) settings[k] = typeof v === 'string' ? v : JSON.stringify(v)
  const errors: FieldError[] = []
  for (const name of target.fieldBindings) {
    const value = fields[name]
    if (value === undefined) errors.push({ field: name, message: `is required: target "${target.slug}" takes its setting "${name}" from it` })
    else settings[name] = Array.isArray(value) ? value.join(',') : String(value)
  }
  return errors.length ? { errors } : { settings }
}

export function snapshotOf(orgSlug: string, flow: FlowForRequest, params: FlowParams, target: TargetRow | undefined, targetSettings: Record<string, string>): RunSnapshot {
  const s = flow.strategy
  const strategy: StrategySnapshot | null = s
    ? {
        id: s.id,
        type: s.type,
        slug: s.slug,
        integration: s.integration
          ? { id: s.integration.id, type: s.integration.type, externalId: s.integration.externalId, settings: asRecord(s.integration.settings) }
          : null,
        settings: asRecord(s.settings),
        ...(s.type === 'custom' && s.implementation ? { implementation: s.implementation } : {}),
      }
    : null
  const targetSnapshot: TargetSnapshot | null = target ? { id: target.id, type: target.type, slug: target.slug, label: target.label, settings: targetSettings } : null
  const vars: Record<string, string> = {}
  for (const [k, v] of Object.entries(asRecord(flow.vars))) vars[k] = typeof v === 'string' ? v : JSON.stringify(v)
  return {
    orgSlug,
    flow: {
      id: flow.id,
      slug: flow.slug,
      version: flow.version,
      label: flow.label,
      environmentId: flow.environmentId,
      environmentSlug: flow.environment.slug,
      params: params as unknown as Record<string, unknown>,
      vars,
      implementation: flow.implementation,
    },
    strategy: strategy,
    target: targetSnapshot,
  }
}

/** The snapshot stored on a run; runs always carry one (the engine writes it at request time). */
export function readSnapshot(stored: unknown): RunSnapshot {
  const s = asRecord(stored)
  if (!('flow' in s)) throw new Error('the run has no snapshot')
  return s as unknown as RunSnapshot
}
