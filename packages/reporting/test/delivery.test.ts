/**
 * Delivery end to end on PostgreSQL and Redis: audit entries recorded as the engine records them, the log-delivery
 * worker, and local fakes of every destination's API.
 */
import { randomBytes } from 'node:crypto'
import { createDb, type Db } from '@opensym/db'
import { Aws } from '@opensym/engine'
import {
  startFakeAws,
  startFakeAwsLogs,
  startFakeDatadog,
  startFakeSegment,
  startHttpReceiver,
  type FakeAws,
  type FakeAwsLogs,
  type FakeDatadog,
  type FakeSegment,
  type HttpReceiver,
} from '@opensym/testing'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest'
import { deliveryStatus, LogDeliverer, replayDelivery, startLogDelivery, type LogDeliveryWorker, type LogDeliveryWorkerOptions } from '../src/index.js'
import { auditedRuns, destination, envSecret, expectDeliveredInOrder, integration, merged, orgFixture, waitFor, type OrgFixture } from './fixtures.js'

const ROLE_ARN = 'arn:aws:iam::123456789012:role/sym/OpenSymLogs'
const SECRETS = {
  OPENSYM_SECRET_LOG_HMAC: 'log-hmac-secret-9f8e',
  OPENSYM_SECRET_LOG_HEADERS: JSON.stringify({ Authorization: 'Bearer log-token-77' }),
  OPENSYM_SECRET_SEGMENT: 'segment-write-key-1',
  OPENSYM_SECRET_DATADOG: 'datadog-api-key-1',
}

let db: Db
let redis: Redis
let sts: FakeAws
let logs: FakeAwsLogs
let receiver: HttpReceiver
let segment: FakeSegment
let datadog: FakeDatadog
let aws: Aws
const workers: LogDeliveryWorker[] = []

beforeAll(async () => {
  db = createDb(inject('databaseUrl'), { poolSize: 4 })
  redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null })
  sts = await startFakeAws()
  // OpenSym's own credentials are the ones the STS fake knows; roles it assumes there are accepted too.
  logs = await startFakeAwsLogs({ sts: sts.sts, accessKeys: { [sts.credentials.accessKeyId]: sts.credentials.secretAccessKey } })
  receiver = await startHttpReceiver({ secret: SECRETS.OPENSYM_SECRET_LOG_HMAC })
  segment = await startFakeSegment({ writeKeys: [SECRETS.OPENSYM_SECRET_SEGMENT] })
  datadog = await startFakeDatadog({ apiKeys: [SECRETS.OPENSYM_SECRET_DATADOG] })
})
beforeEach(() => {
  for (const f of [sts, logs, segment, datadog]) f.reset()
  receiver.reset()
  sts.sts.addRole({ arn: ROLE_ARN })
  logs.createDeliveryStream('audit-firehose')
  logs.createStream('audit-stream')
  logs.createBucket('audit-logs')
  aws = new Aws({ endpoints: { sts: sts.url, firehose: logs.url, kinesis: logs.url, s3: logs.url }, credentials: sts.credentials, region: 'us-east-1', maxAttempts: 1 })
})
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.close()))
  aws.destroy()
})
afterAll(async () => {
  await Promise.all([sts?.close(), logs?.close(), receiver?.close(), segment?.close(), datadog?.close()])
  redis?.disconnect()
  await db?.$disconnect()
})

function options(overrides: Partial<LogDeliveryWorkerOptions> = {}): LogDeliveryWorkerOptions {
  return {
    db,
    connection: redis,
    prefix: `${inject('redisPrefix')}-reporting-${randomBytes(3).toString('hex')}`,
    aws,
    env: SECRETS,
    endpoints: { segment: segment.url, datadog: datadog.url },
    pollIntervalMs: 50,
    backoff: { baseMs: 20, maxMs: 200 },
    retry: { partialBackoffMs: 5 },
    ...overrides,
  }
}

