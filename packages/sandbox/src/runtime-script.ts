/**
 * The script of a flow version in the sandbox: the runtime (`isolate/entry.ts` bundled with the SDK, built once per
 * process with esbuild) and the flow's compiled module, arranged so that user code cannot see the runtime's
 * bindings (the doors to the host among them). Its value is `boot(host, log)`, which returns the dispatcher.
 */
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

import { IMPL_GLOBAL } from './compiler.js'

const RUNTIME = '__opensymRuntime'

let built: Promise<string> | undefined

/** The runtime script's code; the first call builds it (~20–40 ms), later calls share the result. */
export function runtimeScript(): Promise<string> {
  built ??= buildRuntime().catch((e: unknown) => {
    built = undefined
    throw e
  })
  return built
}

async function buildRuntime(): Promise<string> {
  // src/isolate/entry.ts when running from source, dist/isolate/entry.js when built.
  const ts = fileURLToPath(new URL('./isolate/entry.ts', import.meta.url))
  const fromSource = existsSync(ts)
  const entry = fromSource ? ts : fileURLToPath(new URL('./isolate/entry.js', import.meta.url))
  const out = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: 'iife',
    globalName: RUNTIME,
    platform: 'neutral',
    target: 'es2022',
    // Running from source: the SDK from its sources too (the workspace's condition); built: the SDK's built files.
    conditions: fromSource ? ['@opensym/source'] : [],
    mainFields: ['module', 'main'],
    keepNames: true,
    legalComments: 'none',
    charset: 'utf8',
    logLevel: 'silent',
  })
  const code = out.outputFiles[0]?.text
  if (code === undefined) throw new Error('esbuild produced no sandbox runtime')
  return code
}

/**
 * The flow version's script: `(function (module) { <runtime>; return boot })(function () { <flow module> })`. The
 * module's function is defined at the top level, so it sees the globals and itself only, never the runtime's
 * bindings; the script's value is `boot`.
 */
export function flowScript(runtime: string, flowCode: string): string {
  return [
    '(function (module) {',
    runtime,
    `;const runtime = ${RUNTIME};`,
    'return function boot(host, log) { const dispatch = runtime.setup(host, log); runtime.setImpl(module()); return dispatch; };',
    '})(function () {',
    flowCode,
    `;return typeof ${IMPL_GLOBAL} === 'undefined' ? undefined : ${IMPL_GLOBAL};`,
    '});',
  ].join('\n')
}
