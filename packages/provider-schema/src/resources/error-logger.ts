import { attr, idAttribute, resource } from '../dsl.js'

export const errorLogger = resource({
  typeName: 'sym_error_logger',
  kind: 'error_logger',
  path: 'error-loggers',
  title: 'error logger',
  description:
    'A `sym_error_logger` is the Slack channel that hears about warnings and errors while flows run: failing hooks, strategy errors, Lambda `errors`. Attach it to an environment with `error_logger_id`.',
  schemaVersion: 0,
  lookup: 'slug',
  derivedSlug: {
    from: 'destination',
    description: 'the `destination` without its leading `#`, lower-cased (e.g. `#sym-errors` → `sym-errors`)',
  },
  importExample: 'sym-errors',
  attributes: {
    id: idAttribute,
    integration_id: attr.string({
      mode: 'required',
      format: 'uuid',
      references: 'integration',
      description: 'The ID of the Slack `sym_integration` of the workspace the channel is in.',
    }),
    destination: attr.string({
      mode: 'required',
      maxLength: 255,
      description: 'The Slack channel, e.g. `#sym-errors`. The channel must exist.',
    }),
  },
})
