/**
 * The plan pipeline and the apply check: the protocol invariants of PlanResourceChange and ApplyResourceChange,
 * with terraform-plugin-framework's semantics (`internal/fwserver/server_planresourcechange.go`).
 *
 * Planning starts from Terraform's proposed new state (the configuration, with computed attributes the
 * configuration leaves null taken from the stored object) and then:
 * 1. plans the default of every attribute the configuration leaves null;
 * 2. when the object is new or the plan differs from the stored object, marks every computed attribute the
 *    configuration leaves null and that has no default as unknown ("known after apply");
 * 3. runs each attribute's plan modifiers in order (which may restore known values or require replacement);
 * 4. runs the resource's `modifyPlan`;
 * 5. when some attribute requires replacement, plans the new object as a create (Terraform destroys the old one
 *    and plans the new one from the configuration alone), keeping the replacement paths;
 * 6. checks the result as Terraform will, so a provider bug gets a precise diagnostic.
 */
import {
  attrStep,
  CtyValue,
  ctyEquals,
  formatPath,
  indexStep,
  isNull,
  isWhollyKnown,
  keyStep,
  typeEquals,
  type CtyPath,
  type CtyValue as Value,
} from '../cty/index.js'
import { ownList, ownObject } from '../cty/values.js'
import { errorDiagnostic, type Diagnostic, type Diagnostics } from './diagnostics.js'
import type { Resource } from './resource.js'
import type { AttributeSchema, BlockSchema, NestedBlockSchema } from './schema.js'

/** An attribute of a known object: null inside null, unknown inside unknown. */
function child(v: Value, name: string): Value {
  if (v.kind === 'object') return v.attributes.get(name) ?? CtyValue.null
  return v.kind === 'unknown' ? CtyValue.unknown() : CtyValue.null
}

/** An element of a list (blocks are paired by index, as Terraform proposes them). */
function element(v: Value, i: number): Value {
  if (v.kind === 'list') return v.elements[i] ?? CtyValue.null
  return v.kind === 'unknown' ? CtyValue.unknown() : CtyValue.null
}

/** A block's attributes and nested blocks as entry lists, made once per block (several passes per RPC walk them). */
interface BlockEntries {
  readonly attributes: ReadonlyArray<readonly [string, AttributeSchema]>
  readonly blocks: ReadonlyArray<readonly [string, NestedBlockSchema]>
}

const blockEntriesCache = new WeakMap<BlockSchema, BlockEntries>()

function blockEntries(block: BlockSchema): BlockEntries {
  let entries = blockEntriesCache.get(block)
  if (!entries) blockEntriesCache.set(block, (entries = { attributes: Object.entries(block.attributes ?? {}), blocks: Object.entries(block.blocks ?? {}) }))
  return entries
}

type Predicate = (a: AttributeSchema) => boolean

const relevantEntriesCache = new WeakMap<BlockSchema, Map<Predicate, BlockEntries>>()

/**
 * The attributes of `block` for which `relevant` holds, and the nested blocks with such an attribute somewhere
 * inside, made once per block and predicate: a pass then neither tests every attribute nor walks subtrees it
 * cannot change (plan modifiers sit on a few top-level attributes; the nested blocks of a flow have none).
 */
function relevantEntries(block: BlockSchema, relevant: Predicate): BlockEntries {
  let byPredicate = relevantEntriesCache.get(block)
  if (!byPredicate) relevantEntriesCache.set(block, (byPredicate = new Map()))
  let entries = byPredicate.get(relevant)
  if (!entries) {
    const all = blockEntries(block)
    entries = {
      attributes: all.attributes.filter(([, a]) => relevant(a)),
      blocks: all.blocks.filter(([, b]) => {
        const inner = relevantEntries(b.block, relevant)
        return inner.attributes.length > 0 || inner.blocks.length > 0
      }),
    }
    byPredicate.set(relevant, entries)
  }
  return entries
}

