/**
 * The parts of tfplugin6's messages the sym provider uses, structurally (snake_case as on the wire). The
 * transport's generated codecs carry the same fields; keeping these small lets the provider logic be tested
 * without a gRPC server.
 */

export interface DynamicValue {
  msgpack?: Uint8Array | null
  json?: Uint8Array | null
}

export const enum Severity {
  INVALID = 0,
  ERROR = 1,
  WARNING = 2,
}

export type AttributePathStep = { attribute_name: string } | { element_key_string: string } | { element_key_int: number }

export interface ProtoDiagnostic {
  severity: Severity
  summary: string
  detail: string
  attribute?: { steps: AttributePathStep[] }
}

export const enum StringKind {
  PLAIN = 0,
  MARKDOWN = 1,
}

export const enum NestingMode {
  INVALID = 0,
  SINGLE = 1,
  LIST = 2,
  SET = 3,
  MAP = 4,
  GROUP = 5,
}

export interface ProtoAttribute {
  name: string
  /** The attribute's cty type as JSON bytes. */
  type: Uint8Array
  description: string
  required: boolean
  optional: boolean
  computed: boolean
  sensitive: boolean
  description_kind: StringKind
  deprecated: boolean
}

export interface ProtoBlock {
  version: number
  attributes: ProtoAttribute[]
  block_types: ProtoNestedBlock[]
  description: string
  description_kind: StringKind
  deprecated: boolean
}

export interface ProtoNestedBlock {
  type_name: string
  block: ProtoBlock
  nesting: NestingMode
  min_items: number
  max_items: number
}

export interface ProtoSchema {
  version: number
  block: ProtoBlock
}

export interface GetProviderSchemaResponse {
  provider: ProtoSchema
  resource_schemas: Record<string, ProtoSchema>
  data_source_schemas: Record<string, ProtoSchema>
  diagnostics: ProtoDiagnostic[]
  server_capabilities: { plan_destroy: boolean; get_provider_schema_optional: boolean; move_resource_state: boolean }
}

export interface ValidateConfigRequest {
  type_name?: string
  config?: DynamicValue | null
}

export interface ConfigureProviderRequest {
  terraform_version?: string
  config?: DynamicValue | null
}

export interface UpgradeResourceStateRequest {
  type_name: string
  version: number
  raw_state?: { json?: Uint8Array | null } | null
}

export interface ReadResourceRequest {
  type_name: string
  current_state?: DynamicValue | null
  private?: Uint8Array | null
}

export interface PlanResourceChangeRequest {
  type_name: string
  prior_state?: DynamicValue | null
  proposed_new_state?: DynamicValue | null
  config?: DynamicValue | null
  prior_private?: Uint8Array | null
}

export interface ApplyResourceChangeRequest {
  type_name: string
  prior_state?: DynamicValue | null
  planned_state?: DynamicValue | null
  config?: DynamicValue | null
  planned_private?: Uint8Array | null
}

export interface ImportResourceStateRequest {
  type_name: string
  id: string
}

export interface ReadDataSourceRequest {
  type_name: string
  config?: DynamicValue | null
}
