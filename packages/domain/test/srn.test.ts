import { describe, expect, it } from 'vitest'
import { parseFlowRef, parseSrn, parseTargetRef, srns } from '../src/index.js'

describe('SRNs', () => {
  it('split into org, model and parts', () => {
    expect(parseSrn('healthy-health:run:mysql:2.0.0:b8d4b0ce-0971-4aec-88e5-971b70fa0066')).toEqual({
      ok: true,
      value: { org: 'healthy-health', model: 'run', parts: ['mysql', '2.0.0', 'b8d4b0ce-0971-4aec-88e5-971b70fa0066'] },
    })
    expect(parseSrn('just-a-slug')).toMatchObject({ ok: false, reason: expect.stringMatching(/not an SRN/) })
    expect(parseSrn('o:flow:bad slug:latest')).toMatchObject({ ok: false, reason: expect.stringMatching(/"bad slug"/) })
  })

  it.each([
    ['healthy-health:flow:approval-ci-deploy-prod:latest', { org: 'healthy-health', slug: 'approval-ci-deploy-prod', version: 'latest' }],
    ['Acme:flow:DB_Access:3', { org: 'acme', slug: 'db_access', version: 3 }],
    ['acme:flow:db:2.0.0', { org: 'acme', slug: 'db', version: 2 }],
    ['db-access', { org: null, slug: 'db-access', version: 'latest' }],
  ])('flow %s', (text, value) => {
    expect(parseFlowRef(text)).toEqual({ ok: true, value })
  })

  it.each([
    ['acme:integration:slack:latest', /its model is "integration"/],
    ['acme:flow:db', /expected <org>:flow:<slug>:<version>/],
    ['acme:flow:db:2.1.0', /not a flow version/],
    ['acme:flow:db:0', /not a flow version/],
    ['not a slug', /neither a flow SRN nor a flow slug/],
  ])('refuses %s', (text, reason) => {
    expect(parseFlowRef(text)).toMatchObject({ ok: false, reason: expect.stringMatching(reason) })
  })

  it('targets, with or without their id', () => {
    expect(parseTargetRef('healthy-health:access_target:custom:ci-deploy-target:latest')).toEqual({
      ok: true,
      value: { org: 'healthy-health', type: 'custom', slug: 'ci-deploy-target', id: null },
    })
    expect(parseTargetRef('o:access_target:okta_group:Admins:latest:0C4D7A52-0000-4000-8000-000000000001')).toEqual({
      ok: true,
      value: { org: 'o', type: 'okta_group', slug: 'admins', id: '0c4d7a52-0000-4000-8000-000000000001' },
    })
    expect(parseTargetRef('o:access_target:custom:t:latest:nope')).toMatchObject({ ok: false, reason: expect.stringMatching(/not a target id/) })
    expect(parseTargetRef('o:flow:f:latest')).toMatchObject({ ok: false })
  })

  it('are written back in the same shape', () => {
    expect(srns.flow('o', 'db', 3)).toBe('o:flow:db:3')
    expect(srns.run('o', 'db', 3, 'r1')).toBe('o:run:db:3:r1')
    expect(srns.target('o', 'custom', 'db', 't1')).toBe('o:access_target:custom:db:latest:t1')
    expect(srns.user('o', 'bot', 'u1')).toBe('o:user:bot:u1:latest')
    const flow = parseFlowRef(srns.flow('o', 'db', 3))
    expect(flow).toEqual({ ok: true, value: { org: 'o', slug: 'db', version: 3 } })
  })
})
