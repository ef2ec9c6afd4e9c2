/**
 * Realistic entity bodies, shaped like what Sym's Terraform provider sends (every known key, empty strings and
 * all). Shared by the API tests and `npm run bench`, so both exercise the same payloads.
 */
export const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64')

export const entityBodies = {
  slack: { type: 'slack', slug: 'Main-Slack', external_id: 'T123ABC', label: 'Slack', settings: {} },
  context: {
    type: 'permission_context',
    slug: 'main-runtime-context',
    external_id: '123456789012',
    label: '',
    settings: { cloud: 'aws', region: 'us-east-1', role_arn: 'arn:aws:iam::123456789012:role/sym/SymRuntimeMain', external_id: 'e1', account_id: '123456789012' },
  },
  runtime: (contextId: string) => ({ slug: 'main', label: 'Main runtime', context_id: contextId }),
  secretSource: (contextId: string) => ({ type: 'aws_secrets_manager', slug: 'main-sym-secrets', label: '', settings: { context_id: contextId } }),
  secret: (sourceId: string) => ({ path: 'sym/main/okta-api-key', source_id: sourceId, label: 'Okta API key', settings: {} }),
  okta: (secretId: string) => ({ type: 'okta', slug: 'main-okta', external_id: 'dev-123.okta.com', settings: { api_token_secret: secretId } }),
  errorLogger: (slackId: string) => ({ integration_id: slackId, destination: '#sym-errors' }),
  firehose: (contextId: string) => ({ type: 'kinesis_firehose', integration_id: contextId, settings: { stream_name: 'SymS3ReportingLogsMain' } }),
  httpLog: { type: 'http', integration_id: '<null>', settings: { url: 'https://logs.example.com/sym' } },
  environment: (ids: { runtime: string; slack: string; okta: string; errorLogger: string; logs: string[] }) => ({
    slug: 'main',
    label: '',
    runtime_id: ids.runtime,
    integrations: { slack_id: ids.slack, okta_id: ids.okta },
    error_logger_id: ids.errorLogger,
    log_destination_ids: ids.logs,
  }),
  oktaTarget: { type: 'okta_group', slug: 'okta-admins', label: 'Okta Admins', settings: { group_id: '00g1abcd2EFGHijkl3m4' } },
  ssoTarget: {
    type: 'aws_sso_permission_set',
    slug: 'prod-admin',
    label: 'Prod admin',
    settings: { permission_set_arn: 'arn:aws:sso:::permissionSet/ssoins-1/ps-1', account_id: '123456789012' },
  },
  githubTarget: { type: 'github_repo', slug: 'any-repo', settings: {}, field_bindings: ['repo_name'] },
  strategy: (oktaId: string, targets: string[]) => ({ type: 'okta', slug: 'main-okta', label: '', integration_id: oktaId, targets, settings: {} }),
  flow: (environmentId: string, strategyId: string) => ({
    slug: 'Okta_Access',
    label: 'Okta access',
    implementation: b64('export function getPermissions() { return {} }\n'),
    environment_id: environmentId,
    vars: { request_channel: '#sym-requests' },
    params: {
      strategy_id: strategyId,
      allow_revoke: true,
      schedule_deescalation: true,
      include_decision_message: false,
      allow_guest_interaction: false,
      additional_header_text: '',
      allowed_sources: ['slack', 'api'],
      prompt_fields: [
        { name: 'reason', type: 'string', required: true, label: 'Reason', default: '', visible: true, allowed_values: [], prefetch: false, on_change: '' },
        {
          name: 'duration',
          type: 'duration',
          required: true,
          label: 'Duration',
          default: '',
          visible: true,
          allowed_values: ['30m', '1h', '1d'],
          prefetch: false,
          on_change: b64('export function onChange(user, form) { return form }\n'),
        },
      ],
    },
  }),
  flowsFilter: (pagerdutyId: string) => ({
    implementation: b64('export function getFlows(user, flows) { return flows }\n'),
    vars: { team: 'platform' },
    integrations: { pagerduty_id: pagerdutyId },
  }),
}

