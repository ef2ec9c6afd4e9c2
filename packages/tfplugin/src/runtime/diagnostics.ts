/**
 * Diagnostics: what every RPC answers instead of failing. Terraform shows each one with its summary and detail,
 * and, when it carries an attribute path, against the exact line of configuration. A gRPC error, by contrast,
 * only reaches the user as "Plugin did not respond", so the runtime turns everything thrown into diagnostics.
 */
import { CtyError, formatPath, type CtyPath } from '../cty/index.js'
import { Severity, type ProtoAttributePath, type ProtoDiagnostic } from './protocol.js'

export interface Diagnostic {
  readonly severity: 'error' | 'warning'
  /** One line, shown after `Error:` / `Warning:`. */
  readonly summary: string
  readonly detail: string
  /** The attribute it is about (`[attrStep('params'), indexStep(0), attrStep('type')]`); absent for the whole object. */
  readonly path?: CtyPath
}

export const errorDiagnostic = (summary: string, detail: string, path?: CtyPath): Diagnostic => ({ severity: 'error', summary, detail, ...(path?.length ? { path } : {}) })
export const warningDiagnostic = (summary: string, detail: string, path?: CtyPath): Diagnostic => ({ severity: 'warning', summary, detail, ...(path?.length ? { path } : {}) })

/**
 * The diagnostics of one call, handed to resource code in every request. Warnings added here are returned with
 * the result; an error added here fails the call exactly as throwing a {@link DiagnosticsError} does.
 */
export class Diagnostics {
  readonly items: Diagnostic[] = []

  push(...diagnostics: readonly Diagnostic[]): void {
    this.items.push(...diagnostics)
  }

  error(summary: string, detail: string, path?: CtyPath): void {
    this.items.push(errorDiagnostic(summary, detail, path))
  }

  warning(summary: string, detail: string, path?: CtyPath): void {
    this.items.push(warningDiagnostic(summary, detail, path))
  }

  get hasErrors(): boolean {
    return this.items.some((d) => d.severity === 'error')
  }

  /** Throws the collected diagnostics when any is an error (the runtime calls this after each hook). */
  throwIfErrors(): void {
    if (this.hasErrors) throw new DiagnosticsError(this.items.splice(0))
  }
}

/** Thrown by resource code (or the runtime) to fail a call with these diagnostics. */
export class DiagnosticsError extends Error {
  override readonly name = 'DiagnosticsError'
  constructor(readonly diagnostics: readonly Diagnostic[]) {
    super(diagnostics.map((d) => `${d.path?.length ? `${formatPath(d.path)}: ` : ''}${d.summary}: ${d.detail}`).join('; '))
  }
}

export function toProtoPath(path: CtyPath): ProtoAttributePath {
  return {
    steps: path.map((s) => (s.kind === 'attr' ? { attribute_name: s.name } : s.kind === 'key' ? { element_key_string: s.key } : { element_key_int: s.index })),
  }
}

export function toProtoDiagnostic(d: Diagnostic): ProtoDiagnostic {
  const out: ProtoDiagnostic = { severity: d.severity === 'error' ? Severity.ERROR : Severity.WARNING, summary: d.summary, detail: d.detail }
  if (d.path?.length) out.attribute = toProtoPath(d.path)
  return out
}

/**
 * What a thrown value becomes: a {@link DiagnosticsError} its diagnostics; a {@link CtyError} (a value that does
 * not fit the schema) an error on its path; anything else an error naming it as a bug of the provider.
 */
export function thrownDiagnostics(e: unknown, providerName: string): Diagnostic[] {
  if (e instanceof DiagnosticsError) return [...e.diagnostics]
  const bug = `This is a bug in the ${providerName} provider; please report it.`
  if (e instanceof CtyError) return [errorDiagnostic('Invalid value', `${e.reason}.\n${bug}`, e.path)]
  const message = e instanceof Error ? e.message : String(e)
  return [errorDiagnostic(`Unexpected error in the ${providerName} provider`, `${message}\n${bug}`)]
}