/**
 * Rebuilds `plan` (an object of `block`'s type) with `fn` applied to every attribute for which `relevant` holds,
 * nested blocks included, element by element. Null and unknown objects and blocks are left as they are, and so is
 * every object in which nothing changed (no copy). `relevant` is one of this module's predicates: results are
 * cached by it (see {@link relevantEntries}).
 */
function mapAttributes(
  block: BlockSchema,
  plan: Value,
  config: Value,
  state: Value,
  path: CtyPath,
  relevant: Predicate,
  fn: (a: AttributeSchema, plan: Value, config: Value, state: Value, path: () => CtyPath) => Value,
): Value {
  if (plan.kind !== 'object') return plan
  const { attributes, blocks } = relevantEntries(block, relevant)
  let out: Map<string, Value> | undefined
  const set = (name: string, value: Value): void => {
    if (value !== plan.attributes.get(name)) (out ??= new Map(plan.attributes)).set(name, value)
  }
  // Index loops, no destructuring: these passes run in every PlanResourceChange of a short-lived process, mostly
  // before V8 optimises them, where iterating and destructuring arrays cost more than the work itself.
  for (let i = 0; i < attributes.length; i++) {
    const name = attributes[i]![0]
    // The path is built only when asked for (by plan modifiers): most attributes never need it.
    set(name, fn(attributes[i]![1], child(plan, name), child(config, name), child(state, name), () => [...path, attrStep(name)]))
  }
  for (let i = 0; i < blocks.length; i++) {
    const name = blocks[i]![0]
    const b = blocks[i]![1]
    const p = child(plan, name)
    if (p.kind !== 'object' && p.kind !== 'list') continue
    const c = child(config, name)
    const s = child(state, name)
    const at = [...path, attrStep(name)]
    if (b.nesting === 'single') set(name, mapAttributes(b.block, p, c, s, at, relevant, fn))
    else if (p.kind === 'list') {
      let elements: Value[] | undefined
      for (let j = 0; j < p.elements.length; j++) {
        const e = p.elements[j]!
        const mapped = mapAttributes(b.block, e, element(c, j), element(s, j), [...at, indexStep(j)], relevant, fn)
        if (mapped !== e) (elements ??= [...p.elements])[j] = mapped
      }
      if (elements) set(name, ownList(elements))
    }
  }
  return out ? ownObject(out) : plan
}

/** Step 1: the default of every attribute the configuration leaves null. */
export function applyDefaults(block: BlockSchema, plan: Value, config: Value): Value {
  return mapAttributes(block, plan, config, CtyValue.null, [], hasDefault, (a, p, c) => (isNull(c) ? a.default! : p))
}

const hasDefault = (a: AttributeSchema): boolean => a.default !== undefined
const computedWithoutDefault = (a: AttributeSchema): boolean => Boolean(a.computed) && a.default === undefined
const hasPlanModifiers = (a: AttributeSchema): boolean => (a.planModifiers?.length ?? 0) > 0
const defaultOrComputed = (a: AttributeSchema): boolean => hasDefault(a) || computedWithoutDefault(a)

/** Step 2: computed attributes the configuration leaves null, without a default, become unknown. */
export function markComputedUnknown(block: BlockSchema, plan: Value, config: Value): Value {
  return mapAttributes(block, plan, config, CtyValue.null, [], computedWithoutDefault, (_a, p, c) => (isNull(c) ? CtyValue.unknown() : p))
}

/** Step 3: every attribute's plan modifiers, in order. Returns the plan and the paths that require replacement. */
export function runPlanModifiers(block: BlockSchema, plan: Value, config: Value, state: Value, diagnostics: Diagnostics): { plan: Value; requiresReplace: CtyPath[] } {
  const replace: CtyPath[] = []
  const resource = { config, plan, state }
  const planned = mapAttributes(block, plan, config, state, [], hasPlanModifiers, (a, p, c, s, pathOf) => {
    let value = p
    const path = pathOf()
    for (const modifier of a.planModifiers ?? []) {
      const r = modifier.modify({ path, config: c, plan: value, state: s, resource, diagnostics })
      if (!r) continue
      if (r.plan !== undefined) value = r.plan
      if (r.requiresReplace) replace.push(path)
    }
    return value
  })
  return { plan: planned, requiresReplace: replace }
}

