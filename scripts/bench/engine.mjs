// The `engine` section of `npm run bench`: the access flow engine end to end, on the real stack — the API that
// bench.mjs started, a worker process (apps/worker/src/main.ts) on the same database and queue prefix, and the
// `http` strategy POSTing to a receiver on loopback (packages/testing's startHttpReceiver, answering
// `{"body": {}, "errors": []}`) — with the targets of issue 4.
//
// Setup: members (bulk-inserted, one per run, so every run is its own grant and calls the strategy), a `custom`
// target, an `http` strategy whose url is the receiver, and a flow (reason + duration prompt fields), all but the
// users over the entity API.
//
// Measured:
//   1. request → escalated, at each concurrency level: that many clients each loop POST /events/request (bot token,
//      user_email of a member), POST /events/approve (bot token), then wait for the receiver to get the escalate
//      payload of that run; latency is request sent → escalate payload received. Printed per level: p50/p90/p99/max,
//      runs/s (runs / (last escalation − first request)), the API calls' own latencies, CPU of each process.
//   2. expiry: N grants (default 1,000) escalated with durations chosen so that every expires_at falls in the same
//      wall-clock second S: the runs are approved in one-second slots T0, T0+1 s, … (escalated within their slot),
//      each with duration S − slot, so expires_at = escalated_at + duration lies in [S, S+1 s). Printed:
//      lateness (deescalatedAt − expiresAt, from PostgreSQL, and the receiver's deescalate arrival − expiresAt)
//      p50/p99/max, and how many expires_at really fell in that second.
//   3. the worker's RSS (VmRSS after start, at the end, and the peak VmHWM).
// Before the measured levels: a warm-up (1,500 runs at 16 clients, BENCH_QUICK=1: 300), then VACUUM ANALYZE, as
// autovacuum keeps a long-running deployment's database.
// Each level also gets the CPU of every process (worker, API, PostgreSQL backends, Redis, the bench itself, and the
// rest of the machine) and the CPU milliseconds per run: on a shared machine that is the figure other work skews
// least, and what bounds throughput (the worker is one Node process: it cannot use more than one core).
//
// Redis: delayed jobs (the scheduled de-escalations) fire up to 1/hz late; deployments should run Redis with `hz 100`
// (as .ci/run does). If the server's hz is lower, this section sets it to 100 with CONFIG SET for its duration,
// says so, and restores it afterwards.
//
// Environment:
//   BENCH_ENGINE_CONCURRENCY=1,4,16,64  concurrency levels
//   BENCH_ENGINE_RUNS=n                  runs per level (default max(100, 15 × level); BENCH_QUICK=1: max(30, 5 × level))
//   BENCH_ENGINE_EXPIRY=1000             grants in the expiry drill (BENCH_QUICK=1: 200; 0 skips it)
//   BENCH_ENGINE_WARMUP=n                warm-up runs before the measured levels (default 1500; BENCH_QUICK=1: 300)
//   BENCH_ENGINE_SLOT_RUNS=n             runs approved per one-second slot of the expiry drill (default: 0.7 × the best
//                                        runs/s measured, 10..100, so that each run escalates within its second)
//   BENCH_WORKER_LOG_LEVEL=debug         the worker's LOG_LEVEL (default info); BENCH_WORKER_LOG=file appends its log there
//   BENCH_WORKER_NODE_ARGS               extra node flags for the worker only, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
//   WORKER_CONCURRENCY, WORKER_DB_POOL_SIZE, …  passed through to the worker (apps/worker/README.md)

import { spawn } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT, StackError } from '../stack.mjs';
import {
  abort,
  checkInterrupted,
  checkServer,
  CLK_TCK,
  cpuTicks,
  fmt,
  percentile,
  pool,
  postgresTicks,
  postgresTicksSince,
  printColumns,
  procStatusKb,
  quickMode,
  say,
  stopServer,
  watchExit,
} from './common.mjs';

/** The targets of issue 4. */
const TARGETS = { lowLoadP99Ms: 100, runsPerSecond: 200, expiryP99Ms: 1000 };

const WORKER_READY_TIMEOUT_MS = 60_000;
const ESCALATION_TIMEOUT_MS = 30_000; // a run not escalated by then counts as failed
const DEESCALATION_TIMEOUT_MS = 60_000; // after the common expiry second
const HTTP_TIMEOUT_MS = 30_000;
const LONG_DURATION_S = 3600; // runs of the latency phases stay escalated
// Warm-up runs and their concurrency: enough for V8 to have compiled the hot paths of the API and the worker, as in a
// process that has been running for a while (with 30 runs, optimising compilation ran on V8's threads during the
// measured levels, ~¼ of the API's CPU per run; with 300, still ~10% of the worker's, seen with `perf record`).
const WARMUP_RUNS = 1500;
const WARMUP_RUNS_QUICK = 300;
const WARMUP_CONCURRENCY = 16;
const SLOT_SEND_MS = 600; // the expiry drill sends a slot's approvals within this much of its second
const EXPIRY_LEAD_S = 4; // seconds between the last slot and the common expiry second
const SETUP_CONCURRENCY = 16;

function positiveInteger(name, fallback, { min = 1, max }) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new StackError(`${name}=${raw}: give an integer ${min}..${max}`);
  return n;
}

