import { describe, expect, it } from 'vitest'
import { canReadAudit, type Principal } from '../src/index.js'

const p = (userType: Principal['userType'], role: Principal['role']): Principal => ({ orgId: 'o', userId: 'u', userType, role })

describe('audit access', () => {
  it.each([
    ['a bot', true, p('bot', 'member')],
    ['an admin', true, p('normal', 'admin')],
    ['a member', false, p('normal', 'member')],
    ['a guest', false, p('normal', 'guest')],
  ])('%s may read the audit trail: %s', (_who, allowed, principal) => {
    expect(canReadAudit(principal)).toBe(allowed)
  })
})