/** Sorted by rendered path, without duplicates (as terraform-plugin-framework's `NormaliseRequiresReplace`). */
export function normalisePaths(paths: readonly CtyPath[]): CtyPath[] {
  const byKey = new Map(paths.map((p) => [formatPath(p), p]))
  return [...byKey.keys()].sort().map((k) => byKey.get(k)!)
}

export interface PlanInput {
  readonly typeName: string
  /** The stored object; null on create. */
  readonly prior: Value
  /** Terraform's proposed new state; null for a destroy. */
  readonly proposed: Value
  readonly config: Value
  readonly providerName: string
  readonly diagnostics: Diagnostics
}

export interface PlanOutput {
  readonly planned: Value
  readonly requiresReplace: CtyPath[]
}

/** Steps 1–4 for one prior state. */
async function planOnce(resource: Resource, input: PlanInput, proposed: Value, prior: Value): Promise<PlanOutput> {
  const { block } = resource.schema
  const { config, diagnostics, typeName } = input
  let planned: Value
  if (isNull(prior)) {
    // Steps 1 and 2 in one pass: they change disjoint attributes (with a default; computed without one).
    planned = mapAttributes(block, proposed, config, CtyValue.null, [], defaultOrComputed, (a, p, c) => (isNull(c) ? (a.default ?? CtyValue.unknown()) : p))
  } else {
    planned = applyDefaults(block, proposed, config)
    if (!ctyEquals(planned, prior)) planned = markComputedUnknown(block, planned, config)
  }
  const modified = runPlanModifiers(block, planned, config, prior, diagnostics)
  planned = modified.plan
  const replace = modified.requiresReplace
  diagnostics.throwIfErrors()
  if (resource.modifyPlan) {
    const r = await resource.modifyPlan({ typeName, config, plan: planned, state: prior, diagnostics })
    diagnostics.throwIfErrors()
    if (r?.plan !== undefined) planned = r.plan
    replace.push(...(r?.requiresReplace ?? []))
  }
  return { planned, requiresReplace: replace }
}

/**
 * The planned state and replacement paths for a PlanResourceChange. Throws a `DiagnosticsError` for errors of
 * the resource's hooks and for a plan Terraform would reject.
 */
export async function planResource(resource: Resource, input: PlanInput): Promise<PlanOutput> {
  const { prior, proposed, config, diagnostics, typeName } = input
  if (isNull(proposed)) {
    // A destroy (only with the plan_destroy capability): nothing to plan, but the resource may warn.
    const r = await resource.modifyPlan?.({ typeName, config, plan: CtyValue.null, state: prior, diagnostics })
    diagnostics.throwIfErrors()
    if (r?.plan !== undefined && !isNull(r.plan)) {
      diagnostics.error('Provider produced invalid plan', `${typeName}: the plan of a destroy must stay null. This is a bug in the ${input.providerName} provider; please report it.`)
      diagnostics.throwIfErrors()
    }
    return { planned: CtyValue.null, requiresReplace: [] }
  }
  const first = await planOnce(resource, input, proposed, prior)
  let planned = first.planned
  const requiresReplace = isNull(prior) ? [] : normalisePaths(first.requiresReplace)
  // Terraform destroys the object and plans its successor from the configuration alone (the proposed new state of
  // a create is the configuration), so the planned state of a replacement is that of a create.
  if (requiresReplace.length) planned = (await planOnce(resource, input, config, CtyValue.null)).planned
  diagnostics.push(...planProblems(resource.schema.block, planned, config, prior, typeName, input.providerName))
  diagnostics.throwIfErrors()
  return { planned, requiresReplace }
}

// ---- checks --------------------------------------------------------------------------------------------------------

