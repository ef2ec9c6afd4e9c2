/**
 * The AWS destinations, through a `permission_context` integration (its role assumed with STS by `Aws` from
 * @opensym/engine, which also holds the endpoints and credentials):
 *
 * - `kinesis_firehose`: `PutRecordBatch` to `settings.stream_name`, one record per entry (its JSON and a newline, so
 *   that Firehose's S3 objects are NDJSON). A batch answered with `FailedPutCount > 0` is partly delivered: the
 *   records whose `RequestResponses[i]` carry an `ErrorCode` are refused and sent again alone.
 * - `kinesis_data_stream`: `PutRecords` to `settings.stream_name` with the run id as partition key (a run's entries
 *   land on one shard, in order), refused records from `Records[i].ErrorCode` likewise.
 * - `s3` (OpenSym's own): one object per batch, NDJSON in audit order, to `settings.bucket` at
 *   `<settings.key_prefix><org>/<yyyy>/<mm>/<dd>/<first seq>-<last seq>.ndjson` (the same batch rewrites the same
 *   key). Path-style requests, so S3-compatible stores work behind `AWS_ENDPOINT_URL_S3`.
 *
 * The SDK packages are imported on first use: a worker without AWS destinations never loads them.
 */
import { awsFailure, permissionContext, type AwsClients } from '@opensym/engine'
import type { FirehoseClient } from '@aws-sdk/client-firehose'
import type { KinesisClient } from '@aws-sdk/client-kinesis'
import type { S3Client } from '@aws-sdk/client-s3'
import { Type } from 'typebox'
import { DeliveryError, type RecordFailure } from '../batching.js'
import { parseSettings, type DestinationFactory, type DestinationRecord, type DestinationContext } from './types.js'

function once<T>(load: () => Promise<T>): () => Promise<T> {
  let loading: Promise<T> | undefined
  return () =>
    (loading ??= load().catch((e: unknown) => {
      loading = undefined
      throw e
    }))
}

const sdk = {
  firehose: once(() => import('@aws-sdk/client-firehose')),
  kinesis: once(() => import('@aws-sdk/client-kinesis')),
  s3: once(() => import('@aws-sdk/client-s3')),
  http: once(() => import('@smithy/node-http-handler')),
}

type Made = { firehose?: Promise<FirehoseClient>; kinesis?: Promise<KinesisClient>; s3?: Promise<S3Client> }
/** Clients per permission context: `Aws` keeps one `AwsClients` per context, and closes adopted clients on destroy. */
const made = new WeakMap<AwsClients, Made>()

function madeFor(clients: AwsClients): Made {
  let m = made.get(clients)
  if (!m) made.set(clients, (m = {}))
  return m
}

/** The permission context's clients; a misconfigured integration fails the attempt. */
function contextOf(record: DestinationRecord, ctx: DestinationContext): AwsClients {
  const integration = record.integration
  if (!integration) throw new DeliveryError(`${record.type} log destination ${record.slug}: integration_id (a permission_context sym_integration) is not set`)
  if (integration.type !== 'permission_context') {
    throw new DeliveryError(`${record.type} log destination ${record.slug}: integration_id names a "${integration.type}" integration; it must be a permission_context`)
  }
  try {
    return ctx.aws.clients(permissionContext(integration.settings, `permission_context integration ${integration.externalId || integration.id}`, ctx.aws.defaultRegion))
  } catch (e) {
    throw new DeliveryError(`${record.type} log destination ${record.slug}: ${e instanceof Error ? e.message : String(e)}`, undefined, { cause: e })
  }
}

function failure(e: unknown, what: string): DeliveryError {
  const f = awsFailure(e, what)
  const retryAfterMs = (f as { retryAfterMs?: unknown }).retryAfterMs
  return new DeliveryError(f.message, typeof retryAfterMs === 'number' ? retryAfterMs : undefined, { cause: e })
}

/** `RequestResponses`/`Records` of a partial failure as refused records. */
function refusedOf(results: ReadonlyArray<{ ErrorCode?: string | undefined; ErrorMessage?: string | undefined }> | undefined, sent: number): RecordFailure[] {
  const out: RecordFailure[] = []
  for (let i = 0; i < sent; i++) {
    const r = results?.[i]
    // A missing result counts as refused: sending it again is safe, losing it is not.
    if (!r) out.push({ index: i, code: 'MissingResult', message: 'no result for this record in the reply' })
    else if (r.ErrorCode) out.push({ index: i, code: r.ErrorCode, message: r.ErrorMessage ?? r.ErrorCode })
  }
  return out
}

