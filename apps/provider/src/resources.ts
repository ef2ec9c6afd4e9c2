/**
 * What every `sym_*` resource and data source does, derived from its definition: validate a configuration, and
 * create/read/update/delete/import through the entities API. Plain Terraform values in, plain values out; the
 * plugin runtime owns the protocol (unknowns, plans, msgpack) and calls these.
 */
import { existsSync, readFileSync } from 'node:fs'
import {
  isUuid,
  validateEntityRules,
  type AttributeDef,
  type BlockDef,
  type DataSourceDef,
  type ResourceDef,
} from '@opensym/provider-schema'
import { looksLikePython, PYTHON_NOT_RUNNABLE, SymApiError, type Call } from '@opensym/sdk'
import { formatPath, fromApiView, terraformPath, toApiBody, type PathStep, type TfObject, type TfValue } from './convert.js'

/** A value Terraform does not know yet (it depends on another resource). */
export const UNKNOWN: unique symbol = Symbol.for('opensym.terraform.unknown')
export type TfConfigValue = TfValue | typeof UNKNOWN | TfConfigValue[] | TfConfigObject
export interface TfConfigObject {
  [attribute: string]: TfConfigValue
}

export interface Diagnostic {
  readonly severity: 'error' | 'warning'
  readonly summary: string
  readonly detail: string
  readonly path?: readonly PathStep[]
}

/** A failure to report as diagnostics (thrown by CRUD; the runtime turns it into the RPC's diagnostics). */
export class DiagnosticsError extends Error {
  override readonly name = 'DiagnosticsError'
  constructor(
    readonly diagnostics: readonly Diagnostic[],
    /** The HTTP status behind the failure when it came from the API (0: the API was unreachable). */
    readonly status?: number,
  ) {
    super(diagnostics.map((d) => `${d.summary}: ${d.detail}`).join('; '))
  }
}

const DOCS = 'For more details, see docs/terraform/.'
type Json = Record<string, unknown>

/** Source file names people put where the contents belong (Sym's provider checks `.py`). */
const SOURCE_FILE = /^[^\n]*\.(py|ts|mts|cts|js|mjs|cjs)$/
/** {@link SOURCE_FILE} of the trimmed value, without copying a whole implementation to trim it. */
const SOURCE_FILE_PADDED = /^\s*[^\n]*\.(py|ts|mts|cts|js|mjs|cjs)\s*$/
/** Go's strconv.Atoi and strconv.ParseBool, which Sym's provider uses for its `vars` warnings. */
const LOOKS_INT = /^[+-]?\d+$/
const LOOKS_BOOL = new Set(['1', 't', 'T', 'TRUE', 'true', 'True', '0', 'f', 'F', 'FALSE', 'false', 'False'])

export class SymResource {
  constructor(
    readonly def: ResourceDef,
    private readonly call: Call,
  ) {}

  private get base(): string {
    return `entities/${this.def.path}`
  }

