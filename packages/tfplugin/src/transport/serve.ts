/**
 * `serve()`: runs a provider as a go-plugin gRPC server the way Terraform launches it.
 *
 * 1. Checks `TF_PLUGIN_MAGIC_COOKIE` (else prints go-plugin's "This binary is a plugin…" and exits 1).
 * 2. Negotiates protocol 6 from `PLUGIN_PROTOCOL_VERSIONS` (a set, in any order).
 * 3. AutoMTLS: a fresh P-256 self-signed server certificate; the client must present a certificate signed by
 *    `PLUGIN_CLIENT_CERT` (Terraform's own, sent in the environment).
 * 4. Listens on 127.0.0.1:0 (the `PLUGIN_MIN_PORT`/`PLUGIN_MAX_PORT` range is not needed; Terraform accepts any
 *    port) or a unix socket, and prints the one handshake line on stdout. Nothing else ever goes to stdout:
 *    `console.log` and stray `process.stdout.write`s are sent to stderr.
 * 5. Serves until `GRPCController/Shutdown` (answers, then exits at once — go-plugin otherwise waits 2 s and
 *    kills the process) or until Terraform's connection is gone. SIGINT is ignored: Terraform forwards Ctrl-C as
 *    StopProvider and a killed provider would lose the result of a running apply.
 *
 * Debug mode (`--debug` or `debug: true`) skips the cookie and TLS, keeps running across Terraform commands, and
 * prints the `TF_REATTACH_PROVIDERS` value to use.
 */
import { mkdtempSync, rmSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateServerCertificate, type ServerCertificate } from './cert.js'
import { GrpcServer } from './grpc-server.js'
import {
  debugInstructions,
  handshakeLine,
  hasMagicCookie,
  negotiateVersion,
  NOT_LAUNCHED_BY_TERRAFORM_MESSAGE,
  type Environment,
  type Network,
} from './handshake.js'
import { createLogger, logThresholdFromEnv, type Logger } from './logger.js'
import type { Awaitable, ProviderService } from './provider-service.js'
import { serveProvider, serveSideServices } from './services.js'

export interface ServeOptions {
  /** The tfplugin6 RPC handlers. */
  readonly provider: ProviderService
  /** Short provider name (`sym`): the `@module` of log lines. */
  readonly name: string
  /**
   * Full source address (`registry.terraform.io/symopsio/sym`), used in debug mode's `TF_REATTACH_PROVIDERS`.
   * Defaults to `registry.terraform.io/hashicorp/<name>`.
   */
  readonly address?: string
  /** Debug (reattach) mode; defaults to whether `--debug` is among the process arguments. */
  readonly debug?: boolean
  /** `tcp` (default) or `unix` (a socket in `PLUGIN_UNIX_SOCKET_DIR` or the temp directory). */
  readonly network?: Network
  /** Defaults to `process.env`. */
  readonly env?: Environment
  /** Defaults to hclog JSON on stderr at the level of `TF_LOG_PROVIDER` / `TF_LOG`. */
  readonly logger?: Logger
  /**
   * Whether serve() owns the process (default true): reserve stdout for the handshake, ignore SIGINT, exit 1 on a
   * missing cookie and exit 0 once stopped. False (tests, embedding) throws instead and leaves the process alone.
   */
  readonly ownsProcess?: boolean
  /** Runs when Terraform calls Shutdown, before the process exits. Errors are logged. */
  readonly onShutdown?: () => Awaitable<void>
  /** Receives the handshake line (or debug instructions); defaults to the real stdout. */
  readonly output?: (text: string) => void
}

/** Why the server stopped. */
export type StopReason = 'shutdown' | 'disconnected' | 'stopped'

export interface PluginServer {
  readonly network: Network
  /** `127.0.0.1:PORT` or the socket path. */
  readonly address: string
  readonly protocolVersion: number
  /** The handshake line, without its newline. */
  readonly handshake: string
  /** The server certificate, when serving TLS. */
  readonly certificate: ServerCertificate | undefined
  readonly debug: boolean
  /** Resolves once the server has stopped. */
  readonly stopped: Promise<StopReason>
  /** Stops serving at once (cancelling running calls) and removes the unix socket. */
  stop(reason?: StopReason): Promise<void>
}

/** The plugin was not launched by Terraform (missing or wrong magic cookie). */
export class NotLaunchedByTerraformError extends Error {
  override readonly name = 'NotLaunchedByTerraformError'
  constructor() {
    super(NOT_LAUNCHED_BY_TERRAFORM_MESSAGE.trimEnd())
  }
}

/** How long a provider whose connection is gone waits for its other connections to close before exiting. */
const SHUTDOWN_GRACE_MS = 100

/**
 * Keeps stdout for the handshake: from now on `process.stdout` (and so `console.log`/`console.info`, which write
 * through it) is stderr. Returns a writer to the real stdout, file descriptor 1: neither stream is made here (Node
 * builds each on first use, a few ms of a provider's start).
 */
function reserveStdout(): (text: string) => void {
  Object.defineProperty(process, 'stdout', { configurable: true, enumerable: true, get: () => process.stderr })
  return (text) => {
    writeSync(1, text)
  }
}

