/**
 * Attribute plan modifiers, as in terraform-plugin-framework (`resource/schema/planmodifier`, `stringplanmodifier`):
 * small rules that adjust one attribute's planned value or ask for the object to be replaced. Declared on
 * attributes (`AttributeSchema.planModifiers`), run in order by the plan pipeline on every create and update plan,
 * after defaults and after computed attributes were marked unknown.
 *
 * Order matters: on an attribute that is computed and `requiresReplace`, put `useStateForUnknown` first, or the
 * "known after apply" marking of any update would read as a change and replace the object.
 */
import { ctyEquals, isKnown, isNull, isUnknown, type CtyPath, type CtyValue } from '../cty/index.js'
import type { Diagnostics } from './diagnostics.js'

export interface PlanModifierRequest {
  /** The attribute's path in the object. */
  readonly path: CtyPath
  /** The attribute's configured value (null when unset, possibly unknown). */
  readonly config: CtyValue
  /** Its planned value so far (after defaults, unknown marking and earlier modifiers). */
  readonly plan: CtyValue
  /** Its stored value: null on create, and for a block element that did not exist before. */
  readonly state: CtyValue
  /** The whole object: `state` is null on create; `plan` is the plan before attribute modifiers ran. */
  readonly resource: { readonly config: CtyValue; readonly plan: CtyValue; readonly state: CtyValue }
  readonly diagnostics: Diagnostics
}

export interface PlanModifierResult {
  /** The new planned value (left out: unchanged). */
  readonly plan?: CtyValue
  /** Changing this attribute destroys and re-creates the object. */
  readonly requiresReplace?: boolean
}

export interface PlanModifier {
  /** What the modifier does, in a sentence (for documentation and logs). */
  readonly description: string
  /** Pure and synchronous: plan modifiers run in the plan walk and must not do I/O. */
  modify(req: PlanModifierRequest): PlanModifierResult | void
}

/**
 * For computed values that never change once set (an `id`): when the object exists and its plan would otherwise
 * show "(known after apply)", plan the stored value. Does nothing on create, when nothing is stored, when the
 * planned value is already known, or when the configuration value is unknown.
 */
export const useStateForUnknown: PlanModifier = {
  description: 'Once set, the value of this attribute in state will not change.',
  modify(req) {
    if (isNull(req.resource.state) || isNull(req.state)) return
    if (!isUnknown(req.plan) || isUnknown(req.config)) return
    return { plan: req.state }
  },
}

/**
 * Replaces the object when the planned value differs from the stored one and `condition` agrees. Never on create
 * or destroy. An unknown planned value counts as a change.
 */
export function requiresReplaceIf(description: string, condition: (req: PlanModifierRequest) => boolean): PlanModifier {
  return {
    description,
    modify(req) {
      if (isNull(req.resource.state) || isNull(req.resource.plan)) return
      if (ctyEquals(req.plan, req.state)) return
      return condition(req) ? { requiresReplace: true } : undefined
    },
  }
}

/** Replaces the object whenever the value changes (SDKv2's `ForceNew`). */
export const requiresReplace: PlanModifier = requiresReplaceIf('If the value of this attribute changes, Terraform will destroy and recreate the resource.', () => true)

/**
 * Keeps the stored value when the planned one means the same (`equivalent`), so a value the API normalises (a
 * case-insensitive name, a reformatted document) does not show as a change. Both values are known and differ when
 * `equivalent` is called. Terraform accepts a planned value equal to the stored one in place of the configured one.
 */
export function useStateIf(description: string, equivalent: (plan: CtyValue, state: CtyValue) => boolean): PlanModifier {
  return {
    description,
    modify(req) {
      if (isNull(req.resource.state) || !isKnown(req.plan) || !isKnown(req.state) || ctyEquals(req.plan, req.state)) return
      return equivalent(req.plan, req.state) ? { plan: req.state } : undefined
    },
  }
}
