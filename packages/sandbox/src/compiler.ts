/**
 * Compiling a flow implementation: TypeScript or JavaScript → one script for the sandbox, with esbuild. The only
 * import allowed is the SDK (`@opensym/sdk`, `@opensym/sdk/flow`), which becomes the SDK runtime that the sandbox
 * installs in every context; anything else is a compile error naming the import. Python (Sym's `impl.py`) is
 * recognised and reported as not runnable yet.
 *
 * This module needs esbuild only (no isolated-vm): the API uses it to check implementations at apply time.
 */
import { createHash } from 'node:crypto'
import { looksLikePython, PYTHON_NOT_RUNNABLE } from '@opensym/sdk'
import * as sdk from '@opensym/sdk/flow'
import { build, type Message, type Plugin } from 'esbuild'

/** Where the sandbox runtime puts the SDK in each context; the compiled module reads it from there. */
export const SDK_GLOBAL = 'opensym.sdk'
/** The global that holds the module's exports once its script ran. */
export const IMPL_GLOBAL = '__opensymImpl'

/** The import specifiers that mean the SDK. */
export const SDK_SPECIFIERS = ['@opensym/sdk', '@opensym/sdk/flow'] as const

/** The file name used in messages (`impl.ts:3:7: …`). */
export const SOURCE_NAME = 'impl.ts'

/** Larger sources are refused before compiling (Sym's impl.py files are a few KB). */
export const MAX_SOURCE_BYTES = 1024 * 1024

export interface CompileDiagnostic {
  readonly message: string
  /** 1-based. */
  readonly line: number
  /** 1-based. */
  readonly column: number
  readonly lineText?: string
}

export type CompileResult =
  | { readonly ok: true; readonly language: 'typescript'; readonly code: string; readonly hash: string }
  | { readonly ok: false; readonly language: 'python'; readonly message: string; readonly hash: string }
  | { readonly ok: false; readonly language: 'typescript'; readonly message: string; readonly diagnostics: readonly CompileDiagnostic[]; readonly hash: string }

export { looksLikePython, PYTHON_NOT_RUNNABLE }

const sdkNames = Object.keys(sdk).sort()
// The SDK as a module whose named exports are exactly the runtime's, so a wrong import name fails at compile time.
const sdkShim = `const sdk = globalThis[Symbol.for(${JSON.stringify(SDK_GLOBAL)})];\nexport const { ${sdkNames.join(', ')} } = sdk;\n`

const onlySdk: Plugin = {
  name: 'opensym-only-sdk',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      if (args.kind === 'entry-point') return undefined
      if ((SDK_SPECIFIERS as readonly string[]).includes(args.path)) return { path: '@opensym/sdk', namespace: 'opensym-sdk' }
      return {
        errors: [
          {
            text: `Import "${args.path}" is not allowed: a flow implementation may import only @opensym/sdk (the sandbox has no modules, files or network; use the SDK's integrations)`,
          },
        ],
      }
    })
    b.onLoad({ filter: /.*/, namespace: 'opensym-sdk' }, () => ({ contents: sdkShim, loader: 'js' }))
  },
}

/** The hash compile results carry: the sandbox caches by flow key and this. */
export const sourceHash = (source: string): string => createHash('sha256').update(source).digest('hex')

function diagnostic(m: Message): CompileDiagnostic {
  const loc = m.location
  return { message: m.text.replaceAll('"opensym-sdk:@opensym/sdk"', '"@opensym/sdk"'), line: loc?.line ?? 1, column: (loc?.column ?? 0) + 1, ...(loc?.lineText ? { lineText: loc.lineText } : {}) }
}

const describe = (d: CompileDiagnostic) => `${SOURCE_NAME}:${d.line}:${d.column}: ${d.message}`

/**
 * Compiles a flow implementation. Never throws for bad input: the result says what is wrong, with the line.
 *
 * @example
 * ```ts
 * const r = await compileFlow('export const a = ;')
 * // { ok: false, language: 'typescript', message: 'impl.ts:1:18: Unexpected ";"', diagnostics: [...] }
 * ```
 */
export async function compileFlow(source: string): Promise<CompileResult> {
  const hash = sourceHash(source)
  if (Buffer.byteLength(source, 'utf8') > MAX_SOURCE_BYTES) {
    const d = { message: `the implementation is larger than ${MAX_SOURCE_BYTES / 1024} KB`, line: 1, column: 1 }
    return { ok: false, language: 'typescript', message: describe(d), diagnostics: [d], hash }
  }
  let errors: Message[]
  try {
    const out = await build({
      stdin: { contents: source, loader: 'ts', sourcefile: SOURCE_NAME },
      bundle: true,
      write: false,
      format: 'iife',
      globalName: IMPL_GLOBAL,
      platform: 'neutral',
      target: 'es2022',
      keepNames: true,
      legalComments: 'none',
      charset: 'utf8',
      logLevel: 'silent',
      // A top-level await cannot run in a script; esbuild says so for the iife format.
      plugins: [onlySdk],
    })
    const code = out.outputFiles[0]?.text
    if (code !== undefined) return { ok: true, language: 'typescript', code, hash }
    errors = [{ id: '', pluginName: '', text: 'esbuild produced no output', location: null, notes: [], detail: undefined }]
  } catch (e) {
    const failure = e as { errors?: Message[]; message?: string }
    if (!Array.isArray(failure.errors)) throw e
    errors = failure.errors
  }
  if (looksLikePython(source)) return { ok: false, language: 'python', message: PYTHON_NOT_RUNNABLE, hash }
  const diagnostics = errors.map(diagnostic)
  const shown = diagnostics.slice(0, 5).map(describe)
  const more = diagnostics.length > 5 ? ` (and ${diagnostics.length - 5} more)` : ''
  return { ok: false, language: 'typescript', message: shown.join('; ') + more, diagnostics, hash }
}

/** What apply-time validation needs to know about an implementation. */
export type ImplementationCheck =
  | { readonly ok: true; readonly language: 'typescript' }
  /** Stored, but cannot run: the note says so. */
  | { readonly ok: true; readonly language: 'python'; readonly note: string }
  | { readonly ok: false; readonly message: string; readonly diagnostics: readonly CompileDiagnostic[] }

/**
 * Checks an implementation at apply time: compiles it (and throws the output away). TypeScript that does not
 * compile is refused with the compiler's message and line; Python is accepted with a note.
 */
export async function checkImplementation(source: string): Promise<ImplementationCheck> {
  const r = await compileFlow(source)
  if (r.ok) return { ok: true, language: 'typescript' }
  if (r.language === 'python') return { ok: true, language: 'python', note: r.message }
  return { ok: false, message: r.message, diagnostics: r.diagnostics }
}
