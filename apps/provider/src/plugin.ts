/**
 * The sym provider's RPC handlers: protocol messages in, protocol messages out. Owns the protocol invariants for
 * Sym's resources — every attribute present, blocks as lists, defaults and the unknown `id` at plan time, null
 * state for a vanished object, diagnostics instead of thrown errors — and delegates the behaviour of each
 * resource to `SymResource`.
 */
import { readFileSync } from 'node:fs'
import {
  dataSources,
  providerConfig,
  providerSchemasDocument,
  PROVIDER_ADDRESS,
  resourceList,
  type DataSourceDef,
  type ResourceDef,
  type TerraformBlock,
  type TerraformSchema,
} from '@opensym/provider-schema'
import { createTransport } from '@opensym/sdk'
import { CtyValue, decodeJson, decodeMsgpack, encodeMsgpack, isWhollyKnown, type CtyType, type CtyValue as Value } from '@opensym/tfplugin/cty'
import { ConnectionError, resolveConnection } from './connection.js'
import { withDefaults, type PathStep, type TfObject } from './convert.js'
import {
  NestingMode,
  Severity,
  StringKind,
  type ApplyResourceChangeRequest,
  type ConfigureProviderRequest,
  type DynamicValue,
  type GetProviderSchemaResponse,
  type ImportResourceStateRequest,
  type PlanResourceChangeRequest,
  type ProtoBlock,
  type ProtoDiagnostic,
  type ProtoSchema,
  type ReadDataSourceRequest,
  type ReadResourceRequest,
  type UpgradeResourceStateRequest,
  type ValidateConfigRequest,
} from './protocol.js'
import { DiagnosticsError, readDataSource, SymResource, UNKNOWN, type Diagnostic, type TfConfigObject, type TfConfigValue } from './resources.js'
import { blockType, fromPlain, toPlain } from './values.js'

type Diags = ProtoDiagnostic[]
const utf8 = new TextEncoder()

export interface ProviderEnv {
  readonly env: Readonly<Record<string, string | undefined>>
  readonly readFile?: (path: string) => string | undefined
}

const readIfExists = (path: string): string | undefined => {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return undefined
  }
}

export class SymProvider {
  private readonly resources = new Map<string, { def: ResourceDef; type: CtyType }>()
  private readonly dataSources = new Map<string, { def: DataSourceDef; type: CtyType }>()
  private readonly providerType = blockType(providerConfig.attributes, undefined)
  private configured: ((def: ResourceDef) => SymResource) | undefined
  private readonly schema: GetProviderSchemaResponse

  constructor(private readonly host: ProviderEnv) {
    for (const def of resourceList) this.resources.set(def.typeName, { def, type: blockType(def.attributes, def.blocks) })
    for (const def of dataSources) this.dataSources.set(def.typeName, { def, type: blockType(def.attributes, undefined) })
    this.schema = protoSchemas()
  }

  getProviderSchema(): GetProviderSchemaResponse {
    return this.schema
  }

  validateProviderConfig(_req: ValidateConfigRequest): { diagnostics: Diags } {
    return { diagnostics: [] }
  }

  configureProvider(req: ConfigureProviderRequest): { diagnostics: Diags } {
    return guard(() => {
      const config = toPlain(decode(req.config, this.providerType)) as TfConfigObject
      const text = (v: unknown) => (typeof v === 'string' ? v : null)
      try {
        const connection = resolveConnection(
          { org: text(config.org) ?? '', jwtEnvVar: text(config.jwt_env_var), apiUrl: text(config.api_url) },
          { env: this.host.env, readFile: this.host.readFile ?? readIfExists },
        )
        const call = createTransport({ baseUrl: connection.apiUrl, token: connection.token })
        this.configured = (def) => new SymResource(def, call)
      } catch (e) {
        if (!(e instanceof ConnectionError)) throw e
        throw new DiagnosticsError([{ severity: 'error', summary: e.summary, detail: e.detail, ...(e.attribute ? { path: [{ attribute: e.attribute }] } : {}) }])
      }
      return {}
    })
  }

