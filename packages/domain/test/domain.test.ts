import { describe, expect, it } from 'vitest'
import { canReadEntities, canWriteEntities, generateTokenSecret, hashToken, parseDuration, tokenRejection, type Principal } from '../src/index.js'

describe('parseDuration', () => {
  it.each([
    ['90s', 90],
    ['30m', 1800],
    ['1h', 3600],
    ['30d', 2_592_000],
    ['2w', 1_209_600],
  ])('%s is %i seconds', (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds)
  })
  it.each(['', '0d', '1y', '-1d', '1.5h', 'd', '1 d x'])('rejects %j', (text) => {
    expect(parseDuration(text)).toBeUndefined()
  })
})

describe('tokens', () => {
  it('generates distinct prefixed secrets whose hashes are stable', () => {
    const a = generateTokenSecret()
    const b = generateTokenSecret()
    expect(a).toMatch(/^sym_[A-Za-z0-9_-]{43}$/)
    expect(a).not.toBe(b)
    expect(hashToken(a)).toBe(hashToken(a))
    expect(hashToken(a)).not.toBe(hashToken(b))
    expect(hashToken(a)).not.toContain(a)
  })
  it('rejects revoked and expired tokens, revocation first', () => {
    const now = new Date('2026-01-02T00:00:00Z')
    const past = new Date('2026-01-01T00:00:00Z')
    const future = new Date('2026-02-01T00:00:00Z')
    expect(tokenRejection({ expiresAt: null, revokedAt: null }, now)).toBeUndefined()
    expect(tokenRejection({ expiresAt: future, revokedAt: null }, now)).toBeUndefined()
    expect(tokenRejection({ expiresAt: past, revokedAt: null }, now)).toBe('expired')
    expect(tokenRejection({ expiresAt: past, revokedAt: past }, now)).toBe('revoked')
    expect(tokenRejection({ expiresAt: null, revokedAt: future }, now)).toBeUndefined()
  })
})

describe('entity access', () => {
  const p = (userType: Principal['userType'], role: Principal['role']): Principal => ({ orgId: 'o', userId: 'u', userType, role })
  it('lets bots and admins write, members read, guests nothing', () => {
    expect(canWriteEntities(p('bot', 'member'))).toBe(true)
    expect(canWriteEntities(p('normal', 'admin'))).toBe(true)
    expect(canWriteEntities(p('normal', 'member'))).toBe(false)
    expect(canReadEntities(p('normal', 'member'))).toBe(true)
    expect(canReadEntities(p('normal', 'guest'))).toBe(false)
    expect(canWriteEntities(p('normal', 'guest'))).toBe(false)
  })
})
