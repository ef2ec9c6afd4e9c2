/**
 * Bot tokens at rest: AES-256-GCM with a key from configuration (SLACK_TOKEN_KEY, 32 bytes as base64 or hex). The
 * stored form is `v1.<iv>.<tag>.<ciphertext>` (base64url), so the scheme can change without guessing. The AAD binds
 * a ciphertext to its row (the integration id): a token copied onto another row does not decrypt.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

const VERSION = 'v1'

export class TokenCipher {
  private readonly key: Buffer

  constructor(key: Buffer) {
    if (key.length !== 32) throw new Error('SLACK_TOKEN_KEY must be 32 bytes (base64 or hex)')
    this.key = key
  }

  /** From configuration: 64 hex characters or base64 of 32 bytes. */
  static fromConfig(text: string): TokenCipher {
    const t = text.trim()
    return new TokenCipher(/^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, 'hex') : Buffer.from(t, 'base64'))
  }

  encrypt(plaintext: string, aad: string): string {
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', this.key, iv)
    cipher.setAAD(Buffer.from(aad, 'utf8'))
    const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
    return [VERSION, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ct.toString('base64url')].join('.')
  }

  /** Throws when the text was not made by `encrypt` with this key and AAD. */
  decrypt(stored: string, aad: string): string {
    const [version, iv, tag, ct] = stored.split('.')
    if (version !== VERSION || !iv || !tag || ct === undefined) throw new Error('not an encrypted token')
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'))
    decipher.setAAD(Buffer.from(aad, 'utf8'))
    decipher.setAuthTag(Buffer.from(tag, 'base64url'))
    return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8')
  }

  /** A MAC under a key derived from this one (OAuth `state`), so the install link cannot be forged. */
  mac(text: string): string {
    return createHmac('sha256', createHmac('sha256', this.key).update('opensym-slack-state').digest()).update(text).digest('base64url')
  }

  checkMac(text: string, mac: string): boolean {
    const a = Buffer.from(this.mac(text))
    const b = Buffer.from(mac)
    return a.length === b.length && timingSafeEqual(a, b)
  }
}
