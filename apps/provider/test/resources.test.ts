import { buildApp } from '@opensym/api'
import { createDb, type Db } from '@opensym/db'
import { resources, type ResourceDef } from '@opensym/provider-schema'
import { createTransport } from '@opensym/sdk'
import { createTestOrg, type TestOrg } from '@opensym/testing'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { formatPath, withDefaults, type TfObject } from '../src/convert.js'
import { DiagnosticsError, SymResource, UNKNOWN, type Diagnostic, type TfConfigObject } from '../src/resources.js'

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
  org = await createTestOrg(db, 'provider')
})
afterAll(async () => {
  await app.close()
  await db.$disconnect()
  redis.disconnect()
})

const sym = (def: ResourceDef, token = org.tokens.bot) => new SymResource(def, createTransport({ baseUrl: apiUrl, token }))
/** A configuration as Terraform would plan it (every attribute present). */
const planned = (def: ResourceDef, config: TfObject): TfObject => withDefaults(def.attributes, def.blocks, { id: null, ...config })
const idOf = (o: TfObject): string => o.id as string
const paths = (diags: readonly Diagnostic[]) => diags.map((d) => `${d.severity}:${formatPath(d.path ?? [])}`)

async function failure(p: Promise<unknown>): Promise<DiagnosticsError> {
  const e = await p.then(() => undefined, (x: unknown) => x)
  if (!(e instanceof DiagnosticsError)) throw new Error(`expected diagnostics, got ${String(e)}`)
  return e
}

describe('SymResource against the real API', () => {
  it('creates, reads, imports, updates and deletes a graph of resources', async () => {
    const slack = await sym(resources.integration).create(planned(resources.integration, { type: 'slack', name: 'Main-Slack', external_id: 'T1', label: 'Slack' }))
    expect(slack).toMatchObject({ id: expect.any(String), name: 'Main-Slack', settings: {} })
    const env = await sym(resources.environment).create(planned(resources.environment, { name: 'prod', integrations: { slack_id: idOf(slack) } }))
    const target = await sym(resources.target).create(planned(resources.target, { type: 'custom', name: 'deploy', settings: {} }))
    const strategy = await sym(resources.strategy).create(planned(resources.strategy, { type: 'http', name: 'web', targets: [idOf(target)], settings: { url: 'https://access.example.com/sym' } }))
    expect(strategy.integration_id).toBeNull()
    const flowConfig = planned(resources.flow, {
      name: 'Deploy',
      implementation: 'export const getPermissions = () => ({})\n',
      environment_id: idOf(env),
      vars: { channel: '#deploys' },
      params: [{ strategy_id: idOf(strategy), prompt_field: [{ name: 'reason', type: 'string' }] }],
    })
    const flow = await sym(resources.flow).create(flowConfig)
    expect(flow).toEqual({ ...flowConfig, id: flow.id, params: [withDefaults(resources.flow.blocks.params.attributes, resources.flow.blocks.params.blocks, (flowConfig.params as TfObject[])[0]!)] })
    expect(await sym(resources.flow).read(flow)).toEqual(flow)

    // Import by slug reads the object back by its own id.
    const imported = await sym(resources.flow).read({ id: 'deploy' })
    expect(imported).toMatchObject({ id: flow.id, name: 'deploy', implementation: flowConfig.implementation })
    expect(await sym(resources.integration).read({ id: 'slack:main-slack' })).toMatchObject({ id: slack.id })

    const updated = await sym(resources.flow).update({ ...flow, label: 'Deploy to prod' })
    expect(updated.label).toBe('Deploy to prod')

    for (const [def, s] of [[resources.flow, flow], [resources.strategy, strategy], [resources.target, target], [resources.environment, env], [resources.integration, slack]] as const) {
      await sym(def).delete(s)
      expect(await sym(def).read(s)).toBeNull()
      await sym(def).delete(s)
    }
  })

  it('maps API field errors to the Terraform attribute, and auth failures to one clear diagnostic', async () => {
    const missing = '00000000-0000-4000-8000-000000000000'
    const e = await failure(sym(resources.flow).create(planned(resources.flow, { name: 'x', implementation: 'x', environment_id: missing, params: [{ strategy_id: missing }] })))
    expect(paths(e.diagnostics)).toEqual(['error:environment_id', 'error:params[0].strategy_id'])
    expect(e.diagnostics[0]!.detail).toContain(`no environment with id ${missing}`)
    const unauthorized = await failure(sym(resources.runtime, 'sym_bad').create(planned(resources.runtime, { name: 'r' })))
    expect(unauthorized.diagnostics[0]).toMatchObject({ summary: 'Unauthorized', detail: expect.stringContaining('access token is missing or invalid') })
    const down = await failure(new SymResource(resources.runtime, createTransport({ baseUrl: 'http://127.0.0.1:1/api/v1', token: 't' })).create(planned(resources.runtime, { name: 'r' })))
    expect(down.diagnostics[0]!.detail).toContain('An unexpected error occurred while connecting to the Sym API')
  })

  it('rejects import ids of the wrong form with Sym\'s messages', () => {
    expect(() => sym(resources.flow).parseImportId('60c49c8c-f181-41e4-8696-99cc0b0ffc4f')).toThrow(/only supports importing by `SLUG`/)
    expect(() => sym(resources.strategy).parseImportId('just-a-slug')).toThrow(/form of `TYPE:SLUG`/)
    expect(() => sym(resources.strategy).parseImportId('a:b:c')).toThrow(/form of `TYPE:SLUG`/)
    expect(sym(resources.strategy).parseImportId('aws_sso:prod')).toEqual({ type: 'aws_sso', slug: 'prod' })
  })
})

