/**
 * The gRPC services a provider process serves, on @grpc/grpc-js: tfplugin6 `Provider` (dispatching to the
 * injected {@link ProviderService}) and go-plugin's `GRPCController`, `GRPCStdio`, `GRPCBroker`, plus
 * `grpc.health.v1.Health/Check`. Codecs are the generated static ones.
 */
import type * as grpc from '@grpc/grpc-js'
import { type Empty as ControllerEmpty, GRPCController } from '../proto/generated/grpc_controller.js'
import { GRPCBroker, type ConnInfo } from '../proto/generated/grpc_broker.js'
import { GRPCStdio, type StdioData } from '../proto/generated/grpc_stdio.js'
import { Diagnostic_Severity, Provider } from '../proto/generated/tfplugin6.js'
import type { MessageInit, MethodDefinition, ResponseOf } from '../proto/wire.js'
import type { Logger } from './logger.js'
import type { ProviderMethodName, ProviderService, RpcContext } from './provider-service.js'

/** A grpc-js method definition for a generated one; the server side sends {@link MessageInit} objects. */
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

/** grpc-js handlers for tfplugin6 `Provider`: each decodes, calls the provider, and encodes the answer. */
export function providerImplementation(provider: ProviderService, log: Logger): grpc.UntypedServiceImplementation {
  const implementation: grpc.UntypedServiceImplementation = {}
  for (const method of Object.keys(Provider) as ProviderMethodName[]) {
    const handler = provider[method] as ((request: unknown, context: RpcContext) => unknown) | undefined
    if (typeof handler !== 'function') continue // grpc-js answers UNIMPLEMENTED
    implementation[method] = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      const controller = new AbortController()
      call.on('cancelled', () => controller.abort(new Error(`${method} was cancelled by Terraform`)))
      const rpcLog = log.with({ tf_rpc: method, tf_req_id: ++requestCounter })
      const started = performance.now()
      if (rpcLog.enabled('trace')) rpcLog.trace('Received request')
      const context: RpcContext = { method, signal: controller.signal, log: rpcLog }
      new Promise((resolve) => resolve(handler.call(provider, call.request, context))).then(
        (response) => {
          if (rpcLog.enabled('trace')) rpcLog.trace('Served request', { tf_req_duration_ms: Math.round((performance.now() - started) * 100) / 100 })
          callback(null, response ?? {})
        },
        (error: unknown) => {
          rpcLog.error('Handler threw an error; answering with an error diagnostic', { error: errorText(error, true) })
          callback(null, thrownErrorResponse(method, error, log.enabled('debug')))
        },
      )
    }
  }
  return implementation
}

/** Hooks from the serving lifecycle into the go-plugin side services. */
export interface SideServiceHooks {
  /** GRPCController/Shutdown: called after the answer is sent. */
  onShutdown(): void
  /** The StreamStdio stream ended from Terraform's side: its connection is gone. */
  onStdioClosed(): void
}

export function controllerImplementation(hooks: SideServiceHooks): grpc.UntypedServiceImplementation {
  return {
    Shutdown: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<MessageInit<ControllerEmpty>>) => {
      callback(null, {})
      hooks.onShutdown()
    },
  }
}

export function stdioImplementation(hooks: SideServiceHooks): grpc.UntypedServiceImplementation {
  return {
    // Kept open and silent: our stdout/stderr are not forwarded over gRPC (stderr carries the JSON logs).
    StreamStdio: (call: grpc.ServerWritableStream<unknown, MessageInit<StdioData>>) => {
      call.on('cancelled', () => hooks.onStdioClosed())
      call.on('error', () => undefined)
    },
  }
}

export function brokerImplementation(): grpc.UntypedServiceImplementation {
  return {
    // Terraform opens the broker stream at connect and never uses it; answer nothing and close when it does.
    StartStream: (call: grpc.ServerDuplexStream<ConnInfo, MessageInit<ConnInfo>>) => {
      call.on('data', () => undefined)
      call.on('end', () => call.end())
      call.on('error', () => undefined)
    },
  }
}

// grpc.health.v1.Health/Check, for go-plugin's Ping: HealthCheckResponse{status: SERVING (1)} is the bytes 08 01.
const HEALTH_SERVING = Buffer.from([0x08, 0x01])
export const healthService: grpc.ServiceDefinition = {
  Check: {
    path: '/grpc.health.v1.Health/Check',
    requestStream: false,
    responseStream: false,
    requestSerialize: () => Buffer.alloc(0),
    requestDeserialize: () => undefined,
    responseSerialize: () => HEALTH_SERVING,
    responseDeserialize: () => undefined,
  },
}
export const healthImplementation: grpc.UntypedServiceImplementation = {
  Check: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<undefined>) => callback(null, undefined),
}

export const SIDE_SERVICES = { GRPCController, GRPCStdio, GRPCBroker } as const