  /** Checks a configuration before anything is sent; unknown values pass. */
  validate(config: TfConfigObject): Diagnostic[] {
    const diags: Diagnostic[] = []
    walkAttributes(this.def.attributes, this.def.blocks, config, [], (a, name, v, path, owner) => {
      if (v === UNKNOWN || v === null) return
      // The attribute's path, made only for a diagnostic.
      const at = (): PathStep[] => [...path, { attribute: name }]
      if (a.allowedValues && typeof v === 'string' && !a.allowedValues.includes(v)) {
        diags.push(error(`Invalid ${name}`, `"${v}" is not a valid ${name}; valid values are: ${a.allowedValues.join(', ')}.`, at()))
      }
      if (a.elementAllowedValues && Array.isArray(v)) {
        v.forEach((x, i) => {
          if (typeof x === 'string' && !a.elementAllowedValues!.includes(x)) {
            diags.push(error(`Invalid ${name}`, `"${x}" is not valid; valid values are: ${a.elementAllowedValues!.join(', ')}.`, [...at(), { index: i }]))
          }
        })
      }
      // A strategy's implementation may be a file path (Sym's provider v3 reads it); everywhere else it is contents.
      if (a.encoding === 'base64' && typeof v === 'string' && SOURCE_FILE_PADDED.test(v) && this.def.kind !== 'strategy') {
        diags.push(
          error(
            'Implementation values must be file contents, not file paths',
            `"${v}" looks like a file name. Please use 'file("${v}")' to pass the file's contents. ${DOCS}`,
            at(),
          ),
        )
      }
      // Sym's impl.py is accepted (configurations must apply unchanged), but said plainly: it will not run.
      if (a.encoding === 'base64' && typeof v === 'string' && looksLikePython(v)) {
        diags.push(warning('Python implementation cannot run yet', PYTHON_NOT_RUNNABLE, at()))
      }
      if (name === 'vars' && typeof v === 'object' && !Array.isArray(v)) {
        for (const [k, x] of Object.entries(v)) {
          if (typeof x !== 'string') continue
          if (LOOKS_INT.test(x)) diags.push(warning('Variable looks like an integer', `vars["${k}"] = "${x}" appears to be an integer. Values in vars are strings; cast it back with Number() in your implementation.`, [...at(), { key: k }]))
          if (LOOKS_BOOL.has(x)) diags.push(warning('Variable looks like a boolean', `vars["${k}"] = "${x}" appears to be a boolean. Values in vars are strings; compare it against "true" or "false" in your implementation.`, [...at(), { key: k }]))
        }
      }
      if (name === 'allowed_values' && Array.isArray(v) && v.length && path.length && owner.name === 'target_id') {
        diags.push(warning('allowed_values ignored', "prompt_fields named 'target_id' have auto-populated allowed_values, so the defined allowed_values will be ignored.", at()))
      }
    })
    if (diags.some((d) => d.severity === 'error')) return diags
    // Base64 attributes (implementations) stay text: the rules would only decode what toApiBody encoded, which cannot fail.
    const body = toApiBody(this.def, config as TfObject, { base64AsText: true })
    for (const e of validateEntityRules(this.def, body, { base64AsText: true })) diags.push(error(`Invalid ${e.field}`, `${e.field} ${e.message}. ${DOCS}`, terraformPath(this.def, e.field)))
    return diags
  }

  /** Parses `terraform import` ids with the messages of Sym's provider. */
  parseImportId(id: string): { slug: string; type?: string } {
    switch (this.def.lookup) {
      case 'singleton':
        if (isUuid(id)) throw new DiagnosticsError([error('Invalid import id', `${this.def.typeName} is imported with any identifier that is not a UUID, e.g. "${this.def.importExample}".`)])
        return { slug: id }
      case 'slug':
        if (isUuid(id)) {
          throw new DiagnosticsError([
            error('Invalid import id', `Looks like you tried to import a ${this.def.typeName} by UUID, but it only supports importing by \`SLUG\`, e.g. "${this.def.importExample}". ${DOCS}`),
          ])
        }
        return { slug: id }
      case 'type_slug': {
        const parts = id.split(':')
        if (parts.length !== 2 || !parts[0] || !parts[1]) {
          throw new DiagnosticsError([error('Invalid import id', `Identifiers must be in the form of \`TYPE:SLUG\`, e.g. "${this.def.importExample}". ${DOCS}`)])
        }
        return { type: parts[0], slug: parts[1] }
      }
    }
  }

  async create(planned: TfObject): Promise<TfObject> {
    const view = await this.request<Json>('POST', this.base, toApiBody(this.def, withFileContents(this.def, planned)))
    return this.state(view, planned)
  }

