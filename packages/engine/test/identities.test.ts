/** Identity resolution (stored → getIdentity reducer → discovery → error), persistence, and the admin functions. */
import { createDb, type Db } from '@opensym/db'
import { createTestOrg, type TestOrg } from '@opensym/testing'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { deleteIdentities, IdentityConflictError, listIdentities, resolveIdentityWithSource, setIdentity, type IdentityCall, type IdentityReducer } from '../src/identities.js'
import type { RunSnapshot } from '../src/snapshot.js'
import { StrategyError, type Strategy } from '../src/strategy.js'
import { failure } from './strategy-fixtures.js'

let db: Db
let org: TestOrg
let users: Record<'admin' | 'member' | 'guest', { id: string; email: string }>

beforeAll(async () => {
  db = createDb(inject('databaseUrl'), { poolSize: 2 })
  org = await createTestOrg(db, 'identities')
  const rows = await db.user.findMany({ where: { orgId: org.id, type: 'normal' } })
  const by = (role: string) => {
    const u = rows.find((r) => r.role === role)!
    return { id: u.id, email: u.email! }
  }
  users = { admin: by('admin'), member: by('member'), guest: by('guest') }
})
afterAll(async () => {
  await db?.$disconnect()
})

/** A strategy whose discovery answers from a table of email → id, counting calls. */
function discovering(table: Record<string, string>, identityService: string | null = 'okta') {
  const calls: string[] = []
  const strategy: Strategy = {
    type: 'okta',
    ...(identityService ? { identityService } : {}),
    async identity(call) {
      calls.push(call.subject.email ?? '')
      return table[call.subject.email ?? '']
    },
    escalate: async () => ({ body: {}, errors: [] }),
    deescalate: async () => ({ body: {}, errors: [] }),
  }
  return { strategy, calls }
}

let domainSeq = 0
function call(user: { id: string; email: string | null }, domain: string): IdentityCall {
  const snapshot = { orgSlug: org.slug } as RunSnapshot
  return {
    orgId: org.id,
    runId: '00000000-0000-4000-8000-000000000099',
    snapshot,
    strategy: { id: 's', type: 'okta', slug: 'grant', integration: { id: 'i', type: 'okta', externalId: domain, settings: {} }, settings: {} },
    target: { id: 't', type: 'okta_group', slug: 'g', label: null, settings: {} },
    subject: { userId: user.id, email: user.email, username: user.email ?? 'bot' },
    secrets: async () => '',
    signal: new AbortController().signal,
  }
}
const newDomain = () => `acme-${++domainSeq}-${Date.now()}.okta.com`