async function start(overrides: Partial<LogDeliveryWorkerOptions> = {}): Promise<LogDeliveryWorker> {
  const w = await startLogDelivery(options(overrides))
  workers.push(w)
  return w
}

/** Every destination's cursor is at its org's chain head. */
async function caughtUp(orgId: string, ids: readonly string[]): Promise<boolean> {
  const head = (await db.auditChainHead.findUnique({ where: { orgId } }))?.seq ?? 0n
  const rows = await db.logDelivery.findMany({ where: { destinationId: { in: [...ids] } } })
  return rows.length === ids.length && rows.every((r) => r.deliveredSeq === head)
}

const idOf = (text: string) => (JSON.parse(text) as { id: string }).id
const received = {
  http: () => receiver.requests.map((r) => (r.json as { id: string }).id),
  firehose: (stream = 'audit-firehose') => (logs.firehose.get(stream) ?? []).map((r) => idOf(r.text.trimEnd())),
  kinesis: (stream = 'audit-stream') => (logs.kinesis.get(stream) ?? []).map((r) => idOf(r.text)),
  s3: (bucket = 'audit-logs') =>
    [...(logs.s3.get(bucket) ?? new Map()).entries()]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .flatMap(([, o]) => o.body.toString('utf8').split('\n').filter(Boolean).map(idOf)),
  segment: () => segment.events.map((e) => String(e.messageId)),
  datadog: () => datadog.logs.map((l) => idOf(String(l.log.message))),
}

async function everyType(f: OrgFixture) {
  const orgId = f.org.id
  const envs = [f.env.id]
  const hmac = await envSecret(db, orgId, 'OPENSYM_SECRET_LOG_HMAC')
  const headers = await envSecret(db, orgId, 'OPENSYM_SECRET_LOG_HEADERS')
  const writeKey = await envSecret(db, orgId, 'OPENSYM_SECRET_SEGMENT')
  const apiKey = await envSecret(db, orgId, 'OPENSYM_SECRET_DATADOG')
  const assumed = await integration(db, orgId, 'permission_context', { role_arn: ROLE_ARN, region: 'us-east-1' })
  const direct = await integration(db, orgId, 'permission_context', { region: 'us-east-1' })
  const seg = await integration(db, orgId, 'segment', { write_key_secret: writeKey })
  return {
    http: await destination(db, orgId, envs, { type: 'http', settings: { url: `${receiver.url}/audit?tenant=1`, hmac_secret_id: hmac, headers_secret_id: headers } }),
    firehose: await destination(db, orgId, envs, { type: 'kinesis_firehose', settings: { stream_name: 'audit-firehose' }, integrationId: assumed }),
    kinesis: await destination(db, orgId, envs, { type: 'kinesis_data_stream', settings: { stream_name: 'audit-stream' }, integrationId: direct }),
    s3: await destination(db, orgId, envs, { type: 's3', settings: { bucket: 'audit-logs', key_prefix: 'sym/' }, integrationId: direct }),
    segment: await destination(db, orgId, envs, { type: 'segment', settings: { stream_name: 'audit' }, integrationId: seg }),
    datadog: await destination(db, orgId, envs, { type: 'datadog', settings: { api_key_secret_id: apiKey, service: 'access', tags: 'env:prod' } }),
  }
}

