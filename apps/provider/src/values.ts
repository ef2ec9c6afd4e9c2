/**
 * cty ↔ the provider's plain values, and the runtime schemas of Sym's resources. Resource code works on plain
 * objects keyed by Terraform attribute names; unknown values are the `UNKNOWN` marker. The cty types and the
 * runtime schemas (Terraform's view plus defaults and plan modifiers) come from the same resource definitions.
 */
import {
  fullDescription,
  type AttributeDef,
  type BlockDef,
  type DataSourceDef,
  type PlanModifierName,
  type ProviderConfigDef,
  type ResourceDef,
} from '@opensym/provider-schema'
import { CtyNumber, CtyType, CtyValue, type CtyValue as Value } from '@opensym/tfplugin/cty'
import {
  blockObjectType,
  requiresReplace,
  useStateForUnknown,
  useStateIf,
  type AttributeSchema,
  type BlockSchema,
  type PlanModifier,
  type Schema,
} from '@opensym/tfplugin/runtime'
import { UNKNOWN, type TfConfigObject, type TfConfigValue } from './resources.js'

type Attributes = Readonly<Record<string, AttributeDef>>
type Blocks = Readonly<Record<string, BlockDef>> | undefined

export function attributeType(a: AttributeDef): CtyType {
  switch (a.type) {
    case 'string':
      return CtyType.string
    case 'bool':
      return CtyType.bool
    case 'number':
      return CtyType.number
    case 'map':
      return CtyType.map(CtyType.string)
    case 'list':
      return CtyType.list(CtyType.string)
  }
}

/** The object type of a schema block: attributes, plus each nested block as a list of objects. */
export function blockType(attributes: Attributes, blocks: Blocks): CtyType {
  return blockObjectType(blockSchema(attributes, blocks))
}

/** The DSL's plan modifiers (`planModifiers: ['useStateForUnknown']`) as runtime modifiers. */
const PLAN_MODIFIERS: Record<PlanModifierName, PlanModifier> = { useStateForUnknown }

/**
 * Slugs are stored lower-cased by the API: a configured slug that differs from the stored one only in case is
 * planned as stored, so `name = "Main"` shows no diff against `main`.
 */
export const keepSlugCase = useStateIf(
  'Keeps the stored value when the configured one differs only in case (the API stores slugs lower-cased).',
  (plan, state) => plan.kind === 'string' && state.kind === 'string' && plan.value.toLowerCase() === state.value.toLowerCase(),
)

/**
 * An attribute as the runtime plans it. Modes and descriptions are those of `terraform providers schema -json`
 * (`derive/terraform.ts`: attributes with a default are optional + computed); plan modifiers run slug case keeping
 * first, then the declared ones, then requires-replace (after use-state-for-unknown, as it must).
 */
export function attributeSchema(a: AttributeDef): AttributeSchema {
  const type = attributeType(a)
  const planModifiers = [...(a.slug ? [keepSlugCase] : []), ...(a.planModifiers ?? []).map((m) => PLAN_MODIFIERS[m]), ...(a.requiresReplace ? [requiresReplace] : [])]
  return {
    type,
    description: fullDescription(a),
    required: a.mode === 'required',
    optional: a.mode === 'optional' || a.mode === 'optional_computed',
    computed: a.mode === 'computed' || a.mode === 'optional_computed' || a.default !== undefined,
    sensitive: Boolean(a.sensitive),
    ...(a.default !== undefined ? { default: fromPlain(structuredClone(a.default), type) } : {}),
    ...(planModifiers.length ? { planModifiers } : {}),
  }
}

export function blockSchema(attributes: Attributes, blocks: Blocks, description?: string): BlockSchema {
  return {
    ...(description ? { description } : {}),
    attributes: Object.fromEntries(Object.entries(attributes).map(([name, a]) => [name, attributeSchema(a)])),
    blocks: Object.fromEntries(
      Object.entries(blocks ?? {}).map(([name, b]) => [
        name,
        {
          nesting: b.nesting,
          block: blockSchema(b.attributes, b.blocks, b.description),
          ...(b.minItems !== undefined ? { minItems: b.minItems } : {}),
          ...(b.maxItems !== undefined ? { maxItems: b.maxItems } : {}),
        },
      ]),
    ),
  }
}

export const resourceSchema = (r: ResourceDef): Schema => ({ version: r.schemaVersion, block: blockSchema(r.attributes, r.blocks, r.description) })
export const dataSourceSchema = (d: DataSourceDef): Schema => ({ version: 0, block: blockSchema(d.attributes, undefined, d.description) })
export const providerConfigSchema = (p: ProviderConfigDef): Schema => ({ version: 0, block: blockSchema(p.attributes, undefined, p.description) })

/** A cty value as a plain value; unknown anywhere becomes `UNKNOWN` there. */
export function toPlain(v: Value): TfConfigValue {
  switch (v.kind) {
    case 'null':
      return null
    case 'unknown':
      return UNKNOWN
    case 'string':
    case 'bool':
      return v.value
    case 'number':
      return v.value.toNumberExact() ?? Number(v.value.decimal)
    case 'list':
    case 'set':
    case 'tuple':
      return v.elements.map(toPlain)
    case 'map':
      return plainObject(v.entries)
    case 'object':
      return plainObject(v.attributes)
    case 'dynamic':
      return toPlain(v.value)
  }
}

/** Null-prototype objects, so a map key `__proto__` stays data. */
function plainObject(entries: ReadonlyMap<string, Value>): TfConfigObject {
  const out = Object.create(null) as TfConfigObject
  for (const [k, x] of entries) out[k] = toPlain(x)
  return out
}

/** A plain value as cty, shaped by `type` (every object attribute present; missing ones are null). */
export function fromPlain(v: TfConfigValue | undefined, type: CtyType): Value {
  if (v === undefined || v === null) return CtyValue.null
  if (v === UNKNOWN) return CtyValue.unknown()
  switch (type.kind) {
    case 'string':
      return CtyValue.string(typeof v === 'string' ? v : JSON.stringify(v))
    case 'bool':
      return CtyValue.bool(v === true)
    case 'number':
      return CtyValue.number(CtyNumber.from(v as number))
    case 'list':
      return CtyValue.list((v as TfConfigValue[]).map((x) => fromPlain(x, type.element)))
    case 'set':
      return CtyValue.set((v as TfConfigValue[]).map((x) => fromPlain(x, type.element)))
    case 'map':
      return CtyValue.map(Object.entries(v as TfConfigObject).map(([k, x]) => [k, fromPlain(x, type.element)] as const))
    case 'object':
      return CtyValue.object([...type.attributes].map(([k, t]) => [k, fromPlain((v as TfConfigObject)[k], t)] as const))
    default:
      throw new Error(`unsupported type ${type.kind} in a sym resource`)
  }
}
