/**
 * The gRPC server on node:http2 (`grpc-server.ts`), reached with @grpc/grpc-js's client the way go-plugin's client
 * uses it: status codes and messages in trailers, deadlines, cancellation, compressed requests, big messages,
 * streams, and the client-certificate check of AutoMTLS.
 */
import { connect as http2Connect, constants as h2 } from 'node:http2'
import { X509Certificate } from 'node:crypto'
import * as grpc from '@grpc/grpc-js'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { generateServerCertificate } from '../src/transport/index.js'
import { GrpcError, GrpcServer, GrpcStatus, trustedClientCertificate, type Codec } from '../src/transport/grpc-server.js'
import { clientIdentity } from './fixtures/transport-helpers.js'

const bytes: Codec<Buffer, Uint8Array> = { decode: (b) => Buffer.from(b), encode: (b) => b }

const servers: GrpcServer[] = []
const clients: grpc.Client[] = []
afterEach(() => {
  for (const client of clients.splice(0)) client.close()
  for (const server of servers.splice(0)) server.forceShutdown()
})

async function plaintext(setup: (server: GrpcServer) => void): Promise<grpc.Client> {
  const server = new GrpcServer()
  servers.push(server)
  setup(server)
  const port = await server.listen({ host: '127.0.0.1', port: 0 })
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1 })
  clients.push(client)
  return client
}

function call(client: grpc.Client, path: string, request: Buffer, options: grpc.CallOptions = {}): Promise<Buffer> & { cancel?: () => void } {
  let unary: grpc.ClientUnaryCall | undefined
  const promise = new Promise<Buffer>((resolve, reject) => {
    unary = client.makeUnaryRequest(
      path,
      (b: Buffer) => b,
      (b: Buffer) => b,
      request,
      new grpc.Metadata(),
      options,
      (error: grpc.ServiceError | null, response?: Buffer) => (error ? reject(error) : resolve(response!)),
    )
  })
  return Object.assign(promise, { cancel: () => unary?.cancel() })
}

