/**
 * Which language an implementation is written in. Sym's own implementations are Python (`impl.py`); ours run
 * TypeScript/JavaScript only, so a Python source is stored but reported: by the provider at plan time (a warning on
 * the attribute), and by the engine when a run would call it. Shared by both, without pulling in the compiler.
 */

/** The message a Python implementation gets: a warning at plan/apply time, a warning on the run when it is called. */
export const PYTHON_NOT_RUNNABLE =
  "This flow's implementation is Python (Sym's impl.py). It is stored, but Python implementations cannot run yet: " +
  'rewrite it in TypeScript with @opensym/sdk (same reducers and hooks, camelCase names: get_permissions → getPermissions, on_request → onRequest).'

const PYTHON_MARKERS = [
  /^\s*from\s+sym(\.sdk)?(\.[\w.]+)?\s+import\s/m,
  /^\s*import\s+sym(\.sdk)?\b/m,
  /^\s*@(hook|reducer|prefetch)\b/m,
  /^\s*def\s+\w+\s*\([^)]*\)\s*(->\s*[^:\n]+)?:\s*(#.*)?$/m,
]

/** Whether the source reads as Python: Sym's imports, decorators or a `def …:` line. */
export function looksLikePython(source: string): boolean {
  return PYTHON_MARKERS.some((re) => re.test(source))
}
