// Loads @prisma/schema-engine-wasm by hand. Its entry does `import * as wasm from "./schema_engine_bg.wasm"`,
// which Node 20 cannot load without --experimental-wasm-modules, so we instantiate the .wasm ourselves and
// hand it to the wasm-bindgen glue (the same thing the Prisma CLI does internally).
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import path from 'node:path'
import * as glue from '@prisma/schema-engine-wasm/schema_engine_bg'
import type { SchemaEngine } from '@prisma/schema-engine-wasm'
import type { ErrorCapturingSqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils'

export type { SchemaEngine }

// @types/node 20 does not declare the WebAssembly global; describe the few members we use.
interface WasmInstance {
  exports: Record<string, unknown>
}
interface WasmApi {
  instantiate(bytes: Uint8Array, imports: Record<string, Record<string, unknown>>): Promise<{ instance: WasmInstance }>
}
const { WebAssembly: Wasm } = globalThis as unknown as { WebAssembly: WasmApi }

// The engine arms setTimeout races (e.g. 10 s for the advisory lock, 60 s elsewhere) and never clears them,
// which keeps a finished process alive. Long timers are unref'd so they cannot hold the event loop.
const UNREF_TIMERS_FROM_MS = 5_000

// The wasm-bindgen glue holds ONE module-level wasm instance. Test runners can load this file several times in one
// process (one module graph per project) while the glue itself is shared, so the instance is kept per process:
// a second instantiation would swap the glue's memory under a running engine.
const PROCESS_KEY = Symbol.for('opensym.db.schemaEngineWasm')
type ProcessSlot = { ready?: Promise<void>; queue: Promise<unknown> }
const slot: ProcessSlot = ((globalThis as Record<symbol, ProcessSlot | undefined>)[PROCESS_KEY] ??= { queue: Promise.resolve() })

/** Runs engine sessions one at a time per process; the engine is not made for concurrent use of one instance. */
export function exclusively<T>(fn: () => Promise<T>): Promise<T> {
  const run = slot.queue.then(fn, fn)
  slot.queue = run.catch(() => undefined)
  return run
}

function instantiate(): Promise<void> {
  slot.ready ??= (async () => {
    const require = createRequire(import.meta.url)
    // The package's exports map does not expose the .wasm file; locate it next to the entry point.
    const wasmPath = path.join(path.dirname(require.resolve('@prisma/schema-engine-wasm')), 'schema_engine_bg.wasm')
    const imports: Record<string, unknown> = { ...(glue as unknown as Record<string, unknown>) }
    for (const name of Object.keys(imports)) {
      if (!name.startsWith('__wbg_setTimeout_')) continue
      imports[name] = (callback: () => void, ms: number) => {
        const timer = setTimeout(callback, ms >>> 0)
        if (ms >>> 0 >= UNREF_TIMERS_FROM_MS) timer.unref()
        return timer
      }
    }
    const { instance } = await Wasm.instantiate(await readFile(wasmPath), { './schema_engine_bg.js': imports })
    glue.__wbg_set_wasm(instance.exports)
    const start = instance.exports['__wbindgen_start']
    if (typeof start === 'function') start()
  })()
  return slot.ready
}

export interface EngineInput {
  schemaPath: string
  schema: string
  adapterFactory: ErrorCapturingSqlMigrationAwareDriverAdapterFactory
  log?: ((line: string) => void) | undefined
}

export async function openEngine(input: EngineInput): Promise<SchemaEngine> {
  await instantiate()
  return glue.SchemaEngine.new(
    { datamodels: [[input.schemaPath, input.schema]] },
    (line: string) => input.log?.(line),
    input.adapterFactory,
  )
}

export function engineVersion(): string {
  return glue.version()
}
