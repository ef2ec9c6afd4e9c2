/**
 * The resource runtime with a small in-memory resource, `demo_thing`, driven through the RPC methods with msgpack
 * values as Terraform sends them.
 */
import { beforeEach, describe, expect, it } from 'vitest'
import {
  attrStep,
  CtyError,
  CtyType as T,
  CtyValue as V,
  decodeJsonValue,
  decodeMsgpack,
  getAtPath,
  indexStep,
  setAtPath,
  type CtyPath,
  type CtyValue,
} from '../src/cty/index.js'
import {
  DiagnosticsError,
  encodeDynamicValue,
  requiresReplace,
  ResourceServer,
  schemaProblems,
  schemaType,
  useStateForUnknown,
  useStateIf,
  type DynamicValueOut,
  type ProtoDiagnostic,
  type Resource,
  type Schema,
} from '../src/runtime/index.js'

const schema: Schema = {
  version: 2,
  block: {
    description: 'A thing.',
    attributes: {
      id: { type: T.string, computed: true, planModifiers: [useStateForUnknown], description: 'Assigned on create.' },
      name: {
        type: T.string,
        required: true,
        planModifiers: [useStateIf('Keeps the stored case', (p, s) => p.kind === 'string' && s.kind === 'string' && p.value.toLowerCase() === s.value.toLowerCase())],
      },
      kind: { type: T.string, optional: true, planModifiers: [requiresReplace] },
      size: { type: T.number, optional: true, computed: true, default: V.number(3) },
      revision: { type: T.string, computed: true },
      token: { type: T.string, optional: true, sensitive: true },
      tags: { type: T.map(T.string), optional: true },
    },
    blocks: {
      part: {
        nesting: 'list',
        block: {
          attributes: {
            color: { type: T.string, required: true, planModifiers: [requiresReplace] },
            shade: { type: T.string, optional: true, computed: true, default: V.string('light') },
          },
        },
      },
    },
  },
}
const type = schemaType(schema)

/** A `demo_thing` from plain JSON: unset attributes null, no parts. */
const thing = (plain: Record<string, unknown>): CtyValue => decodeJsonValue({ part: [], ...plain }, type)
const dv = (v: CtyValue): DynamicValueOut => encodeDynamicValue(v, type)
const decoded = (d: DynamicValueOut | undefined): CtyValue => decodeMsgpack(d!.msgpack, type)
const at = (v: CtyValue, ...path: CtyPath): CtyValue => getAtPath(v, type, path)!.value
const withUnknown = (v: CtyValue, ...paths: CtyPath[]): CtyValue => paths.reduce((acc, p) => setAtPath(acc, type, p, V.unknown()), v)
const steps = (d: ProtoDiagnostic | undefined) => d?.attribute?.steps

/** Terraform's proposed new state: the configuration, with computed attributes left null taken from the prior state. */
function proposed(config: CtyValue, prior: CtyValue | null): CtyValue {
  if (!prior) return config
  let out = config
  for (const name of ['id', 'revision', 'size']) {
    if (at(config, attrStep(name)).kind === 'null') out = setAtPath(out, type, [attrStep(name)], at(prior, attrStep(name)))
  }
  return out
}

let store: Map<string, CtyValue>
let counter: number
let mutate: ((v: CtyValue) => CtyValue) | undefined
const demo: Resource = {
  schema,
  validate({ config, diagnostics }) {
    const name = at(config, attrStep('name'))
    if (name.kind === 'string' && /\s/.test(name.value)) diagnostics.error('Invalid name', 'name must not contain whitespace', [attrStep('name')])
  },
  create({ plan }) {
    const id = `t-${++counter}`
    const state = setAtPath(setAtPath(plan, type, [attrStep('id')], V.string(id)), type, [attrStep('revision')], V.string(`r${counter}`))
    store.set(id, state)
    return mutate ? mutate(state) : state
  },
  read({ state }) {
    const id = at(state, attrStep('id'))
    return (id.kind === 'string' && store.get(id.value)) || null
  },
  update({ plan }) {
    const state = setAtPath(plan, type, [attrStep('revision')], V.string(`r${++counter}`))
    store.set((at(plan, attrStep('id')) as { value: string }).value, state)
    return mutate ? mutate(state) : state
  },
  delete({ state }) {
    store.delete((at(state, attrStep('id')) as { value: string }).value)
  },
  stateUpgraders: {
    0: ({ title, ...rest }) => ({ ...rest, name: title }),
    1: (state) => ({ ...state, tags: state.labels ?? null }),
  },
}