describe('GrpcServer', () => {
  it('answers unary calls, and UNIMPLEMENTED for unknown methods', async () => {
    const client = await plaintext((s) => s.unary('/test.Echo/Echo', bytes, ({ request }) => Buffer.concat([Buffer.from('echo:'), request])))
    await expect(call(client, '/test.Echo/Echo', Buffer.from('hi'))).resolves.toEqual(Buffer.from('echo:hi'))
    await expect(call(client, '/test.Echo/Missing', Buffer.from('hi'))).rejects.toMatchObject({
      code: grpc.status.UNIMPLEMENTED,
      details: 'The server does not implement the method /test.Echo/Missing',
    })
  })

  it('sends the status of a GrpcError (its message percent-encoded and back), UNKNOWN for other errors', async () => {
    const client = await plaintext((s) => {
      s.unary('/test.Fail/Typed', bytes, () => {
        throw new GrpcError(GrpcStatus.INTERNAL, 'naïve 100% – failed\nsecond line')
      })
      s.unary('/test.Fail/Plain', bytes, () => Promise.reject(new Error('boom')))
    })
    await expect(call(client, '/test.Fail/Typed', Buffer.alloc(0))).rejects.toMatchObject({ code: grpc.status.INTERNAL, details: 'naïve 100% – failed\nsecond line' })
    await expect(call(client, '/test.Fail/Plain', Buffer.alloc(0))).rejects.toMatchObject({ code: grpc.status.UNKNOWN, details: 'boom' })
  })

  it('carries big messages both ways (a 5 MB request, its 10 MB answer)', async () => {
    const client = await plaintext((s) => s.unary('/test.Big/Double', bytes, ({ request }) => Buffer.concat([request, request])))
    const request = Buffer.alloc(5 * 1024 * 1024, 7)
    request.write('start', 0)
    const response = await call(client, '/test.Big/Double', request)
    expect(response.length).toBe(10 * 1024 * 1024)
    expect(response.subarray(0, 5).toString()).toBe('start')
    expect(response.subarray(request.length, request.length + 5).toString()).toBe('start')
  })

  it('decompresses gzip requests', async () => {
    const server = new GrpcServer()
    servers.push(server)
    server.unary('/test.Echo/Echo', bytes, ({ request }) => request)
    const port = await server.listen({ host: '127.0.0.1', port: 0 })
    const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.default_compression_algorithm': 2 }) // gzip
    clients.push(client)
    const request = Buffer.from('compressible '.repeat(1000))
    await expect(call(client, '/test.Echo/Echo', request)).resolves.toEqual(request)
  })

  it('aborts the handler and answers DEADLINE_EXCEEDED when the deadline passes', async () => {
    let aborted: unknown
    const client = await plaintext((s) =>
      s.unary(
        '/test.Slow/Wait',
        bytes,
        ({ signal }) =>
          new Promise<Uint8Array>((resolve) =>
            signal.addEventListener('abort', () => {
              aborted = signal.reason
              resolve(Buffer.from('too late'))
            }),
          ),
      ),
    )
    await expect(call(client, '/test.Slow/Wait', Buffer.alloc(0), { deadline: Date.now() + 100 })).rejects.toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED })
    // grpc-js enforces the same deadline on its side and cancels the stream; whichever timer fires first, the
    // handler is aborted (a loaded CI machine decides the order).
    await vi.waitFor(() => expect(aborted).toBeDefined())
    expect([GrpcStatus.DEADLINE_EXCEEDED, GrpcStatus.CANCELLED]).toContain((aborted as { code: number }).code)
  })

  it('aborts the handler when the client cancels the call', async () => {
    let started!: () => void
    const running = new Promise<void>((resolve) => (started = resolve))
    let aborted!: (reason: unknown) => void
    const abortedWith = new Promise<unknown>((resolve) => (aborted = resolve))
    const client = await plaintext((s) =>
      s.unary('/test.Slow/Wait', bytes, ({ signal }) => {
        started()
        return new Promise<Uint8Array>((done) =>
          signal.addEventListener('abort', () => {
            aborted(signal.reason)
            done(Buffer.alloc(0))
          }),
        )
      }),
    )
    const pending = call(client, '/test.Slow/Wait', Buffer.alloc(0))
    pending.catch(() => undefined)
    await running
    pending.cancel?.()
    await expect(abortedWith).resolves.toMatchObject({ code: GrpcStatus.CANCELLED })
  })

  it('streams: receives the client messages, ends when the client does', async () => {
    const received: string[] = []
    const client = await plaintext((s) =>
      s.stream('/test.Chat/Talk', bytes, (c) => {
        c.onMessage((m) => {
          received.push(m.toString())
          c.write(Buffer.from(`ack ${m.toString()}`))
        })
        c.onEnd(() => c.end())
      }),
    )
    const stream = client.makeBidiStreamRequest('/test.Chat/Talk', (b: Buffer) => b, (b: Buffer) => b)
    const answers: string[] = []
    stream.on('data', (b: Buffer) => answers.push(b.toString()))
    const status = new Promise<grpc.StatusObject>((resolve) => stream.on('status', resolve))
    stream.write(Buffer.from('one'))
    stream.write(Buffer.from('two'))
    stream.end()
    await expect(status).resolves.toMatchObject({ code: grpc.status.OK })
    expect(received).toEqual(['one', 'two'])
    expect(answers).toEqual(['ack one', 'ack two'])
  })

  it('answers HTTP 415 to a request that is not gRPC', async () => {
    const server = new GrpcServer()
    servers.push(server)
    const port = await server.listen({ host: '127.0.0.1', port: 0 })
    const session = http2Connect(`http://127.0.0.1:${port}`)
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const req = session.request({ ':method': 'GET', ':path': '/' })
        req.on('response', (headers) => resolve(Number(headers[':status'])))
        req.on('error', reject)
        req.end()
      })
      expect(status).toBe(h2.HTTP_STATUS_UNSUPPORTED_MEDIA_TYPE)
    } finally {
      session.close()
    }
  })
})

describe('trustedClientCertificate', () => {
  const ca = new X509Certificate(clientIdentity().certPem)

  it('trusts the certificate Terraform sent, and nothing else', () => {
    expect(trustedClientCertificate(ca, ca)).toBe(true)
    expect(trustedClientCertificate(new X509Certificate(clientIdentity().certPem), ca)).toBe(false)
    expect(trustedClientCertificate(undefined, ca)).toBe(false)
  })

  it('refuses it outside its validity period', () => {
    const old = new X509Certificate(generateServerCertificate({ organization: 'HashiCorp', now: new Date('2020-01-01T00:00:00Z'), days: 1 }).certPem)
    expect(trustedClientCertificate(old, old, new Date('2020-01-01T12:00:00Z'))).toBe(true)
    expect(trustedClientCertificate(old, old)).toBe(false)
  })
})
