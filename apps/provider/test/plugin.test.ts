import { buildApp } from '@opensym/api'
import { createDb, type Db } from '@opensym/db'
import { providerSchemasDocument, PROVIDER_ADDRESS, resources, type TerraformBlock, type TerraformSchema } from '@opensym/provider-schema'
import { createTestOrg, type TestOrg } from '@opensym/testing'
import { decodeMsgpack, encodeMsgpack, isUnknown, type CtyValue } from '@opensym/tfplugin/cty'
import type { DynamicValue, ProtoBlock, ProtoSchema } from '@opensym/tfplugin/runtime'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { withDefaults } from '../src/convert.js'
import { SymProvider, upgradeFlowV0 } from '../src/plugin.js'
import { UNKNOWN, type TfConfigObject } from '../src/resources.js'
import { blockType, fromPlain, toPlain } from '../src/values.js'

let app: FastifyInstance
let db: Db
let redis: Redis
let org: TestOrg
let apiUrl: string
beforeAll(async () => {
  db = createDb(inject('databaseUrl'), { poolSize: 2 })
  redis = new Redis(inject('redisUrl'), { lazyConnect: true })
  app = await buildApp({ config: { logLevel: 'silent' }, db, redis })
  apiUrl = `${await app.listen({ port: 0, host: '127.0.0.1' })}/api/v1`
  org = await createTestOrg(db, 'plugin')
})
afterAll(async () => {
  await app.close()
  await db.$disconnect()
  redis.disconnect()
})

const providerType = blockType({ org: resources.flow.attributes.name, jwt_env_var: resources.flow.attributes.label, api_url: resources.flow.attributes.label }, undefined)
const dv = (plain: TfConfigObject | null, type: ReturnType<typeof blockType>): DynamicValue => ({ msgpack: encodeMsgpack(plain ? fromPlain(plain, type) : { kind: 'null' }, type) })
const plainOf = (v: DynamicValue | undefined, type: ReturnType<typeof blockType>) => toPlain(decodeMsgpack(v!.msgpack!, type)) as TfConfigObject

async function configured(): Promise<SymProvider> {
  const p = new SymProvider({ env: { SYM_JWT: org.tokens.bot } })
  const res = p.configureProvider({ config: dv({ org: org.slug, jwt_env_var: null, api_url: apiUrl }, providerType) })
  expect(res.diagnostics).toEqual([])
  return p
}

