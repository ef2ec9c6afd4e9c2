/** The destination adapters by `sym_log_destination` type. */
import { firehoseDestination, kinesisDestination, s3Destination } from './aws.js'
import { httpDestination } from './http.js'
import { datadogDestination, segmentDestination } from './saas.js'
import type { DestinationFactory } from './types.js'

export * from './types.js'
export { httpDestination, HTTP_DESTINATION_USER_AGENT } from './http.js'
export { firehoseDestination, kinesisDestination, s3Destination, s3Key } from './aws.js'
export { datadogDestination, segmentDestination, segmentTrack } from './saas.js'

export const DESTINATION_TYPES = ['http', 'kinesis_firehose', 'kinesis_data_stream', 's3', 'segment', 'datadog'] as const
export type DestinationType = (typeof DESTINATION_TYPES)[number]

export const builtinDestinations: Readonly<Record<DestinationType, DestinationFactory>> = {
  http: httpDestination,
  kinesis_firehose: firehoseDestination,
  kinesis_data_stream: kinesisDestination,
  s3: s3Destination,
  segment: segmentDestination,
  datadog: datadogDestination,
}
