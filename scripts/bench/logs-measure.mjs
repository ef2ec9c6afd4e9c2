// Child process of the `logs` bench section (scripts/bench/logs.mjs): runs the log-delivery worker in process on
// the bench database and Redis, and prints its figures as one JSON line. Loaded with tsx and the @opensym/source
// condition, so workspace packages come from source.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { createDb, createOrg, createUser } from '@opensym/db';
import { chainAudit, recordAudit } from '@opensym/engine';
import { startLogDelivery } from '@opensym/reporting';
import { startHttpReceiver } from '@opensym/testing';
import { Redis } from 'ioredis';

const config = JSON.parse(process.argv[2]);
const db = createDb(process.env.DATABASE_URL, { poolSize: 8 });
const redis = new Redis(process.env.REDIS_URL, { maxRetriesPerRequest: null });
const receiver = await startHttpReceiver();
const arrivals = new Map(); // entry id → first arrival (performance.now())
let requests = 0;
receiver.respondWith((req) => {
  requests++;
  const id = req.json?.id;
  if (typeof id === 'string' && !arrivals.has(id)) arrivals.set(id, performance.now());
  return { status: 200, body: undefined };
});

const org = await createOrg(db, { slug: config.orgSlug });
const user = await createUser(db, { org: org.slug, email: 'requester@example.com', role: 'member' });
const env = await db.environment.create({ data: { orgId: org.id, slug: 'prod' } });
const dest = await db.logDestination.create({ data: { orgId: org.id, type: 'http', slug: 'bench', settings: { url: `${receiver.url}/audit` } } });
await db.environmentLogDestination.create({ data: { environmentId: env.id, logDestinationId: dest.id, position: 0 } });

const STEPS = ['request', 'approve', 'escalate', 'deescalate'];
/** Records `count` entries (runs of four events, one transaction per event); returns id → commit time. */
async function record(count, onCommitted) {
  for (let done = 0; done < count; ) {
    const run = await db.run.create({ data: { orgId: org.id, environmentId: env.id, flowSlug: 'bench', flowVersion: 1, requesterId: user.id } });
    for (const [i, name] of STEPS.entries()) {
      if (done >= count) break;
      const event = await db.runEvent.create({ data: { orgId: org.id, runId: run.id, seq: i + 1, name, actorId: user.id, channel: 'api', status: 'success', completedAt: new Date() } });
      await db.sql.transaction((tx) => recordAudit(tx, event.id));
      await chainAudit(db.sql);
      onCommitted?.(event.id, performance.now());
      done++;
      if (onCommitted) await onCommitted.pace(done);
    }
  }
}

async function caughtUp() {
  const head = (await db.auditChainHead.findUnique({ where: { orgId: org.id } }))?.seq ?? 0n;
  const d = await db.logDelivery.findUnique({ where: { destinationId: dest.id } });
  return d !== null && d.deliveredSeq === head;
}

const result = {};
let worker;
try {
  // 1. Backlog.
  await record(config.entries);
  const t0 = performance.now();
  worker = await startLogDelivery({ db, connection: redis, prefix: config.queuePrefix, pollIntervalMs: config.pollMs });
  while (!(await caughtUp())) await sleep(20);
  const seconds = (performance.now() - t0) / 1000;
  result.backlog = { entries: config.entries, seconds, perSecond: config.entries / seconds };

  // 2. Steady state: entries at a fixed rate while the worker runs.
  const committed = new Map();
  const start = performance.now();
  const total = config.rate * config.seconds;
  const onCommitted = (id, at) => committed.set(id, at);
  onCommitted.pace = async (done) => {
    const due = start + (done / config.rate) * 1000;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
  };
  const requestsBefore = requests;
  await record(total, onCommitted);
  while (!(await caughtUp())) await sleep(20);
  const lags = [...committed].map(([id, at]) => (arrivals.get(id) ?? NaN) - at).filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  const pct = (p) => lags[Math.min(lags.length - 1, Math.max(0, Math.ceil((p / 100) * lags.length) - 1))];
  const elapsed = (performance.now() - start) / 1000;
  result.steady = { entries: committed.size, perSecond: committed.size / elapsed, p50: pct(50), p99: pct(99), max: lags.at(-1), requests: requests - requestsBefore, duplicates: requests - requestsBefore - committed.size };
} finally {
  await worker?.close();
  await receiver.close();
  redis.disconnect();
  await db.$disconnect();
}
console.log(JSON.stringify(result));
