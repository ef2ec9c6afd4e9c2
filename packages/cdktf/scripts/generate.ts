/** `npm run gen:cdktf`: rewrites `packages/cdktf/generated/` (the CDKTF bindings) from the provider schema. */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { GENERATED_DIR, renderBindings } from './bindings.js'

const files = await renderBindings()
// Modules of removed resources must not linger.
rmSync(GENERATED_DIR, { recursive: true, force: true })
for (const [path, text] of Object.entries(files)) {
  mkdirSync(dirname(join(GENERATED_DIR, path)), { recursive: true })
  writeFileSync(join(GENERATED_DIR, path), text)
}
console.log(`wrote ${Object.keys(files).length} files in ${relative(process.cwd(), GENERATED_DIR) || '.'}`)
