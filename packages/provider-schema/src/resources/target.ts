import { attr, idAttribute, labelAttribute, nameAttribute, resource, settingsAttribute } from '../dsl.js'

export const TARGET_TYPES = [
  'aws_sso_permission_set',
  'aws_sso_group',
  'aws_iam_group',
  'okta_group',
  'github_repo',
  'google_group',
  'tailscale_group',
  'aptible_role',
  'onelogin_role',
  'aws_lambda_function',
  'custom',
] as const

export const target = resource({
  typeName: 'sym_target',
  kind: 'target',
  path: 'access-targets',
  title: 'access target',
  description:
    'A `sym_target` is something a user can request temporary access to: an AWS SSO permission set in an account, an Okta group, a GitHub repository, a Lambda-backed resource, and so on. Targets are attached to a `sym_strategy`, which grants and revokes them.',
  schemaVersion: 0,
  lookup: 'type_slug',
  importExample: 'aws_sso_permission_set:prod-admin',
  attributes: {
    id: idAttribute,
    type: attr.string({
      mode: 'required',
      allowedValues: TARGET_TYPES,
      description: 'The kind of target; it must match the strategy that grants it.',
    }),
    name: nameAttribute(
      'target',
      ' Strategies backed by AWS Lambda or custom code receive it as the target `name`.',
    ),
    label: labelAttribute('target (shown in the Slack dropdown)'),
    settings: settingsAttribute('Type-specific settings that say what is granted, such as `group_id` or `permission_set_arn`.'),
    field_bindings: attr.list({
      mode: 'optional',
      omitWhenNull: true,
      description:
        'Names of `settings` keys whose values come from the request\'s prompt field of the same name ("dynamic targets"), e.g. `["repo_name"]`.',
    }),
  },
  rules: [
    {
      rule: 'settings_by_type',
      attribute: 'settings',
      bindingsAttribute: 'field_bindings',
      settings: {
        aws_sso_permission_set: {
          permission_set_arn: { required: true, description: 'ARN of the AWS SSO permission set.' },
          account_id: { required: true, description: 'AWS account the permission set is assigned in.' },
        },
        aws_sso_group: { group_id: { required: true, description: 'ID of the AWS Identity Center group.' } },
        aws_iam_group: { iam_group: { required: true, description: 'Name of the IAM group.' } },
        okta_group: { group_id: { required: true, description: 'ID of the Okta group (`00g…`).' } },
        github_repo: { repo_name: { required: true, description: 'Name of the repository in the integration\'s organization.' } },
        google_group: {
          group_email: { required: true, description: 'Email address of the Google group.' },
          role: { required: false, description: 'Membership role, e.g. `MEMBER` (default) or `MANAGER`.' },
        },
        tailscale_group: { group_name: { required: true, description: 'Name of the group in the tailnet ACL.' } },
        aptible_role: { role_id: { required: true, description: 'ID of the Aptible role.' } },
        onelogin_role: {
          role_id: { required: true, description: 'ID of the OneLogin role.' },
          privilege_level: { required: false, description: '`member` or `admin`.' },
        },
        aws_lambda_function: { arn: { required: true, description: 'ARN of the Lambda function invoked to escalate and de-escalate.' } },
        custom: {},
      },
    },
  ],
})
