/**
 * The gRPC services a provider process serves, on {@link GrpcServer}: tfplugin6 `Provider` (dispatching to the
 * injected {@link ProviderService}) and go-plugin's `GRPCController`, `GRPCStdio`, `GRPCBroker`, plus
 * `grpc.health.v1.Health/Check`. Codecs are the generated static ones.
 *
 * `toGrpcMethod`/`toGrpcService` adapt the generated tables to @grpc/grpc-js, for clients (tests, tools); they use
 * its types only, so the provider process never loads grpc-js.
 */
import type * as grpc from '@grpc/grpc-js'
import { GRPCController } from '../proto/generated/grpc_controller.js'
import { GRPCBroker } from '../proto/generated/grpc_broker.js'
import { GRPCStdio } from '../proto/generated/grpc_stdio.js'
import { Diagnostic_Severity, Provider } from '../proto/generated/tfplugin6.js'
import type { MessageInit, MethodDefinition, ResponseOf } from '../proto/wire.js'
import { codecOf, type GrpcServer } from './grpc-server.js'
import type { Logger } from './logger.js'
import type { ProviderMethodName, ProviderService, RpcContext } from './provider-service.js'

/** A grpc-js method definition for a generated one (for grpc-js clients and servers). */
export function toGrpcMethod<Req, Res>(def: MethodDefinition<Req, Res>): grpc.MethodDefinition<Req, MessageInit<Res>> {
  return {
    path: def.path,
    requestStream: def.requestStream,
    responseStream: def.responseStream,
    requestSerialize: (value: Req) => def.request.encode(value as MessageInit<Req>).finish(),
    requestDeserialize: (bytes: Buffer) => def.request.decode(bytes),
    responseSerialize: (value: MessageInit<Res>) => def.response.encode(value).finish(),
    responseDeserialize: (bytes: Buffer) => def.response.decode(bytes) as MessageInit<Res>,
  }
}

/** A grpc-js service definition for a generated service table (also usable to build a client in tests). */
export function toGrpcService(table: Readonly<Record<string, MethodDefinition<unknown, unknown>>>): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {}
  for (const [name, def] of Object.entries(table)) out[name] = toGrpcMethod(def) as grpc.MethodDefinition<unknown, unknown>
  return out
}

function errorText(error: unknown, withStack: boolean): string {
  if (error instanceof Error) return withStack && error.stack ? error.stack : error.message
  return String(error)
}

type DiagnosticsResponseMethod = Exclude<ProviderMethodName, 'StopProvider' | 'CallFunction'>
/** Compile-time check: every other Provider response carries `diagnostics`, where thrown errors are reported. */
type _EveryResponseHasDiagnostics = {
  [K in DiagnosticsResponseMethod]: 'diagnostics' extends keyof ResponseOf<(typeof Provider)[K]> ? true : never
}[DiagnosticsResponseMethod]
const _diagnosticsCheck: _EveryResponseHasDiagnostics = true
void _diagnosticsCheck

/**
 * The response for a handler that threw: an error diagnostic (StopProvider: its `Error` string; CallFunction:
 * its function error), so Terraform shows the message instead of "Plugin did not respond".
 */
export function thrownErrorResponse(method: ProviderMethodName, error: unknown, withStack: boolean): Record<string, unknown> {
  const detail = errorText(error, withStack)
  if (method === 'StopProvider') return { Error: detail }
  if (method === 'CallFunction') return { error: { text: detail } }
  return {
    diagnostics: [
      {
        severity: Diagnostic_Severity.ERROR,
        summary: 'Unexpected provider error',
        detail: `The provider failed in ${method}; this is a bug in the provider, please report it.\n\n${detail}`,
      },
    ],
  }
}

let requestCounter = 0

/** Serves tfplugin6 `Provider`: each call is decoded, handed to the provider, and its answer encoded. */
export function serveProvider(server: GrpcServer, provider: ProviderService, log: Logger): void {
  for (const method of Object.keys(Provider) as ProviderMethodName[]) {
    const handler = provider[method] as ((request: unknown, context: RpcContext) => unknown) | undefined
    if (typeof handler !== 'function') continue // the server answers UNIMPLEMENTED
    const def = Provider[method] as MethodDefinition<unknown, unknown>
    server.unary(def.path, codecOf(def), (call) => {
      const id = ++requestCounter
      // The logger and the signal are made only when used: most calls need neither, and there are hundreds.
      let rpcLog: Logger | undefined
      const getLog = () => (rpcLog ??= log.with({ tf_rpc: method, tf_req_id: id }))
      let controller: AbortController | undefined
      const context: RpcContext = {
        method,
        get signal() {
          if (!controller) {
            const ours = (controller = new AbortController())
            const transport = call.signal
            if (transport.aborted) ours.abort(new Error(`${method} was cancelled by Terraform`))
            else transport.addEventListener('abort', () => ours.abort(new Error(`${method} was cancelled by Terraform`)), { once: true })
          }
          return controller.signal
        },
        get log() {
          return getLog()
        },
      }
      const tracing = log.enabled('trace')
      const started = tracing ? performance.now() : 0
      if (tracing) getLog().trace('Received request')
      const served = (response: unknown): MessageInit<unknown> => {
        if (tracing) getLog().trace('Served request', { tf_req_duration_ms: Math.round((performance.now() - started) * 100) / 100 })
        return response ?? {}
      }
      const failed = (error: unknown): MessageInit<unknown> => {
        getLog().error('Handler threw an error; answering with an error diagnostic', { error: errorText(error, true) })
        return thrownErrorResponse(method, error, log.enabled('debug'))
      }
      let result: unknown
      try {
        result = handler.call(provider, call.request, context)
      } catch (error) {
        return failed(error)
      }
      return result instanceof Promise ? result.then(served, failed) : served(result)
    })
  }
}

/** Hooks from the serving lifecycle into the go-plugin side services. */
export interface SideServiceHooks {
  /** GRPCController/Shutdown: called after the answer is sent. */
  onShutdown(): void
  /** The StreamStdio stream ended from Terraform's side: its connection is gone. */
  onStdioClosed(): void
}

const HEALTH_SERVING = Uint8Array.of(0x08, 0x01)

/**
 * go-plugin's side services: GRPCController/Shutdown (`beforeShutdown` runs before the answer, `hooks.onShutdown`
 * after it), GRPCStdio/StreamStdio, GRPCBroker/StartStream, and the health check.
 */
export function serveSideServices(server: GrpcServer, hooks: SideServiceHooks, beforeShutdown: () => Promise<void>): void {
  const shutdown = GRPCController.Shutdown
  server.unary(shutdown.path, codecOf(shutdown), async (call) => {
    await beforeShutdown()
    call.afterResponse(() => hooks.onShutdown())
    return {}
  })
  const stdio = GRPCStdio.StreamStdio
  // Kept open and silent: our stdout/stderr are not forwarded over gRPC (stderr carries the JSON logs).
  server.stream(stdio.path, codecOf(stdio), (call) => {
    call.signal.addEventListener('abort', () => hooks.onStdioClosed(), { once: true })
  })
  const broker = GRPCBroker.StartStream
  // Terraform opens the broker stream at connect and never uses it; answer nothing and close when it does.
  server.stream(broker.path, codecOf(broker), (call) => call.onEnd(() => call.end()))
  // grpc.health.v1.Health/Check, for go-plugin's Ping: HealthCheckResponse{status: SERVING (1)} is the bytes 08 01.
  server.unary('/grpc.health.v1.Health/Check', { decode: () => undefined, encode: () => HEALTH_SERVING }, () => undefined)
}
