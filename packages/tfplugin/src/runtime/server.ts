/**
 * The resource and data source RPCs of tfplugin6 over {@link Resource}s and {@link DataSource}s. A provider
 * creates one `ResourceServer` with its resources and forwards these RPCs to it; the provider-level RPCs
 * (ValidateProviderConfig, ConfigureProvider) stay the provider's own, built with {@link guard} and
 * {@link decodeDynamicValue}.
 *
 * Invariants kept here, whatever the resource code does:
 * - every response carries `diagnostics`; nothing thrown escapes as a gRPC error (which Terraform reports as
 *   "Plugin did not respond");
 * - values sent back conform to the schema type (every attribute present, list blocks `[]` rather than null);
 * - plans follow the pipeline of `plan.ts`, with `requires_replace` as attribute paths;
 * - apply results are checked against the plan, naming the attribute that differs;
 * - read returns a null state when the object is gone; state is upgraded by schema version.
 */
import {
  CtyError,
  CtyValue,
  decodeJson,
  decodeMsgpack,
  encodeMsgpack,
  isNull,
  isWhollyKnown,
  type CtyType,
  type CtyValue as Value,
} from '../cty/index.js'
import { Diagnostics, DiagnosticsError, errorDiagnostic, thrownDiagnostics, toProtoDiagnostic, toProtoPath } from './diagnostics.js'
import { applyInconsistencies, planResource } from './plan.js'
import type {
  ApplyResourceChangeRequest,
  ApplyResourceChangeResponse,
  DiagnosticsResponse,
  DynamicValue,
  DynamicValueOut,
  GetProviderSchemaResponse,
  ImportResourceStateRequest,
  ImportResourceStateResponse,
  PlanResourceChangeRequest,
  PlanResourceChangeResponse,
  ReadDataSourceRequest,
  ReadDataSourceResponse,
  ReadResourceRequest,
  ReadResourceResponse,
  ServerCapabilities,
  UpgradeResourceStateRequest,
  UpgradeResourceStateResponse,
  ValidateDataResourceConfigRequest,
  ValidateResourceConfigRequest,
} from './protocol.js'
import type { DataSource, Resource } from './resource.js'
import { fillNullBlocks, nullListBlocks, protoSchema, schemaProblems, schemaType, type BlockSchema, type Schema } from './schema.js'

const EMPTY = new Uint8Array()
/** How many decoded request values a server keeps for reuse, and up to which size (Terraform runs 10 at a time). */
const REUSED_VALUES = 32
const MAX_REUSED_BYTES = 64 * 1024

/** A request value as cty: msgpack (what Terraform sends), else JSON, else null (an absent value). */
export function decodeDynamicValue(dv: DynamicValue | null | undefined, type: CtyType): Value {
  if (dv?.msgpack?.length) return decodeMsgpack(dv.msgpack, type)
  if (dv?.json?.length) return decodeJson(dv.json, type)
  return CtyValue.null
}

/** A response value: always msgpack, which can carry unknowns. */
export const encodeDynamicValue = (value: Value, type: CtyType): DynamicValueOut => ({ msgpack: encodeMsgpack(value, type) })

/**
 * Runs an RPC body: its result plus `diagnostics` (warnings it added), or, when it threw or added an error, only
 * the diagnostics.
 */
export function guard<T extends object>(providerName: string, fn: (diagnostics: Diagnostics) => T): Partial<T> & DiagnosticsResponse {
  const diagnostics = new Diagnostics()
  try {
    const result = fn(diagnostics)
    diagnostics.throwIfErrors()
    return { ...result, diagnostics: diagnostics.items.map(toProtoDiagnostic) }
  } catch (e) {
    return { diagnostics: [...diagnostics.items, ...thrownDiagnostics(e, providerName)].map(toProtoDiagnostic) } as Partial<T> & DiagnosticsResponse
  }
}

/** {@link guard} for an async body. */
export async function guardAsync<T extends object>(providerName: string, fn: (diagnostics: Diagnostics) => Promise<T>): Promise<Partial<T> & DiagnosticsResponse> {
  const diagnostics = new Diagnostics()
  try {
    const result = await fn(diagnostics)
    diagnostics.throwIfErrors()
    return { ...result, diagnostics: diagnostics.items.map(toProtoDiagnostic) }
  } catch (e) {
    return { diagnostics: [...diagnostics.items, ...thrownDiagnostics(e, providerName)].map(toProtoDiagnostic) } as Partial<T> & DiagnosticsResponse
  }
}