let server: ResourceServer
beforeEach(() => {
  store = new Map()
  counter = 0
  mutate = undefined
  server = new ResourceServer({ name: 'demo', provider: { version: 0, block: {} }, resources: { demo_thing: demo } })
})

async function plan(config: CtyValue, prior: CtyValue | null) {
  const res = await server.planResourceChange({ type_name: 'demo_thing', prior_state: dv(prior ?? V.null), proposed_new_state: dv(proposed(config, prior)), config: dv(config) })
  return { ...res, planned: res.planned_state ? decoded(res.planned_state) : undefined }
}

async function apply(planned: CtyValue, prior: CtyValue | null, config: CtyValue) {
  const res = await server.applyResourceChange({ type_name: 'demo_thing', prior_state: dv(prior ?? V.null), planned_state: dv(planned), config: dv(config) })
  return { ...res, state: res.new_state ? decoded(res.new_state) : undefined }
}

const base = thing({ name: 'first', tags: { env: 'dev' }, part: [{ color: 'blue' }] })

describe('plan', () => {
  it('plans defaults and computed attributes as unknown on create', async () => {
    const { planned, requires_replace, diagnostics } = await plan(base, null)
    expect(diagnostics).toEqual([])
    expect(requires_replace).toEqual([])
    expect(planned).toEqual(withUnknown(thing({ name: 'first', tags: { env: 'dev' }, size: 3, part: [{ color: 'blue', shade: 'light' }] }), [attrStep('id')], [attrStep('revision')]))
  })

  it('keeps a use-state-for-unknown attribute on update, while other computed attributes become unknown', async () => {
    const created = (await apply((await plan(base, null)).planned!, null, base)).state!
    const config = setAtPath(base, type, [attrStep('tags')], decodeJsonValue({ env: 'prod' }, T.map(T.string)))
    const { planned, requires_replace, diagnostics } = await plan(config, created)
    expect(diagnostics).toEqual([])
    expect(requires_replace).toEqual([])
    expect(at(planned!, attrStep('id'))).toEqual(V.string('t-1'))
    expect(at(planned!, attrStep('revision'))).toEqual(V.unknown())
    expect(at(planned!, attrStep('tags'), { kind: 'key', key: 'env' })).toEqual(V.string('prod'))
    expect(at(planned!, attrStep('size'))).toEqual(V.number(3))
  })

  it('plans no change when nothing changed, and keeps an equivalent stored value', async () => {
    const created = (await apply((await plan(base, null)).planned!, null, base)).state!
    expect((await plan(base, created)).planned).toEqual(created)
    // "FIRST" means the same as the stored "first": the plan keeps the stored value. As in terraform-plugin-framework,
    // the proposed change was seen before plan modifiers ran, so a computed attribute without use-state-for-unknown
    // is unknown.
    const equivalent = (await plan(setAtPath(base, type, [attrStep('name')], V.string('FIRST')), created)).planned!
    expect(equivalent).toEqual(withUnknown(created, [attrStep('revision')]))
  })

  it('writes the default when the configuration removes a value', async () => {
    const created = (await apply((await plan(thing({ name: 'n', size: 7 }), null)).planned!, null, thing({ name: 'n', size: 7 }))).state!
    expect(at(created, attrStep('size'))).toEqual(V.number(7))
    const { planned } = await plan(thing({ name: 'n' }), created)
    expect(at(planned!, attrStep('size'))).toEqual(V.number(3))
  })

  it('returns requires-replace paths and plans the replacement as a create', async () => {
    const created = (await apply((await plan(base, null)).planned!, null, base)).state!
    const config = setAtPath(base, type, [attrStep('kind')], V.string('gadget'))
    const { planned, requires_replace, diagnostics } = await plan(config, created)
    expect(diagnostics).toEqual([])
    expect(requires_replace).toEqual([{ steps: [{ attribute_name: 'kind' }] }])
    // As for a create: the id and revision are unknown again.
    expect(at(planned!, attrStep('id'))).toEqual(V.unknown())
    expect(at(planned!, attrStep('revision'))).toEqual(V.unknown())
    expect(at(planned!, attrStep('kind'))).toEqual(V.string('gadget'))

    const nested = setAtPath(config, type, [attrStep('part'), indexStep(0), attrStep('color')], V.string('red'))
    expect((await plan(nested, created)).requires_replace).toEqual([
      { steps: [{ attribute_name: 'kind' }] },
      { steps: [{ attribute_name: 'part' }, { element_key_int: 0 }, { attribute_name: 'color' }] },
    ])
  })

  it('does not replace on create, nor when the value is unchanged', async () => {
    const withKind = setAtPath(base, type, [attrStep('kind')], V.string('gadget'))
    expect((await plan(withKind, null)).requires_replace).toEqual([])
    const created = (await apply((await plan(withKind, null)).planned!, null, withKind)).state!
    expect((await plan(setAtPath(withKind, type, [attrStep('name')], V.string('second')), created)).requires_replace).toEqual([])
  })

  it('keeps unknown configuration values unknown and does not default them', async () => {
    const config = withUnknown(base, [attrStep('size')], [attrStep('kind')])
    const { planned } = await plan(config, null)
    expect(at(planned!, attrStep('size'))).toEqual(V.unknown())
    expect(at(planned!, attrStep('kind'))).toEqual(V.unknown())
  })

  it('plans a destroy as null', async () => {
    const res = await server.planResourceChange({ type_name: 'demo_thing', prior_state: dv(base), proposed_new_state: dv(V.null), config: dv(V.null) })
    expect(decoded(res.planned_state)).toEqual(V.null)
  })

  it('reports a plan Terraform would reject on the attribute', async () => {
    const bad = new ResourceServer({
      name: 'demo',
      provider: { version: 0, block: {} },
      resources: { demo_thing: { ...demo, modifyPlan: ({ plan: p }) => ({ plan: setAtPath(p, type, [attrStep('name')], V.string('renamed')) }) } },
    })
    const res = await bad.planResourceChange({ type_name: 'demo_thing', prior_state: dv(V.null), proposed_new_state: dv(base), config: dv(base) })
    expect(res.planned_state).toBeUndefined()
    expect(res.diagnostics).toEqual([expect.objectContaining({ severity: 1, summary: 'Provider produced invalid plan', attribute: { steps: [{ attribute_name: 'name' }] } })])
    expect(res.diagnostics[0]!.detail).toContain('planned "renamed", which does not match the configuration value "first"')
  })
})

