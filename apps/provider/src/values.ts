/**
 * cty ↔ the provider's plain values. Resource code works on plain objects keyed by Terraform attribute names;
 * unknown values are the `UNKNOWN` marker. The cty types come from the same resource definitions.
 */
import type { AttributeDef, BlockDef } from '@opensym/provider-schema'
import { CtyNumber, CtyType, CtyValue, type CtyValue as Value } from '@opensym/tfplugin/cty'
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
  const types: Record<string, CtyType> = {}
  for (const [name, a] of Object.entries(attributes)) types[name] = attributeType(a)
  for (const [name, b] of Object.entries(blocks ?? {})) types[name] = CtyType.list(blockType(b.attributes, b.blocks))
  return CtyType.object(types)
}

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