describe('SymProvider RPCs, in process, against the real API', () => {
  const runtimeType = blockType(resources.runtime.attributes, undefined)
  const config = (name: string): TfConfigObject => ({ id: null, name, label: null, context_id: null })

  it('plans a create with an unknown id, applies it, reads it, and plans no change after', async () => {
    const p = await configured()
    const plan = await p.planResourceChange({ type_name: 'sym_runtime', prior_state: dv(null, runtimeType), proposed_new_state: dv(config('Main'), runtimeType), config: dv(config('Main'), runtimeType) })
    expect(plan.diagnostics).toEqual([])
    const planned = decodeMsgpack(plan.planned_state!.msgpack, runtimeType) as Extract<CtyValue, { kind: 'object' }>
    expect(isUnknown(planned.attributes.get('id')!)).toBe(true)

    const applied = await p.applyResourceChange({ type_name: 'sym_runtime', prior_state: dv(null, runtimeType), planned_state: plan.planned_state!, config: dv(config('Main'), runtimeType) })
    expect(applied.diagnostics).toEqual([])
    const state = plainOf(applied.new_state, runtimeType)
    expect(state).toMatchObject({ name: 'Main', id: expect.stringMatching(/^[0-9a-f-]{36}$/) })

    const read = await p.readResource({ type_name: 'sym_runtime', current_state: applied.new_state })
    expect(plainOf(read.new_state, runtimeType)).toEqual(state)

    // "main" in the API, "Main" in configuration: no diff.
    const again = await p.planResourceChange({ type_name: 'sym_runtime', prior_state: read.new_state, proposed_new_state: dv({ ...state, name: 'MAIN' }, runtimeType), config: dv({ ...config('MAIN') }, runtimeType) })
    expect(plainOf(again.planned_state, runtimeType)).toEqual(state)

    // Deleted behind Terraform's back: read returns null so Terraform plans a re-create.
    await p.applyResourceChange({ type_name: 'sym_runtime', prior_state: read.new_state, planned_state: dv(null, runtimeType) })
    const gone = await p.readResource({ type_name: 'sym_runtime', current_state: read.new_state })
    expect(decodeMsgpack(gone.new_state!.msgpack, runtimeType)).toEqual({ kind: 'null' })
  })

  it('plans an update in place, keeping the id and replacing nothing, and applies it', async () => {
    const p = await configured()
    const created = await p.applyResourceChange({
      type_name: 'sym_runtime',
      prior_state: dv(null, runtimeType),
      planned_state: (await p.planResourceChange({ type_name: 'sym_runtime', prior_state: dv(null, runtimeType), proposed_new_state: dv(config('upd'), runtimeType), config: dv(config('upd'), runtimeType) })).planned_state!,
      config: dv(config('upd'), runtimeType),
    })
    const state = plainOf(created.new_state, runtimeType)
    const labelled = { ...config('upd'), label: 'Updated' }
    const plan = await p.planResourceChange({ type_name: 'sym_runtime', prior_state: created.new_state, proposed_new_state: dv({ ...labelled, id: state.id! }, runtimeType), config: dv(labelled, runtimeType) })
    expect(plan.diagnostics).toEqual([])
    expect(plan.requires_replace).toEqual([])
    expect(plainOf(plan.planned_state, runtimeType)).toEqual({ ...state, label: 'Updated' })
    const applied = await p.applyResourceChange({ type_name: 'sym_runtime', prior_state: created.new_state, planned_state: plan.planned_state!, config: dv(labelled, runtimeType) })
    expect(applied.diagnostics).toEqual([])
    expect(plainOf(applied.new_state, runtimeType)).toEqual({ ...state, label: 'Updated' })
  })

  it('fills defaults at plan time and keeps unknown references unknown', async () => {
    const p = await configured()
    const flowType = blockType(resources.flow.attributes, resources.flow.blocks)
    const flow: TfConfigObject = {
      id: null,
      name: 'f',
      label: null,
      implementation: 'export {}',
      environment_id: UNKNOWN,
      vars: null,
      params: [{ strategy_id: null, allow_revoke: null, schedule_deescalation: false, include_decision_message: null, allowed_sources: null, additional_header_text: null, allow_guest_interaction: null, prompt_field: [] }],
    }
    const plan = await p.planResourceChange({ type_name: 'sym_flow', prior_state: dv(null, flowType), proposed_new_state: dv(flow, flowType), config: dv(flow, flowType) })
    expect(plainOf(plan.planned_state, flowType)).toEqual({
      ...flow,
      id: UNKNOWN,
      vars: {},
      params: [{ strategy_id: null, allow_revoke: true, schedule_deescalation: false, include_decision_message: false, allowed_sources: null, additional_header_text: null, allow_guest_interaction: false, prompt_field: [] }],
    })
  })

  it('validates with diagnostics on the attribute path', () => {
    const p = new SymProvider({ env: {} })
    const flowType = blockType(resources.flow.attributes, resources.flow.blocks)
    const flow = withDefaults(resources.flow.attributes, resources.flow.blocks, { name: 'f', implementation: 'impl.py', environment_id: 'x' })
    const res = p.validateResourceConfig({ type_name: 'sym_flow', config: dv(flow, flowType) })
    expect(res.diagnostics).toEqual([expect.objectContaining({ severity: 1, summary: 'Implementation values must be file contents, not file paths', attribute: { steps: [{ attribute_name: 'implementation' }] } })])
  })

  it('imports by slug: a partial state that read resolves', async () => {
    const p = await configured()
    const envType = blockType(resources.environment.attributes, undefined)
    await fetch(`${apiUrl}/entities/environments`, { method: 'POST', headers: { authorization: `Bearer ${org.tokens.bot}`, 'content-type': 'application/json' }, body: JSON.stringify({ slug: 'imported' }) })
    const imported = await p.importResourceState({ type_name: 'sym_environment', id: 'imported' })
    expect(imported.diagnostics).toEqual([])
    const read = await p.readResource({ type_name: 'sym_environment', current_state: imported.imported_resources[0]!.state })
    expect(plainOf(read.new_state, envType)).toMatchObject({ name: 'imported', id: expect.stringMatching(/^[0-9a-f-]{36}$/), integrations: {} })
    const bad = await p.importResourceState({ type_name: 'sym_environment', id: '60c49c8c-f181-41e4-8696-99cc0b0ffc4f' })
    expect(bad.diagnostics[0]!.detail).toContain('only supports importing by `SLUG`')
  })

  it('reports configuration problems as diagnostics, never as exceptions', async () => {
    const p = new SymProvider({ env: { HOME: '/nonexistent' } })
    const res = p.configureProvider({ config: dv({ org: 'x', jwt_env_var: null, api_url: null }, providerType) })
    expect(res.diagnostics[0]).toMatchObject({ summary: 'No Sym token' })
    const plan = await p.readResource({ type_name: 'sym_nope', current_state: null })
    expect(plan.diagnostics[0]).toMatchObject({ summary: 'Unknown resource type' })
  })

  it('upgrades flow state from schema version 0', async () => {
    const p = new SymProvider({ env: {} })
    const flowType = blockType(resources.flow.attributes, resources.flow.blocks)
    const v0 = {
      id: '60c49c8c-f181-41e4-8696-99cc0b0ffc4f',
      name: 'legacy',
      template: 'sym:template:approval:1.0.0',
      implementation: 'x',
      environment_id: '60c49c8c-f181-41e4-8696-99cc0b0ffc4f',
      vars: {},
      params: { strategy_id: '', allow_revoke: 'true', allowed_sources_json: '["slack"]', prompt_fields_json: '[{"name":"reason","type":"string","required":true,"allowed_values":[1,"b"]}]' },
    }
    expect(upgradeFlowV0(v0)).not.toHaveProperty('template')
    const res = await p.upgradeResourceState({ type_name: 'sym_flow', version: 0, raw_state: { json: new TextEncoder().encode(JSON.stringify(v0)) } })
    expect(res.diagnostics).toEqual([])
    const state = plainOf(res.upgraded_state, flowType)
    expect(state.params).toEqual([
      expect.objectContaining({ allow_revoke: true, allowed_sources: ['slack'], prompt_field: [expect.objectContaining({ name: 'reason', allowed_values: ['1', 'b'] })] }),
    ])
  })

  it('serves exactly the schema document `terraform providers schema -json` is generated from', () => {
    const asDocument = (b: ProtoBlock): TerraformBlock => {
      const out: TerraformBlock = { description_kind: 'markdown' }
      if (b.description) out.description = b.description
      if (b.attributes.length) {
        out.attributes = Object.fromEntries(
          b.attributes.map((a) => [
            a.name,
            {
              type: JSON.parse(new TextDecoder().decode(a.type)),
              description: a.description,
              description_kind: 'markdown',
              ...(a.required ? { required: true } : {}),
              ...(a.optional ? { optional: true } : {}),
              ...(a.computed ? { computed: true } : {}),
              ...(a.sensitive ? { sensitive: true } : {}),
            },
          ]),
        )
      }
      if (b.block_types.length) {
        out.block_types = Object.fromEntries(
          b.block_types.map((t) => [
            t.type_name,
            { nesting_mode: t.nesting === 1 ? 'single' : 'list', block: asDocument(t.block), ...(t.min_items ? { min_items: t.min_items } : {}), ...(t.max_items ? { max_items: t.max_items } : {}) },
          ]),
        )
      }
      return out
    }
    const asSchema = (s: ProtoSchema): TerraformSchema => ({ version: s.version, block: asDocument(s.block) })
    const served = new SymProvider({ env: {} }).getProviderSchema()
    const doc = providerSchemasDocument().provider_schemas[PROVIDER_ADDRESS]!
    expect(asSchema(served.provider)).toEqual(doc.provider)
    expect(Object.fromEntries(Object.entries(served.resource_schemas).map(([k, v]) => [k, asSchema(v)]))).toEqual(doc.resource_schemas)
    expect(Object.fromEntries(Object.entries(served.data_source_schemas).map(([k, v]) => [k, asSchema(v)]))).toEqual(doc.data_source_schemas)
  })

  it('serves the schema document as protocol blocks', () => {
    const schema = new SymProvider({ env: {} }).getProviderSchema()
    expect(Object.keys(schema.resource_schemas).sort()).toContain('sym_flow')
    const params = schema.resource_schemas.sym_flow!.block.block_types.find((b) => b.type_name === 'params')!
    expect(params).toMatchObject({ nesting: 2, max_items: 1 })
    expect(new TextDecoder().decode(schema.resource_schemas.sym_flow!.block.attributes.find((a) => a.name === 'vars')!.type)).toBe('["map","string"]')
  })
})
