/**
 * The go-plugin transport of a Terraform provider: `serve({ provider, name })` runs a {@link ProviderService}
 * as the gRPC server Terraform launches (cookie, protocol 6, AutoMTLS, handshake line, Shutdown, debug mode),
 * with hclog JSON logging on stderr. The gRPC server is our own, on node:http2 (`grpc-server.ts`).
 */
export { serve, NotLaunchedByTerraformError, type PluginServer, type ServeOptions, type StopReason } from './serve.js'
export type { Awaitable, ProviderMethodName, ProviderService, RpcContext, RpcHandler } from './provider-service.js'
export {
  createLogger,
  hclogTimestamp,
  logThresholdFromEnv,
  parseLogLevel,
  LOG_LEVELS,
  type LogFields,
  type Logger,
  type LoggerOptions,
  type LogLevel,
  type LogSink,
  type LogThreshold,
} from './logger.js'
export {
  CORE_PROTOCOL_VERSION,
  debugInstructions,
  handshakeLine,
  MAGIC_COOKIE_KEY,
  MAGIC_COOKIE_VALUE,
  negotiateVersion,
  NOT_LAUNCHED_BY_TERRAFORM_MESSAGE,
  PLUGIN_PROTOCOL_VERSION,
  reattachProvidersJson,
  type Environment,
  type Network,
  type ReattachConfig,
  type VersionNegotiation,
} from './handshake.js'
export { CERT_HOSTNAME, generateServerCertificate, type CertificateOptions, type ServerCertificate } from './cert.js'
export { thrownErrorResponse, toGrpcMethod, toGrpcService } from './services.js'
export {
  codecOf,
  GrpcError,
  GrpcServer,
  GrpcStatus,
  trustedClientCertificate,
  type Codec,
  type GrpcServerOptions,
  type ServerTls,
  type StreamCall,
  type StreamHandler,
  type UnaryCall,
  type UnaryHandler,
} from './grpc-server.js'
