import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { Compile } from 'typebox/compile'
import { describe, expect, it } from 'vitest'
import {
  apiSchemas,
  dataSources,
  fullDescription,
  generatedFiles,
  jsonName,
  providerSchemasDocument,
  PROVIDER_ADDRESS,
  renderDocs,
  resourceList,
  resources,
  type AttributeDef,
  type BlockDef,
} from '../src/index.js'

const repoRoot = resolve(import.meta.dirname, '../../..')

/** Every attribute in a definition, blocks included: [terraform path, API path, def]. */
function walk(
  attributes: Readonly<Record<string, AttributeDef>>,
  blocks: Readonly<Record<string, BlockDef>> | undefined,
  tf = '',
  api = '',
): [string, string, AttributeDef][] {
  const out: [string, string, AttributeDef][] = []
  for (const [n, a] of Object.entries(attributes)) out.push([tf + n, api + jsonName(n, a), a])
  for (const [n, b] of Object.entries(blocks ?? {})) out.push(...walk(b.attributes, b.blocks, `${tf}${n}.`, `${api}${jsonName(n, b)}.`))
  return out
}

/** Finds a sub-schema of an object schema by dotted API path (arrays step into their items). */
function apiSchemaAt(schema: unknown, path: string): Record<string, unknown> | undefined {
  let s = schema as Record<string, unknown> | undefined
  for (const part of path.split('.')) {
    if (s?.type === 'array') s = s.items as Record<string, unknown>
    s = (s?.properties as Record<string, Record<string, unknown>> | undefined)?.[part]
  }
  return s
}

type TfBlock = { attributes?: Record<string, Record<string, unknown>>; block_types?: Record<string, { block: TfBlock; max_items?: number }> }
function tfAttributeAt(block: TfBlock, path: string): Record<string, unknown> | undefined {
  const parts = path.split('.')
  let b: TfBlock | undefined = block
  for (const p of parts.slice(0, -1)) b = b?.block_types?.[p]?.block
  return b?.attributes?.[parts.at(-1)!]
}

describe('the catalogue', () => {
  it('defines every resource and data source of Sym\'s provider', () => {
    expect(resourceList.map((r) => r.typeName).sort()).toEqual(
      [
        'sym_environment',
        'sym_error_logger',
        'sym_flow',
        'sym_flows_filter',
        'sym_integration',
        'sym_log_destination',
        'sym_runtime',
        'sym_secret',
        'sym_secrets',
        'sym_strategy',
        'sym_target',
      ].sort(),
    )
    expect(dataSources.map((d) => d.typeName).sort()).toEqual(['sym_environment', 'sym_integration', 'sym_runtime', 'sym_secrets'])
  })

  it('uses the API paths and field names Sym\'s provider sends', () => {
    expect(Object.fromEntries(resourceList.map((r) => [r.typeName, r.path]))).toEqual({
      sym_integration: 'integrations',
      sym_target: 'access-targets',
      sym_strategy: 'access-strategies',
      sym_flow: 'flows',
      sym_environment: 'environments',
      sym_runtime: 'runtimes',
      sym_secrets: 'secret-sources',
      sym_secret: 'secrets',
      sym_error_logger: 'error-loggers',
      sym_log_destination: 'log-destinations',
      sym_flows_filter: 'flows-filter',
    })
    expect(jsonName('name', resources.flow.attributes.name)).toBe('slug')
    expect(jsonName('prompt_field', resources.flow.blocks.params.blocks.prompt_field)).toBe('prompt_fields')
  })

  it('declares plan modifiers where they mean something: use-state-for-unknown on computed values, requires-replace on configurable ones', () => {
    for (const r of resourceList) {
      for (const [path, , a] of walk(r.attributes, r.blocks)) {
        if (a.planModifiers?.includes('useStateForUnknown')) expect(a.mode, `${r.typeName}.${path}`).toMatch(/computed/)
        if (a.requiresReplace) expect(a.mode, `${r.typeName}.${path}`).not.toBe('computed')
      }
      expect(r.attributes.id?.planModifiers, r.typeName).toEqual(['useStateForUnknown'])
    }
    // Data sources are read, never planned.
    for (const d of dataSources) for (const a of Object.values(d.attributes)) expect(a.planModifiers ?? a.requiresReplace).toBeUndefined()
  })

  it('says in the description when changing an attribute replaces the object', () => {
    const a = { type: 'string', mode: 'optional', description: 'The region.', requiresReplace: true } as const satisfies AttributeDef
    expect(fullDescription(a)).toBe('The region. Changing this forces a new resource to be created.')
    expect(fullDescription({ ...a, requiresReplace: undefined })).toBe('The region.')
  })

  it('describes every attribute and block', () => {
    for (const r of resourceList) {
      expect(r.description.length, r.typeName).toBeGreaterThan(40)
      for (const [path, , a] of walk(r.attributes, r.blocks)) expect(a.description.length, `${r.typeName}.${path}`).toBeGreaterThan(10)
    }
  })
})

