/**
 * The provider's schema in the shape `terraform providers schema -json` prints, derived from the definitions.
 * The provider (issue 3) serves the same blocks over the plugin protocol.
 */
import { dataSources, resourceList } from '../catalog.js'
import type { AttributeDef, BlockDef, DataSourceDef, ResourceDef } from '../dsl.js'
import { providerConfig } from '../provider-config.js'

export const PROVIDER_ADDRESS = 'registry.terraform.io/symopsio/sym'

export type TerraformType = 'string' | 'bool' | 'number' | ['map', 'string'] | ['list', 'string']

export interface TerraformAttribute {
  type: TerraformType
  description: string
  description_kind: 'markdown'
  required?: true
  optional?: true
  computed?: true
  sensitive?: true
}

export interface TerraformBlock {
  attributes?: Record<string, TerraformAttribute>
  block_types?: Record<string, TerraformBlockType>
  description?: string
  description_kind: 'markdown'
}

export interface TerraformBlockType {
  nesting_mode: 'list' | 'single'
  block: TerraformBlock
  min_items?: number
  max_items?: number
}

export interface TerraformSchema {
  version: number
  block: TerraformBlock
}

export interface ProviderSchemasDocument {
  format_version: '1.0'
  provider_schemas: Record<
    string,
    {
      provider: TerraformSchema
      resource_schemas: Record<string, TerraformSchema>
      data_source_schemas: Record<string, TerraformSchema>
    }
  >
}

export function terraformType(a: AttributeDef): TerraformType {
  switch (a.type) {
    case 'map':
      return ['map', 'string']
    case 'list':
      return ['list', 'string']
    default:
      return a.type
  }
}

/** The description Terraform shows, with allowed values, defaults and replacement on change spelled out. */
export function fullDescription(a: AttributeDef): string {
  let d = a.description
  const values = a.allowedValues ?? a.elementAllowedValues
  if (values) d += ` One of: ${values.map((v) => `\`${v}\``).join(', ')}.`
  if (a.default !== undefined && typeof a.default !== 'object') d += ` Defaults to \`${String(a.default)}\`.`
  if (a.requiresReplace) d += ' Changing this forces a new resource to be created.'
  return d
}

function terraformAttribute(a: AttributeDef): TerraformAttribute {
  const out: TerraformAttribute = { type: terraformType(a), description: fullDescription(a), description_kind: 'markdown' }
  if (a.mode === 'required') out.required = true
  if (a.mode === 'optional' || a.mode === 'optional_computed') out.optional = true
  // Attributes with a default are filled by the provider when unset, so Terraform must allow a provider value.
  if (a.mode === 'computed' || a.mode === 'optional_computed' || a.default !== undefined) out.computed = true
  if (a.sensitive) out.sensitive = true
  return out
}

function terraformBlock(
  attributes: Readonly<Record<string, AttributeDef>>,
  blocks: Readonly<Record<string, BlockDef>> | undefined,
  description?: string,
): TerraformBlock {
  const block: TerraformBlock = { description_kind: 'markdown' }
  if (description) block.description = description
  const attrs = Object.entries(attributes)
  if (attrs.length) block.attributes = Object.fromEntries(attrs.map(([n, a]) => [n, terraformAttribute(a)]))
  const nested = Object.entries(blocks ?? {})
  if (nested.length) {
    block.block_types = Object.fromEntries(
      nested.map(([n, b]) => {
        const t: TerraformBlockType = { nesting_mode: b.nesting, block: terraformBlock(b.attributes, b.blocks, b.description) }
        if (b.minItems !== undefined) t.min_items = b.minItems
        if (b.maxItems !== undefined) t.max_items = b.maxItems
        return [n, t]
      }),
    )
  }
  return block
}

export const resourceSchema = (r: ResourceDef): TerraformSchema => ({
  version: r.schemaVersion,
  block: terraformBlock(r.attributes, r.blocks, r.description),
})

export const dataSourceSchema = (d: DataSourceDef): TerraformSchema => ({
  version: 0,
  block: terraformBlock(d.attributes, undefined, d.description),
})

/** The whole provider, as `terraform providers schema -json` prints it. */
export function providerSchemasDocument(): ProviderSchemasDocument {
  return {
    format_version: '1.0',
    provider_schemas: {
      [PROVIDER_ADDRESS]: {
        provider: { version: 0, block: terraformBlock(providerConfig.attributes, undefined, providerConfig.description) },
        resource_schemas: Object.fromEntries(resourceList.map((r) => [r.typeName, resourceSchema(r)])),
        data_source_schemas: Object.fromEntries(dataSources.map((d) => [d.typeName, dataSourceSchema(d)])),
      },
    },
  }
}
