import { attr, idAttribute, labelAttribute, resource, settingsAttribute } from '../dsl.js'

export const secret = resource({
  typeName: 'sym_secret',
  kind: 'secret',
  path: 'secrets',
  title: 'secret',
  description:
    'A `sym_secret` points at one secret in a `sym_secrets` source, such as an API token. Integrations reference it by ID (e.g. `api_token_secret`); the value is read when needed and never stored, logged or returned.',
  schemaVersion: 0,
  lookup: 'slug',
  derivedSlug: {
    from: 'path',
    description:
      'the `path`, lower-cased, with every run of characters other than letters, digits, `_` and `-` replaced by `-` (e.g. `sym/main/okta-api-key` → `sym-main-okta-api-key`)',
  },
  importExample: 'sym-main-okta-api-key',
  attributes: {
    id: idAttribute,
    path: attr.string({
      mode: 'required',
      maxLength: 2048,
      description:
        'The name of the secret in its source: for AWS Secrets Manager, the secret name; for an `env` source, the environment variable, which must start with `OPENSYM_SECRET_` (e.g. `OPENSYM_SECRET_OKTA_TOKEN`).',
    }),
    source_id: attr.string({
      mode: 'required',
      format: 'uuid',
      references: 'secret_source',
      description: 'The ID of the `sym_secrets` source that holds the secret.',
    }),
    label: labelAttribute('secret'),
    settings: settingsAttribute('Settings such as `json_key`, which selects one key when the secret value is a JSON object.'),
  },
})
