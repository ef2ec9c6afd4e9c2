import { attr, idAttribute, labelAttribute, nameAttribute, resource, settingsAttribute } from '../dsl.js'

export const SECRET_SOURCE_TYPES = ['aws_secrets_manager'] as const

export const secretSource = resource({
  typeName: 'sym_secrets',
  kind: 'secret_source',
  path: 'secret-sources',
  title: 'secret source',
  description:
    'A `sym_secrets` is a place secrets are read from at the moment they are needed, such as AWS Secrets Manager through a permission context. Secret values are never stored by Sym.',
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
      'Type-specific settings. For `aws_secrets_manager`: `context_id`, the ID of the `permission_context` integration used to read secrets.',
    ),
  },
})
