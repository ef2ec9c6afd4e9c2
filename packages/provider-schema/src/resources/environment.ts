import { attr, idAttribute, labelAttribute, nameAttribute, resource } from '../dsl.js'

/** Keys of integration maps name the integration with an `_id` suffix: `slack_id`, `pagerduty_id`, `circleci_id`. */
export const INTEGRATION_KEY = { regex: '^[a-z0-9_]+_id$', hint: 'keys are lower-case and end in `_id`, e.g. `slack_id`' } as const

export const environment = resource({
  typeName: 'sym_environment',
  kind: 'environment',
  path: 'environments',
  title: 'environment',
  description:
    'A `sym_environment` bundles what flows share: integrations (the Slack workspace, PagerDuty, …), the runtime, the error logger and the log destinations. Typical environments are `main`, `sandbox` and `prod`.',
  schemaVersion: 0,
  lookup: 'slug',
  importExample: 'main',
  attributes: {
    id: idAttribute,
    name: nameAttribute('environment', ' Users pick it in Slack with `/sym req <flow> <environment>`.'),
    label: labelAttribute('environment'),
    runtime_id: attr.string({
      mode: 'optional',
      format: 'uuid',
      references: 'runtime',
      description: 'The ID of the `sym_runtime` used by AWS-backed strategies.',
    }),
    integrations: attr.map({
      mode: 'optional',
      default: {},
      references: 'integration',
      keyPattern: INTEGRATION_KEY,
      description:
        'Integrations available to flows, keyed `<name>_id`: `slack_id` makes the Slack workspace available; `pagerduty_id`, `okta_id` and custom keys reach the implementation as `event.flow.environment.integrations["<name>"]`.',
    }),
    error_logger_id: attr.string({
      mode: 'optional',
      format: 'uuid',
      references: 'error_logger',
      description: 'The ID of the `sym_error_logger` that hears about errors in this environment\'s flows.',
    }),
    log_destination_ids: attr.list({
      mode: 'optional',
      format: 'uuid',
      references: 'log_destination',
      omitWhenNull: true,
      description: 'IDs of the `sym_log_destination`s that receive every audit entry of this environment\'s runs.',
    }),
  },
})
