/** Starting the SDK only when it is configured, so a process without tracing never loads it. */

/** A started SDK. */
export interface Tracing {
  /** Exports the spans ended so far. */
  forceFlush(): Promise<void>
  /** Flushes, stops exporting, and restores the no-op globals. Safe to call twice. */
  shutdown(): Promise<void>
}

/**
 * Starts the OpenTelemetry SDK when OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set and
 * OTEL_SDK_DISABLED is not `true`; otherwise does nothing and every span is a no-op.
 */
export async function startTracingFromEnv(serviceName: string, env: NodeJS.ProcessEnv = process.env): Promise<Tracing | undefined> {
  if (env.OTEL_SDK_DISABLED?.toLowerCase() === 'true') return undefined
  if (!env.OTEL_EXPORTER_OTLP_ENDPOINT && !env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return undefined
  const { startTracing } = await import('./otel.js')
  return startTracing({ serviceName, env })
}
