import { dataSource, type AttributeDef, type ResourceDef } from './dsl.js'
import { environment } from './resources/environment.js'
import { integration } from './resources/integration.js'
import { runtime } from './resources/runtime.js'
import { secretSource } from './resources/secret-source.js'

/**
 * A data source reads one entity by `name` (and `type`). Its attributes are the resource's own, re-moded:
 * lookup keys stay required, everything else is filled from the API.
 */
function lookupAttributes<R extends ResourceDef>(r: R, keys: readonly (keyof R['attributes'] & string)[]) {
  const out: Record<string, AttributeDef> = {}
  for (const [name, resourceAttribute] of Object.entries(r.attributes)) {
    // Data sources are read, never planned: plan modifiers do not apply.
    const { planModifiers: _modifiers, requiresReplace: _replace, ...a } = resourceAttribute
    if (keys.includes(name)) out[name] = { ...a, mode: 'required' }
    else if (a.mode === 'computed') out[name] = a
    else out[name] = { ...a, mode: 'optional_computed', default: undefined }
  }
  return out
}

export const integrationData = dataSource({
  typeName: 'sym_integration',
  resource: integration,
  description: 'Looks up an existing `sym_integration` by `type` and `name`.',
  attributes: lookupAttributes(integration, ['type', 'name']),
})

export const runtimeData = dataSource({
  typeName: 'sym_runtime',
  resource: runtime,
  description: 'Looks up an existing `sym_runtime` by `name`.',
  attributes: lookupAttributes(runtime, ['name']),
})

export const environmentData = dataSource({
  typeName: 'sym_environment',
  resource: environment,
  description: 'Looks up an existing `sym_environment` by `name`.',
  attributes: lookupAttributes(environment, ['name']),
})

export const secretSourceData = dataSource({
  typeName: 'sym_secrets',
  resource: secretSource,
  description: 'Looks up an existing `sym_secrets` source by `type` and `name`.',
  attributes: lookupAttributes(secretSource, ['type', 'name']),
})
