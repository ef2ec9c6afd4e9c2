/**
 * A gRPC server on `node:http2`, with just what a go-plugin provider serves: unary calls, and streams for
 * `GRPCStdio/StreamStdio` (server streaming) and `GRPCBroker/StartStream` (bidirectional); over TLS with a required
 * client certificate, or over plaintext HTTP/2 (debug mode); on TCP or a unix socket.
 *
 * Why not @grpc/grpc-js: Terraform starts the provider 3–5 times per command, and every start pays for what the
 * process loads before its handshake. grpc-js loads its whole client side with it (channels, name resolvers, load
 * balancers, channelz, proxy support), about a third of the provider bundle and 10–20 ms of every start, for a
 * server that needs a few hundred lines. The wire protocol (gRPC over HTTP/2: length-prefixed messages,
 * `grpc-status`/`grpc-message` trailers, `grpc-timeout`, cancellation by RST_STREAM) is implemented here as the
 * gRPC specification (PROTOCOL-HTTP2.md) describes it, and tested against grpc-js's client and the terraform CLI.
 */
import type {
  Http2SecureServer,
  Http2Server,
  Http2Session,
  IncomingHttpHeaders,
  OutgoingHttpHeaders,
  SecureServerOptions,
  ServerHttp2Stream,
  ServerOptions,
} from 'node:http2'
import { X509Certificate } from 'node:crypto'
import { createServer as createListener, type Server as Listener, type Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import type { MessageInit, MethodDefinition } from '../proto/wire.js'
import type { Awaitable } from './provider-service.js'

/** gRPC status codes (the ones this server sends). */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
} as const

/** Throw from a handler to answer with this status instead of UNKNOWN. */
export class GrpcError extends Error {
  override readonly name = 'GrpcError'
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message)
  }
}

/** How one method's messages are read and written. */
export interface Codec<Req, Res> {
  decode(bytes: Uint8Array): Req
  encode(response: Res): Uint8Array
}

/** The codec of a generated method definition. */
export function codecOf<Req, Res>(def: MethodDefinition<Req, Res>): Codec<Req, MessageInit<Res>> {
  return { decode: (bytes) => def.request.decode(bytes), encode: (response) => def.response.encode(response).finish() }
}

export interface UnaryCall<Req> {
  readonly request: Req
  /** Aborted when the client cancels the call, its deadline passes or its connection drops. */
  readonly signal: AbortSignal
  /**
   * Runs once the response has been sent (HTTP/2 closed the call's stream after its trailers), e.g. Shutdown: stop
   * serving after answering. Not run when the response could not be encoded.
   */
  afterResponse(listener: () => void): void
}

export type UnaryHandler<Req, Res> = (call: UnaryCall<Req>) => Awaitable<Res>

export interface StreamCall<Req, Res> {
  /** Aborted when the client cancels the stream or its connection drops (not when the call ends normally). */
  readonly signal: AbortSignal
  onMessage(listener: (message: Req) => void): void
  /** The client half-closed its side. */
  onEnd(listener: () => void): void
  write(message: Res): void
  /** Ends the call with status OK. */
  end(): void
}

export type StreamHandler<Req, Res> = (call: StreamCall<Req, Res>) => void

/**
 * Whether a client certificate is trusted the way go-plugin's `tls.RequireAndVerifyClientCert` with one CA trusts
 * it: it is that certificate or is issued and signed by it, both are within their validity period, and its
 * extended key usage (when it has one) allows client authentication.
 */
export function trustedClientCertificate(peer: X509Certificate | undefined, ca: X509Certificate, now: Date = new Date()): boolean {
  if (!peer) return false
  const valid = (c: X509Certificate) => new Date(c.validFrom) <= now && now <= new Date(c.validTo)
  const signedByCa = peer.raw.equals(ca.raw) || (ca.ca && peer.checkIssued(ca) && peer.verify(ca.publicKey))
  const usage = peer.keyUsage // extended key usage OIDs; undefined without the extension
  const clientAuth = usage === undefined || usage.includes('1.3.6.1.5.5.7.3.2') || usage.includes('2.5.29.37.0')
  return signedByCa && valid(peer) && valid(ca) && clientAuth
}

/** Mutual TLS: the server's key and certificate, and the one certificate clients must be signed by. */
export interface ServerTls {
  readonly keyPem: string
  readonly certPem: string
  readonly clientCaPem: string
}