  validateResourceConfig(req: ValidateConfigRequest): { diagnostics: Diags } {
    return guard(() => {
      const { def, type } = this.resource(req.type_name ?? '')
      const config = toPlain(decode(req.config, type)) as TfConfigObject
      throw new DiagnosticsError(new SymResource(def, unconfigured).validate(config))
    })
  }

  validateDataResourceConfig(_req: ValidateConfigRequest): { diagnostics: Diags } {
    return { diagnostics: [] }
  }

  upgradeResourceState(req: UpgradeResourceStateRequest): Promise<{ upgraded_state?: DynamicValue; diagnostics: Diags }> {
    return guardAsync(async () => {
      const { def, type } = this.resource(req.type_name)
      const raw = req.raw_state?.json
      if (!raw?.length) return { upgraded_state: encode(CtyValue.null, type) }
      let state = JSON.parse(new TextDecoder().decode(raw)) as Record<string, unknown>
      if (def.kind === 'flow' && Number(req.version) < 1) state = upgradeFlowV0(state)
      // Conform to the current schema: attributes a newer provider removed are dropped, missing ones are null.
      return { upgraded_state: encode(decodeJson(state, type, { unknownAttributes: 'ignore' }), type) }
    })
  }

  readResource(req: ReadResourceRequest): Promise<{ new_state?: DynamicValue; private?: Uint8Array; diagnostics: Diags }> {
    return guardAsync(async () => {
      const { def, type } = this.resource(req.type_name)
      const current = decode(req.current_state, type)
      if (current.kind === 'null') return { new_state: encode(current, type) }
      const state = await this.api(def).read(toPlain(current) as TfObject)
      return { new_state: encode(state ? fromPlain(state, type) : CtyValue.null, type), private: req.private ?? new Uint8Array() }
    })
  }

  planResourceChange(req: PlanResourceChangeRequest): Promise<{ planned_state?: DynamicValue; requires_replace: never[]; diagnostics: Diags }> {
    return guardAsync(async () => {
      const { def, type } = this.resource(req.type_name)
      const proposed = decode(req.proposed_new_state, type)
      const prior = decode(req.prior_state, type)
      // Destroy: nothing to plan.
      if (proposed.kind === 'null') return { planned_state: encode(proposed, type), requires_replace: [] }
      const config = toPlain(decode(req.config, type)) as TfConfigObject
      const priorPlain = prior.kind === 'null' ? null : (toPlain(prior) as TfConfigObject)
      const planned = planDefaults(def.attributes, def.blocks, toPlain(proposed) as TfConfigObject, config, priorPlain)
      // No attribute of Sym's resources forces a replacement; only the id is computed.
      if (prior.kind === 'null') planned.id = UNKNOWN
      return { planned_state: encode(fromPlain(planned, type), type), requires_replace: [] }
    })
  }

  applyResourceChange(req: ApplyResourceChangeRequest): Promise<{ new_state?: DynamicValue; private?: Uint8Array; diagnostics: Diags }> {
    return guardAsync(async () => {
      const { def, type } = this.resource(req.type_name)
      const prior = decode(req.prior_state, type)
      const planned = decode(req.planned_state, type)
      const api = this.api(def)
      if (planned.kind === 'null') {
        await api.delete(toPlain(prior) as TfObject)
        return { new_state: encode(CtyValue.null, type) }
      }
      const plan = toPlain(planned) as TfObject
      const result = prior.kind === 'null' ? await api.create(plan) : await api.update(plan)
      const value = fromPlain(result, type)
      const drift = inconsistencies(plan, result)
      if (drift.length) {
        throw new DiagnosticsError(
          drift.map((path) => ({
            severity: 'error',
            summary: 'Provider produced inconsistent result after apply',
            detail: `The Sym API returned a value for this attribute that differs from the plan. This is a bug in the provider or the API; please report it.`,
            path,
          })),
        )
      }
      if (!isWhollyKnown(value)) throw new Error('apply result still contains unknown values')
      return { new_state: encode(value, type), private: new Uint8Array() }
    })
  }

  importResourceState(req: ImportResourceStateRequest): Promise<{ imported_resources: { type_name: string; state: DynamicValue; private: Uint8Array }[]; diagnostics: Diags }> {
    return guardAsync(async () => {
      const { def, type } = this.resource(req.type_name)
      new SymResource(def, unconfigured).parseImportId(req.id)
      // Terraform reads the object next; read() resolves an import id to the object and its UUID.
      const partial = withDefaults(def.attributes, def.blocks, { id: req.id })
      return { imported_resources: [{ type_name: req.type_name, state: encode(fromPlain(partial, type), type), private: new Uint8Array() }] }
    })
  }

