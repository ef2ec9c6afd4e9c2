/**
 * serve() in this process: a provider with only GetProviderSchema, reached over mTLS with a client certificate
 * the test generates (as Terraform passes one in PLUGIN_CLIENT_CERT), then stopped by Shutdown.
 */
import * as grpc from '@grpc/grpc-js'
import { afterEach, describe, expect, it } from 'vitest'
import { GRPCController } from '../src/proto/generated/grpc_controller.js'
import { GRPCStdio } from '../src/proto/generated/grpc_stdio.js'
import { Diagnostic_Severity, Provider } from '../src/proto/generated/tfplugin6.js'
import {
  createLogger,
  NotLaunchedByTerraformError,
  serve,
  type PluginServer,
  type ProviderService,
  type ServeOptions,
} from '../src/transport/index.js'
import { clientIdentity, connect, handshakeCertificate, parseHandshake, terraformEnv, unary } from './fixtures/transport-helpers.js'

const fakeProvider: ProviderService = {
  GetProviderSchema: () => ({ provider: { version: 0, block: { version: 0 } } }),
  ValidateResourceConfig: () => {
    throw new Error('boom in a handler')
  },
  StopProvider: async () => {
    await Promise.resolve()
    throw new Error('cannot stop')
  },
}

const servers: PluginServer[] = []
const clients: grpc.Client[] = []
afterEach(async () => {
  for (const client of clients.splice(0)) client.close()
  await Promise.all(servers.splice(0).map((s) => s.stop()))
})

async function start(options: Partial<ServeOptions> & { env: ServeOptions['env'] }): Promise<{ server: PluginServer; lines: string[] }> {
  const lines: string[] = []
  const server = await serve({
    provider: fakeProvider,
    name: 'fake',
    ownsProcess: false,
    output: (text) => lines.push(text),
    logger: createLogger({ module: 'fake', threshold: 'off' }),
    ...options,
  })
  servers.push(server)
  return { server, lines }
}

function track(client: grpc.Client): grpc.Client {
  clients.push(client)
  return client
}