const StreamSettings = Type.Object({ stream_name: Type.String({ minLength: 1 }) })

export const firehoseDestination: DestinationFactory = async (record, ctx) => {
  const { stream_name: stream } = parseSettings<{ stream_name: string }>(StreamSettings, record, record.settings)
  const clients = contextOf(record, ctx)
  const m = madeFor(clients)
  m.firehose ??= sdk.firehose().then((s) => clients.adopt(new s.FirehoseClient(clients.configFor('firehose'))))
  const client = await m.firehose
  const { PutRecordBatchCommand } = await sdk.firehose()
  return {
    mode: 'records',
    // 500 records and 4 MiB per call (base64 included): 2.9 MB of JSON leaves room for the encoding.
    limits: { maxEntries: 500, maxBytes: 2_900_000 },
    send: async (entries) => {
      let out
      try {
        out = await client.send(new PutRecordBatchCommand({ DeliveryStreamName: stream, Records: entries.map((e) => ({ Data: Buffer.from(`${e.json}\n`) })) }))
      } catch (e) {
        throw failure(e, `firehose PutRecordBatch ${stream}`)
      }
      return out.FailedPutCount ? refusedOf(out.RequestResponses, entries.length) : []
    },
  }
}

export const kinesisDestination: DestinationFactory = async (record, ctx) => {
  const { stream_name: stream } = parseSettings<{ stream_name: string }>(StreamSettings, record, record.settings)
  const clients = contextOf(record, ctx)
  const m = madeFor(clients)
  // Kinesis clients default to HTTP/2, which PutRecords does not need and HTTP/1.1 endpoints refuse.
  m.kinesis ??= Promise.all([sdk.kinesis(), sdk.http()]).then(([s, h]) => clients.adopt(new s.KinesisClient({ ...clients.configFor('kinesis'), requestHandler: new h.NodeHttpHandler() })))
  const client = await m.kinesis
  const { PutRecordsCommand } = await sdk.kinesis()
  return {
    mode: 'records',
    limits: { maxEntries: 500, maxBytes: 3_500_000 },
    send: async (entries) => {
      let out
      try {
        out = await client.send(new PutRecordsCommand({ StreamName: stream, Records: entries.map((e) => ({ Data: Buffer.from(e.json), PartitionKey: e.runId })) }))
      } catch (e) {
        throw failure(e, `kinesis PutRecords ${stream}`)
      }
      return out.FailedRecordCount ? refusedOf(out.Records, entries.length) : []
    },
  }
}

const S3Settings = Type.Object({
  bucket: Type.String({ minLength: 3 }),
  key_prefix: Type.Optional(Type.String()),
})

const pad = (seq: bigint) => seq.toString().padStart(12, '0')

/** The object key of a batch: the date of its first entry, and its seq range (so the same batch rewrites the same object). */
export function s3Key(prefix: string, orgSlug: string, first: { seq: bigint; entry: Readonly<Record<string, unknown>> }, lastSeq: bigint, now: number): string {
  const event = first.entry.event as { timestamp?: unknown } | undefined
  const at = typeof event?.timestamp === 'string' && !Number.isNaN(Date.parse(event.timestamp)) ? new Date(event.timestamp) : new Date(now)
  const day = at.toISOString().slice(0, 10).replace(/-/g, '/')
  return `${prefix}${orgSlug}/${day}/${pad(first.seq)}-${pad(lastSeq)}.ndjson`
}

export const s3Destination: DestinationFactory = async (record, ctx) => {
  const s = parseSettings<{ bucket: string; key_prefix?: string }>(S3Settings, record, record.settings)
  const clients = contextOf(record, ctx)
  const m = madeFor(clients)
  m.s3 ??= sdk.s3().then((x) => clients.adopt(new x.S3Client({ ...clients.configFor('s3'), forcePathStyle: true })))
  const client = await m.s3
  const { PutObjectCommand } = await sdk.s3()
  return {
    mode: 'whole',
    limits: { maxEntries: 1000, maxBytes: 16 * 1024 * 1024 },
    send: async (entries) => {
      const key = s3Key(s.key_prefix ?? '', record.orgSlug, entries[0]!, entries.at(-1)!.seq, ctx.now())
      try {
        await client.send(new PutObjectCommand({ Bucket: s.bucket, Key: key, Body: entries.map((e) => `${e.json}\n`).join(''), ContentType: 'application/x-ndjson' }))
      } catch (e) {
        throw failure(e, `s3 PutObject ${s.bucket}/${key}`)
      }
      return []
    },
  }
}
