/**
 * The sym provider's RPC handlers. The resource runtime of `@opensym/tfplugin/runtime` owns the protocol invariants
 * (plan pipeline with defaults, unknowns and plan modifiers; apply checked against the plan; null state for a
 * vanished object; import; state upgrades; diagnostics instead of thrown errors); this file adapts each `sym_*`
 * resource and data source to it — cty values ↔ the plain values `SymResource` works on — and configures the
 * API client.
 */
import { readFileSync } from 'node:fs'
import {
  dataSources,
  providerConfig,
  resourceList,
  type DataSourceDef,
  type EntityKind,
  type ResourceDef,
} from '@opensym/provider-schema'
import { createTransport } from '@opensym/sdk'
import { attrStep, indexStep, keyStep, type CtyPathStep, type CtyType, type CtyValue } from '@opensym/tfplugin/cty'
import {
  DiagnosticsError,
  guard,
  decodeDynamicValue,
  ResourceServer,
  schemaType,
  type ApplyResourceChangeRequest,
  type ApplyResourceChangeResponse,
  type ConfigureProviderRequest,
  type DataSource,
  type Diagnostic,
  type DiagnosticsResponse,
  type GetProviderSchemaResponse,
  type ImportResourceStateRequest,
  type ImportResourceStateResponse,
  type PlanResourceChangeRequest,
  type PlanResourceChangeResponse,
  type ReadDataSourceRequest,
  type ReadDataSourceResponse,
  type ReadResourceRequest,
  type ReadResourceResponse,
  type Resource,
  type StateUpgrader,
  type UpgradeResourceStateRequest,
  type UpgradeResourceStateResponse,
  type ValidateDataResourceConfigRequest,
  type ValidateProviderConfigRequest,
  type ValidateResourceConfigRequest,
} from '@opensym/tfplugin/runtime'
import { apiFetch, ConnectionError, resolveConnection } from './connection.js'
import { withDefaults, type PathStep, type TfObject } from './convert.js'
import { DiagnosticsError as SymDiagnosticsError, readDataSource, SymResource, type Diagnostic as SymDiagnostic, type TfConfigObject } from './resources.js'
import { dataSourceSchema, fromPlain, providerConfigSchema, resourceSchema, toPlain } from './values.js'

/** The provider's name in the runtime's messages ("Unexpected error in the sym provider"). */
const NAME = 'sym'

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
  private readonly server: ResourceServer
  private readonly providerType: CtyType
  private configured: ((def: ResourceDef) => SymResource) | undefined

  constructor(private readonly host: ProviderEnv) {
    const provider = providerConfigSchema(providerConfig)
    this.providerType = schemaType(provider)
    const api = (def: ResourceDef): SymResource => {
      if (!this.configured) throw new SymDiagnosticsError([{ severity: 'error', summary: 'Provider not configured', detail: 'The sym provider was used before it was configured.' }])
      return this.configured(def)
    }
    this.server = new ResourceServer({
      name: NAME,
      provider,
      resources: Object.fromEntries(resourceList.map((def) => [def.typeName, symResource(def, () => api(def))])),
      dataSources: Object.fromEntries(dataSources.map((d) => [d.typeName, symDataSource(d, () => api(d.resource))])),
      // Terraform then asks for the schema only in the first provider process of a command and reuses it in the
      // others (2–4 more per command), which saves each of them the call and decoding the schema.
      serverCapabilities: { get_provider_schema_optional: true },
    })
  }

  getProviderSchema(): GetProviderSchemaResponse {
    return this.server.getProviderSchema()
  }

  validateProviderConfig(_req: ValidateProviderConfigRequest): DiagnosticsResponse {
    return { diagnostics: [] }
  }

  configureProvider(req: ConfigureProviderRequest): DiagnosticsResponse {
    return guard(NAME, () => {
      const config = toPlain(decodeDynamicValue(req.config, this.providerType)) as TfConfigObject
      const text = (v: unknown) => (typeof v === 'string' ? v : null)
      try {
        const connection = resolveConnection(
          { org: text(config.org) ?? '', jwtEnvVar: text(config.jwt_env_var), apiUrl: text(config.api_url) },
          { env: this.host.env, readFile: this.host.readFile ?? readIfExists },
        )
        const call = createTransport({ baseUrl: connection.apiUrl, token: connection.token, fetch: apiFetch })
        this.configured = (def) => new SymResource(def, call)
      } catch (e) {
        if (!(e instanceof ConnectionError)) throw e
        throw new DiagnosticsError([{ severity: 'error', summary: e.summary, detail: e.detail, ...(e.attribute ? { path: [attrStep(e.attribute)] } : {}) }])
      }
      return {}
    })
  }

  validateResourceConfig(req: ValidateResourceConfigRequest): DiagnosticsResponse {
    return this.server.validateResourceConfig(req)
  }

  validateDataResourceConfig(req: ValidateDataResourceConfigRequest): DiagnosticsResponse {
    return this.server.validateDataResourceConfig(req)
  }

  upgradeResourceState(req: UpgradeResourceStateRequest): Promise<UpgradeResourceStateResponse> {
    return this.server.upgradeResourceState(req)
  }

  readResource(req: ReadResourceRequest): Promise<ReadResourceResponse> {
    return this.server.readResource(req)
  }

  planResourceChange(req: PlanResourceChangeRequest): Promise<PlanResourceChangeResponse> {
    return this.server.planResourceChange(req)
  }

  applyResourceChange(req: ApplyResourceChangeRequest): Promise<ApplyResourceChangeResponse> {
    return this.server.applyResourceChange(req)
  }

  importResourceState(req: ImportResourceStateRequest): Promise<ImportResourceStateResponse> {
    return this.server.importResourceState(req)
  }

  readDataSource(req: ReadDataSourceRequest): Promise<ReadDataSourceResponse> {
    return this.server.readDataSource(req)
  }
}

