import { attr, idAttribute, labelAttribute, nameAttribute, resource } from '../dsl.js'

export const runtime = resource({
  typeName: 'sym_runtime',
  kind: 'runtime',
  path: 'runtimes',
  title: 'runtime',
  description:
    'A `sym_runtime` is the execution context of an environment\'s flows: the AWS permission context (an IAM role) assumed to reach AWS-backed targets and secrets.',
  schemaVersion: 0,
  lookup: 'slug',
  importExample: 'main',
  attributes: {
    id: idAttribute,
    name: nameAttribute('runtime'),
    label: labelAttribute('runtime'),
    context_id: attr.string({
      mode: 'optional',
      format: 'uuid',
      references: 'integration',
      description: 'The ID of a `permission_context` `sym_integration` whose IAM role the runtime assumes.',
    }),
  },
})