const bugNote = (providerName: string) => `This is a bug in the ${providerName} provider; please report it.`

const entriesOf = (v: Value): ReadonlyMap<string, Value> => (v.kind === 'map' ? v.entries : v.kind === 'object' ? v.attributes : new Map())

/** A value for messages; sensitive ones are never shown. */
export function renderValue(v: Value, sensitive = false): string {
  if (sensitive && v.kind !== 'null' && v.kind !== 'unknown') return '(sensitive value)'
  switch (v.kind) {
    case 'null':
      return 'null'
    case 'unknown':
      return '(known after apply)'
    case 'string':
      return JSON.stringify(v.value)
    case 'number':
      return v.value.decimal
    case 'bool':
      return String(v.value)
    case 'list':
    case 'set':
    case 'tuple':
      return `[${v.elements.map((e) => renderValue(e)).join(', ')}]`
    case 'map':
    case 'object':
      return `{${[...entriesOf(v)].map(([k, e]) => `${JSON.stringify(k)}: ${renderValue(e)}`).join(', ')}}`
    case 'dynamic':
      return renderValue(v.value, sensitive)
  }
}

/**
 * What Terraform would reject in a plan (its `AssertPlanValid`): a planned value that is neither the configured
 * value, nor the stored one in place of an equivalent configured one, nor a computed attribute's value the
 * configuration leaves to the provider; and a list block planned as null.
 */
export function planProblems(block: BlockSchema, planned: Value, config: Value, prior: Value, typeName: string, providerName: string): Diagnostic[] {
  const out: Diagnostic[] = []
  const walk = (b: BlockSchema, p: Value, c: Value, s: Value, path: CtyPath): void => {
    if (p.kind !== 'object') return
    const { attributes, blocks } = blockEntries(b)
    // Index loops, no destructuring, the stored value looked up only when needed (see mapAttributes).
    for (let i = 0; i < attributes.length; i++) {
      const name = attributes[i]![0]
      const pv = child(p, name)
      const cv = child(c, name)
      if (ctyEquals(pv, cv)) continue
      const a = attributes[i]![1]
      const sv = child(s, name)
      if (ctyEquals(pv, sv) && !isNull(sv) && !isNull(cv)) continue
      if (a.computed && (!a.optional || isNull(cv))) continue
      const at = [...path, attrStep(name)]
      const what = isNull(cv)
        ? `planned ${renderValue(pv, a.sensitive)} for an attribute that is not computed and not configured`
        : `planned ${renderValue(pv, a.sensitive)}, which does not match the configuration value ${renderValue(cv, a.sensitive)}${isNull(sv) ? '' : ` nor the stored value ${renderValue(sv, a.sensitive)}`}`
      out.push(errorDiagnostic('Provider produced invalid plan', `The ${providerName} provider ${what} in ${typeName}${formatPath(at)}. ${bugNote(providerName)}`, at))
    }
    for (let i = 0; i < blocks.length; i++) {
      const name = blocks[i]![0]
      const nb = blocks[i]![1]
      const pv = child(p, name)
      if (nb.nesting === 'single') walk(nb.block, pv, child(c, name), child(s, name), [...path, attrStep(name)])
      else if (pv.kind === 'null') {
        const at = [...path, attrStep(name)]
        out.push(errorDiagnostic('Provider produced invalid plan', `The ${providerName} provider planned null for the list of blocks ${typeName}${formatPath(at)}; no blocks must be planned as an empty list. ${bugNote(providerName)}`, at))
      } else if (pv.kind === 'list') {
        const cv = child(c, name)
        const sv = child(s, name)
        const at = [...path, attrStep(name)]
        for (let j = 0; j < pv.elements.length; j++) walk(nb.block, pv.elements[j]!, element(cv, j), element(sv, j), [...at, indexStep(j)])
      }
    }
  }
  walk(block, planned, config, prior, [])
  return out
}

