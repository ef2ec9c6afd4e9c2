/**
 * Tracing through `@opentelemetry/api` only: without a registered SDK (see otel.ts) every call here is the API's
 * no-op, so instrumented code costs next to nothing. A trace crosses Redis in the job's data: the producer injects
 * the W3C `traceparent` (and `tracestate`) under {@link TRACE_KEY}, the worker extracts it as the parent of its span.
 */
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type Tracer,
} from '@opentelemetry/api'

export { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span }

export const TRACER_NAME = 'opensym'

/** The tracer of opensym's own spans (a proxy: it follows an SDK registered later). */
export function tracer(): Tracer {
  return trace.getTracer(TRACER_NAME)
}

/** Where job data carries the trace context. Job payload parsers ignore it. */
export const TRACE_KEY = '_trace'

export type TraceCarrier = Readonly<Record<string, string>>

/** The active (or given) context as W3C headers; undefined when there is nothing to propagate (tracing off). */
export function injectTraceContext(ctx: Context = context.active()): TraceCarrier | undefined {
  const carrier: Record<string, string> = {}
  propagation.inject(ctx, carrier)
  return carrier.traceparent ? carrier : undefined
}

/** The context carried by job data (see {@link TRACE_KEY}); the root context when there is none. */
export function extractTraceContext(data: unknown): Context {
  const raw = data && typeof data === 'object' ? (data as Record<string, unknown>)[TRACE_KEY] : undefined
  if (!raw || typeof raw !== 'object') return ROOT_CONTEXT
  const carrier: Record<string, string> = {}
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) if (typeof v === 'string') carrier[k] = v
  return propagation.extract(ROOT_CONTEXT, carrier)
}

/** `data` with the active trace context added, or `data` itself when there is none. */
export function withTraceContext<D extends object>(data: D): D {
  const carrier = injectTraceContext()
  return carrier ? { ...data, [TRACE_KEY]: carrier } : data
}

/** Marks the span failed with the error. */
export function recordError(span: Span, e: unknown): void {
  span.recordException(e instanceof Error ? e : String(e))
  span.setStatus({ code: SpanStatusCode.ERROR, message: e instanceof Error ? e.message : String(e) })
}

export interface InSpanOptions {
  readonly kind?: SpanKind
  readonly attributes?: Attributes
  /** The parent; default the active context. */
  readonly parent?: Context
}

/** Runs `fn` in a new active span, ended when `fn` settles; a thrown error marks it failed and is rethrown. */
export function inSpan<T>(name: string, options: InSpanOptions, fn: (span: Span) => Promise<T>): Promise<T> {
  return tracer().startActiveSpan(name, { kind: options.kind ?? SpanKind.INTERNAL, attributes: options.attributes }, options.parent ?? context.active(), async (span) => {
    try {
      return await fn(span)
    } catch (e) {
      recordError(span, e)
      throw e
    } finally {
      span.end()
    }
  })
}
