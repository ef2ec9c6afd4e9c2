/**
 * Schemas as the runtime uses them: what Terraform sees (types, required/optional/computed, descriptions, nested
 * blocks) plus what only the provider needs to plan (defaults and plan modifiers). The cty object type of a
 * resource and its `GetProviderSchema` form are both derived from one {@link Schema}.
 */
import { assertConforms, attrStep, CtyError, CtyType, CtyValue, encodeTypeJson, indexStep, type CtyPath } from '../cty/index.js'
import type { PlanModifier } from './plan-modifiers.js'
import { NestingMode, StringKind, type ProtoBlock, type ProtoSchema } from './protocol.js'

/**
 * One attribute. The valid combinations are Terraform's: `required`; `optional`; `computed` (read-only, set by
 * the provider); `optional` + `computed` (the provider fills it when the configuration leaves it null).
 */
export interface AttributeSchema {
  readonly type: CtyType
  /** Markdown. */
  readonly description?: string
  readonly required?: boolean
  readonly optional?: boolean
  readonly computed?: boolean
  /** Terraform hides the value in plans and output; the runtime keeps it out of its own messages. */
  readonly sensitive?: boolean
  readonly deprecated?: boolean
  /**
   * Planned when the configuration leaves the attribute null, on create and on update alike. Needs `optional` +
   * `computed`, as in terraform-plugin-framework.
   */
  readonly default?: CtyValue
  /**
   * Run in order whenever an object is planned (create or update), after defaults and after computed attributes
   * were marked unknown. See `useStateForUnknown`, `requiresReplace`, `requiresReplaceIf`, `useStateIf`.
   */
  readonly planModifiers?: readonly PlanModifier[]
}

export interface BlockSchema {
  /** Markdown. */
  readonly description?: string
  readonly deprecated?: boolean
  readonly attributes?: Readonly<Record<string, AttributeSchema>>
  readonly blocks?: Readonly<Record<string, NestedBlockSchema>>
}

/**
 * A nested block: `list` (a list of objects, `[]` when absent, never null) or `single` (one object or null).
 * Set, map and group nesting are not supported.
 */
export interface NestedBlockSchema {
  readonly nesting: 'list' | 'single'
  readonly block: BlockSchema
  readonly minItems?: number
  readonly maxItems?: number
}

/** A resource, data source or provider configuration schema. `version` is the resource's state schema version. */
export interface Schema {
  readonly version: number
  readonly block: BlockSchema
}

/** The cty object type of a block: its attributes, plus each nested block as a list of objects or an object. */
export function blockObjectType(block: BlockSchema): CtyType {
  const types: Record<string, CtyType> = {}
  for (const [name, a] of Object.entries(block.attributes ?? {})) types[name] = a.type
  for (const [name, b] of Object.entries(block.blocks ?? {})) {
    const inner = blockObjectType(b.block)
    types[name] = b.nesting === 'list' ? CtyType.list(inner) : inner
  }
  return CtyType.object(types)
}

/** The cty type of a whole object of this schema (what `DynamicValue`s of the resource hold). */
export const schemaType = (schema: Schema): CtyType => blockObjectType(schema.block)

/**
 * The value with every null list block of a known object replaced by `[]` (Terraform represents "no blocks" as
 * an empty list, never null). Used on upgraded state, where a block added to the schema is absent from the JSON.
 */
export function fillNullBlocks(block: BlockSchema, value: CtyValue): CtyValue {
  if (value.kind !== 'object' || !block.blocks) return value
  const out = new Map(value.attributes)
  for (const [name, b] of Object.entries(block.blocks)) {
    const v = value.attributes.get(name) ?? CtyValue.null
    if (b.nesting === 'single') out.set(name, fillNullBlocks(b.block, v))
    else if (v.kind === 'null') out.set(name, CtyValue.list([]))
    else if (v.kind === 'list') out.set(name, CtyValue.list(v.elements.map((e) => fillNullBlocks(b.block, e))))
  }
  return CtyValue.object(out)
}

/** Paths of list blocks that are null in a value (Terraform rejects them; they must be `[]`). */
export function nullListBlocks(block: BlockSchema, value: CtyValue, path: CtyPath = []): CtyPath[] {
  if (value.kind !== 'object') return []
  const out: CtyPath[] = []
  for (const [name, b] of Object.entries(block.blocks ?? {})) {
    const v = value.attributes.get(name) ?? CtyValue.null
    const at = [...path, attrStep(name)]
    if (b.nesting === 'single') out.push(...nullListBlocks(b.block, v, at))
    else if (v.kind === 'null') out.push(at)
    else if (v.kind === 'list') v.elements.forEach((e, i) => out.push(...nullListBlocks(b.block, e, [...at, indexStep(i)])))
  }
  return out
}

const utf8 = new TextEncoder()

function protoBlock(block: BlockSchema): ProtoBlock {
  return {
    version: 0,
    attributes: Object.entries(block.attributes ?? {}).map(([name, a]) => ({
      name,
      type: utf8.encode(encodeTypeJson(a.type)),
      description: a.description ?? '',
      required: Boolean(a.required),
      optional: Boolean(a.optional),
      computed: Boolean(a.computed),
      sensitive: Boolean(a.sensitive),
      description_kind: StringKind.MARKDOWN,
      deprecated: Boolean(a.deprecated),
    })),
    block_types: Object.entries(block.blocks ?? {}).map(([type_name, b]) => ({
      type_name,
      block: protoBlock(b.block),
      nesting: b.nesting === 'single' ? NestingMode.SINGLE : NestingMode.LIST,
      min_items: b.minItems ?? 0,
      max_items: b.maxItems ?? 0,
    })),
    description: block.description ?? '',
    description_kind: StringKind.MARKDOWN,
    deprecated: Boolean(block.deprecated),
  }
}

/** The schema as `GetProviderSchema` carries it (descriptions are markdown). */
export const protoSchema = (schema: Schema): ProtoSchema => ({ version: schema.version, block: protoBlock(schema.block) })

/**
 * Mistakes in a schema, as messages naming the attribute (`.params.allow_revoke: …`); empty when it is valid.
 * Checked when a server is created, so a broken schema fails the provider's tests rather than a user's plan.
 */
export function schemaProblems(schema: Schema): string[] {
  const problems: string[] = []
  const walk = (block: BlockSchema, at: string): void => {
    for (const [name, a] of Object.entries(block.attributes ?? {})) {
      const where = `${at}.${name}`
      const modes = [a.required && 'required', a.optional && 'optional', a.computed && 'computed'].filter(Boolean).join(' + ')
      if (!['required', 'optional', 'computed', 'optional + computed'].includes(modes)) {
        problems.push(`${where}: must be required, optional, computed or optional + computed, not ${modes || 'none of them'}`)
      }
      if (a.default !== undefined) {
        if (!a.computed) problems.push(`${where}: an attribute with a default must be computed (and optional)`)
        try {
          assertConforms(a.default, a.type)
        } catch (e) {
          if (!(e instanceof CtyError)) throw e
          problems.push(`${where}: the default does not fit the type: ${e.message}`)
        }
      }
    }
    for (const [name, b] of Object.entries(block.blocks ?? {})) {
      if (block.attributes && name in block.attributes) problems.push(`${at}.${name}: both an attribute and a block`)
      walk(b.block, `${at}.${name}`)
    }
  }
  walk(schema.block, '')
  return problems
}