export function settings() {
  const quick = quickMode();
  const levels = (process.env.BENCH_ENGINE_CONCURRENCY || '1,4,16,64').split(',').map((s) => Number(s.trim()));
  if (levels.some((c) => !Number.isInteger(c) || c < 1 || c > 512)) {
    throw new StackError(`BENCH_ENGINE_CONCURRENCY=${process.env.BENCH_ENGINE_CONCURRENCY}: give a comma-separated list of integers 1..512`);
  }
  const fixedRuns = positiveInteger('BENCH_ENGINE_RUNS', undefined, { max: 100_000 });
  const runsAt = (c) => fixedRuns ?? (quick ? Math.max(30, 5 * c) : Math.max(100, 15 * c));
  return {
    quick,
    levels: [...new Set(levels)].sort((a, b) => a - b).map((c) => ({ concurrency: c, runs: runsAt(c) })),
    expiryGrants: positiveInteger('BENCH_ENGINE_EXPIRY', quick ? 200 : 1000, { min: 0, max: 20_000 }),
    slotRuns: positiveInteger('BENCH_ENGINE_SLOT_RUNS', undefined, { max: 2000 }),
    warmupRuns: positiveInteger('BENCH_ENGINE_WARMUP', quick ? WARMUP_RUNS_QUICK : WARMUP_RUNS, { min: 0, max: 100_000 }),
  };
}

// ---------------------------------------------------------------------------
// The worker process
// ---------------------------------------------------------------------------