export interface ResourceServerOptions {
  /** The provider's name in messages ("Unexpected error in the sym provider"). */
  readonly name: string
  /** The provider block's schema (for GetProviderSchema). */
  readonly provider: Schema
  readonly resources: Readonly<Record<string, Resource>>
  readonly dataSources?: Readonly<Record<string, DataSource>>
  readonly serverCapabilities?: Partial<ServerCapabilities>
}

interface Entry<T> {
  readonly impl: T
  readonly type: CtyType
}

export class ResourceServer {
  private readonly name: string
  private readonly resources = new Map<string, Entry<Resource>>()
  private readonly dataSources = new Map<string, Entry<DataSource>>()
  private schemaResponse: GetProviderSchemaResponse | undefined
  /** Recently decoded msgpack values, newest last (see {@link decode}). */
  private readonly recent: Array<{ readonly bytes: Buffer; readonly type: CtyType; readonly value: Value }> = []

  /** Throws when a schema is invalid (see `schemaProblems`), so a broken schema fails the provider's own tests. */
  constructor(private readonly options: ResourceServerOptions) {
    this.name = options.name
    const problems: string[] = []
    for (const [typeName, impl] of Object.entries(options.resources)) {
      problems.push(...schemaProblems(impl.schema).map((p) => `${typeName}${p}`))
      this.resources.set(typeName, { impl, type: schemaType(impl.schema) })
    }
    for (const [typeName, impl] of Object.entries(options.dataSources ?? {})) {
      problems.push(...schemaProblems(impl.schema).map((p) => `data.${typeName}${p}`))
      this.dataSources.set(typeName, { impl, type: schemaType(impl.schema) })
    }
    if (problems.length) throw new Error(`invalid schema:\n${problems.join('\n')}`)
  }

  /** GetProviderSchema: the same answer in every process, computed once. */
  getProviderSchema(): GetProviderSchemaResponse {
    this.schemaResponse ??= {
      provider: protoSchema(this.options.provider),
      resource_schemas: Object.fromEntries([...this.resources].map(([k, e]) => [k, protoSchema(e.impl.schema)])),
      data_source_schemas: Object.fromEntries([...this.dataSources].map(([k, e]) => [k, protoSchema(e.impl.schema)])),
      diagnostics: [],
      server_capabilities: { plan_destroy: false, get_provider_schema_optional: false, move_resource_state: false, ...this.options.serverCapabilities },
    }
    return this.schemaResponse
  }

  validateResourceConfig(req: ValidateResourceConfigRequest): DiagnosticsResponse {
    return guard(this.name, (diagnostics) => {
      const typeName = req.type_name ?? ''
      const { impl, type } = this.resource(typeName)
      impl.validate?.({ typeName, config: this.decode(req.config, type), diagnostics })
      return {}
    })
  }

  validateDataResourceConfig(req: ValidateDataResourceConfigRequest): DiagnosticsResponse {
    return guard(this.name, (diagnostics) => {
      const typeName = req.type_name ?? ''
      const { impl, type } = this.dataSource(typeName)
      impl.validate?.({ typeName, config: this.decode(req.config, type), diagnostics })
      return {}
    })
  }

  /**
   * UpgradeResourceState: stored JSON of schema version `version` → the current schema, through the resource's
   * `stateUpgraders`, then fitted to the current type (removed attributes dropped, new ones null).
   */
  upgradeResourceState(req: UpgradeResourceStateRequest): Promise<UpgradeResourceStateResponse> {
    return guardAsync(this.name, async () => {
      const typeName = req.type_name ?? ''
      const { impl, type } = this.resource(typeName)
      const raw = req.raw_state?.json
      if (!raw?.length) {
        if (Object.keys(req.raw_state?.flatmap ?? {}).length) {
          throw new DiagnosticsError([errorDiagnostic('Unable to upgrade resource state', `${typeName}: state in the legacy flatmap format (Terraform 0.11 and earlier) is not supported.`)])
        }
        return { upgraded_state: encodeDynamicValue(CtyValue.null, type) }
      }
      const from = Number(req.version ?? 0)
      const to = impl.schema.version
      if (from > to) {
        throw new DiagnosticsError([
          errorDiagnostic('Unable to upgrade resource state', `${typeName}: the stored state has schema version ${from}, written by a newer version of the ${this.name} provider than this one (version ${to}). Upgrade the provider.`),
        ])
      }
      const fit = (json: string | Uint8Array | object): DynamicValueOut => encodeDynamicValue(fillNullBlocks(impl.schema.block, decodeJson(json, type, { unknownAttributes: 'ignore' })), type)
      if (from === to) return { upgraded_state: fit(raw) }
      let state = JSON.parse(new TextDecoder().decode(raw)) as unknown
      for (let v = from; v < to; v++) {
        const upgrade = impl.stateUpgraders?.[v]
        if (!upgrade) {
          throw new DiagnosticsError([
            errorDiagnostic('Unable to upgrade resource state', `${typeName}: the ${this.name} provider cannot upgrade stored state from schema version ${v} to ${v + 1}. This is a bug in the provider; please report it.`),
          ])
        }
        if (!state || typeof state !== 'object' || Array.isArray(state)) throw new Error(`stored state of ${typeName} is not a JSON object`)
        state = upgrade(state as Record<string, unknown>)
      }
      return { upgraded_state: fit(state as object) }
    })
  }

