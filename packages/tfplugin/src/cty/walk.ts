/**
 * Walking values by {@link CtyPath}: read a nested value (plan checks, diagnostics), replace one (plan modifiers
 * marking an attribute unknown), or visit every nested value (find unknowns, collect paths).
 */
import { CtyError, type CtyPath, type CtyPathStep, attrStep, formatPath, indexStep, keyStep } from './path.js'
import { type CtyType, shortTypeName } from './types.js'
import { type CtyValue, CtyValue as V, describeValue } from './values.js'

/** A nested value together with its type (the concrete type when reached through a dynamic slot). */
export interface CtyValueAtPath {
  readonly value: CtyValue
  readonly type: CtyType
}

/** Looks through a dynamic wrapper: the value underneath and its concrete type. */
function unwrap(value: CtyValue, type: CtyType): CtyValueAtPath {
  let v = value
  let t = type
  while (t.kind === 'dynamic' && v.kind === 'dynamic') {
    t = v.type
    v = v.value
  }
  return { value: v, type: t }
}

function childType(type: CtyType, step: CtyPathStep, path: CtyPath): CtyType {
  const bad = (): never => {
    const what = step.kind === 'attr' ? `attribute ${JSON.stringify(step.name)}` : step.kind === 'key' ? `key ${JSON.stringify(step.key)}` : `index ${step.index}`
    throw new CtyError(path, `cannot take ${what} of ${shortTypeName(type)}`)
  }
  switch (type.kind) {
    case 'object':
      if (step.kind !== 'attr') return bad()
      return type.attributes.get(step.name) ?? bad()
    case 'map':
      return step.kind === 'key' ? type.element : bad()
    case 'list':
    case 'set':
      return step.kind === 'index' ? type.element : bad()
    case 'tuple':
      return step.kind === 'index' ? (type.elements[step.index] ?? bad()) : bad()
    default:
      return bad()
  }
}

/**
 * The value at `path`, or `undefined` when the path leads to a map key or list/set/tuple index that does not exist.
 * Stepping into a null or unknown value gives a null or (unrefined) unknown child, like terraform-plugin-framework.
 * Throws {@link CtyError} when a step does not fit the type (an attribute of a list, an index of a map…).
 */
export function getAtPath(root: CtyValue, type: CtyType, path: CtyPath): CtyValueAtPath | undefined {
  let cur = unwrap(root, type)
  for (let i = 0; i < path.length; i++) {
    const step = path[i] as CtyPathStep
    const here = path.slice(0, i)
    const t = childType(cur.type, step, here)
    const v = cur.value
    let next: CtyValue | undefined
    if (v.kind === 'null') next = V.null
    else if (v.kind === 'unknown') next = V.unknown()
    else if (v.kind === 'object' && step.kind === 'attr') next = v.attributes.get(step.name)
    else if (v.kind === 'map' && step.kind === 'key') next = v.entries.get(step.key)
    else if ((v.kind === 'list' || v.kind === 'set' || v.kind === 'tuple') && step.kind === 'index') next = v.elements[step.index]
    else throw new CtyError(here, `value does not match its type ${shortTypeName(cur.type)}: ${describeValue(v)}`)
    if (next === undefined) return undefined
    cur = unwrap(next, t)
  }
  return cur
}

/**
 * A copy of `root` with the value at `path` replaced (a missing map key is added). Unchanged parts are shared.
 * Throws {@link CtyError} when the path does not exist or passes through a null or unknown value.
 */
export function setAtPath(root: CtyValue, type: CtyType, path: CtyPath, value: CtyValue): CtyValue {
  const go = (v: CtyValue, t: CtyType, i: number): CtyValue => {
    if (i === path.length) return value
    if (t.kind === 'dynamic' && v.kind === 'dynamic') return V.dynamic(v.type, go(v.value, v.type, i))
    const step = path[i] as CtyPathStep
    const here = path.slice(0, i)
    const ct = childType(t, step, here)
    const missing = (): never => {
      throw new CtyError(path.slice(0, i + 1), `cannot set ${formatPath(path)}: no such element`)
    }
    switch (v.kind) {
      case 'null':
      case 'unknown':
        throw new CtyError(here, `cannot set ${formatPath(path)}: the value here is ${v.kind}`)
      case 'object': {
        if (step.kind !== 'attr') return missing()
        const child = v.attributes.get(step.name) ?? missing()
        return V.object(new Map(v.attributes).set(step.name, go(child, ct, i + 1)))
      }
      case 'map': {
        if (step.kind !== 'key') return missing()
        const child = v.entries.get(step.key)
        const replaced = child === undefined && i + 1 === path.length ? value : go(child ?? missing(), ct, i + 1)
        return V.map(new Map(v.entries).set(step.key, replaced))
      }
      case 'list':
      case 'set':
      case 'tuple': {
        if (step.kind !== 'index') return missing()
        const child = v.elements[step.index] ?? missing()
        const elements = [...v.elements]
        elements[step.index] = go(child, ct, i + 1)
        return v.kind === 'list' ? V.list(elements) : v.kind === 'set' ? V.set(elements) : V.tuple(elements)
      }
      default:
        throw new CtyError(here, `value does not match its type ${shortTypeName(t)}: ${describeValue(v)}`)
    }
  }
  return go(root, type, 0)
}

/**
 * Visits `root` and every nested value depth-first, parents before children, with its path and type. Return `false`
 * from the visitor to skip a value's children. Values under a dynamic slot are visited with their concrete type;
 * set elements get positional index steps.
 */
export function walkValue(root: CtyValue, type: CtyType, visit: (value: CtyValue, type: CtyType, path: CtyPath) => boolean | void): void {
  const path: CtyPathStep[] = []
  const go = (value: CtyValue, t: CtyType): void => {
    if (visit(value, t, [...path]) === false) return
    const { value: v, type: ut } = unwrap(value, t)
    const child = (step: CtyPathStep, cv: CtyValue): void => {
      const ct = childType(ut, step, path)
      path.push(step)
      go(cv, ct)
      path.pop()
    }
    switch (v.kind) {
      case 'object':
        for (const [name, cv] of v.attributes) child(attrStep(name), cv)
        return
      case 'map':
        for (const [key, cv] of v.entries) child(keyStep(key), cv)
        return
      case 'list':
      case 'set':
      case 'tuple':
        v.elements.forEach((cv, i) => child(indexStep(i), cv))
        return
      default:
        return
    }
  }
  go(root, type)
}