export interface GrpcServerOptions {
  /** Absent: plaintext HTTP/2 with prior knowledge (h2c), as go-plugin's debug mode connects. */
  readonly tls?: ServerTls
  /** Connection-level failures worth knowing about when debugging (they never stop the server). */
  readonly onError?: (what: string, error: unknown) => void
}

type Route =
  | { readonly kind: 'unary'; readonly codec: Codec<unknown, unknown>; readonly handler: UnaryHandler<unknown, unknown> }
  | { readonly kind: 'stream'; readonly codec: Codec<unknown, unknown>; readonly handler: StreamHandler<unknown, unknown> }

const CONTENT_TYPE = 'application/grpc+proto'
/** What grpc-js advertises; requests compressed with these are accepted, responses are never compressed. */
const ACCEPT_ENCODING = 'identity,deflate,gzip'
const TIMEOUT_UNITS_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 }

/** `grpc-timeout`: up to 8 digits and a unit. */
function parseTimeout(value: string | string[] | undefined): number | undefined {
  const match = typeof value === 'string' ? /^(\d{1,8})([HMSmun])$/.exec(value) : null
  return match ? Number(match[1]) * TIMEOUT_UNITS_MS[match[2]!]! : undefined
}

/** `grpc-message` is percent-encoded outside printable ASCII (and `%` itself). */
function encodeGrpcMessage(message: string): string {
  let out = ''
  for (const byte of Buffer.from(message, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}

/** A message on the wire: a compressed flag, a 4-byte big-endian length, the bytes. */
function frame(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + payload.length)
  out[0] = 0
  out.writeUInt32BE(payload.length, 1)
  out.set(payload, 5)
  return out
}

/** Splits the request body into messages as its chunks arrive (without copying each chunk into one buffer). */
class MessageSplitter {
  private chunks: Buffer[] = []
  private size = 0
  private header: { compressed: boolean; length: number } | undefined

  push(chunk: Buffer): Array<{ compressed: boolean; payload: Buffer }> {
    this.chunks.push(chunk)
    this.size += chunk.length
    const out: Array<{ compressed: boolean; payload: Buffer }> = []
    for (;;) {
      if (!this.header) {
        if (this.size < 5) break
        const head = this.take(5)
        this.header = { compressed: head[0] !== 0, length: head.readUInt32BE(1) }
      }
      if (this.size < this.header.length) break
      out.push({ compressed: this.header.compressed, payload: this.take(this.header.length) })
      this.header = undefined
    }
    return out
  }

  /** True when the body ended inside a message. */
  get truncated(): boolean {
    return this.header !== undefined || this.size > 0
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size)
    const rest = all.subarray(n)
    this.chunks = rest.length > 0 ? [rest] : []
    this.size = rest.length
    return all.subarray(0, n)
  }
}

async function decompress(encoding: string | string[] | undefined, payload: Buffer): Promise<Buffer> {
  // Terraform never compresses; zlib is loaded only for a client that does.
  const zlib = await import('node:zlib')
  if (encoding === 'gzip') return zlib.gunzipSync(payload)
  if (encoding === 'deflate') return zlib.inflateSync(payload)
  throw new GrpcError(GrpcStatus.INTERNAL, `Received a compressed message with grpc-encoding ${String(encoding ?? '(none)')}`)
}

/** A call's abort signal, made only when a handler asks for it: most never do, and a command makes hundreds of calls. */
class Cancellation {
  private controller: AbortController | undefined
  private reason: unknown
  private aborted = false

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController()
      if (this.aborted) this.controller.abort(this.reason)
    }
    return this.controller.signal
  }

  abort(reason: unknown): void {
    if (this.aborted) return
    this.aborted = true
    this.reason = reason
    this.controller?.abort(reason)
  }
}

/** The response side of one call: headers once, messages, then the status in the trailers. */
class Responder {
  private headersSent = false
  private finished = false
  private status: { code: number; message: string } = { code: GrpcStatus.OK, message: 'OK' }

  constructor(private readonly stream: ServerHttp2Stream) {}

  /** The call has been answered (a reply or a status went out, or is going out). */
  get answered(): boolean {
    return this.finished
  }

  get open(): boolean {
    return !this.finished && !this.stream.destroyed && !this.stream.closed
  }

