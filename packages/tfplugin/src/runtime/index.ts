/**
 * `@opensym/tfplugin/runtime` — the resource runtime: resources and data sources written against cty values and a
 * schema, served over tfplugin6 by a {@link ResourceServer} that owns the protocol invariants.
 *
 * - Schemas ({@link Schema}): attributes with types, modes, defaults and {@link PlanModifier}s; nested blocks.
 *   {@link schemaType} gives the cty type of an object, {@link protoSchema} its GetProviderSchema form.
 * - Plan modifiers, as terraform-plugin-framework's: {@link useStateForUnknown}, {@link requiresReplace},
 *   {@link requiresReplaceIf}, and {@link useStateIf} for values the remote side normalises.
 * - {@link Resource} / {@link DataSource}: what a provider implements (validate, create/read/update/delete, import,
 *   state upgraders, optional `modifyPlan`).
 * - {@link ResourceServer}: Validate*, UpgradeResourceState, ReadResource, PlanResourceChange (defaults →
 *   computed unknown → plan modifiers → `modifyPlan` → replacement planned as a create → checks),
 *   ApplyResourceChange (result checked against the plan, naming the attribute), ImportResourceState,
 *   ReadDataSource, GetProviderSchema. Everything thrown becomes diagnostics.
 * - Diagnostics ({@link Diagnostic}, {@link DiagnosticsError}) carry cty paths, shown by Terraform on the
 *   configuration line.
 */
export {
  Diagnostics,
  DiagnosticsError,
  errorDiagnostic,
  thrownDiagnostics,
  toProtoDiagnostic,
  toProtoPath,
  warningDiagnostic,
  type Diagnostic,
} from './diagnostics.js'
export { requiresReplace, requiresReplaceIf, useStateForUnknown, useStateIf, type PlanModifier, type PlanModifierRequest, type PlanModifierResult } from './plan-modifiers.js'
export { applyDefaults, applyInconsistencies, markComputedUnknown, planProblems, planResource, renderValue, runPlanModifiers, type PlanInput, type PlanOutput } from './plan.js'
export type {
  Awaitable,
  CreateRequest,
  DataSource,
  DataSourceReadRequest,
  DeleteRequest,
  ImportRequest,
  ModifyPlanRequest,
  ModifyPlanResult,
  ReadRequest,
  Resource,
  StateUpgrader,
  UpdateRequest,
  ValidateRequest,
} from './resource.js'
export { blockObjectType, fillNullBlocks, nullListBlocks, protoSchema, schemaProblems, schemaType, type AttributeSchema, type BlockSchema, type NestedBlockSchema, type Schema } from './schema.js'
export { decodeDynamicValue, encodeDynamicValue, guard, guardAsync, ResourceServer, type ResourceServerOptions } from './server.js'
export * from './protocol.js'
