/** Writes docs/api/openapi.json (see src/openapi.ts). */
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { OPENAPI_PATH, openApiDocument } from '../src/openapi.js'

const target = resolve(dirname(fileURLToPath(import.meta.url)), '../../..', OPENAPI_PATH)
mkdirSync(dirname(target), { recursive: true })
writeFileSync(target, await openApiDocument())
console.log(`wrote ${OPENAPI_PATH}`)
