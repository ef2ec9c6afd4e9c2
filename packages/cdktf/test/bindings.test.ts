/** The committed bindings are what the generator makes from today's schema, and they cover all of it. */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative, sep } from 'node:path'
import { PROVIDER_ADDRESS, providerSchemasDocument } from '@opensym/provider-schema'
import { TerraformDataSource, TerraformProvider, TerraformResource } from 'cdktf'
import { describe, expect, it } from 'vitest'
import * as bindings from '../src/index.js'
import { GENERATED_DIR, renderBindings } from '../scripts/bindings.js'

function committed(): Record<string, string> {
  const files: Record<string, string> = {}
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name)
      if (statSync(path).isDirectory()) walk(path)
      else files[relative(GENERATED_DIR, path).split(sep).join('/')] = readFileSync(path, 'utf8')
    }
  }
  walk(GENERATED_DIR)
  return files
}

/** The exported construct classes, by the Terraform type they synthesize to. */
function classesByType(base: abstract new (...args: never[]) => unknown): Map<string, string> {
  const classes = new Map<string, string>()
  for (const [name, value] of Object.entries(bindings)) {
    if (typeof value === 'function' && value.prototype instanceof base && 'tfResourceType' in value) classes.set(String(value.tfResourceType), name)
  }
  return classes
}

describe('generated CDKTF bindings', () => {
  it('are up to date with the provider schema (regenerate with `npm run gen:cdktf`)', async () => {
    const fresh = await renderBindings()
    const current = committed()
    expect(Object.keys(current).sort()).toEqual(Object.keys(fresh).sort())
    for (const [path, text] of Object.entries(fresh)) expect(current[path], path).toBe(text)
  }, 60_000)

  it('have a class for the provider and for every resource and data source, flat and by module', () => {
    const schema = providerSchemasDocument().provider_schemas[PROVIDER_ADDRESS]!
    const resources = classesByType(TerraformResource)
    const dataSources = classesByType(TerraformDataSource)
    expect([...resources.keys()].sort()).toEqual(Object.keys(schema.resource_schemas).sort())
    expect([...dataSources.keys()].sort()).toEqual(Object.keys(schema.data_source_schemas).sort())
    expect(resources.get('sym_flow')).toBe('Flow')
    expect(dataSources.get('sym_integration')).toBe('DataSymIntegration')
    expect([...classesByType(TerraformProvider)]).toEqual([['sym', 'SymProvider']])
    expect(bindings.flow.Flow).toBe(bindings.Flow)
    expect(bindings.provider.SymProvider).toBe(bindings.SymProvider)
  })
})
