/**
 * The plugin's TLS server certificate for go-plugin's AutoMTLS: a fresh EC P-256 key and a self-signed X.509 v3
 * certificate, built in DER by hand (Node can sign but not create certificates; RSA or a pure-JS X.509 library
 * would cost 90–180 ms at every provider start, this costs a few ms).
 *
 * Terraform makes the certificate from the handshake line its only root CA and sets the TLS server name to the
 * certificate's subject CN, and Go checks that name against the SAN only, so the SAN must contain the CN. The EKU
 * must include serverAuth.
 */
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto'

/** A key pair and its self-signed certificate. */
export interface ServerCertificate {
  /** The certificate in DER: what the handshake line carries (base64, no padding). */
  readonly der: Buffer
  readonly certPem: string
  /** PKCS#8 PEM of the private key. */
  readonly keyPem: string
}

/** The subject CN and DNS SAN; Terraform verifies the server name against it. */
export const CERT_HOSTNAME = 'localhost'

// --- DER encoding -----------------------------------------------------------------------------------------------

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n])
  const bytes: number[] = []
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff)
  return Buffer.from([0x80 | bytes.length, ...bytes])
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content)
  return Buffer.concat([Buffer.from([tag]), length(body.length), body])
}

const sequence = (...items: Buffer[]): Buffer => tlv(0x30, ...items)
const set = (...items: Buffer[]): Buffer => tlv(0x31, ...items)
const octetString = (content: Buffer): Buffer => tlv(0x04, content)
const bitString = (content: Buffer, unusedBits = 0): Buffer => tlv(0x03, Buffer.from([unusedBits]), content)
const utf8String = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'))
const boolean = (value: boolean): Buffer => tlv(0x01, Buffer.from([value ? 0xff : 0x00]))
const explicit = (tagNumber: number, content: Buffer): Buffer => tlv(0xa0 | tagNumber, content)

function integer(bytes: Buffer): Buffer {
  let start = 0
  while (start < bytes.length - 1 && bytes[start] === 0 && bytes[start + 1]! < 0x80) start++
  const trimmed = bytes.subarray(start)
  return tlv(0x02, trimmed[0]! >= 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed)
}

function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number)
  const bytes = [40 * parts[0]! + parts[1]!]
  for (const part of parts.slice(2)) {
    const chunk = [part & 0x7f]
    for (let v = Math.floor(part / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v & 0x7f) | 0x80)
    bytes.push(...chunk)
  }
  return tlv(0x06, Buffer.from(bytes))
}

/** UTCTime (RFC 5280: for years up to 2049) or GeneralizedTime. */
function time(date: Date): Buffer {
  // From the UTC fields rather than toISOString(), which makes V8 load the local time zone (a few ms of every start).
  const two = (n: number) => String(n).padStart(2, '0')
  const year = date.getUTCFullYear()
  const compact = `${String(year).padStart(4, '0')}${two(date.getUTCMonth() + 1)}${two(date.getUTCDate())}${two(date.getUTCHours())}${two(date.getUTCMinutes())}${two(date.getUTCSeconds())}Z`
  return year < 2050 ? tlv(0x17, Buffer.from(compact.slice(2), 'ascii')) : tlv(0x18, Buffer.from(compact, 'ascii'))
}

const OID = {
  ecPublicKey: '1.2.840.10045.2.1',
  prime256v1: '1.2.840.10045.3.1.7',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return sequence(oid(id), ...(critical ? [boolean(true)] : []), octetString(value))
}

function toPem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? []
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`
}

export interface CertificateOptions {
  /** Start of validity; defaults to now. The certificate is valid from 30 s before it. */
  readonly now?: Date
  /** Validity in days; 30 by default (a provider process lives minutes). */
  readonly days?: number
  /** The subject organization. */
  readonly organization?: string
}

/** Generates a fresh key pair and a self-signed server certificate for `localhost` / 127.0.0.1. */
/** A JWK coordinate or scalar as its 32 bytes (JWK drops nothing, but a short one would be left-padded). */
function p256Bytes(base64url: string | undefined): Buffer {
  const bytes = Buffer.from(base64url ?? '', 'base64url')
  if (bytes.length > 32 || bytes.length === 0) throw new Error('unexpected P-256 key component length')
  return bytes.length === 32 ? bytes : Buffer.concat([Buffer.alloc(32 - bytes.length), bytes])
}

export function generateServerCertificate(options: CertificateOptions = {}): ServerCertificate {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  // The public key (SubjectPublicKeyInfo) and the PKCS#8 private key are built here from the JWK form: OpenSSL's
  // DER/PEM encoders cost more than the rest of the certificate on their first use in a process.
  const jwk = privateKey.export({ format: 'jwk' })
  const point = Buffer.concat([Buffer.from([0x04]), p256Bytes(jwk.x), p256Bytes(jwk.y)]) // uncompressed
  const keyAlgorithm = sequence(oid(OID.ecPublicKey), oid(OID.prime256v1))
  const spki = sequence(keyAlgorithm, bitString(point))
  // RFC 5208 PrivateKeyInfo holding an RFC 5915 ECPrivateKey (the curve is in the algorithm, not repeated).
  const ecPrivateKey = sequence(integer(Buffer.from([1])), octetString(p256Bytes(jwk.d)), explicit(1, bitString(point)))
  const pkcs8 = sequence(integer(Buffer.from([0])), keyAlgorithm, octetString(ecPrivateKey))
  const now = options.now ?? new Date()
  const notBefore = new Date(now.getTime() - 30_000)
  const notAfter = new Date(now.getTime() + (options.days ?? 30) * 86_400_000)
  const serial = randomBytes(16)
  serial[0] = serial[0]! & 0x7f // positive

  const name = sequence(
    set(sequence(oid(OID.organization), utf8String(options.organization ?? 'opensym tfplugin'))),
    set(sequence(oid(OID.commonName), utf8String(CERT_HOSTNAME))),
  )
  const algorithm = sequence(oid(OID.ecdsaWithSha256))
  const extensions = sequence(
    extension(OID.basicConstraints, true, sequence(boolean(true))),
    // digitalSignature (bit 0) and keyCertSign (bit 5): 0b1000_0100, 2 unused bits
    extension(OID.keyUsage, true, bitString(Buffer.from([0x84]), 2)),
    extension(OID.extKeyUsage, false, sequence(oid(OID.serverAuth), oid(OID.clientAuth))),
    extension(
      OID.subjectAltName,
      false,
      sequence(tlv(0x82, Buffer.from(CERT_HOSTNAME, 'ascii')), tlv(0x87, Buffer.from([127, 0, 0, 1]))),
    ),
  )
  const tbs = sequence(
    explicit(0, integer(Buffer.from([2]))), // v3
    integer(serial),
    algorithm,
    name,
    sequence(time(notBefore), time(notAfter)),
    name,
    spki,
    explicit(3, extensions),
  )
  const signature = sign('sha256', tbs, privateKey) // DER-encoded ECDSA-Sig-Value
  const der = sequence(tbs, algorithm, bitString(signature))
  return {
    der,
    certPem: toPem('CERTIFICATE', der),
    keyPem: toPem('PRIVATE KEY', pkcs8),
  }
}