describe('validate', () => {
  const flow = (params: TfConfigObject, extra: TfConfigObject = {}): TfConfigObject =>
    planned(resources.flow, { name: 'f', implementation: 'export {}', environment_id: '60c49c8c-f181-41e4-8696-99cc0b0ffc4f', params: [params as TfObject], ...(extra as TfObject) })

  it('puts each problem on its attribute', () => {
    expect(paths(sym(resources.flow).validate(flow({ prompt_field: [{ name: 'r', type: 'text' }] })))).toEqual(['error:params[0].prompt_field[0].type'])
    expect(paths(sym(resources.flow).validate(flow({}, { implementation: 'impl.py' })))).toEqual(['error:implementation'])
    expect(sym(resources.flow).validate(flow({}, { implementation: 'impl.ts' }))[0]!.detail).toContain(`'file("impl.ts")'`)
    const strategy = planned(resources.strategy, { type: 'okta', name: 's', targets: [] })
    expect(paths(sym(resources.strategy).validate(strategy))).toEqual(['error:integration_id'])
    expect(paths(sym(resources.target).validate(planned(resources.target, { type: 'okta_group', name: 't', settings: {} })))).toEqual(['error:settings["group_id"]'])
    const metadata = planned(resources.strategy, { type: 'http', name: 'web', targets: [], settings: { url: 'http://169.254.169.254/latest/meta-data/' } })
    const refused = sym(resources.strategy).validate(metadata)
    expect(paths(refused)).toEqual(['error:settings["url"]'])
    expect(refused[0]!.detail).toContain('must not point at a link-local, metadata or reserved address (169.254.169.254)')
    expect(paths(sym(resources.log_destination).validate(planned(resources.log_destination, { type: 'http', settings: { url: 'logs.example.com/sym' } })))).toEqual(['error:settings["url"]'])
  })

  it('warns about vars that look like numbers or booleans, and allowed_values on target_id', () => {
    const diags = sym(resources.flow).validate(flow({ prompt_field: [{ name: 'target_id', type: 'string', allowed_values: ['a'] }] }, { vars: { n: '1', t: 'true', s: 'x' } }))
    expect(paths(diags)).toEqual(['warning:vars["n"]', 'warning:vars["n"]', 'warning:vars["t"]', 'warning:params[0].prompt_field[0].allowed_values'])
  })

  it('warns on the attribute that a Python implementation (Sym\'s impl.py) is stored but cannot run yet', () => {
    const impl = 'from sym.sdk.annotations import reducer\n\n@reducer\ndef get_approvers(event):\n    return slack.channel("#access")\n'
    const diags = sym(resources.flow).validate(flow({}, { implementation: impl }))
    expect(paths(diags)).toEqual(['warning:implementation'])
    expect(diags[0]!.detail).toContain('rewrite it in TypeScript with @opensym/sdk')
    expect(sym(resources.flow).validate(flow({}, { implementation: 'export function getPermissions() { return {} }' }))).toEqual([])
  })

  it('lets unknown values through', () => {
    const strategy: TfConfigObject = { ...planned(resources.strategy, { type: 'okta', name: 's', targets: [] }), integration_id: UNKNOWN, targets: [UNKNOWN, UNKNOWN] }
    expect(sym(resources.strategy).validate(strategy)).toEqual([])
    expect(sym(resources.target).validate({ ...planned(resources.target, { type: 'okta_group', name: 't' }), settings: UNKNOWN })).toEqual([])
    expect(sym(resources.flow).validate(flow({ prompt_field: [{ name: UNKNOWN, type: 'string' }, { name: UNKNOWN, type: 'string' }] }))).toEqual([])
  })
})
