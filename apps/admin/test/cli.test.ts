import { execFile } from 'node:child_process'
import { resolve } from 'node:path'
import { promisify } from 'node:util'
import { createDb, type Db } from '@opensym/db'
import { hashToken } from '@opensym/domain'
import { uniqueSuffix } from '@opensym/testing'
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest'
import { run } from '../src/cli.js'

let db: Db
beforeAll(() => {
  db = createDb(inject('databaseUrl'), { poolSize: 2 })
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

describe('admin command', () => {
  const slug = `acme-${uniqueSuffix().replace(/_/g, '-')}`

  it('creates an org, users and a bot, and issues a token that is stored only as a hash', async () => {
    const org = await admin('org', 'create', '--slug', slug, '--json')
    expect(org.code).toBe(0)
    expect(org.json()).toMatchObject({ slug, id: expect.any(String) })

    expect((await admin('user', 'create', '--org', slug, '--email', 'Ops@Example.com', '--role', 'admin', '--json')).json()).toMatchObject({
      email: 'ops@example.com',
      role: 'admin',
      type: 'normal',
    })
    expect((await admin('bot', 'create', '--org', slug, '--name', 'terraform', '--json')).json()).toMatchObject({ name: 'terraform', type: 'bot' })

    const issued = await admin('token', 'issue', '--org', slug, '--bot', 'terraform', '--expires', '30d', '--label', 'ci', '--json')
    expect(issued.code).toBe(0)
    const t = issued.json() as { token: string; id: string; expires_at: string; label: string }
    expect(t.token).toMatch(/^sym_/)
    expect(t.label).toBe('ci')
    expect(new Date(t.expires_at).getTime() - Date.now()).toBeGreaterThan(29 * 86_400_000)
    const row = await db.apiToken.findUniqueOrThrow({ where: { id: t.id } })
    expect(row.tokenHash).toBe(hashToken(t.token))
    expect(JSON.stringify(row)).not.toContain(t.token)

    const listed = (await admin('token', 'list', '--org', slug, '--json')).json() as { id: string; owner: string; revoked_at: string | null }[]
    expect(listed).toEqual([expect.objectContaining({ id: t.id, owner: 'terraform', revoked_at: null })])
    expect(JSON.stringify(listed)).not.toContain(t.token)

    const revoked = await admin('token', 'revoke', t.id, '--json')
    expect(revoked.json()).toMatchObject({ id: t.id, revoked_at: expect.any(String) })
    expect(((await admin('token', 'list', '--org', slug, '--json')).json() as { revoked_at: string }[])[0]!.revoked_at).toEqual(expect.any(String))
  })

  it.each([
    [['org', 'create', '--slug', 'Bad Slug!'], 1, 'invalid org slug'],
    [['user', 'create', '--org', 'no-such-org', '--email', 'a@b.co', '--role', 'admin'], 1, 'no org with slug "no-such-org"'],
    [['user', 'create', '--org', 'x', '--email', 'a@b.co', '--role', 'owner'], 2, '--role must be admin, member or guest'],
    [['token', 'issue', '--org', 'x', '--bot', 'b', '--expires', 'forever'], 2, 'is not a duration'],
    [['token', 'revoke'], 2, 'needs the token id'],
    [['token', 'frobnicate'], 2, 'unknown command'],
    [['org', 'create', '--slug', 'x', '--colour', 'red'], 2, "Unknown option '--colour'"],
  ])('%j exits %i with one line', async (argv, code, message) => {
    const res = await admin(...argv, '--json')
    expect(res.code).toBe(code)
    expect(res.text).toContain(message)
    expect(res.text.split('\n')).toHaveLength(1)
  })

  it('refuses a duplicate org and a second bot of the same name', async () => {
    expect((await admin('org', 'create', '--slug', slug)).text).toBe(`error: an org with slug "${slug}" already exists`)
    expect((await admin('bot', 'create', '--org', slug, '--name', 'terraform')).code).toBe(1)
  })
})

describe('npm run -s admin', () => {
  it('prints only JSON on stdout, and one line on stderr with a non-zero exit on error', async () => {
    const root = resolve(import.meta.dirname, '../../..')
    const env = { ...process.env, DATABASE_URL: inject('databaseUrl') }
    const slug = `cli-${uniqueSuffix().replace(/_/g, '-')}`
    const good = await promisify(execFile)('npm', ['run', '-s', 'admin', '--', 'org', 'create', '--slug', slug, '--json'], { cwd: root, env })
    expect(JSON.parse(good.stdout)).toMatchObject({ slug })
    const bad = await promisify(execFile)('npm', ['run', '-s', 'admin', '--', 'org', 'create', '--slug', slug, '--json'], { cwd: root, env }).catch(
      (e: { code: number; stdout: string; stderr: string }) => e,
    )
    expect('code' in bad && bad.code).toBe(1)
    expect(bad.stdout).toBe('')
    expect(bad.stderr.trim()).toBe(`error: an org with slug "${slug}" already exists`)
  }, 60_000)
})
