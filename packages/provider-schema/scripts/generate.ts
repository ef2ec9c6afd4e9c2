/** Writes the files derived from the resource definitions (docs, provider schema JSON). */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DOCS_DIR, generatedFiles } from '../src/generated-files.js'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
const files = generatedFiles(root)
// Pages of removed resources must not linger.
rmSync(join(root, DOCS_DIR), { recursive: true, force: true })
for (const [path, text] of Object.entries(files)) {
  mkdirSync(dirname(join(root, path)), { recursive: true })
  writeFileSync(join(root, path), text)
}
console.log(`wrote ${Object.keys(files).length} files (${readdirSync(join(root, DOCS_DIR)).length} entries in ${DOCS_DIR})`)
