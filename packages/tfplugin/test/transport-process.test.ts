/**
 * The demo provider as its own process, started the way Terraform starts it: the magic cookie check, the exact
 * handshake line, nothing else on stdout, Shutdown and a lost connection ending the process.
 */
import { X509Certificate } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { GRPCController } from '../src/proto/generated/grpc_controller.js'
import { Provider } from '../src/proto/generated/tfplugin6.js'
import { NOT_LAUNCHED_BY_TERRAFORM_MESSAGE } from '../src/transport/index.js'
import { clientIdentity, connect, handshakeCertificate, parseHandshake, spawnDemoProvider, terraformEnv, unary } from './fixtures/transport-helpers.js'

describe('provider process', () => {
  it('exits 1 with go-plugin\'s message when the magic cookie is missing or wrong', async () => {
    const environments: Record<string, string>[] = [{}, { TF_PLUGIN_MAGIC_COOKIE: 'not-the-cookie' }]
    for (const env of environments) {
      const provider = spawnDemoProvider(env)
      await expect(provider.exited).resolves.toBe(1)
      expect(provider.stderr()).toContain(NOT_LAUNCHED_BY_TERRAFORM_MESSAGE)
      expect(provider.stderr()).toMatch(/^This binary is a plugin\. These are not meant to be executed directly\./)
      expect(provider.stdout()).toBe('')
    }
  })

  it('prints exactly one handshake line (unpadded base64 DER with SAN = CN), serves, and exits on Shutdown', async () => {
    const identity = clientIdentity()
    const provider = spawnDemoProvider(terraformEnv(identity, { DEMO_NOISE: '1', TF_LOG_PROVIDER: 'debug' }))
    const line = await provider.firstLine
    const handshakeMs = await provider.handshakeMs
    console.info(`demo provider (node --import tsx): handshake after ${handshakeMs} ms`)

    expect(line).toMatch(/^1\|6\|tcp\|127\.0\.0\.1:\d{1,5}\|grpc\|[A-Za-z0-9+/]+$/) // standard alphabet, no '='
    const handshake = parseHandshake(line)
    const der = Buffer.from(handshake.cert, 'base64')
    expect(der.toString('base64').replace(/=+$/, '')).toBe(handshake.cert) // round-trips: nothing lost to padding
    const cert = new X509Certificate(der)
    const cn = /CN=([^\n,]+)/.exec(cert.subject)?.[1]
    expect(cn).toBe('localhost')
    expect(cert.subjectAltName?.split(', ')).toContain(`DNS:${cn}`)
    expect(cert.keyUsage).toContain('1.3.6.1.5.5.7.3.1') // serverAuth
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1')
    expect(cert.verify(cert.publicKey)).toBe(true)

    const client = connect(handshake.address, handshake.network, handshakeCertificate(handshake), identity)
    try {
      const schema = await unary(client, Provider.GetProviderSchema, {})
      expect(Object.keys(schema.resource_schemas)).toEqual(['demo_thing'])
      const shutdownAt = performance.now()
      await unary(client, GRPCController.Shutdown, {})
      client.close()
      await expect(provider.exited).resolves.toBe(0)
      expect(performance.now() - shutdownAt).toBeLessThan(1000)
    } finally {
      client.close()
      provider.child.kill('SIGKILL')
    }

    // Nothing but the handshake on stdout: console.log/info and process.stdout.write went to stderr.
    expect(provider.stdout()).toBe(`${line}\n`)
    expect(provider.stderr()).toContain('noise from console.log')
    expect(provider.stderr()).toContain('noise from process.stdout.write')
    // hclog JSON with a microsecond timestamp, at the TF_LOG_PROVIDER level.
    const logs = provider
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    const started = logs.find((l) => l['@message'] === 'Provider started')
    expect(started).toMatchObject({ '@level': 'info', '@module': 'demo', network: 'tcp', tls: true, protocol_version: 6 })
    expect(started?.['@timestamp']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/)
    expect(logs.some((l) => l['@level'] === 'trace')).toBe(false)
  })

  it('ignores SIGINT and exits when Terraform\'s connection dies', async () => {
    const identity = clientIdentity()
    const provider = spawnDemoProvider(terraformEnv(identity))
    const handshake = parseHandshake(await provider.firstLine)
    const client = connect(handshake.address, handshake.network, handshakeCertificate(handshake), identity)
    try {
      const stdio = client.makeServerStreamRequest('/plugin.GRPCStdio/StreamStdio', () => Buffer.alloc(0), (b: Buffer) => b, {})
      stdio.on('error', () => undefined)
      await unary(client, Provider.GetProviderSchema, {})
      provider.child.kill('SIGINT')
      await unary(client, Provider.GetProviderSchema, {}) // still serving
      client.close()
      stdio.cancel()
      await expect(provider.exited).resolves.toBe(0)
      expect(provider.stderr()).toContain('demo provider stopped: disconnected')
    } finally {
      client.close()
      provider.child.kill('SIGKILL')
    }
  })

  it('prints a TF_REATTACH_PROVIDERS value in debug mode, without the cookie', async () => {
    const provider = spawnDemoProvider({}, ['--debug'])
    try {
      await provider.firstLine
      await new Promise((resolve) => setTimeout(resolve, 50))
      const match = /TF_REATTACH_PROVIDERS='(\{.*\})'/.exec(provider.stdout())
      expect(match).not.toBeNull()
      const config = JSON.parse(match![1]!) as Record<string, { Addr: { String: string }; Pid: number }>
      const entry = config['registry.terraform.io/opensym/demo']
      expect(entry).toMatchObject({ Protocol: 'grpc', ProtocolVersion: 6, Test: true, Pid: provider.child.pid, Addr: { Network: 'tcp' } })
      const client = connect(entry!.Addr.String, 'tcp', undefined)
      await expect(unary(client, Provider.GetProviderSchema, {})).resolves.toMatchObject({ diagnostics: [] })
      client.close()
    } finally {
      provider.child.kill('SIGKILL')
    }
  })
})
