/**
 * Attribute paths: where in a value something is. They are what Terraform's `AttributePath` carries (attribute name,
 * element key string, element key int), so diagnostics, `requires_replace` and plan checks all speak them.
 */

/** One step into a value. */
export type CtyPathStep =
  /** An object attribute (`.name`). Protocol: `attribute_name`. */
  | { readonly kind: 'attr'; readonly name: string }
  /** A map element (`["key"]`). Protocol: `element_key_string`. */
  | { readonly kind: 'key'; readonly key: string }
  /** A list or tuple element (`[0]`); for sets, the element's position in stored order. Protocol: `element_key_int`. */
  | { readonly kind: 'index'; readonly index: number }

/** A path from the root value; `[]` is the root itself. */
export type CtyPath = readonly CtyPathStep[]

// Steps are immutable, and the codecs and the plan pipeline make one per attribute and element they pass through
// (hundreds per RPC): the common ones are made once and shared. Attribute names come from schemas (bounded).
const MAX_SHARED_ATTRIBUTE_STEPS = 4096
const attributeSteps = new Map<string, CtyPathStep>()
const indexSteps: CtyPathStep[] = []

/** Step constructors, e.g. `[attrStep('params'), indexStep(0), attrStep('type')]`. */
export function attrStep(name: string): CtyPathStep {
  let step = attributeSteps.get(name)
  if (step) return step
  step = { kind: 'attr', name }
  if (attributeSteps.size < MAX_SHARED_ATTRIBUTE_STEPS) attributeSteps.set(name, step)
  return step
}
export function keyStep(key: string): CtyPathStep {
  return { kind: 'key', key }
}
export function indexStep(index: number): CtyPathStep {
  if (index < 64 && index >= 0) {
    const shared = indexSteps[index]
    if (shared) return shared
  }
  if (!Number.isSafeInteger(index) || index < 0) throw new RangeError(`invalid element index ${index}`)
  const step: CtyPathStep = { kind: 'index', index }
  if (index < 64) indexSteps[index] = step
  return step
}

/** Terraform-style rendering: `.params[0].prompt_field[1].type`, map keys as `["key"]`; the root is `""`. */
export function formatPath(path: CtyPath): string {
  let out = ''
  for (const step of path) {
    if (step.kind === 'attr') out += `.${step.name}`
    else if (step.kind === 'key') out += `[${JSON.stringify(step.key)}]`
    else out += `[${step.index}]`
  }
  return out
}

/** True when both paths have the same steps. */
export function pathEquals(a: CtyPath, b: CtyPath): boolean {
  if (a.length !== b.length) return false
  return a.every((step, i) => {
    const other = b[i]
    if (!other || other.kind !== step.kind) return false
    if (step.kind === 'attr') return other.kind === 'attr' && other.name === step.name
    if (step.kind === 'key') return other.kind === 'key' && other.key === step.key
    return other.kind === 'index' && other.index === step.index
  })
}

/**
 * Every failure in this module: a decode, encode, conformance or path error, with the path where it happened.
 * `message` is `"<path>: <reason>"` (just the reason at the root), e.g. `.params[0].prompt_field[1].type: expected
 * string, got int`. Turn it into an attribute diagnostic with `path` and `reason`.
 */
export class CtyError extends Error {
  override readonly name = 'CtyError'
  readonly path: CtyPath
  readonly reason: string

  constructor(path: CtyPath, reason: string) {
    super(path.length > 0 ? `${formatPath(path)}: ${reason}` : reason)
    this.path = [...path]
    this.reason = reason
  }
}