  /** ReadResource: the current state, or null when the object is gone (Terraform then plans to create it). */
  readResource(req: ReadResourceRequest): Promise<ReadResourceResponse> {
    return guardAsync(this.name, async (diagnostics) => {
      const typeName = req.type_name ?? ''
      const { impl, type } = this.resource(typeName)
      const current = this.decode(req.current_state, type)
      if (isNull(current)) return { new_state: encodeDynamicValue(CtyValue.null, type) }
      const state = await impl.read({ typeName, state: current, diagnostics })
      if (state === null || isNull(state)) return { new_state: encodeDynamicValue(CtyValue.null, type), private: EMPTY }
      return { new_state: this.checkResult(state, type, impl.schema.block, typeName, 'read'), private: req.private ?? EMPTY }
    })
  }

  /** PlanResourceChange: the plan pipeline of `plan.ts`. */
  planResourceChange(req: PlanResourceChangeRequest): Promise<PlanResourceChangeResponse> {
    return guardAsync(this.name, async (diagnostics) => {
      const typeName = req.type_name ?? ''
      const { impl, type } = this.resource(typeName)
      const { planned, requiresReplace } = await planResource(impl, {
        typeName,
        prior: this.decode(req.prior_state, type),
        proposed: this.decode(req.proposed_new_state, type),
        config: this.decode(req.config, type),
        providerName: this.name,
        diagnostics,
      })
      const plannedState = this.conform(planned, type, impl.schema.block, 'Provider produced invalid plan', typeName)
      return { planned_state: plannedState, requires_replace: requiresReplace.map(toProtoPath), planned_private: req.prior_private ?? EMPTY }
    }).then((r) => ({ requires_replace: [], ...r }))
  }

  /**
   * ApplyResourceChange: delete (planned null), create (prior null) or update, then the result is checked against
   * the plan: known planned values unchanged, unknown ones known.
   */
  applyResourceChange(req: ApplyResourceChangeRequest): Promise<ApplyResourceChangeResponse> {
    return guardAsync(this.name, async (diagnostics) => {
      const typeName = req.type_name ?? ''
      const { impl, type } = this.resource(typeName)
      const prior = this.decode(req.prior_state, type)
      const plan = this.decode(req.planned_state, type)
      const config = this.decode(req.config, type)
      if (isNull(plan)) {
        await impl.delete({ typeName, state: prior, diagnostics })
        return { new_state: encodeDynamicValue(CtyValue.null, type), private: EMPTY }
      }
      const state = isNull(prior) ? await impl.create({ typeName, plan, config, diagnostics }) : await impl.update({ typeName, plan, state: prior, config, diagnostics })
      diagnostics.throwIfErrors()
      if (isNull(state)) {
        throw new DiagnosticsError([errorDiagnostic('Provider returned no state after apply', `The ${this.name} provider returned a null object for ${typeName}. This is a bug in the provider; please report it.`)])
      }
      const newState = this.conform(state, type, impl.schema.block, 'Provider returned invalid result object after apply', typeName)
      const drift = applyInconsistencies(impl.schema.block, plan, state, typeName, this.name)
      if (drift.length) throw new DiagnosticsError(drift)
      return { new_state: newState, private: req.planned_private ?? EMPTY }
    })
  }

  /** ImportResourceState: a partial state (the resource's `importState`, or the id alone) that Terraform then reads. */
  importResourceState(req: ImportResourceStateRequest): Promise<ImportResourceStateResponse> {
    return guardAsync(this.name, async (diagnostics) => {
      const typeName = req.type_name ?? ''
      const id = req.id ?? ''
      const { impl, type } = this.resource(typeName)
      const state = impl.importState ? await impl.importState({ typeName, id, diagnostics }) : this.idOnly(impl, typeName, id)
      const imported = this.conform(state, type, impl.schema.block, 'Provider returned invalid import state', typeName)
      return { imported_resources: [{ type_name: typeName, state: imported, private: EMPTY }] }
    }).then((r) => ({ imported_resources: [], ...r }))
  }

