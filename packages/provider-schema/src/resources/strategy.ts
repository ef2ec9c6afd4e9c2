import { attr, idAttribute, labelAttribute, nameAttribute, resource, settingsAttribute } from '../dsl.js'

export const STRATEGY_TYPES = [
  'aws_sso',
  'aws_iam',
  'okta',
  'github',
  'google_group',
  'tailscale',
  'aptible',
  'onelogin',
  'aws_lambda',
  'custom',
  'http',
] as const

/** Strategy types that need no integration; Sym's provider sends `"<null>"` for them. */
export const STRATEGY_TYPES_WITHOUT_INTEGRATION = ['http'] as const

export const strategy = resource({
  typeName: 'sym_strategy',
  kind: 'strategy',
  path: 'access-strategies',
  title: 'access strategy',
  description:
    'A `sym_strategy` says how access is granted (escalate) and removed (de-escalate) for a set of `sym_target`s, using an integration: Okta group membership, AWS SSO account assignments, IAM groups, GitHub collaborators, an AWS Lambda, an HTTP endpoint, or custom code. A `sym_flow` without a strategy is an approval-only flow.',
  schemaVersion: 0,
  lookup: 'type_slug',
  importExample: 'aws_sso:prod-strategy',
  attributes: {
    id: idAttribute,
    type: attr.string({
      mode: 'required',
      allowedValues: STRATEGY_TYPES,
      description: 'The kind of strategy.',
    }),
    name: nameAttribute('strategy'),
    label: labelAttribute('strategy'),
    integration_id: attr.string({
      mode: 'optional',
      format: 'uuid',
      references: 'integration',
      nullPlaceholder: '<null>',
      description:
        'The ID of the `sym_integration` the strategy uses. Required for every type except `http`.',
    }),
    targets: attr.list({
      mode: 'required',
      format: 'uuid',
      references: 'target',
      description: 'IDs of the `sym_target`s this strategy can grant.',
    }),
    settings: settingsAttribute('Type-specific settings, for example `instance_arn` for `aws_sso` or `url` for `http`.'),
    implementation: attr.string({
      mode: 'optional',
      encoding: 'base64',
      description:
        'For `type = "custom"`: the strategy\'s source code, defining `fetchRemoteIdentity`, `escalate` and `deescalate`. Sym\'s provider v3 takes a path to the file here; the contents are sent to the API base64-encoded.',
    }),
  },
  rules: [
    {
      rule: 'required_unless_type',
      attribute: 'integration_id',
      types: STRATEGY_TYPES_WITHOUT_INTEGRATION,
      message: 'this strategy type requires an integration; set integration_id',
    },
    {
      rule: 'settings_by_type',
      attribute: 'settings',
      settings: {
        aws_sso: { instance_arn: { required: true, description: 'ARN of the AWS SSO (Identity Center) instance.' } },
        http: {
          url: {
            required: true,
            format: 'http_url',
            description:
              'The `http://` or `https://` URL the escalate and de-escalate events are POSTed to as JSON (the audit log entry of the event; `event.type` says which). Reply `2xx` with `{"body": {…}, "errors": []}`; a non-empty `errors` fails the step, and `408`, `429`, `5xx`, timeouts and connection errors are retried with backoff, honouring `Retry-After`. Requests carry an `Idempotency-Key` header (the entry\'s `id`, the same on every retry).',
          },
          hmac_secret_id: {
            required: false,
            format: 'uuid',
            description:
              'The ID of a `sym_secret` whose value signs each request: the request then carries `X-Sym-Timestamp` (Unix seconds) and `X-Sym-Signature: sha256=<hex>`, the HMAC-SHA256 keyed with the secret of `<timestamp>.<raw body>`. Receivers should recompute it, compare in constant time and reject timestamps more than 5 minutes away from their clock.',
          },
          timeout_seconds: {
            required: false,
            format: 'integer',
            range: [1, 60],
            description: 'How long to wait for the reply before retrying, in seconds (1 to 60, default 10).',
          },
        },
      },
    },
  ],
})