  /** The current state, or null when the object is gone. An id that is not a UUID is an import id. */
  async read(state: TfObject): Promise<TfObject | null> {
    const id = typeof state.id === 'string' ? state.id : ''
    try {
      if (this.def.lookup === 'singleton') return this.state(await this.request<Json>('GET', this.base), state)
      if (isUuid(id)) return this.state(await this.request<Json>('GET', `${this.base}/${id}`), state)
    } catch (e) {
      if (e instanceof DiagnosticsError && e.status === 404) return null
      throw e
    }
    const { slug, type } = this.parseImportId(id)
    const found = await this.find(slug, type)
    if (found.length > 1) {
      throw new DiagnosticsError([error('Ambiguous import id', `one ${this.def.typeName} with the name "${slug}" was expected, but ${found.length} were found.`)])
    }
    return found[0] ? this.state(found[0], null) : null
  }

  async update(planned: TfObject): Promise<TfObject> {
    const path = this.def.lookup === 'singleton' ? this.base : `${this.base}/${text(planned.id)}`
    const view = await this.request<Json>('PATCH', path, toApiBody(this.def, withFileContents(this.def, planned)))
    return this.state(view, planned)
  }

  async delete(prior: TfObject): Promise<void> {
    const path = this.def.lookup === 'singleton' ? this.base : `${this.base}/${text(prior.id)}`
    try {
      await this.request('DELETE', path)
    } catch (e) {
      // Already gone is what delete wants.
      if (!(e instanceof DiagnosticsError && e.status === 404)) throw e
    }
  }

  find(slug: string, type?: string): Promise<Json[]> {
    const query = new URLSearchParams(type ? { slug, type } : { slug })
    return this.request<Json[]>('GET', `${this.base}?${query.toString()}`)
  }

  private state(view: Json, prior: TfObject | null): TfObject {
    const state = fromApiView(this.def, view, prior)
    // A strategy configured with a file path keeps the path in state while the file's contents are what is stored.
    const configured = prior?.implementation
    if (this.def.kind === 'strategy' && typeof configured === 'string' && readSourceFile(configured) === state.implementation) state.implementation = configured
    return state
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    try {
      return await this.call<T>(method, path, body)
    } catch (e) {
      throw apiDiagnostics(this.def, e)
    }
  }
}

/** Looks up the one entity a data source names. */
export async function readDataSource(d: DataSourceDef, resource: SymResource, config: TfObject): Promise<TfObject> {
  const slug = text(config.name)
  const type = typeof config.type === 'string' ? config.type : undefined
  const found = await resource.find(slug, type)
  if (found.length !== 1) {
    throw new DiagnosticsError([error(`${d.typeName} not found`, `one ${d.typeName} with the name "${slug}"${type ? ` and type "${type}"` : ''} was expected, but ${found.length} were found.`)])
  }
  const state = fromApiView({ ...d.resource, attributes: d.attributes, blocks: undefined }, found[0]!, config)
  return state
}

function readSourceFile(value: string): string | undefined {
  const path = value.trim()
  if (!SOURCE_FILE.test(path) || !existsSync(path)) return undefined
  return readFileSync(path, 'utf8')
}

/** Sym's provider v3 reads a custom strategy's implementation from the file it names. */
function withFileContents(def: ResourceDef, tf: TfObject): TfObject {
  if (def.kind !== 'strategy' || typeof tf.implementation !== 'string') return tf
  const contents = readSourceFile(tf.implementation)
  return contents === undefined ? tf : { ...tf, implementation: contents }
}

/** A definition's attributes and blocks as entry lists, made once (every ValidateResourceConfig walks them). */
interface DefEntries {
  readonly attributes: ReadonlyArray<readonly [string, AttributeDef]>
  readonly blocks: ReadonlyArray<readonly [string, BlockDef]>
}

const defEntriesCache = new WeakMap<object, Map<object | undefined, DefEntries>>()