describe('serve (in process, AutoMTLS)', () => {
  it('serves GetProviderSchema over mTLS and stops on Shutdown', async () => {
    const identity = clientIdentity()
    const { server, lines } = await start({ env: terraformEnv(identity) })
    expect(lines).toEqual([`${server.handshake}\n`])
    const handshake = parseHandshake(server.handshake)
    expect(handshake).toMatchObject({ core: '1', version: '6', network: 'tcp', protocol: 'grpc' })
    expect(handshake.address).toBe(server.address)

    const client = track(connect(handshake.address, handshake.network, handshakeCertificate(handshake), identity))
    const schema = await unary(client, Provider.GetProviderSchema, {})
    expect(schema.provider?.block?.version).toBe(0)
    expect(schema.diagnostics).toEqual([])
    expect(Object.keys(schema.resource_schemas)).toEqual([])

    await unary(client, GRPCController.Shutdown, {})
    await expect(server.stopped).resolves.toBe('shutdown')
  })

  it('answers UNIMPLEMENTED for RPCs the provider does not implement', async () => {
    const identity = clientIdentity()
    const { server } = await start({ env: terraformEnv(identity) })
    const handshake = parseHandshake(server.handshake)
    const client = track(connect(handshake.address, handshake.network, handshakeCertificate(handshake), identity))
    await expect(unary(client, Provider.GetMetadata, {})).rejects.toMatchObject({ code: grpc.status.UNIMPLEMENTED })
  })

  it('turns a thrown error into an error diagnostic (StopProvider: its Error field)', async () => {
    const identity = clientIdentity()
    const { server } = await start({ env: terraformEnv(identity) })
    const handshake = parseHandshake(server.handshake)
    const client = track(connect(handshake.address, handshake.network, handshakeCertificate(handshake), identity))
    const validate = await unary(client, Provider.ValidateResourceConfig, { type_name: 'x' })
    expect(validate.diagnostics).toHaveLength(1)
    expect(validate.diagnostics[0]).toMatchObject({ severity: Diagnostic_Severity.ERROR, summary: 'Unexpected provider error' })
    expect(validate.diagnostics[0]?.detail).toContain('boom in a handler')
    const stop = await unary(client, Provider.StopProvider, {})
    expect(stop.Error).toContain('cannot stop')
  })

  it('rejects a client without a certificate signed by PLUGIN_CLIENT_CERT', async () => {
    const identity = clientIdentity()
    const { server } = await start({ env: terraformEnv(identity) })
    const handshake = parseHandshake(server.handshake)
    const cert = handshakeCertificate(handshake)
    const anonymous = track(connect(handshake.address, handshake.network, cert))
    await expect(unary(anonymous, Provider.GetProviderSchema, {})).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE })
    const stranger = track(connect(handshake.address, handshake.network, cert, clientIdentity()))
    await expect(unary(stranger, Provider.GetProviderSchema, {})).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE })
  })

  it('stops when the StreamStdio stream of Terraform goes away (its connection died)', async () => {
    const identity = clientIdentity()
    const { server } = await start({ env: terraformEnv(identity) })
    const handshake = parseHandshake(server.handshake)
    const client = connect(handshake.address, handshake.network, handshakeCertificate(handshake), identity)
    const stream = client.makeServerStreamRequest(
      GRPCStdio.StreamStdio.path,
      () => Buffer.alloc(0),
      (bytes: Buffer) => GRPCStdio.StreamStdio.response.decode(bytes),
      {},
    )
    stream.on('error', () => undefined)
    await unary(client, Provider.GetProviderSchema, {}) // the stream is open once a call went through
    client.close()
    stream.cancel()
    await expect(server.stopped).resolves.toBe('disconnected')
  })

  it('runs the onShutdown hook before answering Shutdown', async () => {
    const identity = clientIdentity()
    const events: string[] = []
    const { server } = await start({ env: terraformEnv(identity), onShutdown: () => void events.push('hook') })
    const handshake = parseHandshake(server.handshake)
    const client = track(connect(handshake.address, handshake.network, handshakeCertificate(handshake), identity))
    await unary(client, GRPCController.Shutdown, {})
    events.push('answered')
    expect(events).toEqual(['hook', 'answered'])
    await expect(server.stopped).resolves.toBe('shutdown')
  })

  it('serves on a unix socket and removes it when stopped', async () => {
    const { existsSync } = await import('node:fs')
    const identity = clientIdentity()
    const { server } = await start({ env: terraformEnv(identity), network: 'unix' })
    const handshake = parseHandshake(server.handshake)
    expect(handshake.network).toBe('unix')
    expect(existsSync(handshake.address)).toBe(true)
    const client = track(connect(handshake.address, 'unix', handshakeCertificate(handshake), identity))
    await expect(unary(client, Provider.GetProviderSchema, {})).resolves.toMatchObject({ diagnostics: [] })
    await server.stop()
    expect(existsSync(handshake.address)).toBe(false)
  })

  it('refuses to start without the magic cookie when it does not own the process', async () => {
    await expect(start({ env: {} })).rejects.toBeInstanceOf(NotLaunchedByTerraformError)
  })
})

describe('serve (debug mode)', () => {
  it('serves without TLS, prints TF_REATTACH_PROVIDERS, and keeps running after Shutdown', async () => {
    const { server, lines } = await start({ env: {}, debug: true, address: 'registry.terraform.io/symopsio/sym' })
    expect(server.certificate).toBeUndefined()
    const text = lines.join('')
    const match = /TF_REATTACH_PROVIDERS='(.*)'/.exec(text)
    expect(match).not.toBeNull()
    expect(JSON.parse(match![1]!)).toEqual({
      'registry.terraform.io/symopsio/sym': {
        Protocol: 'grpc',
        ProtocolVersion: 6,
        Pid: process.pid,
        Test: true,
        Addr: { Network: 'tcp', String: server.address },
      },
    })
    const client = track(connect(server.address, 'tcp', undefined))
    await unary(client, GRPCController.Shutdown, {})
    await expect(unary(client, Provider.GetProviderSchema, {})).resolves.toMatchObject({ diagnostics: [] })
  })
})
