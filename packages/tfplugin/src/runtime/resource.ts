/**
 * What a provider implements per resource type and data source. The runtime ({@link ResourceServer}) owns the
 * protocol: it decodes and encodes values, plans (defaults, unknowns, plan modifiers, replacement), checks apply
 * results against the plan, upgrades stored state, and turns everything thrown into diagnostics. Resource code
 * only sees cty values of its schema's type (`schemaType(schema)`) and does the remote work.
 *
 * Every request carries `diagnostics` for warnings (an error added there fails the call like a thrown
 * `DiagnosticsError`). Handlers fail by throwing; a `DiagnosticsError` with attribute paths lands on the right
 * line of configuration.
 */
import type { CtyPath, CtyValue } from '../cty/index.js'
import type { Diagnostics } from './diagnostics.js'
import type { Schema } from './schema.js'

export type Awaitable<T> = T | Promise<T>

interface RequestBase {
  /** The resource or data source type, e.g. `sym_flow`. */
  readonly typeName: string
  readonly diagnostics: Diagnostics
}

export interface ValidateRequest extends RequestBase {
  /** The configuration; values that depend on other objects are unknown. */
  readonly config: CtyValue
}

export interface ModifyPlanRequest extends RequestBase {
  readonly config: CtyValue
  /** The plan after defaults, unknown marking and attribute plan modifiers; null for a destroy. */
  readonly plan: CtyValue
  /** The stored object; null on create. */
  readonly state: CtyValue
}

export interface ModifyPlanResult {
  /** The new plan (left out: unchanged). */
  readonly plan?: CtyValue
  /** Attributes whose change replaces the object, in addition to those of attribute plan modifiers. */
  readonly requiresReplace?: readonly CtyPath[]
}

export interface CreateRequest extends RequestBase {
  /** The planned object: known values must come back unchanged, unknown ones must become known. */
  readonly plan: CtyValue
  readonly config: CtyValue
}

export interface ReadRequest extends RequestBase {
  /** The stored object (after any state upgrade), or the partial object an import produced. */
  readonly state: CtyValue
}

export interface UpdateRequest extends RequestBase {
  /** The planned object: known values must come back unchanged, unknown ones must become known. */
  readonly plan: CtyValue
  /** The stored object. */
  readonly state: CtyValue
  readonly config: CtyValue
}

export interface DeleteRequest extends RequestBase {
  readonly state: CtyValue
}

export interface ImportRequest extends RequestBase {
  /** What the user passed to `terraform import` or an `import {}` block. */
  readonly id: string
}

/** Upgrades stored state (plain JSON, as in the state file) from one schema version to the next. */
export type StateUpgrader = (state: Record<string, unknown>) => Record<string, unknown>

export interface Resource {
  /** The schema; its `version` is the state schema version. */
  readonly schema: Schema

  /**
   * Checks a configuration (ValidateResourceConfig). Runs in the validate walk, where the provider is not
   * configured: local checks only, synchronous. Report problems on `diagnostics` with attribute paths.
   */
  validate?(req: ValidateRequest): void

  /**
   * Adjusts a plan after the runtime's pipeline (terraform-plugin-framework's `ModifyPlan`): cross-attribute
   * rules, values known in advance, extra replacement triggers. Also called for a destroy (plan null; the plan
   * must stay null). Must not change remote objects.
   */
  modifyPlan?(req: ModifyPlanRequest): Awaitable<ModifyPlanResult | void>

  /** Creates the object; returns its state (every planned known value unchanged, nothing unknown). */
  create(req: CreateRequest): Awaitable<CtyValue>

  /** The object's current state, or `null` when it no longer exists (Terraform then plans to create it again). */
  read(req: ReadRequest): Awaitable<CtyValue | null>

  /** Updates the object in place; returns its state (every planned known value unchanged, nothing unknown). */
  update(req: UpdateRequest): Awaitable<CtyValue>

  /** Deletes the object. An object that is already gone should count as deleted. */
  delete(req: DeleteRequest): Awaitable<void>

  /**
   * Turns an import id into a partial state that `read` can resolve (Terraform calls ReadResource next). Left out:
   * the id is passed through as the `id` attribute, every other attribute null.
   */
  importState?(req: ImportRequest): Awaitable<CtyValue>

  /**
   * State upgraders by the version they upgrade from: `{ 0: v0ToV1, 1: v1ToV2 }`. Stored state of version `n` runs
   * through `n`, `n + 1`, … up to `schema.version`, then is fitted to the current schema (attributes that no longer
   * exist are dropped, new ones are null).
   */
  readonly stateUpgraders?: Readonly<Record<number, StateUpgrader>>
}

export interface DataSourceReadRequest extends RequestBase {
  readonly config: CtyValue
}

export interface DataSource {
  readonly schema: Schema
  /** Like {@link Resource.validate}: local checks, in an unconfigured provider. */
  validate?(req: ValidateRequest): void
  /** Reads the data; returns the whole object (configured values unchanged, nothing unknown). */
  read(req: DataSourceReadRequest): Awaitable<CtyValue>
}