/** Starts the provider server and prints the handshake; resolves once Terraform can connect. */
export async function serve(options: ServeOptions): Promise<PluginServer> {
  const env = options.env ?? process.env
  const ownsProcess = options.ownsProcess ?? true
  const debug = options.debug ?? process.argv.slice(2).includes('--debug')
  const network = options.network ?? 'tcp'
  const log = options.logger ?? createLogger({ module: options.name, threshold: logThresholdFromEnv(env) })

  if (!debug && !hasMagicCookie(env)) {
    if (!ownsProcess) throw new NotLaunchedByTerraformError()
    process.stderr.write(NOT_LAUNCHED_BY_TERRAFORM_MESSAGE)
    process.exit(1)
  }

  const realStdout = ownsProcess && !debug ? reserveStdout() : (text: string) => void process.stdout.write(text)
  const output = options.output ?? realStdout
  if (ownsProcess && !debug) {
    process.on('SIGINT', () => log.debug('Ignoring SIGINT: Terraform stops the provider with StopProvider and Shutdown'))
  }

  const negotiation = negotiateVersion(env)
  if (!negotiation.compatible) {
    log.warn('Terraform offered no protocol version this provider speaks', { offered: negotiation.offered?.join(','), ours: negotiation.version })
  }

  const clientCert = debug ? undefined : env.PLUGIN_CLIENT_CERT
  const certificate = clientCert ? generateServerCertificate() : undefined

  let stopping = false
  let resolveStopped!: (reason: StopReason) => void
  const stopped = new Promise<StopReason>((resolve) => (resolveStopped = resolve))
  let socketDir: string | undefined

  const server = new GrpcServer({
    ...(clientCert && certificate ? { tls: { keyPem: certificate.keyPem, certPem: certificate.certPem, clientCaPem: clientCert } } : {}),
    onError: (what, error) => log.debug(what, { error: error instanceof Error ? error.message : String(error) }),
  })

  const finish = (reason: StopReason): void => {
    if (socketDir) rmSync(socketDir, { recursive: true, force: true })
    log.debug('Provider server stopped', { reason })
    resolveStopped(reason)
    // After the `stopped` callbacks (microtasks) have run, but without waiting for anything else.
    if (ownsProcess) setImmediate(() => process.exit(0))
  }

  const stop = (reason: StopReason = 'stopped'): Promise<void> => {
    if (!stopping) {
      stopping = true
      server.forceShutdown()
      finish(reason)
    }
    return stopped.then(() => undefined)
  }

  /** Lets the last answer reach Terraform: wait for it to close the connection, briefly, then stop. */
  const stopGracefully = (reason: StopReason): void => {
    if (stopping) return
    stopping = true
    const timer = setTimeout(() => {
      server.forceShutdown()
      finish(reason)
    }, SHUTDOWN_GRACE_MS)
    server.tryShutdown(() => {
      clearTimeout(timer)
      finish(reason)
    })
  }

  const hooks = {
    onShutdown: () => {
      if (debug) {
        log.debug('Shutdown called in debug mode: keeping the provider running')
        return
      }
      log.debug('Shutdown called by Terraform: exiting')
      // The answer is sent and Terraform makes no call after Shutdown: no need to wait for it to close the
      // connection, which it does next before it waits for the process to end.
      void stop('shutdown')
    },
    onStdioClosed: () => {
      if (debug || stopping) return
      log.info("Terraform's connection is gone: exiting")
      stopGracefully('disconnected')
    },
  }

  const onShutdown = options.onShutdown
  const beforeShutdown = async (): Promise<void> => {
    if (!onShutdown) return
    try {
      await onShutdown()
    } catch (error) {
      log.error('onShutdown failed', { error })
    }
  }

  serveProvider(server, options.provider, log)
  serveSideServices(server, hooks, beforeShutdown)

  let address: string
  if (network === 'unix') {
    socketDir = mkdtempSync(join(env.PLUGIN_UNIX_SOCKET_DIR || tmpdir(), 'plugin'))
    address = join(socketDir, 'provider.sock')
    await server.listen({ path: address })
    if (ownsProcess) process.on('exit', () => socketDir && rmSync(socketDir, { recursive: true, force: true }))
  } else {
    const port = await server.listen({ host: '127.0.0.1', port: 0 })
    address = `127.0.0.1:${port}`
  }

  server.ready.catch((error: unknown) => {
    log.error('Cannot serve', { error })
    if (!ownsProcess) return void stop('stopped')
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exit(1)
  })

  const handshake = handshakeLine(network, address, certificate?.der, negotiation.version)
  log.info('Provider started', { network, address, tls: certificate !== undefined, protocol_version: negotiation.version, pid: process.pid, debug })
  if (debug) output(debugInstructions(options.address ?? `registry.terraform.io/hashicorp/${options.name}`, network, address, process.pid))
  else output(`${handshake}\n`)

  return { network, address, protocolVersion: negotiation.version, handshake, certificate, debug, stopped, stop }
}