  /** ReadDataSource: the whole object, every value known. */
  readDataSource(req: ReadDataSourceRequest): Promise<ReadDataSourceResponse> {
    return guardAsync(this.name, async (diagnostics) => {
      const typeName = req.type_name ?? ''
      const { impl, type } = this.dataSource(typeName)
      const state = await impl.read({ typeName, config: this.decode(req.config, type), diagnostics })
      return { state: this.checkResult(state, type, impl.schema.block, `data.${typeName}`, 'read') }
    })
  }

  /**
   * {@link decodeDynamicValue}, reusing a recent result for the same bytes: Terraform sends a resource instance's
   * configuration to ValidateResourceConfig and again to PlanResourceChange, where a create's proposed new state is
   * the configuration too. Values are immutable, so one decoded value serves every request that carries it.
   */
  private decode(dv: DynamicValue | null | undefined, type: CtyType): Value {
    const msgpack = dv?.msgpack
    if (!msgpack?.length || msgpack.length > MAX_REUSED_BYTES) return decodeDynamicValue(dv, type)
    const bytes = Buffer.isBuffer(msgpack) ? msgpack : Buffer.from(msgpack.buffer, msgpack.byteOffset, msgpack.byteLength)
    for (let i = this.recent.length - 1; i >= 0; i--) {
      const entry = this.recent[i]!
      if (entry.type === type && entry.bytes.length === bytes.length && entry.bytes.equals(bytes)) return entry.value
    }
    const value = decodeMsgpack(bytes, type)
    if (this.recent.length === REUSED_VALUES) this.recent.shift()
    // A copy: the caller's buffer is not ours to keep (or to trust not to change).
    this.recent.push({ bytes: Buffer.from(bytes), type, value })
    return value
  }

  private resource(typeName: string): Entry<Resource> {
    const entry = this.resources.get(typeName)
    if (!entry) throw new DiagnosticsError([errorDiagnostic('Unknown resource type', `This provider has no resource "${typeName}".`)])
    return entry
  }

  private dataSource(typeName: string): Entry<DataSource> {
    const entry = this.dataSources.get(typeName)
    if (!entry) throw new DiagnosticsError([errorDiagnostic('Unknown data source', `This provider has no data source "${typeName}".`)])
    return entry
  }

  /** The default import: `{ id = <import id> }`, everything else null (list blocks empty). */
  private idOnly(impl: Resource, typeName: string, id: string): Value {
    const idAttribute = impl.schema.block.attributes?.id
    if (idAttribute?.type.kind !== 'string') {
      throw new DiagnosticsError([errorDiagnostic('Resource import not implemented', `${typeName} cannot be imported.`)])
    }
    const attributes = new Map<string, Value>()
    for (const name of Object.keys(impl.schema.block.attributes ?? {})) attributes.set(name, CtyValue.null)
    for (const [name, b] of Object.entries(impl.schema.block.blocks ?? {})) attributes.set(name, b.nesting === 'list' ? CtyValue.list([]) : CtyValue.null)
    attributes.set('id', CtyValue.string(id))
    return CtyValue.object(attributes)
  }

  /**
   * The value encoded for a response. One that does not fit the type (the encoder checks what `assertConforms`
   * checks, while encoding) or holds a null list block fails with a diagnostic on the offending attribute.
   */
  private conform(value: Value, type: CtyType, block: BlockSchema, summary: string, typeName: string): DynamicValueOut {
    const bug = `This is a bug in the ${this.name} provider; please report it.`
    let encoded: DynamicValueOut
    try {
      encoded = encodeDynamicValue(value, type)
    } catch (e) {
      if (!(e instanceof CtyError)) throw e
      throw new DiagnosticsError([errorDiagnostic(summary, `${typeName}: ${e.message}. ${bug}`, e.path)])
    }
    const nulls = nullListBlocks(block, value)
    if (nulls.length) throw new DiagnosticsError(nulls.map((path) => errorDiagnostic(summary, `${typeName}: a list of blocks must be empty to say "no blocks", not null. ${bug}`, path)))
    return encoded
  }

  /** A state returned by read must fit the type and be wholly known; returns it encoded. */
  private checkResult(value: Value, type: CtyType, block: BlockSchema, typeName: string, what: string): DynamicValueOut {
    const encoded = this.conform(value, type, block, `Provider returned an invalid object from ${what}`, typeName)
    if (!isWhollyKnown(value)) {
      throw new DiagnosticsError([errorDiagnostic(`Provider returned an invalid object from ${what}`, `${typeName}: the object still contains unknown values. This is a bug in the ${this.name} provider; please report it.`)])
    }
    return encoded
  }
}
