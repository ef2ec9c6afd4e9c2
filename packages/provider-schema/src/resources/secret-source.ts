import { attr, idAttribute, labelAttribute, nameAttribute, resource, settingsAttribute } from '../dsl.js'

/**
 * `env` is OpenSym's own (self-hosted): secrets are environment variables of the worker and API processes whose
 * names start with {@link ENV_SECRET_PREFIX}, so configuration can never read other variables (DATABASE_URL…).
 */
export const SECRET_SOURCE_TYPES = ['aws_secrets_manager', 'env'] as const

/** The prefix every variable read through an `env` secret source must have. */
export const ENV_SECRET_PREFIX = 'OPENSYM_SECRET_'

export const secretSource = resource({
  typeName: 'sym_secrets',
  kind: 'secret_source',
  path: 'secret-sources',
  title: 'secret source',
  description:
    'A `sym_secrets` is a place secrets are read from at the moment they are needed, such as AWS Secrets Manager through a permission context. Secret values are never stored by Sym. Self-hosted OpenSym also has the type `env`: each `sym_secret` of the source names an environment variable of the OpenSym processes, which must start with `OPENSYM_SECRET_` (other variables, such as `DATABASE_URL`, can never be read). An `env` source takes no settings.',
  schemaVersion: 0,
  lookup: 'type_slug',
  importExample: 'aws_secrets_manager:main-sym-secrets',
  attributes: {
    id: idAttribute,
    type: attr.string({
      mode: 'required',
      allowedValues: SECRET_SOURCE_TYPES,
      description: 'The kind of secret store.',
    }),
    name: nameAttribute('secret source'),
    label: labelAttribute('secret source'),
    settings: settingsAttribute(
      'Type-specific settings. For `aws_secrets_manager`: `context_id`, the ID of the `permission_context` integration used to read secrets. None for `env`.',
    ),
  },
})
