/**
 * The OpenTelemetry Node SDK, loaded only when tracing is configured (`startTracingFromEnv`) or by tests with an
 * exporter of their own. It registers the global tracer provider, the AsyncLocalStorage context manager (the active
 * span follows `await`s) and the W3C trace-context propagator that the rest of the code reaches through
 * `@opentelemetry/api`.
 */
import { context, propagation, trace } from '@opentelemetry/api'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { resourceFromAttributes } from '@opentelemetry/resources'
import { BatchSpanProcessor, SimpleSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base'
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node'
import type { Tracing } from './tracing-sdk.js'

/** For tests: collects ended spans in memory. */
export { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base'

export interface StartTracingOptions {
  /** `service.name` of the spans, unless OTEL_SERVICE_NAME says otherwise. */
  readonly serviceName: string
  /**
   * Where spans go. Default: OTLP over HTTP (JSON) to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, or
   * OTEL_EXPORTER_OTLP_ENDPOINT + `/v1/traces`, with OTEL_EXPORTER_OTLP_HEADERS, batched. A given exporter gets
   * every span as it ends (tests).
   */
  readonly exporter?: SpanExporter
  readonly env?: NodeJS.ProcessEnv
}

export function startTracing(options: StartTracingOptions): Tracing {
  const env = options.env ?? process.env
  const processor = options.exporter ? new SimpleSpanProcessor(options.exporter) : new BatchSpanProcessor(new OTLPTraceExporter({ url: tracesUrl(env) }))
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': env.OTEL_SERVICE_NAME || options.serviceName }),
    spanProcessors: [processor],
  })
  provider.register()
  let stopped: Promise<void> | undefined
  return {
    forceFlush: () => provider.forceFlush(),
    shutdown: () =>
      (stopped ??= (async () => {
        await provider.shutdown()
        // Back to the no-op globals, so a later startTracing (tests) can register again.
        trace.disable()
        context.disable()
        propagation.disable()
      })()),
  }
}

/** The spec's rule: the traces endpoint as given, else the base endpoint plus `/v1/traces`. */
function tracesUrl(env: NodeJS.ProcessEnv): string | undefined {
  if (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT) return `${env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces`
  return undefined
}