describe('resolving identities', () => {
  it('discovers by email once, stores it per (user, service, external id), then uses the stored one', async () => {
    const domain = newDomain()
    const { strategy, calls } = discovering({ [users.member.email]: '00u-member' })
    expect(await resolveIdentityWithSource({ db }, strategy, call(users.member, domain))).toEqual({ identity: '00u-member', source: 'discovered' })
    expect(await db.userIdentity.findMany({ where: { userId: users.member.id, service: 'okta', serviceId: domain } })).toEqual([
      expect.objectContaining({ orgId: org.id, externalUserId: '00u-member' }),
    ])
    expect(await resolveIdentityWithSource({ db }, strategy, call(users.member, domain))).toEqual({ identity: '00u-member', source: 'stored' })
    expect(calls).toEqual([users.member.email])
    // Another Okta org (another external id) is another identity.
    const other = newDomain()
    expect(await resolveIdentityWithSource({ db }, discovering({ [users.member.email]: '00u-elsewhere' }).strategy, call(users.member, other))).toMatchObject({ identity: '00u-elsewhere' })
  })

  it('asks the getIdentity reducer before discovery, and stores its answer; null falls back to discovery', async () => {
    const domain = newDomain()
    const asked: unknown[] = []
    const reducer: IdentityReducer = async (r) => {
      asked.push({ service: r.service, serviceId: r.serviceId, email: r.user.email })
      return r.user.email === users.admin.email ? ' 00u-from-reducer ' : null
    }
    const { strategy, calls } = discovering({ [users.guest.email]: '00u-guest' })
    expect(await resolveIdentityWithSource({ db, getIdentity: reducer }, strategy, call(users.admin, domain))).toEqual({ identity: '00u-from-reducer', source: 'reducer' })
    expect(asked).toEqual([{ service: 'okta', serviceId: domain, email: users.admin.email }])
    expect(calls).toEqual([])
    expect(await resolveIdentityWithSource({ db, getIdentity: reducer }, strategy, call(users.guest, domain))).toEqual({ identity: '00u-guest', source: 'discovered' })
    // Stored now: the reducer is not asked again.
    expect(await resolveIdentityWithSource({ db, getIdentity: reducer }, strategy, call(users.admin, domain))).toEqual({ identity: '00u-from-reducer', source: 'stored' })
    expect(asked).toHaveLength(2)
  })

  it('fails naming the user, the service and the fix when nothing resolves it', async () => {
    const domain = newDomain()
    const error = await failure(() => resolveIdentityWithSource({ db, getIdentity: async () => undefined }, discovering({}).strategy, call(users.member, domain)), StrategyError)
    expect(error.message).toBe(
      `cannot resolve the okta identity of user ${users.member.email} (okta ${domain}): none is stored, the flow's getIdentity reducer returned none, no okta user was found with the email ${users.member.email}. An admin can set it: npm run -s admin -- identities set --org ${org.slug} --user ${users.member.email} --service okta --service-id ${domain} --external-id <id>`,
    )
    expect(await db.userIdentity.count({ where: { serviceId: domain } })).toBe(0)
  })

  it('refuses an identity that is already another user\'s', async () => {
    const domain = newDomain()
    await setIdentity(db, { orgId: org.id, userId: users.admin.id, service: 'okta', serviceId: domain, externalUserId: '00u-shared' })
    const error = await failure(() => resolveIdentityWithSource({ db }, discovering({ [users.member.email]: '00u-shared' }).strategy, call(users.member, domain)), StrategyError)
    expect(error.message).toMatch(new RegExp(`the okta identity 00u-shared found for user ${users.member.email} by discovery by email in okta is already the identity of user ${users.admin.email}`))
  })

  it('strategies without an identity service (http, aws_lambda) are asked directly and nothing is stored', async () => {
    const domain = newDomain()
    const { strategy } = discovering({ [users.member.email]: users.member.email }, null)
    expect(await resolveIdentityWithSource({ db }, strategy, call(users.member, domain))).toEqual({ identity: users.member.email, source: 'discovered' })
    expect(await db.userIdentity.count({ where: { serviceId: domain } })).toBe(0)
  })
})

describe('admin functions', () => {
  it('set, list and delete; a duplicate external id is refused', async () => {
    const domain = newDomain()
    expect(await setIdentity(db, { orgId: org.id, userId: users.guest.id, service: 'github', serviceId: domain, externalUserId: 'guest-gh' })).toEqual({ previous: null })
    expect(await setIdentity(db, { orgId: org.id, userId: users.guest.id, service: 'github', serviceId: domain, externalUserId: 'guest-gh2' })).toEqual({ previous: 'guest-gh' })
    await expect(setIdentity(db, { orgId: org.id, userId: users.admin.id, service: 'github', serviceId: domain, externalUserId: 'guest-gh2' })).rejects.toBeInstanceOf(IdentityConflictError)
    const listed = await listIdentities(db, { orgId: org.id, userId: users.guest.id, service: 'github' })
    expect(listed).toEqual([expect.objectContaining({ user: users.guest.email, service: 'github', serviceId: domain, externalUserId: 'guest-gh2' })])
    expect(await deleteIdentities(db, { orgId: org.id, userId: users.guest.id, service: 'github', serviceId: domain })).toBe(1)
    expect(await listIdentities(db, { orgId: org.id, userId: users.guest.id, service: 'github' })).toEqual([])
  })
})
