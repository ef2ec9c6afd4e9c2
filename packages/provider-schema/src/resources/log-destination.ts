import { attr, idAttribute, resource, settingsAttribute } from '../dsl.js'

export const LOG_DESTINATION_TYPES = ['kinesis_firehose', 'kinesis_data_stream', 'segment', 'http', 'datadog'] as const

/** Log destination types that need no integration; Sym's provider sends `"<null>"` for them. */
export const LOG_DESTINATION_TYPES_WITHOUT_INTEGRATION = ['http', 'datadog'] as const

export const logDestination = resource({
  typeName: 'sym_log_destination',
  kind: 'log_destination',
  path: 'log-destinations',
  title: 'log destination',
  description:
    'A `sym_log_destination` receives every audit entry of the runs in the environments that list it in `log_destination_ids`: a Kinesis Firehose or Data Stream, Segment, an HTTP endpoint or Datadog.',
  schemaVersion: 0,
  lookup: 'type_slug',
  derivedSlug: {
    from: 'settings',
    description:
      '`settings.stream_name`, else `settings.url` (without the scheme), else the type; lower-cased, with every run of characters other than letters, digits, `_` and `-` replaced by `-`',
  },
  importExample: 'kinesis_firehose:symreportinglogsmain',
  attributes: {
    id: idAttribute,
    type: attr.string({
      mode: 'required',
      allowedValues: LOG_DESTINATION_TYPES,
      description: 'The kind of destination.',
    }),
    integration_id: attr.string({
      mode: 'optional',
      format: 'uuid',
      references: 'integration',
      nullPlaceholder: '<null>',
      description:
        'The ID of the `sym_integration` used to reach the destination: a `permission_context` for Kinesis types, a `segment` integration for Segment. Not used by `http` and `datadog`.',
    }),
    settings: settingsAttribute('Type-specific settings: `stream_name` for Kinesis types and Segment, `url` for `http`.'),
  },
  rules: [
    {
      rule: 'required_unless_type',
      attribute: 'integration_id',
      types: LOG_DESTINATION_TYPES_WITHOUT_INTEGRATION,
      message: 'this log destination type requires an integration; set integration_id',
    },
    {
      rule: 'settings_by_type',
      attribute: 'settings',
      settings: {
        kinesis_firehose: { stream_name: { required: true, description: 'Name of the Firehose delivery stream.' } },
        kinesis_data_stream: { stream_name: { required: true, description: 'Name of the Kinesis data stream.' } },
        segment: { stream_name: { required: false, description: 'A unique name for this destination.' } },
        http: { url: { required: true, description: 'The URL each audit entry is POSTed to as JSON.' } },
        datadog: {},
      },
    },
  ],
})