describe('log delivery', () => {
  it('delivers every entry of its environments to each destination type, at least once, in order per run, with the entry id', async () => {
    const f = await orgFixture(db, 'logs-all')
    const d = await everyType(f)
    const before = await auditedRuns(db, f, f.env.id, 3)
    await auditedRuns(db, f, f.otherEnv.id, 2) // not listed by any destination: never sent
    await start()
    const after = await auditedRuns(db, f, f.env.id, 2, ['request', 'deny'])
    const expected = merged(before, after)
    const ids = Object.values(d).map((x) => x.id)
    await waitFor('every destination caught up', () => caughtUp(f.org.id, ids))

    for (const [type, list] of Object.entries(received)) expectDeliveredInOrder(list(), expected, type)

    // http: one signed POST per entry, Idempotency-Key = id, headers from the secret.
    expect(receiver.requests.every((r) => r.signature === 'valid' && r.path === '/audit?tenant=1')).toBe(true)
    expect(receiver.requests.every((r) => r.headers['idempotency-key'] === (r.json as { id: string }).id && r.headers.authorization === 'Bearer log-token-77')).toBe(true)
    // Firehose through the assumed role; Kinesis with the run as partition key.
    expect(logs.calls('firehose', 'PutRecordBatch').every((r) => r.principal === ROLE_ARN)).toBe(true)
    expect(sts.calls('sts', 'AssumeRole')).toHaveLength(1)
    for (const r of logs.kinesis.get('audit-stream')!) expect((JSON.parse(r.text) as { run: { srn: string } }).run.srn.endsWith(r.partitionKey!)).toBe(true)
    // S3: NDJSON objects under the prefix, by org and day.
    const keys = [...logs.s3.get('audit-logs')!.keys()]
    expect(keys.every((k) => new RegExp(`^sym/${f.org.slug}/\\d{4}/\\d{2}/\\d{2}/\\d{12}-\\d{12}\\.ndjson$`).test(k))).toBe(true)
    // Segment: tracks authenticated with the write key; Datadog: logs with service and tags.
    expect(segment.events.every((e) => e.type === 'track' && /^sym:(request|approve|escalate|deescalate|deny)$/.test(String(e.event)))).toBe(true)
    expect(segment.stats.invalid).toBe(0)
    expect(datadog.logs.every((l) => l.log.service === 'access' && l.log.ddtags === 'env:prod' && l.log.ddsource === 'sym')).toBe(true)

    const status = await deliveryStatus(db, { orgId: f.org.id })
    expect(status.map((s) => [s.type, s.status, s.backlog, s.failures, Number(s.delivered)]).sort()).toEqual(
      Object.keys(d)
        .map((k) => [({ firehose: 'kinesis_firehose', kinesis: 'kinesis_data_stream' } as Record<string, string>)[k] ?? k, 'active', 0, 0, expected.all.length])
        .sort(),
    )
  })

  it('loses nothing and keeps order across a worker restart in the middle of a backlog', async () => {
    const f = await orgFixture(db, 'logs-restart')
    const http = await destination(db, f.org.id, [f.env.id], { type: 'http', settings: { url: `${receiver.url}/audit` } })
    const expected = await auditedRuns(db, f, f.env.id, 30)
    // Slow answers, small reads: many batches, so the stop lands in the middle.
    receiver.respondWith(() => ({ status: 200, delayMs: 20 }))
    const first = await start({ readLimit: 8 })
    await waitFor('a first batch', async () => ((await db.logDelivery.findUnique({ where: { destinationId: http.id } }))?.delivered ?? 0n) > 0n)
    await first.close()
    const stopped = (await db.logDelivery.findUniqueOrThrow({ where: { destinationId: http.id } })).deliveredSeq
    expect(stopped).toBeGreaterThan(0n)
    expect(stopped).toBeLessThan(BigInt(expected.all.length))

    await start({ readLimit: 8 })
    await waitFor('caught up after the restart', () => caughtUp(f.org.id, [http.id]))
    expectDeliveredInOrder(received.http(), expected)
  })

  it('stops within its grace when a destination never answers, and the batch is sent again by the next worker', async () => {
    const f = await orgFixture(db, 'logs-hung')
    const http = await destination(db, f.org.id, [f.env.id], { type: 'http', settings: { url: `${receiver.url}/hung` } })
    const expected = await auditedRuns(db, f, f.env.id, 2)
    let calls = 0
    // A destination that accepts the connection and never answers (its own timeout is far away).
    const hung = await start({ fetch: () => (calls++, new Promise<Response>(() => undefined)), closeGraceMs: 100, timeoutMs: 60_000 })
    await waitFor('a pump sending', () => calls > 0)
    // Returns after the grace, not after the call (which never ends): otherwise the test times out.
    await hung.close()
    expect((await db.logDelivery.findUniqueOrThrow({ where: { destinationId: http.id } })).deliveredSeq).toBe(0n)

    // The abandoned job is taken up again once its lock lapses; a fresh prefix here stands for a Redis that lost it.
    receiver.respondWith(() => ({ status: 200 }))
    await start()
    await waitFor('caught up after the stop', () => caughtUp(f.org.id, [http.id]))
    expectDeliveredInOrder(received.http(), expected)
  })

  it('keeps the others flowing while one destination is down, and catches it up afterwards', async () => {
    const f = await orgFixture(db, 'logs-outage')
    const apiKey = await envSecret(db, f.org.id, 'OPENSYM_SECRET_DATADOG')
    const down = await destination(db, f.org.id, [f.env.id], { type: 'http', settings: { url: `${receiver.url}/down` } })
    const up = await destination(db, f.org.id, [f.env.id], { type: 'datadog', settings: { api_key_secret_id: apiKey } })
    let outage = true
    const accepted: string[] = []
    receiver.respondWith((r) => {
      if (outage) return { status: 500 }
      accepted.push((r.json as { id: string }).id)
      return { status: 200 }
    })
    const expected = await auditedRuns(db, f, f.env.id, 4)
    await start({ maxAttempts: 1000 })
    await waitFor('datadog caught up', () => caughtUp(f.org.id, [up.id]))
    expectDeliveredInOrder(received.datadog(), expected)
    await waitFor('http failing in backoff', async () => ((await db.logDelivery.findUnique({ where: { destinationId: down.id } }))?.failures ?? 0) >= 2)
    const [failing] = await deliveryStatus(db, { orgId: f.org.id, destination: down.slug })
    expect(failing).toMatchObject({ status: 'active', deliveredSeq: 0n, backlog: expected.all.length })
    expect(failing!.lastError).toMatch(/answered 500/)

    // More entries while it is down: they reach datadog at once, and http later, in order.
    const more = await auditedRuns(db, f, f.env.id, 2, ['request', 'approve'])
    await waitFor('datadog caught up again', () => caughtUp(f.org.id, [up.id]))
    outage = false
    await waitFor('http caught up after the outage', () => caughtUp(f.org.id, [down.id]))
    expectDeliveredInOrder(accepted, merged(expected, more), 'http')
    expect((await db.logDelivery.findUniqueOrThrow({ where: { destinationId: down.id } })).failures).toBe(0)
  })

  it('never connects to a link-local (cloud metadata) address a destination names: it fails, saying why', async () => {
    const f = await orgFixture(db, 'logs-metadata')
    const metadata = await destination(db, f.org.id, [f.env.id], { type: 'http', settings: { url: 'http://169.254.169.254/latest/meta-data/' } })
    await auditedRuns(db, f, f.env.id, 1)
    await start({ maxAttempts: 1000 })
    await waitFor('the delivery failed', async () => ((await db.logDelivery.findUnique({ where: { destinationId: metadata.id } }))?.failures ?? 0) >= 1)
    const [status] = await deliveryStatus(db, { orgId: f.org.id, destination: metadata.slug })
    expect(status).toMatchObject({ deliveredSeq: 0n })
    expect(status!.lastError).toMatch(/169\.254\.169\.254 is a link-local, metadata or reserved address/)
  })

  it('re-sends only the records a Firehose or Kinesis batch refused', async () => {
    const f = await orgFixture(db, 'logs-partial')
    const direct = await integration(db, f.org.id, 'permission_context', { region: 'us-east-1' })
    const fh = await destination(db, f.org.id, [f.env.id], { type: 'kinesis_firehose', settings: { stream_name: 'audit-firehose' }, integrationId: direct })
    const ks = await destination(db, f.org.id, [f.env.id], { type: 'kinesis_data_stream', settings: { stream_name: 'audit-stream' }, integrationId: direct })
    const expected = await auditedRuns(db, f, f.env.id, 5, ['request'])
    logs.failRecords('firehose', { indexes: [1, 3] })
    const refused = expected.all[2]!
    logs.failRecords('kinesis', { where: (text) => text.includes(refused) })
    await start()
    await waitFor('both caught up', () => caughtUp(f.org.id, [fh.id, ks.id]))

    const firehoseCalls = logs.calls('firehose', 'PutRecordBatch').map((r) => (r.json as { Records: unknown[] }).Records.length)
    expect(firehoseCalls).toEqual([5, 2])
    const kinesisCalls = logs.calls('kinesis', 'PutRecords').map((r) => (r.json as { Records: Array<{ Data: string }> }).Records.map((x) => idOf(Buffer.from(x.Data, 'base64').toString('utf8'))))
    expect(kinesisCalls).toEqual([expected.all, [refused]])
    // Exactly once each: only the refused records were sent again.
    expect(received.firehose()).toHaveLength(5)
    expect(new Set(received.firehose())).toEqual(new Set(expected.all))
    expect(received.kinesis()).toEqual([...expected.all.filter((id) => id !== refused), refused])
  })

  it('retries whole-call failures and throttling of every type with backoff until they pass', async () => {
    const f = await orgFixture(db, 'logs-throttle')
    const d = await everyType(f)
    logs.failWith('firehose', 'PutRecordBatch', { code: 'ServiceUnavailableException', status: 503, times: 2 })
    logs.failWith('kinesis', 'PutRecords', { code: 'ProvisionedThroughputExceededException', times: 2 })
    logs.failWith('s3', 'PutObject', { code: 'SlowDown', status: 503, message: 'Please reduce your request rate.', times: 2 })
    segment.fail({ match: { service: 'segment' }, times: 2, respond: { status: 500, body: { success: false } } })
    datadog.fail({ match: { service: 'datadog' }, times: 2, respond: { status: 429, headers: { 'retry-after': '0' }, body: { errors: [] } } })
    receiver.enqueue({ status: 429, retryAfter: 0 }, { status: 502 }, { status: 502 }, { status: 502 }, { status: 502 })
    const expected = await auditedRuns(db, f, f.env.id, 2, ['request', 'approve'])
    await start({ maxAttempts: 50 })
    await waitFor('every destination caught up', () => caughtUp(f.org.id, Object.values(d).map((x) => x.id)))
    for (const [type, list] of Object.entries(received)) expectDeliveredInOrder(list(), expected, type)
    for (const s of await deliveryStatus(db, { orgId: f.org.id })) expect(s).toMatchObject({ status: 'active', failures: 0, lastError: null, backlog: 0 })
    expect(logs.calls('s3', 'PutObject').map((r) => r.status)).toEqual([503, 503, 200])
    expect(datadog.requests.map((r) => r.status)).toEqual([429, 429, 202])
  })

  it('keeps a run in order when a refused record has later entries of its run in the same batch', async () => {
    const f = await orgFixture(db, 'logs-waves')
    const direct = await integration(db, f.org.id, 'permission_context', { region: 'us-east-1' })
    const ks = await destination(db, f.org.id, [f.env.id], { type: 'kinesis_data_stream', settings: { stream_name: 'audit-stream' }, integrationId: direct })
    const expected = await auditedRuns(db, f, f.env.id, 2, ['request', 'approve', 'escalate'])
    const [runA] = [...expected.byRun.values()]
    logs.failRecords('kinesis', { where: (text) => text.includes(runA![0]!) })
    await start()
    await waitFor('caught up', () => caughtUp(f.org.id, [ks.id]))
    // Waves: the first entry of each run, then the second…; run A's refused request goes again before its approve.
    expect(logs.calls('kinesis', 'PutRecords').map((r) => (r.json as { Records: unknown[] }).Records.length)).toEqual([2, 1, 2, 2])
    expectDeliveredInOrder(received.kinesis(), expected)
    expect(received.kinesis()).toHaveLength(6)
  })

  it('marks a destination dead after its last attempt, keeps every entry, and delivers them all after a replay', async () => {
    const f = await orgFixture(db, 'logs-dead')
    const http = await destination(db, f.org.id, [f.env.id], { type: 'http', settings: { url: `${receiver.url}/dead` } })
    receiver.respondWith(() => ({ status: 503, retryAfter: 0 }))
    const expected = await auditedRuns(db, f, f.env.id, 3, ['request', 'approve'])
    const w = await start({ maxAttempts: 3 })
    await waitFor('dead', async () => (await db.logDelivery.findUnique({ where: { destinationId: http.id } }))?.status === 'dead')
    const [dead] = await deliveryStatus(db, { orgId: f.org.id, destination: http.slug })
    expect(dead).toMatchObject({ status: 'dead', failures: 3, deliveredSeq: 0n, backlog: 6, nextAttemptAt: null })
    expect(dead!.lastError).toMatch(/answered 503/)
    expect(await w.deliverer.dueDestinations()).not.toContain(http.id)

    receiver.reset() // answers 200 again
    const replayed = await replayDelivery(db, { orgId: f.org.id, destination: http.slug })
    expect(replayed).toMatchObject({ previousStatus: 'dead', previousSeq: 0n, deliveredSeq: 0n })
    await waitFor('caught up after the replay', () => caughtUp(f.org.id, [http.id]))
    expectDeliveredInOrder(received.http(), expected)

    // Replay from an entry: it and everything after it are sent again.
    receiver.reset()
    const third = await db.auditEntry.findUniqueOrThrow({ where: { id: expected.all[2]! } })
    await replayDelivery(db, { orgId: f.org.id, destination: http.id, from: { seq: third.seq } })
    await waitFor('caught up after the second replay', () => caughtUp(f.org.id, [http.id]))
    expect(received.http().sort()).toEqual(expected.all.slice(2).sort())
  })

  it('pumps one batch at a time and records failures in PostgreSQL without Redis', async () => {
    const f = await orgFixture(db, 'logs-pump')
    const http = await destination(db, f.org.id, [f.env.id], { type: 'http', settings: { url: `${receiver.url}/pump` } })
    await auditedRuns(db, f, f.otherEnv.id, 2, ['request'])
    const deliverer = new LogDeliverer({ db, env: SECRETS, readLimit: 3, backoff: { baseMs: 60_000, maxMs: 60_000 }, retry: { partialRetries: 0 } })
    // Entries of other environments only: the cursor moves past them without a request.
    expect(await deliverer.pump(http.id)).toEqual({ kind: 'idle' })
    expect((await db.logDelivery.findUniqueOrThrow({ where: { destinationId: http.id } })).deliveredSeq).toBe(2n)
    const expected = await auditedRuns(db, f, f.env.id, 2, ['request', 'approve'])
    receiver.enqueue({ status: 500 })
    const failed = await deliverer.pump(http.id)
    expect(failed).toMatchObject({ kind: 'failed', failures: 1 })
    expect(await deliverer.pump(http.id)).toMatchObject({ kind: 'waiting' })
    await db.logDelivery.update({ where: { destinationId: http.id }, data: { nextAttemptAt: null } })
    expect(await deliverer.pump(http.id)).toEqual({ kind: 'delivered', entries: 3, to: 5n })
    expect(await deliverer.pump(http.id)).toEqual({ kind: 'delivered', entries: 1, to: 6n })
    expect(await deliverer.pump(http.id)).toEqual({ kind: 'idle' })
    expectDeliveredInOrder(received.http(), expected)
    deliverer.close()
  })
})
