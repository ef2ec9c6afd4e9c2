/**
 * The tfplugin6 messages the runtime reads and writes. Requests are {@link MessageInit}s of the generated types
 * (every field optional), so the transport's decoded requests and hand-built test requests both fit; responses are
 * the exact shapes the runtime returns, checked below to be valid {@link MessageInit}s of the generated responses.
 * Type-only imports: loading the runtime does not load the codecs.
 */
import type * as tf from '../proto/generated/tfplugin6.js'
import type { MessageInit } from '../proto/wire.js'

/** tfplugin6 `Diagnostic.Severity`. */
export const Severity = { ERROR: 1, WARNING: 2 } as const
/** tfplugin6 `StringKind`. */
export const StringKind = { PLAIN: 0, MARKDOWN: 1 } as const
/** tfplugin6 `Schema.NestedBlock.NestingMode` (the modes the runtime serves). */
export const NestingMode = { SINGLE: 1, LIST: 2 } as const

/** A `DynamicValue` as Terraform sends it: msgpack, or JSON (state upgrades, tests). */
export type DynamicValue = MessageInit<tf.DynamicValue>
/** A `DynamicValue` as the runtime answers: always msgpack, which can carry unknowns. */
export interface DynamicValueOut {
  msgpack: Uint8Array
}

export type ProtoAttributePathStep = { attribute_name: string } | { element_key_string: string } | { element_key_int: number }
export interface ProtoAttributePath {
  steps: ProtoAttributePathStep[]
}

export interface ProtoDiagnostic {
  severity: (typeof Severity)[keyof typeof Severity]
  summary: string
  detail: string
  attribute?: ProtoAttributePath
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
  description_kind: (typeof StringKind)[keyof typeof StringKind]
  deprecated: boolean
}

export interface ProtoBlock {
  version: number
  attributes: ProtoAttribute[]
  block_types: ProtoNestedBlock[]
  description: string
  description_kind: (typeof StringKind)[keyof typeof StringKind]
  deprecated: boolean
}

export interface ProtoNestedBlock {
  type_name: string
  block: ProtoBlock
  nesting: (typeof NestingMode)[keyof typeof NestingMode]
  min_items: number
  max_items: number
}

export interface ProtoSchema {
  version: number
  block: ProtoBlock
}

export interface ServerCapabilities {
  plan_destroy: boolean
  get_provider_schema_optional: boolean
  move_resource_state: boolean
}

// ---- requests ----------------------------------------------------------------------------------------------------

export type ValidateProviderConfigRequest = MessageInit<tf.ValidateProviderConfig_Request>
export type ConfigureProviderRequest = MessageInit<tf.ConfigureProvider_Request>
export type ValidateResourceConfigRequest = MessageInit<tf.ValidateResourceConfig_Request>
export type ValidateDataResourceConfigRequest = MessageInit<tf.ValidateDataResourceConfig_Request>
export type UpgradeResourceStateRequest = MessageInit<tf.UpgradeResourceState_Request>
export type ReadResourceRequest = MessageInit<tf.ReadResource_Request>
export type PlanResourceChangeRequest = MessageInit<tf.PlanResourceChange_Request>
export type ApplyResourceChangeRequest = MessageInit<tf.ApplyResourceChange_Request>
export type ImportResourceStateRequest = MessageInit<tf.ImportResourceState_Request>
export type ReadDataSourceRequest = MessageInit<tf.ReadDataSource_Request>

// ---- responses ---------------------------------------------------------------------------------------------------

export interface DiagnosticsResponse {
  diagnostics: ProtoDiagnostic[]
}

export interface GetProviderSchemaResponse extends DiagnosticsResponse {
  provider: ProtoSchema
  resource_schemas: Record<string, ProtoSchema>
  data_source_schemas: Record<string, ProtoSchema>
  server_capabilities: ServerCapabilities
}

export interface UpgradeResourceStateResponse extends DiagnosticsResponse {
  upgraded_state?: DynamicValueOut
}

export interface ReadResourceResponse extends DiagnosticsResponse {
  new_state?: DynamicValueOut
  private?: Uint8Array
}

export interface PlanResourceChangeResponse extends DiagnosticsResponse {
  planned_state?: DynamicValueOut
  requires_replace: ProtoAttributePath[]
  planned_private?: Uint8Array
}

export interface ApplyResourceChangeResponse extends DiagnosticsResponse {
  new_state?: DynamicValueOut
  private?: Uint8Array
}

export interface ImportedResource {
  type_name: string
  state: DynamicValueOut
  private: Uint8Array
}

export interface ImportResourceStateResponse extends DiagnosticsResponse {
  imported_resources: ImportedResource[]
}

export interface ReadDataSourceResponse extends DiagnosticsResponse {
  state?: DynamicValueOut
}

// ---- every response must be encodable as the generated message ---------------------------------------------------

type Fits<A, B> = [A] extends [B] ? true : never
/** Fails to compile when a response shape stops fitting its generated message. */
export type _ResponsesFitProto = [
  Fits<GetProviderSchemaResponse, MessageInit<tf.GetProviderSchema_Response>>,
  Fits<DiagnosticsResponse, MessageInit<tf.ValidateResourceConfig_Response>>,
  Fits<DiagnosticsResponse, MessageInit<tf.ValidateDataResourceConfig_Response>>,
  Fits<UpgradeResourceStateResponse, MessageInit<tf.UpgradeResourceState_Response>>,
  Fits<ReadResourceResponse, MessageInit<tf.ReadResource_Response>>,
  Fits<PlanResourceChangeResponse, MessageInit<tf.PlanResourceChange_Response>>,
  Fits<ApplyResourceChangeResponse, MessageInit<tf.ApplyResourceChange_Response>>,
  Fits<ImportResourceStateResponse, MessageInit<tf.ImportResourceState_Response>>,
  Fits<ReadDataSourceResponse, MessageInit<tf.ReadDataSource_Response>>,
]
const _check: _ResponsesFitProto = [true, true, true, true, true, true, true, true, true]
void _check