describe('apply', () => {
  it('creates, updates and deletes, resolving every unknown', async () => {
    const created = await apply((await plan(base, null)).planned!, null, base)
    expect(created.diagnostics).toEqual([])
    expect(at(created.state!, attrStep('id'))).toEqual(V.string('t-1'))
    const config = setAtPath(base, type, [attrStep('name')], V.string('second'))
    const updated = await apply((await plan(config, created.state!)).planned!, created.state!, config)
    expect(updated.diagnostics).toEqual([])
    expect(at(updated.state!, attrStep('revision'))).toEqual(V.string('r2'))
    const deleted = await apply(V.null, updated.state!, V.null)
    expect(deleted.state).toEqual(V.null)
    expect(store.size).toBe(0)
  })

  it('names the attribute whose result differs from the plan', async () => {
    mutate = (v) => setAtPath(v, type, [attrStep('name')], V.string('first-mutated'))
    const res = await apply((await plan(base, null)).planned!, null, base)
    expect(res.new_state).toBeUndefined()
    expect(res.diagnostics).toHaveLength(1)
    expect(res.diagnostics[0]).toMatchObject({ severity: 1, summary: 'Provider produced inconsistent result after apply', attribute: { steps: [{ attribute_name: 'name' }] } })
    expect(res.diagnostics[0]!.detail).toContain('.name was "first", but now "first-mutated"')
  })

  it('names the innermost path in blocks and maps, and hides sensitive values', async () => {
    mutate = (v) => setAtPath(setAtPath(v, type, [attrStep('part'), indexStep(0), attrStep('shade')], V.string('dark')), type, [attrStep('tags'), { kind: 'key', key: 'env' }], V.string('x'))
    const res = await apply((await plan(base, null)).planned!, null, base)
    expect(res.diagnostics.map(steps)).toEqual([
      [{ attribute_name: 'tags' }, { element_key_string: 'env' }],
      [{ attribute_name: 'part' }, { element_key_int: 0 }, { attribute_name: 'shade' }],
    ])
    mutate = (v) => setAtPath(v, type, [attrStep('token')], V.string('hunter2'))
    const secret = await apply((await plan(base, null)).planned!, null, base)
    expect(steps(secret.diagnostics[0])).toEqual([{ attribute_name: 'token' }])
    expect(secret.diagnostics[0]!.detail).not.toContain('hunter2')
  })

  it('requires every planned unknown to be known after apply', async () => {
    mutate = (v) => setAtPath(v, type, [attrStep('revision')], V.unknown())
    const res = await apply((await plan(base, null)).planned!, null, base)
    expect(res.diagnostics).toEqual([expect.objectContaining({ summary: 'Provider produced inconsistent result after apply', attribute: { steps: [{ attribute_name: 'revision' }] } })])
    expect(res.diagnostics[0]!.detail).toContain('still unknown after apply')
  })

  it('respects refinements of planned unknowns', async () => {
    const planned = setAtPath((await plan(base, null)).planned!, type, [attrStep('id')], V.unknown({ notNull: true, stringPrefix: 'x-' }))
    const res = await apply(planned, null, base)
    expect(steps(res.diagnostics[0])).toEqual([{ attribute_name: 'id' }])
    expect(res.diagnostics[0]!.detail).toContain('start with "x-"')
  })
})

