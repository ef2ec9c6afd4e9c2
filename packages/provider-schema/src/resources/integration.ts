import { attr, idAttribute, labelAttribute, nameAttribute, resource, settingsAttribute } from '../dsl.js'

export const INTEGRATION_TYPES = [
  'slack',
  'permission_context',
  'okta',
  'github',
  'pagerduty',
  'aptible',
  'segment',
  'knowbe4',
  'tailscale',
  'onelogin',
  'google',
  'custom',
] as const

export const integration = resource({
  typeName: 'sym_integration',
  kind: 'integration',
  path: 'integrations',
  title: 'integration',
  description:
    'A `sym_integration` holds the credentials and context Sym needs to talk to a third-party service: a Slack workspace, an AWS account (`permission_context`), an Okta org, a GitHub org, PagerDuty, and so on. Secret settings (such as `api_token_secret`) hold the ID of a `sym_secret`, never the secret value.',
  schemaVersion: 0,
  lookup: 'type_slug',
  importExample: 'slack:main-slack',
  attributes: {
    id: idAttribute,
    type: attr.string({
      mode: 'required',
      allowedValues: INTEGRATION_TYPES,
      description: 'The kind of service this integration connects to.',
    }),
    name: nameAttribute('integration'),
    external_id: attr.string({
      mode: 'required',
      maxLength: 2048,
      description:
        'The identifier of the account in the external service: the Slack workspace ID (`T…`), the AWS account ID or SSO instance ARN, the Okta domain, the GitHub organization, the PagerDuty domain, or any unique string for `custom` integrations.',
    }),
    label: labelAttribute('integration'),
    settings: settingsAttribute(
      'Type-specific settings, for example `api_token_secret = sym_secret.okta.id` for Okta or `role_arn` and `region` for a `permission_context`.',
    ),
  },
})
