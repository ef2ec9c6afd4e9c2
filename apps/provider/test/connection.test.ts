import { describe, expect, it } from 'vitest'
import { ConnectionError, resolveConnection, symflowConfigPath } from '../src/connection.js'

const HOME = '/home/dev'
const files = (content: Record<string, string>) => (p: string) => content[p]
const config = (org: string, token = 'jwt-from-file') => `auth_token:\n  access_token: ${token}\n  expires_in: 86400\nclient_id: abc\nemail: dev@example.com\norg: ${org}\n`

describe('resolveConnection', () => {
  it('prefers the env var named by jwt_env_var, with no org check', () => {
    const c = resolveConnection({ org: 'acme', jwtEnvVar: 'MY_TOKEN' }, { env: { HOME, MY_TOKEN: 't1', SYM_JWT: 'ignored' }, readFile: files({}) })
    expect(c).toEqual({ apiUrl: 'http://127.0.0.1:8080/api/v1', token: 't1', tokenSource: 'environment' })
    expect(resolveConnection({ org: 'acme' }, { env: { SYM_JWT: 't2' }, readFile: files({}) }).token).toBe('t2')
  })

  it('uses api_url, else SYM_API_URL, without a trailing slash', () => {
    const env = { SYM_JWT: 't', SYM_API_URL: 'https://sym.internal/api/v1/' }
    expect(resolveConnection({ org: 'o' }, { env, readFile: files({}) }).apiUrl).toBe('https://sym.internal/api/v1')
    expect(resolveConnection({ org: 'o', apiUrl: 'http://x:1/api/v1' }, { env, readFile: files({}) }).apiUrl).toBe('http://x:1/api/v1')
    expect(() => resolveConnection({ org: 'o', apiUrl: 'ftp://x' }, { env, readFile: files({}) })).toThrow(ConnectionError)
  })

  it('falls back to the symflow config file and checks its org', () => {
    const path = symflowConfigPath({ HOME })
    expect(path).toBe('/home/dev/.config/symflow/default/config.yml')
    const ok = resolveConnection({ org: 'acme' }, { env: { HOME }, readFile: files({ [path]: config('acme') }) })
    expect(ok).toMatchObject({ token: 'jwt-from-file', tokenSource: 'symflow' })
    const mismatch = () => resolveConnection({ org: 'acme' }, { env: { HOME }, readFile: files({ [path]: config('other') }) })
    expect(mismatch).toThrow(/logged in to org "other" but the provider is configured with org "acme"/)
    expect(() => resolveConnection({ org: 'acme' }, { env: { HOME, SYM_TF_SKIP_VALIDATION: '1' }, readFile: files({ [path]: config('other') }) })).not.toThrow()
  })

  it('explains a missing, unparseable or token-less config file', () => {
    expect(() => resolveConnection({ org: 'a' }, { env: { HOME }, readFile: files({}) })).toThrow(/No local Sym config was found/)
    const path = symflowConfigPath({ HOME })
    expect(() => resolveConnection({ org: 'a' }, { env: { HOME }, readFile: files({ [path]: 'auth_token: [unclosed' }) })).toThrow(/failed to parse Sym configuration/)
    expect(() => resolveConnection({ org: 'a' }, { env: { HOME }, readFile: files({ [path]: 'org: a\n' }) })).toThrow(/do not have an org configured via `symflow`/)
  })
})