describe('read, import and state upgrades', () => {
  it('reads the current state, and null when the object is gone', async () => {
    const created = (await apply((await plan(base, null)).planned!, null, base)).state!
    expect(decoded((await server.readResource({ type_name: 'demo_thing', current_state: dv(created) })).new_state)).toEqual(created)
    store.clear()
    const gone = await server.readResource({ type_name: 'demo_thing', current_state: dv(created) })
    expect(gone.diagnostics).toEqual([])
    expect(gone.new_state!.msgpack).toEqual(new Uint8Array([0xc0]))
  })

  it('imports the id alone by default', async () => {
    const res = await server.importResourceState({ type_name: 'demo_thing', id: 't-9' })
    expect(res.diagnostics).toEqual([])
    expect(decodeMsgpack(res.imported_resources[0]!.state.msgpack, type)).toEqual(thing({ id: 't-9' }))
  })

  it('upgrades state through each schema version, then fits the current schema', async () => {
    const v0 = { id: 't-1', title: 'old', labels: { a: 'b' }, removed: true, part: [] }
    const res = await server.upgradeResourceState({ type_name: 'demo_thing', version: 0, raw_state: { json: new TextEncoder().encode(JSON.stringify(v0)) } })
    expect(res.diagnostics).toEqual([])
    expect(decoded(res.upgraded_state)).toEqual(thing({ id: 't-1', name: 'old', tags: { a: 'b' } }))
    const current = await server.upgradeResourceState({ type_name: 'demo_thing', version: 2, raw_state: { json: new TextEncoder().encode(JSON.stringify({ id: 't-1', name: 'n' })) } })
    expect(decoded(current.upgraded_state)).toEqual(thing({ id: 't-1', name: 'n' }))
    const newer = await server.upgradeResourceState({ type_name: 'demo_thing', version: 3, raw_state: { json: new TextEncoder().encode('{}') } })
    expect(newer.diagnostics[0]).toMatchObject({ summary: 'Unable to upgrade resource state' })
  })
})