/**
 * Where an apply result breaks its plan (Terraform's "Provider produced inconsistent result after apply", but
 * naming the attribute): a known planned value that changed, an unknown one still unknown, or one that breaks the
 * plan's refinements (not null, string prefix). Collections are compared element by element, so the path is the
 * innermost one that differs.
 */
export function applyInconsistencies(block: BlockSchema, planned: Value, actual: Value, typeName: string, providerName: string): Diagnostic[] {
  const out: Diagnostic[] = []
  const report = (path: CtyPath, p: Value, a: Value, sensitive: boolean, why?: string): void => {
    const what = why ?? `was ${renderValue(p, sensitive)}, but now ${renderValue(a, sensitive)}`
    out.push(
      errorDiagnostic(
        'Provider produced inconsistent result after apply',
        `When applying changes to ${typeName}, the ${providerName} provider produced an unexpected new value: ${formatPath(path)} ${what}. ${bugNote(providerName)}`,
        path,
      ),
    )
  }
  const value = (p: Value, a: Value, path: CtyPath, sensitive: boolean): void => {
    if (p.kind === 'unknown') {
      if (!isWhollyKnown(a)) return report(path, p, a, sensitive, 'is still unknown after apply')
      const r = p.refinements
      if (r?.notNull && isNull(a)) return report(path, p, a, sensitive, 'was planned as not null, but is null')
      if (r?.stringPrefix !== undefined && a.kind === 'string' && !a.value.startsWith(r.stringPrefix)) {
        return report(path, p, a, sensitive, `was planned to start with ${JSON.stringify(r.stringPrefix)}, but now ${renderValue(a, sensitive)}`)
      }
      return
    }
    if (p.kind !== a.kind) return report(path, p, a, sensitive)
    // Collections are compared part by part, so the path names the innermost difference.
    switch (p.kind) {
      case 'list':
      case 'tuple': {
        const other = (a as typeof p).elements
        if (other.length !== p.elements.length) return report(path, p, a, sensitive)
        p.elements.forEach((e, i) => value(e, other[i]!, [...path, indexStep(i)], sensitive))
        return
      }
      case 'map':
      case 'object': {
        const mine = entriesOf(p)
        const theirs = entriesOf(a)
        if (mine.size !== theirs.size || [...mine.keys()].some((k) => !theirs.has(k))) return report(path, p, a, sensitive)
        for (const [k, e] of mine) value(e, theirs.get(k)!, [...path, p.kind === 'map' ? keyStep(k) : attrStep(k)], sensitive)
        return
      }
      case 'set':
        // Unknown elements may turn out equal to others and collapse: then only the result must be known.
        if (isWhollyKnown(p) ? !ctyEquals(p, a) : !isWhollyKnown(a)) report(path, p, a, sensitive)
        return
      case 'dynamic': {
        const other = a as typeof p
        if (!typeEquals(p.type, other.type)) return report(path, p, a, sensitive)
        return value(p.value, other.value, path, sensitive)
      }
      default:
        if (!ctyEquals(p, a)) report(path, p, a, sensitive)
    }
  }
  const walk = (b: BlockSchema, p: Value, a: Value, path: CtyPath): void => {
    if (p.kind !== 'object' || a.kind !== 'object') return value(p, a, path, false)
    for (const [name, attr] of Object.entries(b.attributes ?? {})) value(child(p, name), child(a, name), [...path, attrStep(name)], Boolean(attr.sensitive))
    for (const [name, nb] of Object.entries(b.blocks ?? {})) {
      const [pv, av, at] = [child(p, name), child(a, name), [...path, attrStep(name)]]
      if (nb.nesting === 'single') walk(nb.block, pv, av, at)
      else if (pv.kind === 'list' && av.kind === 'list' && pv.elements.length === av.elements.length) pv.elements.forEach((e, i) => walk(nb.block, e, av.elements[i]!, [...at, indexStep(i)]))
      else value(pv, av, at, false)
    }
  }
  walk(block, planned, actual, [])
  if (!out.length && !isWhollyKnown(actual)) report([], planned, actual, false, 'still contains unknown values')
  return out
}