function defEntries(attributes: Readonly<Record<string, AttributeDef>>, blocks: Readonly<Record<string, BlockDef>> | undefined): DefEntries {
  let byBlocks = defEntriesCache.get(attributes)
  if (!byBlocks) defEntriesCache.set(attributes, (byBlocks = new Map()))
  let entries = byBlocks.get(blocks)
  if (!entries) byBlocks.set(blocks, (entries = { attributes: Object.entries(attributes), blocks: Object.entries(blocks ?? {}) }))
  return entries
}

function walkAttributes(
  attributes: Readonly<Record<string, AttributeDef>>,
  blocks: Readonly<Record<string, BlockDef>> | undefined,
  value: TfConfigObject,
  path: PathStep[],
  visit: (a: AttributeDef, name: string, v: TfConfigValue, path: PathStep[], owner: TfConfigObject) => void,
): void {
  // Index loops over cached entries: this runs in every ValidateResourceConfig, mostly before V8 optimises it.
  const entries = defEntries(attributes, blocks)
  for (let i = 0; i < entries.attributes.length; i++) {
    const name = entries.attributes[i]![0]
    visit(entries.attributes[i]![1], name, value[name] ?? null, path, value)
  }
  for (let i = 0; i < entries.blocks.length; i++) {
    const name = entries.blocks[i]![0]
    const b = entries.blocks[i]![1]
    const items = value[name]
    if (!Array.isArray(items)) continue
    for (let j = 0; j < items.length; j++) {
      const item = items[j]
      if (item && typeof item === 'object' && !Array.isArray(item)) walkAttributes(b.attributes, b.blocks, item, [...path, { attribute: name }, { index: j }], visit)
    }
  }
}

const text = (v: TfValue | undefined): string => (typeof v === 'string' ? v : '')

const error = (summary: string, detail: string, path?: readonly PathStep[]): Diagnostic => ({ severity: 'error', summary, detail, ...(path?.length ? { path } : {}) })
const warning = (summary: string, detail: string, path?: readonly PathStep[]): Diagnostic => ({ severity: 'warning', summary, detail, ...(path?.length ? { path } : {}) })

/** API failures as diagnostics: field errors on their attributes; auth and transport errors as one clear message. */
export function apiDiagnostics(def: ResourceDef, e: unknown): DiagnosticsError {
  if (!(e instanceof SymApiError)) {
    const cause = e instanceof Error ? (e.cause instanceof Error ? `${e.message}: ${e.cause.message}` : e.message) : String(e)
    return new DiagnosticsError([error('Cannot reach the Sym API', `An unexpected error occurred while connecting to the Sym API: ${cause}. Check api_url / SYM_API_URL and that the API is running. ${DOCS}`)], 0)
  }
  const req = `(request id ${e.requestId})`
  switch (e.status) {
    case 400:
    case 409: {
      const diags = e.errors.length
        ? e.errors.map((f) => {
            const path = terraformPath(def, f.field)
            const where = path.length ? formatPath(path) : f.field
            return error(e.status === 409 ? 'Conflict' : 'Invalid configuration', `The Sym API returned a bad request error: ${where} ${f.message} ${req}`, path)
          })
        : [error('Invalid configuration', `The Sym API returned a bad request error: ${e.message} ${req}`)]
      return new DiagnosticsError(diags, e.status)
    }
    case 401:
      return new DiagnosticsError([error('Unauthorized', `Your Sym access token is missing or invalid. Set $SYM_JWT (or the variable named by jwt_env_var) to a valid token ${req}. ${DOCS}`)], 401)
    case 403:
      return new DiagnosticsError([error('Forbidden', `You do not have permission to perform this action. Please ensure your role is \`admin\` or use a bot token ${req}. ${DOCS}`)], 403)
    case 404:
      return new DiagnosticsError([error('Not found', `The Sym API has no such ${def.title} ${req}.`)], 404)
    default:
      return new DiagnosticsError([error('Sym API error', `An unexpected error occurred (status ${e.status}): ${e.message} ${req}. ${DOCS}`)], e.status)
  }
}
