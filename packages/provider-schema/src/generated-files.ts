/**
 * The committed files derived from the definitions: the reference docs and the provider schema document.
 * `npm run generate:all` writes them; a test and CI check that the committed copies are current.
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { renderDocs, type DocExamples } from './derive/docs.js'
import { providerSchemasDocument } from './derive/terraform.js'

export const DOCS_DIR = 'docs/terraform'
export const SCHEMA_JSON = 'packages/provider-schema/generated/terraform-schema.json'

/** Examples live as real HCL under examples/terraform, in the registry's layout. */
function examplesFrom(repoRoot: string) {
  return (key: string): DocExamples => {
    const file =
      key === 'provider'
        ? 'provider/provider.tf'
        : key.startsWith('resources/')
          ? `${key}/resource.tf`
          : `${key}/data-source.tf`
    const path = join(repoRoot, 'examples/terraform', file)
    return existsSync(path) ? { usage: readFileSync(path, 'utf8') } : {}
  }
}

/** Every generated file, by path relative to the repository root. */
export function generatedFiles(repoRoot: string): Record<string, string> {
  const files: Record<string, string> = {}
  for (const [page, text] of Object.entries(renderDocs(examplesFrom(repoRoot)))) files[`${DOCS_DIR}/${page}`] = text
  files[SCHEMA_JSON] = JSON.stringify(providerSchemasDocument(), null, 2) + '\n'
  return files
}
