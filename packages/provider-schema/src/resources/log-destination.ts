import { attr, idAttribute, resource, settingsAttribute } from '../dsl.js'

/** Sym's types, then OpenSym's own (`s3`: NDJSON objects to an S3-compatible bucket). */
export const LOG_DESTINATION_TYPES = ['kinesis_firehose', 'kinesis_data_stream', 'segment', 'http', 'datadog', 's3'] as const

/** Log destination types that need no integration; Sym's provider sends `"<null>"` for them. */
export const LOG_DESTINATION_TYPES_WITHOUT_INTEGRATION = ['http', 'datadog'] as const

export const logDestination = resource({
  typeName: 'sym_log_destination',
  kind: 'log_destination',
  path: 'log-destinations',
  title: 'log destination',
  description:
    'A `sym_log_destination` receives every audit entry of the runs in the environments that list it in `log_destination_ids`: a Kinesis Firehose or Data Stream, Segment, an HTTP endpoint, Datadog, or an S3 bucket.',
  schemaVersion: 0,
  lookup: 'type_slug',
  derivedSlug: {
    from: 'settings',
    description:
      '`settings.stream_name`, else `settings.url` (without the scheme), else `settings.bucket`, else the type; lower-cased, with every run of characters other than letters, digits, `_` and `-` replaced by `-`',
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
        'The ID of the `sym_integration` used to reach the destination: a `permission_context` for Kinesis types and `s3`, a `segment` integration for Segment (its `settings.write_key_secret` names the `sym_secret` holding the write key). Not used by `http` and `datadog`.',
    }),
    settings: settingsAttribute('Type-specific settings: `stream_name` for Kinesis types and Segment, `url` (and optional secrets) for `http`, the API key secret for `datadog`, `bucket` for `s3`.'),
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
        http: {
          url: { required: true, format: 'http_url', description: 'The `http://` or `https://` URL each audit entry is POSTed to as JSON.' },
          hmac_secret_id: { required: false, description: 'A `sym_secret` ID: the body is signed with HMAC-SHA256 (`X-Sym-Timestamp`, `X-Sym-Signature: sha256=…`).' },
          headers_secret_id: { required: false, description: 'A `sym_secret` ID whose value is a JSON object of extra headers (e.g. `Authorization`).' },
        },
        datadog: {
          api_key_secret_id: { required: false, description: 'A `sym_secret` ID holding the Datadog API key (needed for delivery).' },
          site: { required: false, description: 'The Datadog site, e.g. `datadoghq.eu`. Default `datadoghq.com`.' },
          service: { required: false, description: 'The `service` of each log. Default `sym`.' },
          tags: { required: false, description: 'The `ddtags` of each log, e.g. `env:prod,team:security`.' },
        },
        s3: {
          bucket: { required: true, description: 'The bucket each batch of entries is written to, as one NDJSON object.' },
          key_prefix: { required: false, description: 'Prefix of the object keys (`<key_prefix><org>/<yyyy>/<mm>/<dd>/<first>-<last>.ndjson`).' },
        },
      },
    },
  ],
})