describe('diagnostics', () => {
  const failing = (error: unknown) =>
    new ResourceServer({
      name: 'demo',
      provider: { version: 0, block: {} },
      resources: {
        demo_thing: {
          ...demo,
          create: () => {
            throw error
          },
        },
      },
    })

  it('turns a thrown DiagnosticsError into diagnostics on its attribute path', async () => {
    const server = failing(new DiagnosticsError([{ severity: 'error', summary: 'Conflict', detail: 'that name is taken', path: [attrStep('part'), indexStep(0), attrStep('color')] }]))
    const res = await server.applyResourceChange({ type_name: 'demo_thing', prior_state: dv(V.null), planned_state: dv(base), config: dv(base) })
    expect(res).toEqual({
      diagnostics: [{ severity: 1, summary: 'Conflict', detail: 'that name is taken', attribute: { steps: [{ attribute_name: 'part' }, { element_key_int: 0 }, { attribute_name: 'color' }] } }],
    })
  })

  it('turns any other thrown error into a diagnostic, never a rejected call', async () => {
    const res = await failing(new TypeError('boom')).applyResourceChange({ type_name: 'demo_thing', prior_state: dv(V.null), planned_state: dv(base), config: dv(base) })
    expect(res.diagnostics).toEqual([expect.objectContaining({ severity: 1, summary: 'Unexpected error in the demo provider' })])
    expect(res.diagnostics[0]!.detail).toContain('boom')
    const cty = await failing(new CtyError([attrStep('tags')], 'expected map')).applyResourceChange({ type_name: 'demo_thing', prior_state: dv(V.null), planned_state: dv(base), config: dv(base) })
    expect(steps(cty.diagnostics[0])).toEqual([{ attribute_name: 'tags' }])
  })

  it('reports an object that does not fit the schema on the offending attribute', async () => {
    const res = await new ResourceServer({
      name: 'demo',
      provider: { version: 0, block: {} },
      resources: { demo_thing: { ...demo, create: ({ plan: p }) => setAtPath(setAtPath(p, type, [attrStep('id')], V.string('x')), type, [attrStep('revision')], V.number(1)) } },
    }).applyResourceChange({ type_name: 'demo_thing', prior_state: dv(V.null), planned_state: dv(withUnknown(base, [attrStep('id')], [attrStep('revision')])), config: dv(base) })
    expect(res.diagnostics[0]).toMatchObject({ summary: 'Provider returned invalid result object after apply', attribute: { steps: [{ attribute_name: 'revision' }] } })
  })

  it('validates with diagnostics on the attribute, and answers unknown types with a diagnostic', async () => {
    const res = server.validateResourceConfig({ type_name: 'demo_thing', config: dv(thing({ name: 'has spaces' })) })
    expect(res.diagnostics).toEqual([{ severity: 1, summary: 'Invalid name', detail: 'name must not contain whitespace', attribute: { steps: [{ attribute_name: 'name' }] } }])
    expect((await server.readResource({ type_name: 'nope' })).diagnostics[0]).toMatchObject({ summary: 'Unknown resource type' })
  })
})

describe('schemas', () => {
  it('serves the protocol schema and rejects invalid schemas', () => {
    const served = server.getProviderSchema().resource_schemas.demo_thing!
    expect(served.version).toBe(2)
    expect(served.block.attributes.find((a) => a.name === 'size')).toMatchObject({ optional: true, computed: true, required: false })
    expect(new TextDecoder().decode(served.block.attributes.find((a) => a.name === 'tags')!.type)).toBe('["map","string"]')
    expect(served.block.block_types[0]).toMatchObject({ type_name: 'part', nesting: 2 })
    expect(schemaProblems({ version: 0, block: { attributes: { a: { type: T.string, optional: true, default: V.string('x') }, b: { type: T.string } } } })).toEqual([
      '.a: an attribute with a default must be computed (and optional)',
      '.b: must be required, optional, computed or optional + computed, not none of them',
    ])
    expect(() => new ResourceServer({ name: 'x', provider: { version: 0, block: {} }, resources: { x: { ...demo, schema: { version: 0, block: { attributes: { b: { type: T.string, required: true, computed: true } } } } } } })).toThrow(/x\.b: must be/)
  })
})