  readDataSource(req: ReadDataSourceRequest): Promise<{ state?: DynamicValue; diagnostics: Diags }> {
    return guardAsync(async () => {
      const entry = this.dataSources.get(req.type_name)
      if (!entry) throw new DiagnosticsError([{ severity: 'error', summary: 'Unknown data source', detail: `This provider has no data source "${req.type_name}".` }])
      const config = toPlain(decode(req.config, entry.type)) as TfObject
      const state = await readDataSource(entry.def, this.api(entry.def.resource), config)
      return { state: encode(fromPlain(state, entry.type), entry.type) }
    })
  }

  private resource(typeName: string): { def: ResourceDef; type: CtyType } {
    const entry = this.resources.get(typeName)
    if (!entry) throw new DiagnosticsError([{ severity: 'error', summary: 'Unknown resource type', detail: `This provider has no resource "${typeName}".` }])
    return entry
  }

  private api(def: ResourceDef): SymResource {
    if (!this.configured) throw new DiagnosticsError([{ severity: 'error', summary: 'Provider not configured', detail: 'The sym provider was used before it was configured.' }])
    return this.configured(def)
  }
}

/** Validation never talks to the API. */
const unconfigured = (): Promise<never> => Promise.reject(new Error('not configured'))

/**
 * Defaults for attributes the configuration leaves null (Terraform proposes the prior value for computed ones,
 * which would hide a removed setting), slugs that differ from the state only in case kept as they are (the API
 * stores them lower-cased), walking blocks item by item.
 */
function planDefaults(
  attributes: ResourceDef['attributes'],
  blocks: ResourceDef['blocks'],
  proposed: TfConfigObject,
  config: TfConfigObject | null,
  prior: TfConfigObject | null,
): TfConfigObject {
  const out: TfConfigObject = { ...proposed }
  for (const [name, a] of Object.entries(attributes)) {
    if (a.mode === 'computed') continue
    const configured = config?.[name] ?? null
    const before = prior?.[name] ?? null
    if (configured === null && a.default !== undefined) out[name] = structuredClone(a.default)
    else if (a.slug && typeof configured === 'string' && typeof before === 'string' && configured.toLowerCase() === before.toLowerCase()) out[name] = before
    else if (a.mode !== 'optional_computed') out[name] = configured
  }
  const itemAt = (list: TfConfigValue | undefined, i: number) => (Array.isArray(list) ? ((list[i] as TfConfigObject | undefined) ?? null) : null)
  for (const [name, b] of Object.entries(blocks ?? {})) {
    const items = proposed[name]
    if (!Array.isArray(items)) continue
    out[name] = items.map((item, i) =>
      item && typeof item === 'object' && !Array.isArray(item)
        ? planDefaults(b.attributes, b.blocks, item, itemAt(config?.[name], i), itemAt(prior?.[name], i))
        : item,
    )
  }
  return out
}

/** Paths where a known planned value changed in the result (the id is the API's to choose on create). */
function inconsistencies(plan: TfObject, result: TfObject, path: PathStep[] = []): PathStep[][] {
  const out: PathStep[][] = []
  for (const [k, planned] of Object.entries(plan)) {
    if ((planned as unknown) === UNKNOWN || (k === 'id' && !path.length)) continue
    const actual = result[k] ?? null
    if (JSON.stringify(canonical(planned)) !== JSON.stringify(canonical(actual))) out.push([...path, { attribute: k }])
  }
  return out
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical)
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]))
  return v
}

