import { createHash, randomBytes } from 'node:crypto'

/** Bearer tokens carry this prefix so they are recognisable in secret scanners and logs. */
export const TOKEN_PREFIX = 'sym_'

/** A new token secret: 256 random bits. It is shown once; only its hash is stored. */
export function generateTokenSecret(): string {
  return TOKEN_PREFIX + randomBytes(32).toString('base64url')
}

/** The stored form of a token. SHA-256 suffices: the secret is high-entropy, so it cannot be guessed from the hash. */
export function hashToken(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex')
}

export interface TokenState {
  readonly expiresAt: Date | null
  readonly revokedAt: Date | null
}

export type TokenRejection = 'revoked' | 'expired'

/** Why a stored token may not be used now, if it may not. */
export function tokenRejection(t: TokenState, now: Date): TokenRejection | undefined {
  if (t.revokedAt && t.revokedAt <= now) return 'revoked'
  if (t.expiresAt && t.expiresAt <= now) return 'expired'
  return undefined
}