  private sendHeaders(): void {
    if (this.headersSent) return
    this.headersSent = true
    this.stream.respond({ ':status': 200, 'content-type': CONTENT_TYPE, 'grpc-accept-encoding': ACCEPT_ENCODING }, { waitForTrailers: true })
    this.stream.once('wantTrailers', () => {
      this.stream.sendTrailers({ 'grpc-status': String(this.status.code), 'grpc-message': encodeGrpcMessage(this.status.message) })
    })
  }

  write(payload: Uint8Array): void {
    if (!this.open) return
    this.sendHeaders()
    this.stream.write(frame(payload))
  }

  /** Ends with a message and OK (unary). */
  reply(payload: Uint8Array): void {
    if (!this.open) return
    this.sendHeaders()
    this.finished = true
    this.stream.end(frame(payload))
  }

  /** Ends with a status: in the trailers, or as a trailers-only response when nothing was sent yet. */
  end(code: number = GrpcStatus.OK, message = code === GrpcStatus.OK ? 'OK' : ''): void {
    if (!this.open) return
    this.finished = true
    if (this.headersSent) {
      this.status = { code, message }
      this.stream.end()
      return
    }
    const headers: OutgoingHttpHeaders = {
      ':status': 200,
      'content-type': CONTENT_TYPE,
      'grpc-status': String(code),
      'grpc-message': encodeGrpcMessage(message),
    }
    this.stream.respond(headers, { endStream: true })
  }
}

export class GrpcServer {
  private readonly routes = new Map<string, Route>()
  private readonly sessions = new Set<Http2Session>()
  /** Sessions whose client certificate was checked (TLS only). */
  private readonly trusted = new WeakSet<Http2Session>()
  /** The listening socket; connections are handed to {@link server} (see {@link listen}). */
  private listener: Listener | undefined
  private server: Http2Server | Http2SecureServer | undefined
  /** Connections accepted before {@link server} was made. */
  private pending: Socket[] = []
  private stopped = false
  /**
   * Settles once the HTTP/2 server that serves the listener's connections is made (see {@link listen}); rejects
   * when it cannot be (a key or certificate TLS refuses), after which nothing is served.
   */
  ready: Promise<void> = Promise.resolve()
  private readonly onError: (what: string, error: unknown) => void
  private readonly tls: ServerTls | undefined
  /** Terraform's certificate, parsed with the HTTP/2 server (after the handshake line). */
  private clientCa: X509Certificate | undefined

  constructor(options: GrpcServerOptions = {}) {
    this.onError = options.onError ?? (() => undefined)
    this.tls = options.tls
  }

