/** `admin identities list|set|delete`: how users are known in other services. */
import { createDb, type Db } from '@opensym/db'
import { createTestOrg, type TestOrg } from '@opensym/testing'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { run } from '../src/cli.js'

let db: Db
let org: TestOrg
beforeAll(async () => {
  db = createDb(inject('databaseUrl'), { poolSize: 2 })
  org = await createTestOrg(db, 'admin-identities')
})
afterAll(async () => {
  await db.$disconnect()
})

async function admin(...argv: string[]) {
  const lines: string[] = []
  const code = await run(argv, db, { out: (t) => lines.push(t) })
  const text = lines.join('\n')
  return { code, text, json: () => JSON.parse(text) as unknown }
}

describe('admin identities', () => {
  it('sets, lists, replaces and deletes identities', async () => {
    const set = await admin('identities', 'set', '--org', org.slug, '--user', 'Member@Example.com', '--service', 'okta', '--service-id', 'acme.okta.com', '--external-id', '00u1', '--json')
    expect(set.code).toBe(0)
    expect(set.json()).toEqual({ user: 'member@example.com', service: 'okta', service_id: 'acme.okta.com', external_id: '00u1', previous: null })
    expect((await admin('identities', 'set', '--org', org.slug, '--user', 'member@example.com', '--service', 'okta', '--service-id', 'acme.okta.com', '--external-id', '00u2')).text).toBe(
      'member@example.com is 00u2 in okta acme.okta.com (was 00u1)',
    )
    await admin('identities', 'set', '--org', org.slug, '--user', 'admin@example.com', '--service', 'github', '--service-id', 'acme', '--external-id', 'the-admin')

    const all = await admin('identities', 'list', '--org', org.slug, '--json')
    expect(all.json()).toEqual([
      expect.objectContaining({ user: 'admin@example.com', service: 'github', service_id: 'acme', external_id: 'the-admin' }),
      expect.objectContaining({ user: 'member@example.com', service: 'okta', service_id: 'acme.okta.com', external_id: '00u2' }),
    ])
    expect((await admin('identities', 'list', '--org', org.slug, '--user', 'member@example.com')).text).toBe('member@example.com  okta:acme.okta.com  00u2')

    const dup = await admin('identities', 'set', '--org', org.slug, '--user', 'guest@example.com', '--service', 'okta', '--service-id', 'acme.okta.com', '--external-id', '00u2')
    expect(dup).toMatchObject({ code: 1, text: 'error: okta acme.okta.com identity 00u2 already belongs to member@example.com; delete that one first' })

    const deleted = await admin('identities', 'delete', '--org', org.slug, '--user', 'member@example.com', '--service', 'okta', '--json')
    expect(deleted.json()).toEqual({ user: 'member@example.com', service: 'okta', service_id: null, deleted: 1 })
    expect((await admin('identities', 'list', '--org', org.slug, '--user', 'member@example.com')).text).toBe('no identities')
  })

  it.each([
    [['identities', 'set', '--org', 'x', '--user', 'a@b.co', '--service', 'okta', '--service-id', 'd'], 2, '--external-id is required'],
    [['identities', 'list'], 2, '--org is required'],
    [['identities', 'list', '--org', 'no-such-org'], 1, 'no org with slug "no-such-org"'],
  ])('%j exits %i with one line', async (argv, code, message) => {
    const res = await admin(...argv)
    expect(res.code).toBe(code)
    expect(res.text).toContain(message)
  })

  it('names an unknown user', async () => {
    expect(await admin('identities', 'delete', '--org', org.slug, '--user', 'nobody@example.com', '--service', 'okta')).toEqual(
      expect.objectContaining({ code: 1, text: `error: no user "nobody@example.com" in org ${org.slug}` }),
    )
  })
})