/** Validation and import id parsing never talk to the API. */
const unconfigured = (): Promise<never> => Promise.reject(new Error('not configured'))

/** State upgraders by entity kind: from schema version n to n + 1. */
const STATE_UPGRADERS: Partial<Record<EntityKind, Readonly<Record<number, StateUpgrader>>>> = {
  flow: { 0: upgradeFlowV0 },
}

/**
 * A `sym_*` resource on the runtime. The runtime plans it from its schema — the computed `id` kept with
 * use-state-for-unknown, slugs kept in their stored case, defaults planned for null configuration — and checks
 * every apply result against the plan; `SymResource` does the API calls on plain values.
 */
function symResource(def: ResourceDef, api: () => SymResource): Resource {
  const schema = resourceSchema(def)
  const type = schemaType(schema)
  const offline = new SymResource(def, unconfigured)
  const plain = (v: CtyValue) => toPlain(v) as TfObject
  const upgraders = STATE_UPGRADERS[def.kind]
  return {
    schema,
    validate: ({ config, diagnostics }) => diagnostics.push(...offline.validate(toPlain(config) as TfConfigObject).map(runtimeDiagnostic)),
    create: ({ plan }) => sym(async () => fromPlain(await api().create(plain(plan)), type)),
    read: ({ state }) =>
      sym(async () => {
        const current = await api().read(plain(state))
        return current ? fromPlain(current, type) : null
      }),
    update: ({ plan }) => sym(async () => fromPlain(await api().update(plain(plan)), type)),
    delete: ({ state }) => sym(() => api().delete(plain(state))),
    // Terraform reads the object next; read() resolves an import id to the object and its UUID.
    importState: ({ id }) =>
      sym(() => {
        offline.parseImportId(id)
        return fromPlain(withDefaults(def.attributes, def.blocks, { id }), type)
      }),
    ...(upgraders ? { stateUpgraders: upgraders } : {}),
  }
}

/** A `sym_*` data source on the runtime: one entity looked up by name (and type). */
function symDataSource(d: DataSourceDef, api: () => SymResource): DataSource {
  const schema = dataSourceSchema(d)
  const type = schemaType(schema)
  return {
    schema,
    read: ({ config }) => sym(async () => fromPlain(await readDataSource(d, api(), toPlain(config) as TfObject), type)),
  }
}

/** Runs resource code, turning its diagnostics (paths as `PathStep`s) into the runtime's (cty paths). */
async function sym<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (e) {
    throw e instanceof SymDiagnosticsError ? new DiagnosticsError(e.diagnostics.map(runtimeDiagnostic)) : e
  }
}

const ctyStep = (s: PathStep): CtyPathStep => ('attribute' in s ? attrStep(s.attribute) : 'key' in s ? keyStep(s.key) : indexStep(s.index))

function runtimeDiagnostic(d: SymDiagnostic): Diagnostic {
  return { severity: d.severity, summary: d.summary, detail: d.detail, ...(d.path?.length ? { path: d.path.map(ctyStep) } : {}) }
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

