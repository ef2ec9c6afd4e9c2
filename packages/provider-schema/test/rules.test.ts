import { describe, expect, it } from 'vitest'
import {
  applyDefaults,
  collectReferences,
  decodeBase64Text,
  encodeEntityFields,
  ENV_SECRET_PREFIX,
  normalizeEntityBody,
  referenceAttributes,
  resources,
  slugOf,
  validateEntityRules,
} from '../src/index.js'

const U1 = '60c49c8c-f181-41e4-8696-99cc0b0ffc4f'
const U2 = '0b8f1f4a-8f4e-4c4e-9d59-6b3c7f0a1e22'
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64')

describe('validateEntityRules', () => {
  it('requires an integration for strategy types other than http, accepting the "<null>" placeholder for http', () => {
    const base = { slug: 's', targets: [U1] }
    expect(validateEntityRules(resources.strategy, { ...base, type: 'okta' })).toEqual([
      { field: 'integration_id', message: 'this strategy type requires an integration; set integration_id' },
    ])
    expect(validateEntityRules(resources.strategy, { ...base, type: 'okta', integration_id: '<null>' })).toHaveLength(1)
    expect(validateEntityRules(resources.strategy, { ...base, type: 'http', integration_id: '<null>', settings: { url: 'https://h.example.com/' } })).toEqual([])
    expect(validateEntityRules(resources.strategy, { ...base, type: 'okta', integration_id: 'nope' })).toEqual([
      { field: 'integration_id', message: 'must be a UUID or "<null>"' },
    ])
  })

  it('requires per-type target settings unless a field binding fills them', () => {
    expect(validateEntityRules(resources.target, { type: 'okta_group', slug: 't', settings: {} })).toEqual([
      { field: 'settings.group_id', message: 'is required for type "okta_group"' },
    ])
    expect(validateEntityRules(resources.target, { type: 'github_repo', slug: 't', settings: {}, field_bindings: ['repo_name'] })).toEqual([])
    expect(
      validateEntityRules(resources.target, { type: 'aws_sso_permission_set', slug: 't', settings: { permission_set_arn: 'arn' } }),
    ).toEqual([{ field: 'settings.account_id', message: 'is required for type "aws_sso_permission_set"' }])
  })

  it('checks base64 implementations and unique prompt field names, naming the field', () => {
    const body = {
      slug: 'f',
      implementation: 'not base64!',
      environment_id: U1,
      params: { prompt_fields: [{ name: 'reason', type: 'string' }, { name: 'reason', type: 'int', on_change: b64('x') }] },
    }
    expect(validateEntityRules(resources.flow, body)).toEqual([
      { field: 'implementation', message: 'must be base64-encoded UTF-8 text' },
      { field: 'params.prompt_fields[1].name', message: 'duplicate name "reason"' },
    ])
    // The provider's bodies hold implementations as text before encoding: only the other rules apply.
    expect(validateEntityRules(resources.flow, body, { base64AsText: true })).toEqual([{ field: 'params.prompt_fields[1].name', message: 'duplicate name "reason"' }])
    expect(decodeBase64Text(b64('héllo'))).toBe('héllo')
    expect(decodeBase64Text(Buffer.from([0xff, 0xfe]).toString('base64'))).toBeUndefined()
  })

  it('rejects a target listed twice', () => {
    expect(validateEntityRules(resources.strategy, { type: 'http', slug: 's', targets: [U1, U1], settings: { url: 'https://h.example.com/' } })).toEqual([
      { field: 'targets[1]', message: 'is listed twice' },
    ])
  })

  it('checks the http strategy settings: url required and an http(s) URL, hmac_secret_id a UUID, timeout_seconds 1-60', () => {
    const http = (settings?: Record<string, unknown>) =>
      validateEntityRules(resources.strategy, { type: 'http', slug: 's', integration_id: '<null>', targets: [U1], ...(settings ? { settings } : {}) })
    expect(http()).toEqual([{ field: 'settings.url', message: 'is required for type "http"' }])
    expect(http({})).toEqual([{ field: 'settings.url', message: 'is required for type "http"' }])
    expect(http({ url: '' })).toEqual([{ field: 'settings.url', message: 'is required for type "http"' }])
    expect(http({ url: 'https://access.example.com/sym?team=a' })).toEqual([])
    expect(http({ url: 'http://127.0.0.1:8080/grant', hmac_secret_id: U2, timeout_seconds: '60' })).toEqual([])
    expect(http({ url: 'access.example.com/sym' })).toEqual([{ field: 'settings.url', message: 'must be an absolute http:// or https:// URL' }])
    expect(http({ url: 'ftp://access.example.com/sym' })).toEqual([{ field: 'settings.url', message: 'must be an absolute http:// or https:// URL' }])
    expect(http({ url: 'https://me:pw@access.example.com/' })).toEqual([{ field: 'settings.url', message: 'must not contain credentials (user:password@)' }])
    expect(http({ url: 'https://a.example.com', hmac_secret_id: 'my-secret', timeout_seconds: '0' })).toEqual([
      { field: 'settings.hmac_secret_id', message: 'must be a UUID' },
      { field: 'settings.timeout_seconds', message: 'must be a whole number from 1 to 60' },
    ])
    expect(http({ url: 'https://a.example.com', timeout_seconds: '1.5' })).toEqual([{ field: 'settings.timeout_seconds', message: 'must be a whole number from 1 to 60' }])
    expect(http({ url: 'https://a.example.com', timeout_seconds: '61' })).toHaveLength(1)
    // Other strategy types are not affected.
    expect(validateEntityRules(resources.strategy, { type: 'okta', slug: 's', integration_id: U1, targets: [U1] })).toEqual([])
  })

  it('refuses http URLs that name a link-local, metadata or reserved address, however the address is written', () => {
    const problem = (url: string) => validateEntityRules(resources.strategy, { type: 'http', slug: 's', integration_id: '<null>', targets: [U1], settings: { url } })
    for (const [url, host] of [
      ['http://169.254.169.254/latest/meta-data/', '169.254.169.254'],
      ['http://0251.0376.0251.0376/', '169.254.169.254'],
      ['http://2852039166/', '169.254.169.254'],
      ['http://[fd00:ec2::254]/', 'fd00:ec2::254'],
      ['http://[::ffff:169.254.169.254]/', '::ffff:a9fe:a9fe'],
      ['https://[fe80::1]:8443/grant', 'fe80::1'],
      ['http://0.0.0.0:8080/', '0.0.0.0'],
      ['http://224.0.0.1/', '224.0.0.1'],
    ]) {
      expect(problem(url!)).toEqual([{ field: 'settings.url', message: `must not point at a link-local, metadata or reserved address (${host})` }])
    }
    // Private networks and names are the deployment's business (names are checked on connect).
    for (const url of ['http://10.0.0.5/grant', 'http://192.168.1.10:8080/', 'http://[fc00::1]/', 'http://metadata.google.internal/']) expect(problem(url)).toEqual([])
  })

  it("checks an http log destination's url like the http strategy's", () => {
    const log = (url: string) => validateEntityRules(resources.log_destination, { type: 'http', integration_id: '<null>', settings: { url } })
    expect(log('https://logs.example.com/sym')).toEqual([])
    expect(log('logs.example.com/sym')).toEqual([{ field: 'settings.url', message: 'must be an absolute http:// or https:// URL' }])
    expect(log('http://169.254.169.254/')).toEqual([{ field: 'settings.url', message: 'must not point at a link-local, metadata or reserved address (169.254.169.254)' }])
  })

  it('knows the env secret source', () => {
    expect(resources.secret_source.attributes.type.allowedValues).toEqual(['aws_secrets_manager', 'env'])
    expect(ENV_SECRET_PREFIX).toBe('OPENSYM_SECRET_')
    expect(resources.secret.attributes.path.description).toContain('OPENSYM_SECRET_')
  })
})

