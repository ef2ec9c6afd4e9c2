/** The pure parts of the transport: handshake line, version negotiation, certificate, hclog lines. */
import { createPrivateKey, X509Certificate } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  createLogger,
  debugInstructions,
  generateServerCertificate,
  handshakeLine,
  hclogTimestamp,
  logThresholdFromEnv,
  negotiateVersion,
  parseLogLevel,
  reattachProvidersJson,
} from '../src/transport/index.js'

describe('handshakeLine', () => {
  it('is 1|6|network|address|grpc|cert with the DER in unpadded standard base64', () => {
    // 1, 2 and 3 bytes: base64 would pad with "==", "=" and nothing; '+' and '/' are the standard alphabet.
    expect(handshakeLine('tcp', '127.0.0.1:1234', Uint8Array.of(0xfb))).toBe('1|6|tcp|127.0.0.1:1234|grpc|+w')
    expect(handshakeLine('tcp', '127.0.0.1:1234', Uint8Array.of(0xfb, 0xff))).toBe('1|6|tcp|127.0.0.1:1234|grpc|+/8')
    expect(handshakeLine('unix', '/tmp/p/provider.sock', Uint8Array.of(1, 2, 3))).toBe('1|6|unix|/tmp/p/provider.sock|grpc|AQID')
    expect(handshakeLine('tcp', '127.0.0.1:1', undefined)).toBe('1|6|tcp|127.0.0.1:1|grpc|')
  })

  it('carries a certificate that parses back from the line', () => {
    for (let i = 0; i < 6; i++) {
      // DER lengths vary with the signature: some are multiples of 3, some not (the intermittent padding bug).
      const cert = generateServerCertificate()
      const field = handshakeLine('tcp', '127.0.0.1:1', cert.der).split('|')[5]!
      expect(field).not.toContain('=')
      expect(Buffer.from(field, 'base64').equals(cert.der)).toBe(true)
    }
  })
})

describe('negotiateVersion', () => {
  it('treats PLUGIN_PROTOCOL_VERSIONS as a set', () => {
    expect(negotiateVersion({ PLUGIN_PROTOCOL_VERSIONS: '6,5' })).toEqual({ version: 6, offered: [6, 5], compatible: true })
    expect(negotiateVersion({ PLUGIN_PROTOCOL_VERSIONS: '5, 6' })).toMatchObject({ version: 6, compatible: true })
    expect(negotiateVersion({})).toEqual({ version: 6, offered: undefined, compatible: true })
  })

  it('still announces 6 when it is not offered, leaving the error to Terraform', () => {
    expect(negotiateVersion({ PLUGIN_PROTOCOL_VERSIONS: '4,5' })).toEqual({ version: 6, offered: [4, 5], compatible: false })
  })
})

describe('generateServerCertificate', () => {
  it('makes a P-256 self-signed CA for localhost with SAN = CN and serverAuth', () => {
    const cert = generateServerCertificate({ now: new Date('2030-01-01T00:00:00Z') })
    const x509 = new X509Certificate(cert.der)
    expect(x509.subject).toContain('CN=localhost')
    expect(x509.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1')
    expect(x509.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'])
    expect(x509.ca).toBe(true)
    expect(x509.issuer).toBe(x509.subject)
    expect(x509.verify(x509.publicKey)).toBe(true)
    expect(new Date(x509.validFrom).toISOString()).toBe('2029-12-31T23:59:30.000Z')
    expect(new Date(x509.validTo).toISOString()).toBe('2030-01-31T00:00:00.000Z')
    expect(x509.checkPrivateKey(createPrivateKey(cert.keyPem))).toBe(true)
  })
})

describe('debug mode output', () => {
  it('is the reattach JSON terraform expects, keyed by the provider address', () => {
    expect(JSON.parse(reattachProvidersJson('registry.terraform.io/symopsio/sym', 'tcp', '127.0.0.1:4242', 77))).toEqual({
      'registry.terraform.io/symopsio/sym': { Protocol: 'grpc', ProtocolVersion: 6, Pid: 77, Test: true, Addr: { Network: 'tcp', String: '127.0.0.1:4242' } },
    })
    expect(debugInstructions('registry.terraform.io/symopsio/sym', 'tcp', '127.0.0.1:4242', 77)).toContain(
      `TF_REATTACH_PROVIDERS='{"registry.terraform.io/symopsio/sym":{"Protocol":"grpc","ProtocolVersion":6,"Pid":77,"Test":true,"Addr":{"Network":"tcp","String":"127.0.0.1:4242"}}}'`,
    )
  })
})

describe('hclog logging', () => {
  it('formats @timestamp with microseconds (Go layout 2006-01-02T15:04:05.000000Z07:00)', () => {
    expect(hclogTimestamp(Date.UTC(2025, 0, 2, 3, 4, 5, 678) * 1000 + 901)).toBe('2025-01-02T03:04:05.678901Z')
    expect(hclogTimestamp(Date.UTC(2025, 0, 2, 3, 4, 5, 0) * 1000 + 7)).toBe('2025-01-02T03:04:05.000007Z')
  })

  it('takes the level from TF_LOG_PROVIDER, then TF_LOG; unset means off', () => {
    expect(logThresholdFromEnv({ TF_LOG_PROVIDER: 'debug', TF_LOG: 'error' })).toBe('debug')
    expect(logThresholdFromEnv({ TF_LOG: 'WARN' })).toBe('warn')
    expect(logThresholdFromEnv({ TF_LOG: 'JSON' })).toBe('trace')
    expect(logThresholdFromEnv({})).toBe('off')
    expect(parseLogLevel('off')).toBe('off')
    expect(parseLogLevel('verbose')).toBe('trace')
  })

  it('writes one JSON object per line with @level, @message, @module, @timestamp and fields, above the threshold only', () => {
    const lines: string[] = []
    const log = createLogger({ module: 'sym', threshold: 'info', sink: (l) => lines.push(l), clock: () => Date.UTC(2025, 0, 1) * 1000 })
    log.debug('hidden')
    log.with({ tf_rpc: 'PlanResourceChange' }).info('planned', { tf_resource_type: 'sym_flow', error: new Error('x'), '@level': 'spoofed' })
    expect(lines).toHaveLength(1)
    expect(lines[0]!.endsWith('\n')).toBe(true)
    expect(JSON.parse(lines[0]!)).toEqual({
      '@level': 'info',
      '@message': 'planned',
      '@module': 'sym',
      '@timestamp': '2025-01-01T00:00:00.000000Z',
      tf_rpc: 'PlanResourceChange',
      tf_resource_type: 'sym_flow',
      error: 'x',
    })
    expect(log.enabled('debug')).toBe(false)
    expect(log.enabled('warn')).toBe(true)
  })
})
