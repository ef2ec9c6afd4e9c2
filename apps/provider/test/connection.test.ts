import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateServerCertificate, type ServerCertificate } from '@opensym/tfplugin/transport'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConnectionError, extraCertificateAuthorities, nodeFetch, resolveConnection, symflowConfigPath } from '../src/connection.js'

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

describe('nodeFetch (the API calls, on node:http)', () => {
  interface Seen {
    method: string
    url: string
    headers: IncomingMessage['headers']
    body: string
  }
  const seen: Seen[] = []
  const servers: Server[] = []
  let base = ''
  let other = ''

  /** A real HTTP server: echoes what it got, and redirects under /redirect/<status>. */
  function listen(): Promise<string> {
    const server = createServer((req, res) => {
      let body = ''
      req.on('data', (chunk: Buffer) => (body += chunk.toString()))
      req.on('end', () => {
        seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body })
        const redirect = /^\/redirect\/(\d+)(\/away)?$/.exec(req.url ?? '')
        if (redirect) {
          res.writeHead(Number(redirect[1]), { location: redirect[2] ? `${other}/target` : '/target' }).end()
          return
        }
        res.writeHead(req.url === '/missing' ? 404 : 200, { 'content-type': 'application/json', 'X-Sym-Request-ID': 'req-1' })
        res.end(JSON.stringify({ method: req.method, body }))
      })
    })
    servers.push(server)
    return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)))
  }
  beforeAll(async () => {
    base = await listen()
    other = await listen()
  })
  afterAll(() => {
    for (const server of servers) server.close()
  })

  it('sends the method, headers and body, and reads status, headers (any case) and body', async () => {
    const res = await nodeFetch(`${base}/entities`, { method: 'POST', headers: { authorization: 'Bearer t', 'content-type': 'application/json' }, body: '{"a":"é"}' })
    expect(res.status).toBe(200)
    expect(res.ok).toBe(true)
    expect(res.headers.get('x-sym-request-id')).toBe('req-1')
    expect(res.headers.get('X-Sym-Request-Id')).toBe('req-1')
    expect(res.headers.get('x-absent')).toBeNull()
    expect(await res.json()).toEqual({ method: 'POST', body: '{"a":"é"}' })
    const last = seen.at(-1)!
    expect(last.headers).toMatchObject({ authorization: 'Bearer t', 'content-type': 'application/json', 'content-length': String(Buffer.byteLength('{"a":"é"}')) })
    const missing = await nodeFetch(`${base}/missing`)
    expect([missing.status, missing.ok]).toEqual([404, false])
  })

  it('follows redirects as fetch does: 303 becomes GET without a body; leaving the origin drops authorization', async () => {
    const moved = await nodeFetch(`${base}/redirect/303`, { method: 'POST', headers: { authorization: 'Bearer t', 'content-type': 'application/json' }, body: '{}' })
    expect(moved.redirected).toBe(true)
    expect(seen.at(-1)).toMatchObject({ method: 'GET', url: '/target', body: '' })
    expect(seen.at(-1)!.headers).toMatchObject({ authorization: 'Bearer t' })
    expect(seen.at(-1)!.headers['content-type']).toBeUndefined()
    await nodeFetch(`${base}/redirect/307`, { method: 'PATCH', headers: { authorization: 'Bearer t' }, body: '{"x":1}' })
    expect(seen.at(-1)).toMatchObject({ method: 'PATCH', url: '/target', body: '{"x":1}' })
    await nodeFetch(`${base}/redirect/302/away`, { method: 'GET', headers: { authorization: 'Bearer t' } })
    expect(seen.at(-1)!.url).toBe('/target')
    expect(seen.at(-1)!.headers.authorization).toBeUndefined()
  })

  it("fails like fetch when the API cannot be reached: TypeError('fetch failed') with the cause", async () => {
    const closed = await listen()
    await new Promise((resolve) => servers.at(-1)!.close(resolve))
    const failure = await nodeFetch(`${closed}/entities`).catch((e: unknown) => e)
    expect(failure).toBeInstanceOf(TypeError)
    expect(failure).toMatchObject({ message: 'fetch failed', cause: { code: 'ECONNREFUSED' } })
  })
})

describe('nodeFetch over HTTPS, with the certificates the launcher passes on', () => {
  const servers: HttpsServer[] = []
  let dir: string
  afterAll(() => {
    for (const s of servers) s.close()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  async function httpsServer(certificate: ServerCertificate): Promise<string> {
    const server = createHttpsServer({ key: certificate.keyPem, cert: certificate.certPem }, (_req, res) => res.end('ok'))
    servers.push(server)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    return `https://127.0.0.1:${(server.address() as AddressInfo).port}/`
  }

  it('trusts the certificates of SYM_PROVIDER_EXTRA_CA_CERTS besides the default ones, and no others', async () => {
    const trusted = generateServerCertificate()
    dir = mkdtempSync(join(tmpdir(), 'opensym-ca-'))
    const file = join(dir, 'extra.pem')
    writeFileSync(file, trusted.certPem)
    const previous = process.env.SYM_PROVIDER_EXTRA_CA_CERTS
    process.env.SYM_PROVIDER_EXTRA_CA_CERTS = file
    try {
      const res = await nodeFetch(await httpsServer(trusted))
      expect(res.status).toBe(200)
      expect(await res.text()).toBe('ok')
      const refused = await nodeFetch(await httpsServer(generateServerCertificate())).catch((e: unknown) => e)
      expect(refused).toBeInstanceOf(TypeError)
      expect(String((refused as TypeError).cause)).toMatch(/self[- ]signed/i)
    } finally {
      if (previous === undefined) delete process.env.SYM_PROVIDER_EXTRA_CA_CERTS
      else process.env.SYM_PROVIDER_EXTRA_CA_CERTS = previous
    }
  })

  it('reads nothing without the variable, and skips a file it cannot read', () => {
    expect(extraCertificateAuthorities({}, () => 'unused')).toBeUndefined()
    expect(extraCertificateAuthorities({ SYM_PROVIDER_EXTRA_CA_CERTS: '/ca.pem' }, (p) => `pem of ${p}`)).toBe('pem of /ca.pem')
    const missing = () => {
      throw new Error('ENOENT')
    }
    expect(extraCertificateAuthorities({ SYM_PROVIDER_EXTRA_CA_CERTS: '/nope.pem' }, missing)).toBeUndefined()
  })
})
