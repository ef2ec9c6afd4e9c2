/**
 * A local fake of the AWS services log destinations write to, on one endpoint (reference saas-apis.md §9.1–§9.3):
 *
 * - Firehose `PutRecordBatch` and Kinesis `PutRecords`: JSON 1.1 (`X-Amz-Target: Firehose_20150804.*`,
 *   `Kinesis_20131202.*`), base64 `Data`, partial failures answered with HTTP 200 and per-record `ErrorCode`
 *   (`FailedPutCount` / `FailedRecordCount` consistent with them), count and size limits enforced
 *   (`InvalidArgumentException`), unknown streams `ResourceNotFoundException`.
 * - S3 `PutObject` (`PUT /{bucket}/{key}`, path style) and `GetObject`: aws-chunked bodies decoded, a sent
 *   `x-amz-checksum-crc32` checked, errors as `<Error><Code/>…</Error>` (`NoSuchBucket` 404).
 * - Auth: a SigV4 `Authorization` header scoped to `firehose`, `kinesis` or `s3`, with a known access key or a session
 *   minted by a {@link FakeSts} (pass `sts` from `startFakeAws` to accept assumed roles). Signatures are not verified.
 * - Faults: `failWith(service, operation, {code, status, times})` for whole-call errors (`ServiceUnavailableException`
 *   503, `ThrottlingException`, `ProvisionedThroughputExceededException`, `SlowDown` 503…), `failRecords(…)` for
 *   per-record failures, and the generic `fail({...})` of every fake.
 */
import zlib from 'node:zlib'
import { AwsFakeError, type AwsErrorSpec, type FakeSts } from './aws.js'
import { randomHex, startFakeServer, uuid, type FakeRequest, type FakeResponse, type FakeServer } from './core.js'

export type FakeLogService = 'firehose' | 'kinesis' | 's3'

const TARGET_PREFIXES: Record<string, FakeLogService> = { Firehose_20150804: 'firehose', Kinesis_20131202: 'kinesis' }
const AUTH_RE = /^AWS4-HMAC-SHA256 Credential=([^/\s]+)\/(\d{8})\/([^/\s]+)\/([^/\s]+)\/aws4_request,\s*SignedHeaders=[a-z0-9;-]+,\s*Signature=[0-9a-f]{64}$/

/** A record as a stream received it. */
export interface FakeStreamRecord {
  /** The decoded `Data`. */
  readonly data: Buffer
  /** `data` as UTF-8. */
  readonly text: string
  readonly partitionKey?: string
  readonly sequenceNumber: string
  readonly receivedAt: Date
}

export interface FakeS3Object {
  readonly body: Buffer
  readonly contentType: string | undefined
  readonly etag: string
  readonly receivedAt: Date
}

/** Makes records of the next `times` calls fail (those at `indexes`, or those `where` picks). */
export interface RecordFaultSpec {
  readonly stream?: string
  readonly indexes?: readonly number[]
  readonly where?: (text: string, index: number) => boolean
  /** Default `ServiceUnavailableException` (Firehose) / `ProvisionedThroughputExceededException` (Kinesis). */
  readonly code?: string
  readonly message?: string
  /** Calls it applies to. Default 1. */
  readonly times?: number
}

export interface FakeAwsLogsOptions {
  readonly accessKeys?: Readonly<Record<string, string>>
  /** Accept the sessions this fake STS minted (for permission contexts with `role_arn`). */
  readonly sts?: FakeSts
  readonly now?: () => number
}

export interface FakeAwsLogs extends FakeServer {
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string }
  /** Records per Firehose delivery stream, in arrival order. */
  readonly firehose: Map<string, FakeStreamRecord[]>
  /** Records per Kinesis data stream, in arrival order. */
  readonly kinesis: Map<string, FakeStreamRecord[]>
  /** Objects per bucket, by key. */
  readonly s3: Map<string, Map<string, FakeS3Object>>
  createDeliveryStream(name: string): void
  createStream(name: string): void
  createBucket(name: string): void
  failWith(service: FakeLogService, operation: string, error: AwsErrorSpec): void
  failRecords(service: 'firehose' | 'kinesis', spec: RecordFaultSpec): void
}