describe('derivations agree with the definitions', () => {
  const doc = providerSchemasDocument().provider_schemas[PROVIDER_ADDRESS]!
  const pages = renderDocs(() => ({}))

  for (const r of resourceList) {
    describe(r.typeName, () => {
      const attrs = walk(r.attributes, r.blocks)
      const { body, view } = apiSchemas[r.kind]

      it('every non-computed attribute is in the API body and view schemas, under its JSON name', () => {
        for (const [, api, a] of attrs) {
          const inBody = apiSchemaAt(body, api)
          // Computed attributes are the API's to set; only `id` may be echoed back in a body (and is ignored).
          if (a.mode === 'computed') expect(api === 'id' || inBody === undefined, api).toBe(true)
          else expect(inBody, api).toBeDefined()
          if (a.mode !== 'computed') expect(apiSchemaAt(view, api), api).toBeDefined()
        }
        expect(apiSchemaAt(view, 'id')).toMatchObject({ format: 'uuid' })
        const required = (body as { required?: string[] }).required ?? []
        const top = Object.entries(r.attributes).filter(([, a]) => a.mode === 'required').map(([n, a]) => jsonName(n, a))
        expect(new Set(required)).toEqual(new Set(top))
      })

      it('every attribute is in the Terraform schema with its mode, and blocks keep their nesting', () => {
        const schema = doc.resource_schemas[r.typeName]!
        expect(schema.version).toBe(r.schemaVersion)
        for (const [tf, , a] of attrs) {
          const t = tfAttributeAt(schema.block as TfBlock, tf)
          expect(t, tf).toBeDefined()
          expect(Boolean(t!.required), tf).toBe(a.mode === 'required')
          expect(Boolean(t!.optional), tf).toBe(a.mode === 'optional' || a.mode === 'optional_computed')
          expect(t!.description_kind).toBe('markdown')
        }
      })

      it('every attribute is documented on the resource page', () => {
        const page = pages[`resources/${r.typeName.replace(/^sym_/, '')}.md`]!
        expect(page).toContain(`# ${r.typeName} (Resource)`)
        for (const [tf] of attrs) expect(page, tf).toContain(`- \`${tf.split('.').at(-1)}\``)
        for (const [n] of Object.entries(r.blocks ?? {})) expect(page).toContain(`### Nested Schema for \`${n}\``)
        expect(page).toContain(`terraform import ${r.typeName}.this ${r.importExample}`)
      })
    })
  }

  it('data sources keep lookup keys required and fill the rest', () => {
    for (const d of dataSources) {
      const schema = doc.data_source_schemas[d.typeName]!.block as TfBlock
      for (const [n, a] of Object.entries(d.attributes)) {
        expect(schema.attributes?.[n], `${d.typeName}.${n}`).toBeDefined()
        if (a.mode !== 'required') expect(schema.attributes![n]!.computed, `${d.typeName}.${n}`).toBe(true)
      }
      expect(pages[`data-sources/${d.typeName.replace(/^sym_/, '')}.md`]).toContain(`# ${d.typeName} (Data Source)`)
    }
    expect(Object.keys(doc.data_source_schemas.sym_integration!.block.attributes!).sort()).toEqual(
      ['external_id', 'id', 'label', 'name', 'settings', 'type'],
    )
  })

  it('flow params is a single-item block list holding the prompt_field list', () => {
    const params = doc.resource_schemas.sym_flow!.block.block_types!.params!
    expect(params).toMatchObject({ nesting_mode: 'list', max_items: 1 })
    expect(params.block.block_types!.prompt_field).toMatchObject({ nesting_mode: 'list' })
    expect(apiSchemaAt(apiSchemas.flow.body, 'params')).toMatchObject({ type: 'object' })
    expect(apiSchemaAt(apiSchemas.flow.body, 'params.prompt_fields')).toMatchObject({ type: 'array' })
  })

  it('the API body schema accepts the reference bodies and rejects bad ones', () => {
    const flow = Compile(apiSchemas.flow.body)
    const good = {
      slug: 'sso_access',
      label: 'SSO Access',
      implementation: Buffer.from('export {}').toString('base64'),
      environment_id: '60c49c8c-f181-41e4-8696-99cc0b0ffc4f',
      vars: { request_channel: '#sym-requests' },
      params: {
        strategy_id: '60c49c8c-f181-41e4-8696-99cc0b0ffc4f',
        allow_revoke: true,
        schedule_deescalation: true,
        include_decision_message: false,
        allow_guest_interaction: false,
        additional_header_text: '',
        allowed_sources: ['slack', 'api'],
        prompt_fields: [
          { name: 'reason', type: 'string', required: true, label: 'Reason', default: '', visible: true, allowed_values: [], prefetch: false, on_change: '' },
        ],
      },
    }
    expect(flow.Check(good)).toBe(true)
    expect(flow.Check({ ...good, params: { ...good.params, allowed_sources: ['email'] } })).toBe(false)
    expect(flow.Check({ ...good, surprise: 1 })).toBe(false)
    expect(flow.Check({ ...good, vars: { n: 1 } })).toBe(false)
    const { slug: _slug, ...noSlug } = good
    expect(flow.Check(noSlug)).toBe(false)
  })

  it('the committed generated files are current (run `npm run generate:all`)', () => {
    for (const [path, text] of Object.entries(generatedFiles(repoRoot))) {
      expect(readFileSync(resolve(repoRoot, path), 'utf8'), path).toBe(text)
    }
  })
})