/** apps/worker as a child process (own process group), its log kept for the summary. */
function startWorkerProcess(env) {
  const extra = (process.env.BENCH_WORKER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  // --no-node-snapshot: isolated-vm (flow implementations) needs it, as in scripts/start.mjs.
  const child = spawn(process.execPath, [...extra, '--no-node-snapshot', '--import', 'tsx', '--conditions=@opensym/source', 'apps/worker/src/main.ts'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const worker = { child, pid: child.pid, exited: false, exit: undefined, ready: false, tail: [], lines: 0, byLevel: {}, messages: new Map() };
  worker.exitPromise = watchExit(child, worker);
  const logFile = process.env.BENCH_WORKER_LOG;
  const onData = (chunk) => {
    if (logFile) appendFileSync(logFile, chunk);
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      worker.tail.push(line);
      if (worker.tail.length > 40) worker.tail.shift();
      let level = 'text';
      let msg = line.slice(0, 160);
      try {
        const parsed = JSON.parse(line);
        level = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' }[parsed.level] ?? String(parsed.level);
        msg = `${parsed.msg ?? ''}${parsed.err?.message ? `: ${parsed.err.message.split('\n').filter(Boolean).at(-1)}` : ''}`.slice(0, 200);
        if (parsed.msg === 'worker ready') worker.ready = true;
      } catch {
        // not JSON (e.g. a crash message)
      }
      // Start-up and shutdown chatter at info is not what the summary is for.
      if (level === 'info') continue;
      worker.lines++;
      worker.byLevel[level] = (worker.byLevel[level] ?? 0) + 1;
      const key = `${level}: ${msg}`;
      if (worker.messages.size < 50 || worker.messages.has(key)) worker.messages.set(key, (worker.messages.get(key) ?? 0) + 1);
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  return worker;
}

const workerTail = (worker) => worker.tail.slice(-12).join('\n') || '(no output)';

function checkWorker(worker) {
  if (worker.exited) throw new StackError(`the worker exited (${worker.exit}) during the run:\n${workerTail(worker)}`);
}

async function waitWorkerReady(worker, signals) {
  const deadline = Date.now() + WORKER_READY_TIMEOUT_MS;
  while (!worker.ready) {
    checkInterrupted(signals);
    if (worker.exited) throw new StackError(`the worker exited (${worker.exit}) before it was ready:\n${workerTail(worker)}`);
    if (Date.now() > deadline) throw new StackError(`the worker did not log "worker ready" within ${WORKER_READY_TIMEOUT_MS / 1000} s:\n${workerTail(worker)}`);
    await sleep(100);
  }
}

function printWorkerLog(worker) {
  const levels = Object.entries(worker.byLevel)
    .map(([l, c]) => `${l} ${c}`)
    .join(', ');
  if (worker.lines === 0) console.log('worker log: no lines above info');
  else {
    console.log(`worker log: ${worker.lines} lines above info (${levels}); most frequent:`);
    for (const [message, count] of [...worker.messages].sort((a, b) => b[1] - a[1]).slice(0, 8)) console.log(`  ×${count}  ${message}`);
  }
}

// ---------------------------------------------------------------------------
// Redis: hz, and the queue keys of this run
// ---------------------------------------------------------------------------

/** Makes sure Redis runs with hz ≥ 100 for the section; returns a function that restores the old value. */
async function ensureHz(redis) {
  const [, raw] = await redis.config('GET', 'hz');
  const hz = Number(raw);
  if (hz >= 100) {
    say(`engine: Redis hz is ${hz}`);
    return { hz, note: `Redis hz ${hz}`, restore: async () => {} };
  }
  try {
    await redis.config('SET', 'hz', '100');
  } catch (err) {
    say(`engine: !! Redis hz is ${hz} and CONFIG SET hz 100 failed (${err.message}): delayed jobs may fire up to ${Math.round(1000 / hz)} ms late`);
    return { hz, note: `Redis hz ${hz} (could not set 100)`, restore: async () => {} };
  }
  say(`engine: Redis hz was ${hz}: set it to 100 with CONFIG SET for this section (restored afterwards)`);
  return {
    hz: 100,
    note: `Redis hz 100 (set by the bench; was ${hz})`,
    restore: async () => {
      await redis.config('SET', 'hz', String(raw));
      say(`engine: restored Redis hz ${raw}`);
    },
  };
}

/** The Redis server's pid when it runs on this machine (its CPU is part of the cost), else undefined. */
async function localRedisPid(redis) {
  try {
    const pid = Number(/^process_id:(\d+)/m.exec(await redis.info('server'))?.[1]);
    return Number.isInteger(pid) && readFileSync(`/proc/${pid}/stat`, 'utf8').includes('(redis-server)') ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function deleteQueueKeys(redis, prefix) {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    if (keys.length) deleted += await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
  return deleted;
}

// ---------------------------------------------------------------------------
// Setup: users, target, strategy, flow
// ---------------------------------------------------------------------------

/** `count` members, inserted in one statement (the admin command makes one per process start). */
async function createMembers(pgClient, orgSlug, count) {
  const { rows } = await pgClient.query(
    `INSERT INTO "User" ("id", "orgId", "type", "role", "email", "username", "firstName", "lastName", "updatedAt")
     SELECT gen_random_uuid(), o."id", 'normal'::"UserType", 'member'::"UserRole", 'bench-member-' || g || '@example.com',
            'bench-member-' || g || '@example.com', 'Bench', 'Member ' || g, now()
     FROM "Organization" o, generate_series(1, $2::int) g WHERE o."slug" = $1
     RETURNING "email"`,
    [orgSlug, count],
  );
  if (rows.length !== count) throw new StackError(`engine: inserted ${rows.length} of ${count} members (is org ${orgSlug} there?)`);
  let next = 0;
  return () => {
    if (next >= rows.length) throw new StackError('engine: ran out of bench members');
    return rows[next++].email;
  };
}

async function createHttpFlow(call, graph, receiverUrl, runTag) {
  const post = (path, body) => call('POST', `entities/${path}`, body);
  const target = await post('access-targets', { type: 'custom', slug: `bench-db-${runTag}`.replace(/_/g, '-'), label: 'Bench DB', settings: { identifier: 'bench' } });
  const strategy = await post('access-strategies', {
    type: 'http',
    slug: `bench-http-${runTag}`.replace(/_/g, '-'),
    integration_id: '<null>',
    targets: [target.id],
    settings: { url: `${receiverUrl}/grant` },
  });
  const flow = await post('flows', {
    slug: `bench-http-access-${runTag}`.replace(/_/g, '-'),
    implementation: Buffer.from('export {}\n').toString('base64'),
    environment_id: graph.environmentId,
    params: {
      strategy_id: strategy.id,
      allow_revoke: true,
      prompt_fields: [
        { name: 'reason', type: 'string', required: true },
        { name: 'duration', type: 'duration', required: true },
      ],
    },
  });
  return { flowSlug: flow.slug, targetId: target.id };
}

// ---------------------------------------------------------------------------
// The load: request, approve, wait for the escalate payload
// ---------------------------------------------------------------------------

/** What the receiver got, by run id: arrival times (performance.now() and epoch ms) per event type. */
function receiverIndex(receiver) {
  const runs = new Map(); // runId -> { escalate?, deescalate?, waiters: [] }
  const entry = (runId) => {
    let e = runs.get(runId);
    if (!e) runs.set(runId, (e = { counts: { escalate: 0, deescalate: 0 }, waiters: [] }));
    return e;
  };
  let unknown = 0;
  const onRequest = (request) => {
    const now = performance.now();
    const epochMs = performance.timeOrigin + now;
    const json = request.json;
    const type = json?.event?.type;
    const srn = json?.run?.srn;
    if ((type !== 'escalate' && type !== 'deescalate') || typeof srn !== 'string') {
      unknown++;
      return undefined;
    }
    const e = entry(srn.slice(-36));
    e.counts[type]++;
    e[type] ??= { at: now, epochMs };
    for (const w of e.waiters.filter((x) => x.type === type)) w.resolve(e[type]);
    e.waiters = e.waiters.filter((x) => x.type !== type);
    return undefined; // the default reply: 200 {"body": {}, "errors": []}
  };
  const install = () => {
    // The receiver keeps every request; forget them between phases (this index keeps what counts).
    receiver.reset();
    receiver.respondWith(onRequest);
  };
  install();
  return {
    install,
    get unknown() {
      return unknown;
    },
    get: (runId) => runs.get(runId),
    /** Resolves with the arrival of `type` for the run, or undefined after `timeoutMs`. */
    wait(runId, type, timeoutMs) {
      const e = entry(runId);
      if (e[type]) return Promise.resolve(e[type]);
      return new Promise((resolvePromise) => {
        const timer = setTimeout(() => {
          e.waiters = e.waiters.filter((x) => x !== waiter);
          resolvePromise(undefined);
        }, timeoutMs);
        const waiter = {
          type,
          resolve: (v) => {
            clearTimeout(timer);
            resolvePromise(v);
          },
        };
        e.waiters.push(waiter);
      });
    },
  };
}

/**
 * Events-API calls with the bot token; each returns the parsed body and its own latency, or throws. node:http over
 * keep-alive connections rather than fetch: the bench's own CPU is one of the figures, and fetch (undici, plus an
 * AbortSignal.any per call) cost several times as much client CPU per call. `close()` ends the idle connections.
 */
function eventsClient(baseUrl, token) {
  const agent = new http.Agent({ keepAlive: true });
  // One listener for all calls (a signal per request would add one per call in flight): Ctrl-C ends every connection.
  const onAbort = () => agent.destroy();
  abort.signal.addEventListener('abort', onAbort, { once: true });
  const post = (path, body) =>
    new Promise((resolvePromise, reject) => {
      if (abort.signal.aborted) return reject(abort.signal.reason);
      const started = performance.now();
      const payload = JSON.stringify(body);
      const req = http.request(
        `${baseUrl}/api/v1/${path}`,
        {
          method: 'POST',
          agent,
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk) => (text += chunk));
          res.on('error', reject);
          res.on('end', () => {
            const ms = performance.now() - started;
            if (res.statusCode !== 200) reject(new StackError(`POST ${path} → HTTP ${res.statusCode}: ${text.slice(0, 300)}`));
            else resolvePromise({ body: JSON.parse(text), ms });
          });
        },
      );
      req.setTimeout(HTTP_TIMEOUT_MS, () => req.destroy(new StackError(`POST ${path}: no answer within ${HTTP_TIMEOUT_MS / 1000} s`)));
      req.on('error', reject);
      req.end(payload);
    });
  post.close = () => {
    abort.signal.removeEventListener('abort', onAbort);
    agent.destroy();
  };
  return post;
}

function requestBody(ctx, email, durationSeconds) {
  return {
    flow_srn: `${ctx.orgSlug}:flow:${ctx.flowSlug}:latest`,
    flow_inputs: { reason: 'bench', duration: durationSeconds, target_id: ctx.targetId },
    user_email: email,
  };
}

/** One run: request, approve, wait for the escalate payload. */
async function oneRun(ctx, email) {
  const t0 = performance.now();
  const requested = await ctx.post('events/request', requestBody(ctx, email, LONG_DURATION_S));
  const runId = requested.body.run_id;
  const approved = await ctx.post('events/approve', { run_id: runId });
  const escalated = await ctx.index.wait(runId, 'escalate', ESCALATION_TIMEOUT_MS);
  if (!escalated) return { runId, error: `not escalated within ${ESCALATION_TIMEOUT_MS / 1000} s` };
  return { runId, latency: escalated.at - t0, requestMs: requested.ms, approveMs: approved.ms, doneAt: escalated.at, startedAt: t0 };
}

/** Busy and steal ticks of the whole machine (/proc/stat), to show what else ran. */
function machineTicks() {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    const [user, nice, system, , , irq, softirq, steal] = f;
    return { busy: user + nice + system + irq + softirq + steal, steal };
  } catch {
    return undefined;
  }
}

function processTicks(ctx) {
  return {
    worker: cpuTicks(ctx.worker.pid),
    api: cpuTicks(ctx.server.pid),
    redis: ctx.redisPid ? cpuTicks(ctx.redisPid) : undefined,
    pg: postgresTicks(),
    machine: machineTicks(),
    self: process.cpuUsage(),
  };
}

function cpuSince(before, elapsedS, ctx) {
  const pct = (t) => (t === undefined || Number.isNaN(t) ? NaN : (t / CLK_TCK / elapsedS) * 100);
  const delta = (now, then) => (now === undefined || then === undefined ? NaN : now - then);
  const self = process.cpuUsage(before.self);
  const machine = machineTicks();
  const out = {
    workerCpu: pct(delta(cpuTicks(ctx.worker.pid), before.worker)),
    apiCpu: pct(delta(cpuTicks(ctx.server.pid), before.api)),
    redisCpu: ctx.redisPid ? pct(delta(cpuTicks(ctx.redisPid), before.redis)) : NaN,
    pgCpu: pct(postgresTicksSince(before.pg)),
    benchCpu: ((self.user + self.system) / 1e6 / elapsedS) * 100,
    machineCpu: pct(delta(machine?.busy, before.machine?.busy)),
    stealCpu: pct(delta(machine?.steal, before.machine?.steal)),
  };
  // What ran on the machine besides this stack (other users' work, the kernel's own threads).
  out.otherCpu = out.machineCpu - out.workerCpu - out.apiCpu - out.pgCpu - out.benchCpu - (Number.isNaN(out.redisCpu) ? 0 : out.redisCpu);
  return out;
}

/** `runs` runs by `concurrency` clients, each looping request → approve → escalated. */
async function measureLevel(ctx, concurrency, runs) {
  const before = processTicks(ctx);
  const started = performance.now();
  const results = await pool(runs, concurrency, async () => {
    if (abort.signal.aborted) return { error: 'interrupted' };
    try {
      return await oneRun(ctx, ctx.nextMember());
    } catch (err) {
      return { error: err.message };
    }
  });
  const ok = results.filter((r) => r.latency !== undefined);
  const lastDone = Math.max(...ok.map((r) => r.doneAt));
  const elapsedS = ((ok.length ? lastDone : performance.now()) - started) / 1000;
  const wallS = (performance.now() - started) / 1000;
  const cpu = cpuSince(before, wallS, ctx);
  const sorted = (key) => ok.map((r) => r[key]).sort((a, b) => a - b);
  const latency = sorted('latency');
  const req = sorted('requestMs');
  const appr = sorted('approveMs');
  const errors = new Map();
  for (const r of results) if (r.error) errors.set(r.error.slice(0, 200), (errors.get(r.error.slice(0, 200)) ?? 0) + 1);
  return {
    concurrency,
    runs,
    ok: ok.length,
    failed: runs - ok.length,
    errors,
    runIds: results.map((r) => r.runId).filter(Boolean),
    elapsedS,
    wallS,
    rate: ok.length / elapsedS,
    p50: percentile(latency, 50),
    p90: percentile(latency, 90),
    p99: percentile(latency, 99),
    max: latency.at(-1),
    reqP50: percentile(req, 50),
    reqP99: percentile(req, 99),
    apprP50: percentile(appr, 50),
    apprP99: percentile(appr, 99),
    workerRssMb: (procStatusKb(ctx.worker.pid, 'VmRSS') ?? NaN) / 1024,
    ...cpu,
  };
}

/**
 * What PostgreSQL says about runs: statuses, and the errors of failed events. The receiver sees the escalate call
 * just before the worker commits, so this waits (a little) for events still pending.
 */
async function runOutcomes(pgClient, runIds) {
  for (let i = 0; i < 50; i++) {
    const { rows } = await pgClient.query(`SELECT count(*)::int AS n FROM "RunEvent" WHERE "runId" = ANY($1::uuid[]) AND "status" = 'pending'`, [runIds]);
    if (rows[0].n === 0) break;
    await sleep(100);
  }
  const { rows: statuses } = await pgClient.query(`SELECT "status", count(*)::int AS n FROM "Run" WHERE "id" = ANY($1::uuid[]) GROUP BY "status"`, [runIds]);
  const { rows: failures } = await pgClient.query(
    `SELECT "name", "error", count(*)::int AS n FROM "RunEvent" WHERE "runId" = ANY($1::uuid[]) AND "status" = 'error' GROUP BY "name", "error" ORDER BY n DESC LIMIT 5`,
    [runIds],
  );
  return { statuses: Object.fromEntries(statuses.map((r) => [r.status, r.n])), failures };
}

// ---------------------------------------------------------------------------
// The expiry drill
// ---------------------------------------------------------------------------

const sleepUntilEpoch = (epochMs) => sleep(Math.max(0, epochMs - Date.now()));

/**
 * N runs approved in one-second slots so that every expires_at lands in the second [S, S+1 s); then waits for every
 * de-escalation and reads the lateness.
 */
async function expiryDrill(ctx, count, slotRuns) {
  const slots = Math.ceil(count / slotRuns);
  const sizes = Array.from({ length: slots }, (_, j) => Math.min(slotRuns, count - j * slotRuns));
  // Slot 0 starts at the second after next, its requests made before it; slot j+1's during slot j.
  const t0 = (Math.ceil(Date.now() / 1000) + 2) * 1000;
  const s = t0 + (slots + EXPIRY_LEAD_S) * 1000;
  const durationOf = (j) => (s - (t0 + j * 1000)) / 1000;
  say(`engine: expiry drill: ${count} runs in ${slots} one-second slots of ≤ ${slotRuns}, all expiring in the second starting ${new Date(s).toISOString()}`);

  const runIds = [];
  const late = []; // runs whose approval was sent after their slot ended
  const createSlot = (j) =>
    pool(sizes[j], SETUP_CONCURRENCY, async () => {
      const { body } = await ctx.post('events/request', requestBody(ctx, ctx.nextMember(), durationOf(j)));
      return body.run_id;
    });
  let pending = createSlot(0);
  pending.catch(() => {});
  for (let j = 0; j < slots; j++) {
    checkInterrupted(ctx.signals);
    const ids = await pending;
    const slotStart = t0 + j * 1000;
    if (Date.now() > slotStart + SLOT_SEND_MS) say(`engine: !! the requests of slot ${j} were ready ${Date.now() - slotStart} ms into their second`);
    await sleepUntilEpoch(slotStart);
    // The next slot's requests are made while this one's approvals go out.
    pending = j + 1 < slots ? createSlot(j + 1) : Promise.resolve([]);
    pending.catch(() => {}); // awaited at the next slot; no unhandled rejection meanwhile
    // Approvals spread over the first SLOT_SEND_MS of the second, so that each escalates within it.
    const gap = SLOT_SEND_MS / ids.length;
    await Promise.all(
      ids.map(async (runId, i) => {
        await sleepUntilEpoch(slotStart + i * gap);
        await ctx.post('events/approve', { run_id: runId });
        if (Date.now() >= slotStart + 1000) late.push(runId);
      }),
    );
    runIds.push(...ids);
  }
  await pending;

  // Every run escalated (the receiver got it, then PostgreSQL), then every de-escalation, then the figures.
  const escalated = await Promise.all(runIds.map((id) => ctx.index.wait(id, 'escalate', Math.max(1000, s - Date.now()))));
  const notEscalated = escalated.filter((e) => !e).length;
  await runOutcomes(ctx.pg, runIds);
  const { rows: spread } = await ctx.pg.query(
    `SELECT count(*) FILTER (WHERE "expiresAt" >= $2 AND "expiresAt" < $3)::int AS in_second, count("expiresAt")::int AS with_expiry,
            min("expiresAt") AS first, max("expiresAt") AS last FROM "Run" WHERE "id" = ANY($1::uuid[])`,
    [runIds, new Date(s), new Date(s + 1000)],
  );
  say(`engine: expiry drill: ${count - notEscalated} of ${count} escalated; ${spread[0].in_second} expire in the chosen second; waiting for the de-escalations`);
  const rssBeforeExpiry = procStatusKb(ctx.worker.pid, 'VmRSS');
  const deadline = s + 1000 + DEESCALATION_TIMEOUT_MS;
  await sleepUntilEpoch(s);
  const expiryTicks = processTicks(ctx);
  const expiryStarted = performance.now();
  let remaining = runIds.length;
  while (remaining > 0 && Date.now() < deadline) {
    checkInterrupted(ctx.signals);
    checkWorker(ctx.worker);
    await sleep(250);
    const { rows } = await ctx.pg.query(`SELECT count(*)::int AS n FROM "Run" WHERE "id" = ANY($1::uuid[]) AND "deescalatedAt" IS NULL`, [runIds]);
    remaining = rows[0].n;
  }
  const expirySeconds = (performance.now() - expiryStarted) / 1000;
  const expiryCpu = cpuSince(expiryTicks, expirySeconds, ctx);
  const { rows } = await ctx.pg.query(
    `SELECT "id", EXTRACT(EPOCH FROM "expiresAt") * 1000 AS expires, EXTRACT(EPOCH FROM "deescalatedAt") * 1000 AS deescalated
     FROM "Run" WHERE "id" = ANY($1::uuid[]) AND "expiresAt" IS NOT NULL`,
    [runIds],
  );
  const dbLateness = [];
  const receiverLateness = [];
  let calls = 0;
  for (const r of rows) {
    if (r.deescalated !== null) dbLateness.push(Number(r.deescalated) - Number(r.expires));
    const got = ctx.index.get(r.id);
    if (got?.deescalate) receiverLateness.push(got.deescalate.epochMs - Number(r.expires));
    calls += got?.counts.deescalate ?? 0;
  }
  dbLateness.sort((a, b) => a - b);
  receiverLateness.sort((a, b) => a - b);
  const outcomes = await runOutcomes(ctx.pg, runIds);
  return {
    count,
    slots,
    slotRuns,
    lateApprovals: late.length,
    notEscalated,
    inSecond: spread[0].in_second,
    withExpiry: spread[0].with_expiry,
    firstExpiry: spread[0].first,
    lastExpiry: spread[0].last,
    deescalated: dbLateness.length,
    deescalateCalls: calls,
    db: { p50: percentile(dbLateness, 50), p99: percentile(dbLateness, 99), max: dbLateness.at(-1), min: dbLateness[0] },
    receiver: { p50: percentile(receiverLateness, 50), p99: percentile(receiverLateness, 99), max: receiverLateness.at(-1), n: receiverLateness.length },
    rssBeforeMb: (rssBeforeExpiry ?? NaN) / 1024,
    expiryCpu,
    expirySeconds,
    outcomes,
  };
}

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------

function verdict(ok) {
  return ok ? '[met]    ' : '[NOT MET]';
}

function report({ cfg, levels, drill, rss, hzNote, workerEnv }) {
  console.log('');
  console.log('== access flow engine ==');
  console.log(
    `worker: apps/worker as a process (tsx, from source, like the API), WORKER_CONCURRENCY ${workerEnv.WORKER_CONCURRENCY || '10 (default)'}, WORKER_DB_POOL_SIZE ${workerEnv.WORKER_DB_POOL_SIZE || '20 (default)'}; ${hzNote}; http strategy → receiver on 127.0.0.1 in the bench process`,
  );
  console.log('request → escalated: POST /events/request (bot, user_email of a member) + POST /events/approve (bot), until the receiver gets the escalate payload');
  console.log(`before the levels: ${cfg.warmupRuns} warm-up runs at ${WARMUP_CONCURRENCY} clients, then VACUUM ANALYZE (what a long-running deployment's processes and autovacuum are at)`);
  console.log(`cpu% is per core (${os.availableParallelism() * 100}% = all ${os.availableParallelism()} cores); other = the rest of the machine (other users' work); runs/s = runs / (last escalation − first request)`);
  console.log('');
  printColumns(
    ['clients', 'runs', 'runs/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'request p50/p99 ms', 'approve p50/p99 ms', 'failed', 'worker rss MB', ''],
    levels.map((l) => [
      String(l.concurrency),
      String(l.runs),
      fmt(l.rate, 0),
      fmt(l.p50, 1),
      fmt(l.p90, 1),
      fmt(l.p99, 1),
      fmt(l.max, 1),
      `${fmt(l.reqP50, 1)} / ${fmt(l.reqP99, 1)}`,
      `${fmt(l.apprP50, 1)} / ${fmt(l.apprP99, 1)}`,
      String(l.failed),
      fmt(l.workerRssMb, 0),
      l.failed ? '<-- FAILURES' : '',
    ]),
    new Set([11]),
  );
  // CPU per run is what decides throughput on a given machine, and what other work on it skews least.
  const perRun = (pct, l) => ((pct / 100) * l.wallS * 1000) / l.ok;
  console.log('');
  printColumns(
    ['clients', 'worker cpu%', 'api cpu%', 'pg cpu%', 'redis cpu%', 'bench cpu%', 'other cpu%', 'cpu ms/run: worker', 'api', 'pg', 'redis', 'total'],
    levels.map((l) => [
      String(l.concurrency),
      fmt(l.workerCpu, 0),
      fmt(l.apiCpu, 0),
      fmt(l.pgCpu, 0),
      fmt(l.redisCpu, 0),
      fmt(l.benchCpu, 0),
      fmt(l.otherCpu, 0),
      fmt(perRun(l.workerCpu, l), 1),
      fmt(perRun(l.apiCpu, l), 1),
      fmt(perRun(l.pgCpu, l), 1),
      fmt(perRun(l.redisCpu, l), 1),
      fmt(perRun(l.workerCpu + l.apiCpu + l.pgCpu + (Number.isNaN(l.redisCpu) ? 0 : l.redisCpu), l), 1),
    ]),
    new Set([0]),
  );
  for (const l of levels) {
    if (!l.failed && !l.badStatus) continue;
    console.log(`  !! ${l.concurrency} clients: ${l.failed} runs not escalated; run statuses ${JSON.stringify(l.outcomes?.statuses ?? {})}`);
    for (const [message, n] of l.errors) console.log(`     ×${n} ${message}`);
    for (const f of l.outcomes?.failures ?? []) console.log(`     event ${f.name} error ×${f.n}: ${f.error}`);
  }

  if (drill) {
    const ms = (n) => `${fmt(n, 0)} ms`;
    console.log('');
    console.log(
      `expiry: ${drill.count} grants in ${drill.slots} one-second slots of ≤ ${drill.slotRuns}; ${drill.inSecond} of ${drill.withExpiry} expires_at in the same second` +
        ` (all between ${drill.firstExpiry?.toISOString?.() ?? '-'} and ${drill.lastExpiry?.toISOString?.() ?? '-'})` +
        (drill.lateApprovals ? `; ${drill.lateApprovals} approvals sent after their slot` : '') +
        (drill.notEscalated ? `; ${drill.notEscalated} NOT ESCALATED` : ''),
    );
    console.log(`  de-escalated ${drill.deescalated} of ${drill.withExpiry}; the receiver got ${drill.deescalateCalls} deescalate calls; run statuses ${JSON.stringify(drill.outcomes.statuses)}`);
    for (const f of drill.outcomes.failures) console.log(`  !! event ${f.name} error ×${f.n}: ${f.error}`);
    printColumns(
      ['lateness', 'p50', 'p99', 'max', ''],
      [
        ['deescalatedAt − expiresAt (PostgreSQL)', ms(drill.db.p50), ms(drill.db.p99), ms(drill.db.max), `min ${ms(drill.db.min)}`],
        ['receiver got deescalate − expiresAt', ms(drill.receiver.p50), ms(drill.receiver.p99), ms(drill.receiver.max), `${drill.receiver.n} runs`],
      ],
    );
    console.log(
      `  cpu from the common expiry second until all were de-escalated (${fmt(drill.expirySeconds, 1)} s): worker ${fmt(drill.expiryCpu.workerCpu, 0)}%, api ${fmt(drill.expiryCpu.apiCpu, 0)}%, pg ${fmt(drill.expiryCpu.pgCpu, 0)}%, redis ${fmt(drill.expiryCpu.redisCpu, 0)}%, bench ${fmt(drill.expiryCpu.benchCpu, 0)}%, other ${fmt(drill.expiryCpu.otherCpu, 0)}%`,
    );
    const perGrant = (pct) => ((pct / 100) * drill.expirySeconds * 1000) / drill.count;
    console.log(`  cpu ms per de-escalation: worker ${fmt(perGrant(drill.expiryCpu.workerCpu), 1)}, pg ${fmt(perGrant(drill.expiryCpu.pgCpu), 1)}, redis ${fmt(perGrant(drill.expiryCpu.redisCpu), 1)}`);
  }

  console.log('');
  console.log(`worker RSS: ${fmt(rss.startMb, 0)} MB after start, ${fmt(rss.endMb, 0)} MB at the end, peak (VmHWM) ${fmt(rss.peakMb, 0)} MB`);

  console.log('');
  console.log(`targets (issue 4)${cfg.quick ? ' — BENCH_QUICK: short runs, indicative only' : ''}:`);
  const low = levels[0];
  if (low) {
    console.log(
      `  ${verdict(low.p99 <= TARGETS.lowLoadP99Ms && !low.failed)} p99 request → escalated ≤ ${TARGETS.lowLoadP99Ms} ms at low load: ${fmt(low.p99, 1)} ms at ${low.concurrency} client${low.concurrency === 1 ? '' : 's'} (p50 ${fmt(low.p50, 1)} ms)`,
    );
    // Sustained: the longest level (the most clients); the best level is shown too when it is another one.
    const sustained = levels.reduce((a, b) => (b.elapsedS > a.elapsedS ? b : a));
    const best = levels.reduce((a, b) => (b.rate > a.rate ? b : a));
    const ok = sustained.rate >= TARGETS.runsPerSecond && !sustained.failed;
    console.log(
      `  ${verdict(ok)} ≥ ${TARGETS.runsPerSecond} runs/s sustained: ${fmt(sustained.rate, 0)} runs/s at ${sustained.concurrency} clients over ${fmt(sustained.elapsedS, 1)} s (p99 ${fmt(sustained.p99, 0)} ms)` +
        (best !== sustained ? `; best ${fmt(best.rate, 0)} runs/s at ${best.concurrency} clients` : ''),
    );
  }
  if (drill) {
    const ok = drill.deescalated === drill.withExpiry && drill.db.p99 <= TARGETS.expiryP99Ms;
    console.log(
      `  ${verdict(ok)} expiry lateness p99 ≤ ${TARGETS.expiryP99Ms / 1000} s for ${drill.count} grants expiring in the same second: p99 ${fmt(drill.db.p99, 0)} ms, max ${fmt(drill.db.max, 0)} ms` +
        (drill.deescalated < drill.withExpiry ? ` — ${drill.withExpiry - drill.deescalated} NOT de-escalated` : ''),
    );
  } else {
    console.log('  [skipped] expiry lateness: BENCH_ENGINE_EXPIRY=0');
  }
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

/** Measures, then prints. `stack`: what bench.mjs set up (server, baseUrl, token, org, graph, databaseUrl, redisUrl…). */
export async function run(stack, cfg) {
  const { server, signals } = stack;
  if (!stack.databaseUrl || !stack.redisUrl || !stack.queuePrefix) throw new StackError('engine: bench.mjs must pass databaseUrl, redisUrl and queuePrefix');
  const { default: pg } = await import('pg');
  const { Redis } = await import('ioredis');
  const { tsImport } = await import('tsx/esm/api');
  const { startHttpReceiver } = await tsImport('../../packages/testing/src/http-receiver.ts', import.meta.url);

  const pgClient = new pg.Client({ connectionString: stack.databaseUrl });
  await pgClient.connect();
  const redis = new Redis(stack.redisUrl, { maxRetriesPerRequest: 2 });
  const receiver = await startHttpReceiver();
  const post = eventsClient(stack.baseUrl, stack.token);
  let worker;
  let hz;
  try {
    hz = await ensureHz(redis);
    const index = receiverIndex(receiver);
    const { flowSlug, targetId } = await createHttpFlow(stack.call, stack.graph, receiver.url, stack.runTag);
    const totalRuns = cfg.warmupRuns + cfg.levels.reduce((n, l) => n + l.runs, 0) + cfg.expiryGrants;
    const nextMember = await createMembers(pgClient, stack.orgSlug, totalRuns);
    say(`engine: flow ${flowSlug} (http strategy → ${receiver.url}/grant), ${totalRuns} members`);

    const workerEnv = {
      ...process.env,
      DATABASE_URL: stack.databaseUrl,
      REDIS_URL: stack.redisUrl,
      QUEUE_PREFIX: stack.queuePrefix,
      LOG_LEVEL: process.env.BENCH_WORKER_LOG_LEVEL || 'info',
    };
    delete workerEnv.NODE_OPTIONS;
    worker = startWorkerProcess(workerEnv);
    await waitWorkerReady(worker, signals);
    const startMb = (procStatusKb(worker.pid, 'VmRSS') ?? NaN) / 1024;
    say(`engine: worker ready (pid ${worker.pid}, queue prefix ${stack.queuePrefix}, RSS ${fmt(startMb, 0)} MB)`);

    const ctx = {
      signals,
      server,
      worker,
      redisPid: await localRedisPid(redis),
      index,
      pg: pgClient,
      post,
      orgSlug: stack.orgSlug,
      flowSlug,
      targetId,
      nextMember,
    };

    // Warm-up: JIT, pools, prepared statements; not in the table.
    if (cfg.warmupRuns > 0) {
      const warm = await measureLevel(ctx, WARMUP_CONCURRENCY, cfg.warmupRuns);
      if (warm.failed) {
        const [first] = warm.errors;
        throw new StackError(`engine: warm-up: ${warm.failed} of ${cfg.warmupRuns} runs failed${first ? ` (×${first[1]} ${first[0]})` : ''}\nworker:\n${workerTail(worker)}`);
      }
      say(`engine: warm-up: ${cfg.warmupRuns} runs, p50 ${fmt(warm.p50, 1)} ms`);
    }
    // Statistics and dead rows as a deployment's autovacuum keeps them: a fresh database has no statistics, so
    // PostgreSQL plans without them, and the warm-up's updates left dead rows in every index; autovacuum (if the
    // server runs it at all) would only get to this database after its naptime.
    await pgClient.query('VACUUM ANALYZE');

    const levels = [];
    for (const { concurrency, runs } of cfg.levels) {
      checkInterrupted(signals);
      checkServer(server);
      checkWorker(worker);
      index.install();
      const l = await measureLevel(ctx, concurrency, runs);
      checkInterrupted(signals);
      l.outcomes = await runOutcomes(pgClient, l.runIds);
      l.badStatus = (l.outcomes.statuses.escalated ?? 0) !== l.runIds.length;
      levels.push(l);
      say(`engine: ${concurrency} clients: ${l.ok}/${runs} runs, ${fmt(l.rate, 0)} runs/s, p50 ${fmt(l.p50, 1)} ms, p99 ${fmt(l.p99, 1)} ms${l.failed ? `  !! ${l.failed} failed` : ''}`);
    }

    let drill;
    if (cfg.expiryGrants > 0) {
      checkInterrupted(signals);
      index.install();
      // As many approvals per second as the engine escalates comfortably besides making the next slot's requests.
      const best = Math.max(...levels.map((l) => l.rate).filter(Number.isFinite), 0);
      const slotRuns = cfg.slotRuns ?? Math.max(10, Math.min(100, Math.floor(best * 0.7)));
      drill = await expiryDrill(ctx, cfg.expiryGrants, slotRuns);
    }
    checkServer(server);
    checkWorker(worker);
    const rss = { startMb, endMb: (procStatusKb(worker.pid, 'VmRSS') ?? NaN) / 1024, peakMb: (procStatusKb(worker.pid, 'VmHWM') ?? NaN) / 1024 };
    report({ cfg, levels, drill, rss, hzNote: hz.note, workerEnv });
  } finally {
    if (worker) {
      await stopServer(worker);
      console.log('');
      printWorkerLog(worker);
    }
    post.close();
    await receiver.close().catch(() => {});
    await deleteQueueKeys(redis, stack.queuePrefix).catch((err) => say(`engine: could not delete the queue keys: ${err.message}`));
    await hz?.restore().catch((err) => say(`engine: could not restore Redis hz: ${err.message}`));
    redis.disconnect();
    await pgClient.end().catch(() => {});
  }
}