const LIMITS = {
  firehose: { records: 500, recordBytes: 1000 * 1024, callBytes: 4 * 1024 * 1024 },
  kinesis: { records: 500, recordBytes: 10 * 1024 * 1024, callBytes: 10 * 1024 * 1024 },
}

function classify(req: FakeRequest): void {
  const target = req.headers['x-amz-target']
  if (target) {
    const [prefix, op] = target.split('.')
    req.service = (prefix && TARGET_PREFIXES[prefix]) ?? 'unknown'
    req.operation = op ?? 'unknown'
    return
  }
  const parts = req.pathname.split('/').filter(Boolean)
  if (parts.length >= 2 && (req.method === 'PUT' || req.method === 'GET')) {
    req.service = 's3'
    req.operation = req.method === 'PUT' ? 'PutObject' : 'GetObject'
  }
}

/** The payload of an `aws-chunked` body: `<hex size>[;ext]\r\n<data>\r\n` … `0\r\n<trailers>\r\n\r\n`. */
export function decodeAwsChunked(raw: Buffer): { body: Buffer; trailers: Record<string, string> } {
  const chunks: Buffer[] = []
  let at = 0
  for (;;) {
    const eol = raw.indexOf('\r\n', at)
    if (eol < 0) throw new AwsFakeError('IncompleteBody', 'aws-chunked body ends inside a chunk header')
    const size = parseInt(raw.subarray(at, eol).toString('latin1').split(';')[0]!, 16)
    if (!Number.isFinite(size)) throw new AwsFakeError('InvalidArgument', 'bad aws-chunked chunk size')
    at = eol + 2
    if (size === 0) break
    chunks.push(raw.subarray(at, at + size))
    at += size + 2
  }
  const trailers: Record<string, string> = {}
  for (const line of raw.subarray(at).toString('latin1').split('\r\n')) {
    const i = line.indexOf(':')
    if (i > 0) trailers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim()
  }
  return { body: Buffer.concat(chunks), trailers }
}