/** Provider < 2.0 kept `params` as a string map with JSON-encoded lists. */
export function upgradeFlowV0(state: Record<string, unknown>): Record<string, unknown> {
  const { template: _template, params, ...rest } = state
  const p = (params && typeof params === 'object' ? params : {}) as Record<string, string>
  if (!Object.keys(p).length) return { ...rest, params: [] }
  const { allowed_sources_json, prompt_fields_json, ...scalars } = p
  const fields = prompt_fields_json ? (JSON.parse(prompt_fields_json) as Record<string, unknown>[]) : []
  return {
    ...rest,
    params: [
      {
        ...scalars,
        allowed_sources: allowed_sources_json ? (JSON.parse(allowed_sources_json) as string[]) : null,
        prompt_field: fields.map((f) => ({
          ...f,
          allowed_values: Array.isArray(f.allowed_values) ? f.allowed_values.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))) : null,
        })),
      },
    ],
  }
}

function decode(dv: DynamicValue | null | undefined, type: CtyType): Value {
  if (dv?.msgpack?.length) return decodeMsgpack(dv.msgpack, type)
  if (dv?.json?.length) return decodeJson(dv.json, type)
  return CtyValue.null
}

const encode = (value: Value, type: CtyType): DynamicValue => ({ msgpack: encodeMsgpack(value, type) })

function toProtoDiagnostic(d: Diagnostic): ProtoDiagnostic {
  const out: ProtoDiagnostic = { severity: d.severity === 'error' ? Severity.ERROR : Severity.WARNING, summary: d.summary, detail: d.detail }
  if (d.path?.length) {
    out.attribute = {
      steps: d.path.map((s) => ('attribute' in s ? { attribute_name: s.attribute } : 'key' in s ? { element_key_string: s.key } : { element_key_int: s.index })),
    }
  }
  return out
}

/** Thrown diagnostics become the response's diagnostics; anything else is a provider bug, reported as one. */
function toDiagnostics(e: unknown): Diags {
  if (e instanceof DiagnosticsError) return e.diagnostics.map(toProtoDiagnostic)
  const message = e instanceof Error ? e.message : String(e)
  return [{ severity: Severity.ERROR, summary: 'Unexpected error in the sym provider', detail: `${message}\nThis is a bug in the provider; please report it.` }]
}

function guard<T extends object>(fn: () => T): T & { diagnostics: Diags } {
  try {
    return { ...fn(), diagnostics: [] }
  } catch (e) {
    return { diagnostics: toDiagnostics(e) } as T & { diagnostics: Diags }
  }
}

async function guardAsync<T extends object>(fn: () => Promise<T>): Promise<T & { diagnostics: Diags }> {
  try {
    return { ...(await fn()), diagnostics: [] }
  } catch (e) {
    return { diagnostics: toDiagnostics(e) } as T & { diagnostics: Diags }
  }
}

function protoBlock(b: TerraformBlock): ProtoBlock {
  return {
    version: 0,
    attributes: Object.entries(b.attributes ?? {}).map(([name, a]) => ({
      name,
      type: utf8.encode(JSON.stringify(a.type)),
      description: a.description,
      required: Boolean(a.required),
      optional: Boolean(a.optional),
      computed: Boolean(a.computed),
      sensitive: Boolean(a.sensitive),
      description_kind: StringKind.MARKDOWN,
      deprecated: false,
    })),
    block_types: Object.entries(b.block_types ?? {}).map(([type_name, t]) => ({
      type_name,
      block: protoBlock(t.block),
      nesting: t.nesting_mode === 'single' ? NestingMode.SINGLE : NestingMode.LIST,
      min_items: t.min_items ?? 0,
      max_items: t.max_items ?? 0,
    })),
    description: b.description ?? '',
    description_kind: StringKind.MARKDOWN,
    deprecated: false,
  }
}

const protoSchema = (s: TerraformSchema): ProtoSchema => ({ version: s.version, block: protoBlock(s.block) })

/** The GetProviderSchema answer, from the same document `terraform providers schema -json` shows. */
function protoSchemas(): GetProviderSchemaResponse {
  const doc = providerSchemasDocument().provider_schemas[PROVIDER_ADDRESS]!
  return {
    provider: protoSchema(doc.provider),
    resource_schemas: Object.fromEntries(Object.entries(doc.resource_schemas).map(([k, s]) => [k, protoSchema(s)])),
    data_source_schemas: Object.fromEntries(Object.entries(doc.data_source_schemas).map(([k, s]) => [k, protoSchema(s)])),
    diagnostics: [],
    server_capabilities: { plan_destroy: false, get_provider_schema_optional: false, move_resource_state: false },
  }
}