  /**
   * The HTTP/2 server, made once listening (see {@link listen}); it never listens itself. node:http2 is loaded then
   * (the provider's startup snapshot cannot hold it, see apps/provider/src/snapshot.ts).
   */
  private async createServer(): Promise<Http2Server | Http2SecureServer> {
    const http2 = await import('node:http2')
    const common: ServerOptions = {
      // Like grpc-js: nothing is refused for size (Terraform's schemas and states can be large, go-plugin allows
      // 2 GB), and Node's default 10 MB per session would reset connections that carry a big response.
      maxSessionMemory: Number.MAX_SAFE_INTEGER,
      maxSendHeaderBlockLength: Number.MAX_SAFE_INTEGER,
    }
    const tls = this.tls
    const secure: SecureServerOptions | undefined = tls && {
      ...common,
      key: tls.keyPem,
      cert: tls.certPem,
      // The client must present a certificate; it is checked against Terraform's in 'session' below rather than
      // by OpenSSL with `ca: [certificate]`: that makes Node build a certificate store of its ~140 public root
      // certificates first, about 20 ms of every provider start, only to trust one certificate. OpenSSL still
      // checks that the client holds the certificate's private key (TLS CertificateVerify).
      ca: [],
      requestCert: true,
      rejectUnauthorized: false,
    }
    const server = secure ? http2.createSecureServer(secure) : http2.createServer(common)
    const clientCa = (this.clientCa = tls ? new X509Certificate(tls.clientCaPem) : undefined)
    server.on('session', (session: Http2Session) => {
      if (clientCa) {
        // Emitted as the connection's session is made, before any of its streams is read.
        const peer = (session.socket as TLSSocket).getPeerX509Certificate()
        if (!trustedClientCertificate(peer, clientCa)) {
          this.onError('TLS client refused', new Error(peer ? `certificate of ${peer.subject.replace(/\n/g, ', ')} is not signed by PLUGIN_CLIENT_CERT` : 'no client certificate'))
          session.destroy()
          return
        }
        this.trusted.add(session)
      }
      this.sessions.add(session)
      session.on('close', () => this.sessions.delete(session))
      session.on('error', (error) => this.onError('HTTP/2 session error', error))
    })
    server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => this.dispatch(stream, headers))
    server.on('tlsClientError', (error) => this.onError('TLS handshake failed', error))
    server.on('error', (error) => this.onError('server error', error))
    return server
  }

  /** Serves a unary method. */
  unary<Req, Res>(path: string, codec: Codec<Req, Res>, handler: UnaryHandler<Req, Res>): this {
    this.routes.set(path, { kind: 'unary', codec, handler: handler as UnaryHandler<unknown, unknown> })
    return this
  }

  /** Serves a streaming method (server streaming or bidirectional: the client may send any number of messages). */
  stream<Req, Res>(path: string, codec: Codec<Req, Res>, handler: StreamHandler<Req, Res>): this {
    this.routes.set(path, { kind: 'stream', codec, handler: handler as StreamHandler<unknown, unknown> })
    return this
  }

  /**
   * Listens on a TCP port of `host` (0: any free one) or a unix socket path; resolves with the port or path.
   *
   * The socket is a plain `node:net` listener, and the HTTP/2 (and TLS) server that serves its connections is made
   * only after the caller's continuation has run: loading node:http2 and node:tls and building the TLS context take
   * 15–20 ms, which a provider spends after printing its handshake line, while Terraform reads it and dials, instead
   * of before. Connections accepted meanwhile wait, unread, and are handed over once the server exists.
   */
  async listen(target: { readonly host: string; readonly port: number } | { readonly path: string }): Promise<number | string> {
    if (this.listener) throw new Error('GrpcServer.listen: already listening')
    const listener = (this.listener = createListener({ pauseOnConnect: true }, (socket) => this.accept(socket)))
    listener.on('error', (error) => this.onError('listener error', error))
    const result = await new Promise<number | string>((resolve, reject) => {
      const onError = (error: Error) => reject(error)
      listener.once('error', onError)
      const done = () => {
        listener.off('error', onError)
        const address = listener.address()
        resolve(typeof address === 'object' && address !== null ? address.port : String(address))
      }
      if ('path' in target) listener.listen(target.path, done)
      else listener.listen(target.port, target.host, done)
    })
    // setImmediate: after the promise continuations, i.e. after the caller has printed what it prints on listening.
    this.ready = new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        this.createServer().then(
          (server) => {
            this.server = server
            for (const socket of this.pending.splice(0)) this.accept(socket)
            resolve()
          },
          (error: unknown) => {
            this.stopAccepting()
            reject(error instanceof Error ? error : new Error(String(error)))
          },
        )
      })
    })
    return result
  }

  private accept(socket: Socket): void {
    if (this.stopped) {
      socket.destroy()
    } else if (this.server) {
      this.server.emit('connection', socket)
      // Accepted paused: reading starts now, into the HTTP/2 session (or the TLS layer under it) that took it over.
      socket.resume()
    } else {
      this.pending.push(socket)
    }
  }

  /** Stops accepting; lets every connection finish its calls and close; then calls `done`. */
  tryShutdown(done: () => void): void {
    this.stopAccepting()
    if (this.sessions.size === 0) return done()
    let open = this.sessions.size
    for (const session of this.sessions) {
      session.once('close', () => --open === 0 && done())
      session.close()
    }
  }

  /** Stops at once: every connection is closed, running calls are cancelled. */
  forceShutdown(): void {
    this.stopAccepting()
    for (const session of this.sessions) session.destroy()
  }

  private stopAccepting(): void {
    this.stopped = true
    this.listener?.close()
    for (const socket of this.pending.splice(0)) socket.destroy()
  }

  private dispatch(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    // A reset or a lost connection must not become an unhandled 'error' event that ends the process.
    stream.on('error', (error) => this.onError('HTTP/2 stream error', error))
    // Never reached for a refused client (its session is destroyed first); checked again all the same.
    if (this.tls && !(stream.session && this.trusted.has(stream.session))) {
      stream.close(7) // NGHTTP2_REFUSED_STREAM
      return
    }
    const contentType = headers['content-type']
    if (headers[':method'] !== 'POST' || typeof contentType !== 'string' || !contentType.startsWith('application/grpc')) {
      // Not gRPC: the specification's answer is HTTP 415.
      stream.respond({ ':status': 415 }, { endStream: true })
      return
    }
    const responder = new Responder(stream)
    const path = headers[':path'] ?? ''
    const route = this.routes.get(path)
    if (!route) {
      stream.resume()
      responder.end(GrpcStatus.UNIMPLEMENTED, `The server does not implement the method ${path}`)
      return
    }

    const cancellation = new Cancellation()
    const timeoutMs = parseTimeout(headers['grpc-timeout'])
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            cancellation.abort(new GrpcError(GrpcStatus.DEADLINE_EXCEEDED, 'Deadline exceeded'))
            responder.end(GrpcStatus.DEADLINE_EXCEEDED, 'Deadline exceeded')
          }, timeoutMs)
    stream.on('close', () => {
      if (timer) clearTimeout(timer)
      // Closed before we answered: the client cancelled (RST_STREAM) or the connection went away.
      if (!responder.answered) cancellation.abort(new GrpcError(GrpcStatus.CANCELLED, 'Cancelled by the client'))
    })
    const encoding = headers['grpc-encoding']
    const decodeBytes = (bytes: Uint8Array): unknown => {
      try {
        return route.codec.decode(bytes)
      } catch (error) {
        throw new GrpcError(GrpcStatus.INTERNAL, `Error deserializing request: ${error instanceof Error ? error.message : String(error)}`)
      }
    }
    const decode = async (message: { compressed: boolean; payload: Buffer }): Promise<unknown> =>
      decodeBytes(message.compressed ? await decompress(encoding, message.payload) : message.payload)
    const fail = (error: unknown): void => {
      if (error instanceof GrpcError) responder.end(error.code, error.message)
      else responder.end(GrpcStatus.UNKNOWN, error instanceof Error ? error.message : String(error))
    }
    const encode = (response: unknown): Uint8Array => {
      try {
        return route.codec.encode(response)
      } catch (error) {
        throw new GrpcError(GrpcStatus.INTERNAL, `Error serializing response: ${error instanceof Error ? error.message : String(error)}`)
      }
    }

    const splitter = new MessageSplitter()
    if (route.kind === 'unary') {
      const handler = route.handler
      const messages: Array<{ compressed: boolean; payload: Buffer }> = []
      stream.on('data', (chunk: Buffer) => messages.push(...splitter.push(chunk)))
      stream.on('end', () => {
        if (!responder.open) return
        if (splitter.truncated || messages.length !== 1) {
          responder.end(GrpcStatus.INTERNAL, messages.length > 1 ? 'Received a second request message for a unary call' : 'Received no complete request message')
          return
        }
        const after: Array<() => void> = []
        const respond = (response: unknown): void => {
          try {
            responder.reply(encode(response))
          } catch (error) {
            fail(error)
            return
          }
          if (after.length > 0) stream.once('close', () => after.forEach((listener) => listener()))
        }
        const invoke = (request: unknown): void => {
          // Synchronous as far as the handler is: hundreds of calls per command, each spared a few promises.
          const result = handler({ request, get signal() { return cancellation.signal }, afterResponse: (listener) => void after.push(listener) })
          if (result instanceof Promise) result.then(respond, fail)
          else respond(result)
        }
        const message = messages[0]!
        if (message.compressed) {
          decode(message).then(invoke).catch(fail)
          return
        }
        try {
          invoke(decodeBytes(message.payload))
        } catch (error) {
          fail(error)
        }
      })
      return
    }

    const messageListeners: Array<(message: unknown) => void> = []
    const endListeners: Array<() => void> = []
    // Decoded in order: a compressed message must not overtake the one before it.
    let queue = Promise.resolve()
    stream.on('data', (chunk: Buffer) => {
      for (const message of splitter.push(chunk)) {
        queue = queue.then(async () => {
          const decoded = await decode(message)
          for (const listener of messageListeners) listener(decoded)
        })
      }
      queue = queue.catch(fail)
    })
    stream.on('end', () => {
      queue = queue.then(() => {
        if (splitter.truncated) throw new GrpcError(GrpcStatus.INTERNAL, 'The request stream ended inside a message')
        for (const listener of endListeners) listener()
      })
      queue = queue.catch(fail)
    })
    try {
      route.handler({
        get signal() {
          return cancellation.signal
        },
        onMessage: (listener) => void messageListeners.push(listener),
        onEnd: (listener) => void endListeners.push(listener),
        write: (message) => responder.write(encode(message)),
        end: () => responder.end(),
      })
    } catch (error) {
      fail(error)
    }
  }
}