const crc32Base64 = (body: Buffer) => {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(zlib.crc32(body) >>> 0)
  return b.toString('base64')
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

export async function startFakeAwsLogs(options: FakeAwsLogsOptions = {}): Promise<FakeAwsLogs> {
  const now = options.now ?? Date.now
  const credentials = { accessKeyId: 'AKIAOPENSYMLOGS00001', secretAccessKey: 'fake-logs-secret-access-key' }
  const accessKeys = options.accessKeys ?? { [credentials.accessKeyId]: credentials.secretAccessKey }
  const firehose = new Map<string, FakeStreamRecord[]>()
  const kinesis = new Map<string, FakeStreamRecord[]>()
  const s3 = new Map<string, Map<string, FakeS3Object>>()
  let recordFaults: Array<{ service: 'firehose' | 'kinesis'; spec: RecordFaultSpec; left: number }> = []
  let sequence = 0n

  function authenticate(req: FakeRequest, service: FakeLogService): void {
    const auth = req.headers.authorization
    if (!auth) throw new AwsFakeError(service === 's3' ? 'AccessDenied' : 'MissingAuthenticationTokenException', 'Request is missing Authentication Token', 403)
    const m = AUTH_RE.exec(auth)
    if (!m) throw new AwsFakeError('IncompleteSignature', 'Authorization header requires Credential, SignedHeaders and Signature', 403)
    const [, keyId, , , signingName] = m
    if (signingName !== service) throw new AwsFakeError('InvalidSignatureException', `Credential should be scoped to correct service: '${service}'.`, 403)
    if (keyId! in accessKeys) {
      req.principal = keyId!
      return
    }
    const session = options.sts?.sessions.get(keyId!)
    const invalid = service === 's3' ? 'InvalidAccessKeyId' : 'UnrecognizedClientException'
    if (!session || req.headers['x-amz-security-token'] !== session.sessionToken) throw new AwsFakeError(invalid, 'The security token included in the request is invalid.', 403)
    if (session.expiration.getTime() <= now()) throw new AwsFakeError('ExpiredTokenException', 'The security token included in the request is expired', 403)
    req.principal = session.roleArn
  }

  /** The per-record faults that apply to this call (each counts one call). */
  function faultsFor(service: 'firehose' | 'kinesis', stream: string): RecordFaultSpec[] {
    const out: RecordFaultSpec[] = []
    for (const f of recordFaults) {
      if (f.service !== service || f.left <= 0 || (f.spec.stream !== undefined && f.spec.stream !== stream)) continue
      f.left--
      out.push(f.spec)
    }
    recordFaults = recordFaults.filter((f) => f.left > 0)
    return out
  }

  function putRecords(service: 'firehose' | 'kinesis', input: Record<string, unknown>): Record<string, unknown> {
    const stream = service === 'firehose' ? input.DeliveryStreamName : (input.StreamName ?? (typeof input.StreamARN === 'string' ? input.StreamARN.split('/').at(-1) : undefined))
    if (typeof stream !== 'string' || !stream) throw new AwsFakeError('ValidationException', 'the stream name is required')
    const store = service === 'firehose' ? firehose : kinesis
    const records = store.get(stream)
    if (!records) {
      throw new AwsFakeError('ResourceNotFoundException', service === 'firehose' ? `Firehose ${stream} under account 123456789012 not found.` : `Stream ${stream} under account 123456789012 not found.`)
    }
    const list = Array.isArray(input.Records) ? (input.Records as Array<Record<string, unknown>>) : []
    const limits = LIMITS[service]
    if (list.length === 0 || list.length > limits.records) throw new AwsFakeError(service === 'firehose' ? 'InvalidArgumentException' : 'ValidationException', `Records must have between 1 and ${limits.records} items`)
    const decoded = list.map((r) => ({ data: Buffer.from(typeof r.Data === 'string' ? r.Data : '', 'base64'), partitionKey: typeof r.PartitionKey === 'string' ? r.PartitionKey : undefined }))
    if (decoded.some((d) => d.data.length > limits.recordBytes)) throw new AwsFakeError('InvalidArgumentException', `a record is larger than ${limits.recordBytes} bytes`)
    if (decoded.reduce((n, d) => n + d.data.length, 0) > limits.callBytes) throw new AwsFakeError('InvalidArgumentException', `the records are larger than ${limits.callBytes} bytes together`)
    if (service === 'kinesis' && decoded.some((d) => !d.partitionKey)) throw new AwsFakeError('ValidationException', 'PartitionKey is required')
    const faults = faultsFor(service, stream)
    let failed = 0
    const results = decoded.map((d, i) => {
      const text = d.data.toString('utf8')
      const fault = faults.find((f) => (f.indexes ? f.indexes.includes(i) : true) && (f.where ? f.where(text, i) : true))
      if (fault) {
        failed++
        const code = fault.code ?? (service === 'firehose' ? 'ServiceUnavailableException' : 'ProvisionedThroughputExceededException')
        return { ErrorCode: code, ErrorMessage: fault.message ?? (service === 'firehose' ? 'Slow down.' : `Rate exceeded for shard shardId-000000000000 in stream ${stream}.`) }
      }
      const sequenceNumber = (++sequence).toString().padStart(20, '0')
      records.push({ data: d.data, text, ...(d.partitionKey ? { partitionKey: d.partitionKey } : {}), sequenceNumber, receivedAt: new Date(now()) })
      return service === 'firehose' ? { RecordId: randomHex(32) } : { SequenceNumber: sequenceNumber, ShardId: 'shardId-000000000000' }
    })
    return service === 'firehose' ? { FailedPutCount: failed, Encrypted: false, RequestResponses: results } : { FailedRecordCount: failed, Records: results }
  }

  function s3Request(req: FakeRequest): FakeResponse {
    const [bucketName, ...rest] = req.pathname.split('/').filter(Boolean)
    const key = rest.map(decodeURIComponent).join('/')
    const bucket = s3.get(bucketName!)
    if (!bucket) throw new AwsFakeError('NoSuchBucket', 'The specified bucket does not exist', 404)
    if (req.method === 'GET') {
      const o = bucket.get(key)
      if (!o) throw new AwsFakeError('NoSuchKey', 'The specified key does not exist.', 404)
      return { status: 200, headers: { etag: o.etag, 'content-type': o.contentType ?? 'application/octet-stream' }, body: o.body }
    }
    let body = req.rawBody
    let checksum = req.headers['x-amz-checksum-crc32']
    if ((req.headers['content-encoding'] ?? '').includes('aws-chunked')) {
      const decoded = decodeAwsChunked(req.rawBody)
      body = decoded.body
      checksum ??= decoded.trailers['x-amz-checksum-crc32']
      const declared = req.headers['x-amz-decoded-content-length']
      if (declared !== undefined && Number(declared) !== body.length) throw new AwsFakeError('IncompleteBody', 'The request body is shorter than x-amz-decoded-content-length')
    }
    if (checksum !== undefined && checksum !== crc32Base64(body)) throw new AwsFakeError('BadDigest', 'The CRC32 you specified did not match the calculated checksum.')
    const etag = `"${randomHex(16)}"`
    bucket.set(key, { body, contentType: req.headers['content-type'], etag, receivedAt: new Date(now()) })
    return { status: 200, headers: { etag } }
  }

  function errorResponse(service: string, e: AwsFakeError, requestId: string, headers: Readonly<Record<string, string>> = {}): FakeResponse {
    if (service === 's3') {
      return {
        status: e.status,
        headers: { 'content-type': 'application/xml', ...headers },
        body: `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${esc(e.code)}</Code><Message>${esc(e.message)}</Message><RequestId>${requestId}</RequestId><HostId>${randomHex(16)}</HostId></Error>`,
      }
    }
    return { status: e.status, headers: { 'content-type': 'application/x-amz-json-1.1', ...headers }, body: JSON.stringify({ __type: e.code, message: e.message, ...e.extra }) }
  }

  const ids = new WeakMap<FakeRequest, string>()
  const idOf = (req: FakeRequest) => {
    let id = ids.get(req)
    if (!id) ids.set(req, (id = uuid()))
    return id
  }

  const handle = (req: FakeRequest): FakeResponse => {
    const service = req.service as FakeLogService | 'unknown'
    if (service === 'unknown') return errorResponse('json', new AwsFakeError('UnknownOperationException', `no fake operation for ${req.method} ${req.url}`), idOf(req))
    try {
      authenticate(req, service)
      if (service === 's3') return s3Request(req)
      const expected = service === 'firehose' ? 'PutRecordBatch' : 'PutRecords'
      if (req.operation !== expected) throw new AwsFakeError('UnknownOperationException', `the fake has no ${service} ${req.operation}`)
      const input = (req.json && typeof req.json === 'object' ? req.json : {}) as Record<string, unknown>
      return { status: 200, headers: { 'content-type': 'application/x-amz-json-1.1' }, body: JSON.stringify(putRecords(service, input)) }
    } catch (e) {
      if (e instanceof AwsFakeError) return errorResponse(service, e, idOf(req))
      throw e
    }
  }

  const server = await startFakeServer({
    classify,
    handle,
    commonHeaders: (req): Record<string, string> => ({ [req.service === 's3' ? 'x-amz-request-id' : 'x-amzn-requestid']: idOf(req) }),
    onReset: () => {
      firehose.clear()
      kinesis.clear()
      s3.clear()
      recordFaults = []
    },
  })

  return Object.assign(server, {
    credentials,
    firehose,
    kinesis,
    s3,
    createDeliveryStream(name: string) {
      if (!firehose.has(name)) firehose.set(name, [])
    },
    createStream(name: string) {
      if (!kinesis.has(name)) kinesis.set(name, [])
    },
    createBucket(name: string) {
      if (!s3.has(name)) s3.set(name, new Map())
    },
    failWith(service: FakeLogService, operation: string, error: AwsErrorSpec) {
      const e = new AwsFakeError(error.code, error.message ?? `${error.code} (injected)`, error.status ?? 400, error.extra ?? {})
      server.fail({ match: { service, operation }, times: error.times ?? 1, respond: errorResponse(service, e, uuid(), error.headers) })
    },
    failRecords(service: 'firehose' | 'kinesis', spec: RecordFaultSpec) {
      recordFaults.push({ service, spec, left: spec.times ?? 1 })
    },
  })
}