describe('normalize, encode and references', () => {
  it('drops unset markers, lower-cases slugs and decodes base64; encoding restores it', () => {
    const body = {
      slug: 'SSO_Access',
      label: '',
      implementation: b64('export const x = 1\n'),
      environment_id: U1,
      params: { strategy_id: '', additional_header_text: '', prompt_fields: [{ name: 'r', type: 'string', on_change: '', default: '' }] },
    }
    const n = normalizeEntityBody(resources.flow, body)
    expect(n).toEqual({
      slug: 'sso_access',
      implementation: 'export const x = 1\n',
      environment_id: U1,
      params: { prompt_fields: [{ name: 'r', type: 'string' }] },
    })
    expect(encodeEntityFields(resources.flow, n)).toMatchObject({ implementation: body.implementation })
  })

  it('collects references from attributes, lists, maps and blocks', () => {
    const env = { slug: 'main', integrations: { slack_id: U1 }, runtime_id: U2, log_destination_ids: [U1, U2] }
    expect(collectReferences(resources.environment, env)).toEqual([
      { field: 'runtime_id', kind: 'runtime', id: U2 },
      { field: 'integrations.slack_id', kind: 'integration', id: U1 },
      { field: 'log_destination_ids[0]', kind: 'log_destination', id: U1 },
      { field: 'log_destination_ids[1]', kind: 'log_destination', id: U2 },
    ])
    expect(collectReferences(resources.flow, { slug: 'f', environment_id: U1, params: { strategy_id: U2 } })).toContainEqual({
      field: 'params.strategy_id',
      kind: 'strategy',
      id: U2,
    })
    expect(collectReferences(resources.strategy, { type: 'http', integration_id: '<null>', targets: [] })).toEqual([])
  })

  it('lists every reference attribute by kind and API path', () => {
    expect(referenceAttributes().map((r) => `${r.kind}.${r.path}->${r.references}`)).toEqual([
      'strategy.integration_id->integration',
      'strategy.targets->target',
      'flow.environment_id->environment',
      'flow.params.strategy_id->strategy',
      'environment.runtime_id->runtime',
      'environment.integrations->integration',
      'environment.error_logger_id->error_logger',
      'environment.log_destination_ids->log_destination',
      'runtime.context_id->integration',
      'secret.source_id->secret_source',
      'error_logger.integration_id->integration',
      'log_destination.integration_id->integration',
      'flows_filter.integrations->integration',
    ])
  })

  it('derives lookup slugs for resources without a name', () => {
    expect(slugOf(resources.secret, { path: 'sym/main/Okta API key' })).toBe('sym-main-okta-api-key')
    expect(slugOf(resources.error_logger, { destination: '#Sym-Errors' })).toBe('sym-errors')
    expect(slugOf(resources.log_destination, { type: 'kinesis_firehose', settings: { stream_name: 'SymS3ReportingLogsMain' } })).toBe(
      'syms3reportinglogsmain',
    )
    expect(slugOf(resources.log_destination, { type: 'http', settings: { url: 'https://logs.example.com/sym' } })).toBe('logs-example-com-sym')
    expect(slugOf(resources.log_destination, { type: 'datadog', settings: {} })).toBe('datadog')
    expect(slugOf(resources.flow, { slug: 'My-Flow' })).toBe('my-flow')
  })
})

describe('applyDefaults', () => {
  it('fills unset values from the schema, blocks included, and keeps what is set', () => {
    const stored = { slug: 'f', implementation: 'x', environment_id: U1, params: { allow_revoke: false, prompt_fields: [{ name: 'r', type: 'string', label: '' }] } }
    expect(applyDefaults(resources.flow, stored)).toEqual({
      slug: 'f',
      implementation: 'x',
      environment_id: U1,
      vars: {},
      params: {
        allow_revoke: false,
        schedule_deescalation: true,
        include_decision_message: false,
        allow_guest_interaction: false,
        prompt_fields: [{ name: 'r', type: 'string', label: '', required: true, visible: true, prefetch: false }],
      },
    })
    expect(applyDefaults(resources.flow, { slug: 'bare' })).toMatchObject({ params: { allow_revoke: true, schedule_deescalation: true } })
  })
})
