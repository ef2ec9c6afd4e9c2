#!/usr/bin/env node
// `npm run bench`: real HTTP load against the real API process, printed as figures (never pass/fail).
//
// Steps: install dependencies if needed, find or start PostgreSQL and Redis (stack.mjs), create and migrate a
// database of its own (opensym_bench_<random>), start apps/api/src/server.ts as a child process, create an org,
// a bot and a token with the admin command, pre-create entities over HTTP, then drive each operation with
// autocannon at several concurrency levels. On exit (also on error or Ctrl-C) it stops the server and drops its
// database.
//
// Environment:
//   BENCH_DURATION=5          seconds per measurement (default 5)
//   BENCH_QUICK=1             1 s per measurement, shorter warm-up (smoke run)
//   BENCH_CONNECTIONS=1,8,32  concurrency levels
//   BENCH_OPS=baseline,create,read,find  which operations to measure (baseline: GET /healthz, the HTTP floor)
//   DB_POOL_SIZE              passed through to the API (its default is 10)
//   BENCH_API_NODE_ARGS       extra node flags for the API only, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
//   DATABASE_URL / REDIS_URL  servers to use (as for `npm start`); the bench database is created next to it
//
// Only stack.mjs is imported statically: autocannon and pg are loaded after ensureInstalled().
/* global fetch, AbortController, AbortSignal */

import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ROOT,
  StackError,
  createDatabaseIfMissing,
  ensureInstalled,
  ensureServices,
  findFreePort,
  redact,
  reportError,
  signalExitCode,
  trapSignals,
  withDatabase,
} from './stack.mjs';

const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 60_000;
const SERVER_STOP_GRACE_MS = 15_000;
const CHILD_TIMEOUT_MS = 180_000; // migrate, admin commands
const HTTP_TIMEOUT_MS = 10_000; // setup requests
const READ_IDS = 300; // integrations pre-created for "read by id"
const FIND_FLOWS = 50; // flows pre-created for "find by slug"
const SETUP_CONCURRENCY = 4;
const CLK_TCK = 100; // Linux USER_HZ; /proc/<pid>/stat times are in these ticks

function say(message) {
  console.log(`[bench] ${message}`);
}

// ---------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------

function settings() {
  const quick = process.env.BENCH_QUICK === '1' || process.env.BENCH_QUICK === 'true';
  const rawDuration = process.env.BENCH_DURATION;
  let duration = quick ? 1 : 5;
  if (rawDuration !== undefined && rawDuration !== '') {
    duration = Number(rawDuration);
    if (!Number.isFinite(duration) || duration <= 0 || duration > 600) throw new StackError(`BENCH_DURATION=${rawDuration}: give seconds, 0 < n <= 600`);
  }
  const connections = (process.env.BENCH_CONNECTIONS || '1,8,32').split(',').map((s) => Number(s.trim()));
  if (connections.some((c) => !Number.isInteger(c) || c < 1 || c > 1000)) {
    throw new StackError(`BENCH_CONNECTIONS=${process.env.BENCH_CONNECTIONS}: give a comma-separated list of integers 1..1000`);
  }
  const ops = (process.env.BENCH_OPS || 'baseline,create,read,find').split(',').map((s) => s.trim());
  const unknown = ops.filter((o) => !['baseline', 'create', 'read', 'find'].includes(o));
  if (unknown.length) throw new StackError(`BENCH_OPS: unknown operation(s) ${unknown.join(', ')}; use baseline, create, read, find`);
  return { quick, duration, warmup: quick ? 0.5 : Math.min(2, duration), connections, ops };
}

// ---------------------------------------------------------------------------
// Interruption: Ctrl-C stops the current step, then cleanup runs
// ---------------------------------------------------------------------------

const abort = new AbortController();
let currentLoad; // the running autocannon instance, stopped on a signal

function checkInterrupted(signals) {
  if (signals.signal) throw new StackError(`interrupted by ${signals.signal}`);
}

// ---------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------

/** Runs a short command to completion; returns stdout, throws a one-line StackError with its stderr. */
function runCaptured(what, args, env) {
  return new Promise((resolvePromise, reject) => {
    execFile(process.execPath, args, { cwd: ROOT, env, timeout: CHILD_TIMEOUT_MS, signal: abort.signal, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (!err) return resolvePromise(stdout);
      const detail = (stderr || stdout || '').trim().split('\n').filter(Boolean).slice(-3).join(' | ') || err.message;
      reject(new StackError(`${what} failed: ${detail}`));
    });
  });
}

/** The API server, with its output kept for the summary (and for errors). */
function startServer(env) {
  const extra = (process.env.BENCH_API_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const child = spawn(process.execPath, [...extra, '--import', 'tsx', '--conditions=@opensym/source', 'apps/api/src/server.ts'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Own process group, like `npm start`: a terminal Ctrl-C reaches only us, and we stop it once.
    detached: true,
  });
  const server = { child, pid: child.pid, exited: false, exit: undefined, tail: [], lines: 0, byLevel: {}, messages: new Map() };
  server.exitPromise = new Promise((resolvePromise) => {
    child.on('exit', (code, signal) => {
      server.exited = true;
      server.exit = signal ? `signal ${signal}` : `exit code ${code}`;
      resolvePromise();
    });
    child.on('error', (err) => {
      server.exited = true;
      server.exit = `could not start (${err.message})`;
      resolvePromise();
    });
  });
  const onData = (chunk) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      server.lines++;
      server.tail.push(line);
      if (server.tail.length > 40) server.tail.shift();
      let level = 'text';
      let msg = line.slice(0, 160);
      try {
        const parsed = JSON.parse(line);
        level = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' }[parsed.level] ?? String(parsed.level);
        msg = `${parsed.msg ?? ''}${parsed.err?.message ? `: ${parsed.err.message.split('\n').filter(Boolean).at(-1)}` : ''}`.slice(0, 200);
      } catch {
        // not JSON (e.g. a crash message)
      }
      server.byLevel[level] = (server.byLevel[level] ?? 0) + 1;
      const key = `${level}: ${msg}`;
      if (server.messages.size < 50 || server.messages.has(key)) server.messages.set(key, (server.messages.get(key) ?? 0) + 1);
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  return server;
}

function serverTail(server, lines = 12) {
  return server.tail.slice(-lines).join('\n') || '(no output)';
}

async function stopServer(server) {
  if (!server || server.exited) return;
  const signalGroup = (signal) => {
    try {
      process.kill(-server.pid, signal);
    } catch (err) {
      if (err.code !== 'ESRCH') throw err;
    }
  };
  signalGroup('SIGTERM');
  const stopped = await Promise.race([server.exitPromise.then(() => true), sleep(SERVER_STOP_GRACE_MS).then(() => false)]);
  if (!stopped) {
    say(`API did not stop within ${SERVER_STOP_GRACE_MS / 1000} s of SIGTERM: killing it`);
    signalGroup('SIGKILL');
    await Promise.race([server.exitPromise, sleep(5000)]);
  }
}

async function waitReady(server, baseUrl, signals) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = 'no answer yet';
  for (let attempt = 0; attempt < 1000 && Date.now() < deadline; attempt++) {
    checkInterrupted(signals);
    if (server.exited) throw new StackError(`the API exited (${server.exit}) before it was ready:\n${serverTail(server)}`);
    try {
      const res = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(2000) });
      if (res.status === 200) return;
      last = `HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`;
    } catch (err) {
      last = err.cause?.code ?? err.message;
    }
    await sleep(200);
  }
  throw new StackError(`the API was not ready within ${READY_TIMEOUT_MS / 1000} s (last: ${last}):\n${serverTail(server)}`);
}

// ---------------------------------------------------------------------------
// /proc figures
// ---------------------------------------------------------------------------

function procStatusKb(pid, field) {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** utime + stime of one process, in clock ticks. */
function cpuTicks(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]); // fields 14 and 15 of stat(5)
  } catch {
    return undefined;
  }
}

/** CPU ticks of every `postgres` process on the machine (backends come and go with the pool). */
function postgresTicks() {
  const ticks = new Map();
  let entries;
  try {
    entries = readdirSync('/proc');
  } catch {
    return ticks;
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) !== 'postgres') continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks.set(name, Number(fields[11]) + Number(fields[12]));
    } catch {
      // exited meanwhile
    }
  }
  return ticks;
}

function postgresTicksSince(before) {
  let total = 0;
  for (const [pid, t] of postgresTicks()) total += t - (before.get(pid) ?? 0);
  return total;
}

// ---------------------------------------------------------------------------
// HTTP setup (sequential-ish, bounded)
// ---------------------------------------------------------------------------


function api(baseUrl, token) {
  return async function call(method, path, body) {
    const res = await fetch(`${baseUrl}/api/v1/${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body ?? null),
      signal: AbortSignal.any([abort.signal, AbortSignal.timeout(HTTP_TIMEOUT_MS)]),
    });
    const text = await res.text();
    if (res.status !== (method === 'POST' ? 201 : 200)) throw new StackError(`setup: ${method} ${path} → HTTP ${res.status}: ${text.slice(0, 300)}`);
    return JSON.parse(text);
  };
}

/** Runs `count` calls of `fn(i)`, at most `limit` at a time. */
async function pool(count, limit, fn) {
  const results = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      results[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
  return results;
}

/** A realistic configuration, like apps/api/test/graph.ts: everything an Okta access flow needs. */
/** The realistic bodies the API tests use (packages/testing), loaded through tsx once dependencies exist. */
async function loadBodies() {
  const { tsImport } = await import('tsx/esm/api');
  const { entityBodies } = await tsImport('../packages/testing/src/entity-bodies.ts', import.meta.url);
  return { bodies: entityBodies };
}

async function createFixtures(call, runTag) {
  const { bodies } = await loadBodies();
  const post = (path, body) => call('POST', `entities/${path}`, body);
  const slack = await post('integrations', bodies.slack);
  const context = await post('integrations', bodies.context);
  const runtime = await post('runtimes', bodies.runtime(context.id));
  const secretSource = await post('secret-sources', bodies.secretSource(context.id));
  const secret = await post('secrets', bodies.secret(secretSource.id));
  const okta = await post('integrations', bodies.okta(secret.id));
  const errorLogger = await post('error-loggers', bodies.errorLogger(slack.id));
  const firehose = await post('log-destinations', bodies.firehose(context.id));
  const httpLog = await post('log-destinations', bodies.httpLog);
  const environment = await post(
    'environments',
    bodies.environment({ runtime: runtime.id, slack: slack.id, okta: okta.id, errorLogger: errorLogger.id, logs: [firehose.id, httpLog.id] }),
  );
  const oktaTarget = await post('access-targets', bodies.oktaTarget);
  const strategy = await post('access-strategies', bodies.strategy(okta.id, [oktaTarget.id]));

  const oktaIntegration = (slug) => ({ ...bodies.okta(secret.id), slug });
  const readIds = await pool(READ_IDS, SETUP_CONCURRENCY, async (i) => (await post('integrations', oktaIntegration(`read-${runTag}-${i}`))).id);
  // Mixed case on purpose: the API stores slugs lower-cased and finds them case-insensitively.
  const flow = (slug) => ({ ...bodies.flow(environment.id, strategy.id), slug });
  const flowSlugs = await pool(FIND_FLOWS, SETUP_CONCURRENCY, async (i) => (await post('flows', flow(`Okta_Access_${i}`))).slug);
  return { oktaIntegration, readIds, flowSlugs };
}

// ---------------------------------------------------------------------------
// Load
// ---------------------------------------------------------------------------

/** The operations: each builds its requests for autocannon and says what a good 2xx body looks like. */
function operations(fixtures, runTag) {
  let created = 0;
  let readNext = 0;
  let findNext = 0;
  return {
    // The floor: the same HTTP stack, process and load generator, without auth or PostgreSQL.
    baseline: {
      label: 'baseline GET /healthz',
      method: 'GET',
      path: '/healthz',
      setup: (req) => req,
      good: (status, body) => status === 200 && body === '{"status":"ok"}',
    },
    create: {
      label: 'create integration',
      method: 'POST',
      path: '/api/v1/entities/integrations',
      // A unique slug per request (a duplicate would be a 409).
      setup: (req) => ({ ...req, body: JSON.stringify(fixtures.oktaIntegration(`bench-${runTag}-${created++}`)) }),
      good: (status, body) => status === 201 && body.startsWith('{"id":"'),
    },
    read: {
      label: 'read integration by id',
      method: 'GET',
      path: '/api/v1/entities/integrations',
      // Sym's Go client sends the JSON body `null` on GET.
      setup: (req) => ({ ...req, path: `/api/v1/entities/integrations/${fixtures.readIds[readNext++ % fixtures.readIds.length]}`, body: 'null' }),
      good: (status, body) => status === 200 && body.startsWith('{"id":"'),
    },
    find: {
      label: 'find flow by slug',
      method: 'GET',
      path: '/api/v1/entities/flows',
      setup: (req) => ({ ...req, path: `/api/v1/entities/flows?slug=${encodeURIComponent(fixtures.flowSlugs[findNext++ % fixtures.flowSlugs.length])}`, body: 'null' }),
      // Exactly one flow per slug.
      good: (status, body) => status === 200 && body.startsWith('[{"id":"') && !body.includes('},{"id":"'),
    },
  };
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

async function measure(autocannon, { baseUrl, token, serverPid }, op, connections, duration) {
  const latencies = [];
  const statuses = {};
  const samples = new Map(); // status → first body seen
  const errorSamples = new Map(); // message → count
  let badBodies = 0;
  let badBodySample;

  const apiTicks0 = cpuTicks(serverPid);
  const pgTicks0 = postgresTicks();
  const self0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();

  const instance = autocannon({
    url: baseUrl,
    connections,
    duration,
    timeout: 10,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    requests: [
      {
        method: op.method,
        path: op.path,
        setupRequest: op.setup,
        onResponse: (status, body) => {
          statuses[status] = (statuses[status] ?? 0) + 1;
          if (status < 200 || status >= 300) {
            if (!samples.has(status)) samples.set(status, body.slice(0, 300));
          } else if (!op.good(status, body)) {
            badBodies++;
            badBodySample ??= body.slice(0, 300);
          }
        },
      },
    ],
  });
  instance.on('response', (_client, _status, _bytes, responseTime) => {
    latencies.push(responseTime);
  });
  instance.on('reqError', (err) => {
    const key = err?.code ?? err?.message ?? String(err);
    errorSamples.set(key, (errorSamples.get(key) ?? 0) + 1);
  });
  currentLoad = instance;
  let result;
  try {
    result = await instance;
  } finally {
    currentLoad = undefined;
  }
  const elapsedS = Number(process.hrtime.bigint() - t0) / 1e9;
  const self = process.cpuUsage(self0);
  const apiTicks = apiTicks0 === undefined ? undefined : (cpuTicks(serverPid) ?? apiTicks0) - apiTicks0;
  const pgTicks = postgresTicksSince(pgTicks0);

  latencies.sort((a, b) => a - b);
  const responses = latencies.length;
  return {
    op: op.label,
    connections,
    responses,
    rps: responses / result.duration,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies.length ? latencies[latencies.length - 1] : NaN,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    badBodies,
    badBodySample,
    statuses,
    samples,
    errorSamples,
    apiCpu: apiTicks === undefined ? undefined : (apiTicks / CLK_TCK / elapsedS) * 100,
    pgCpu: (pgTicks / CLK_TCK / elapsedS) * 100,
    benchCpu: ((self.user + self.system) / 1e6 / elapsedS) * 100,
    apiRssMb: (procStatusKb(serverPid, 'VmRSS') ?? NaN) / 1024,
  };
}

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------

const fmt = (n, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '-');

function printTable(rows) {
  // Throughput relative to the baseline (GET /healthz) at the same concurrency, measured in this run.
  const baseline = new Map(rows.filter((r) => r.op.startsWith('baseline')).map((r) => [r.connections, r.rps]));
  const ratio = (r) => (baseline.has(r.connections) && !r.op.startsWith('baseline') ? `${fmt(r.rps / baseline.get(r.connections), 2)}x` : '-');
  const header = ['operation', 'conns', 'requests', 'req/s', 'vs baseline', 'p50 ms', 'p99 ms', 'max ms', 'non-2xx', 'errors', 'bad body', 'api cpu%', 'pg cpu%', 'bench cpu%', 'api rss MB', ''];
  const lines = rows.map((r) => {
    const trouble = r.non2xx > 0 || r.errors > 0 || r.badBodies > 0;
    return [
      r.op,
      String(r.connections),
      String(r.responses),
      fmt(r.rps, 0),
      ratio(r),
      fmt(r.p50, 2),
      fmt(r.p99, 2),
      fmt(r.max, 1),
      String(r.non2xx),
      r.timeouts ? `${r.errors} (${r.timeouts} t/o)` : String(r.errors),
      String(r.badBodies),
      fmt(r.apiCpu, 0),
      fmt(r.pgCpu, 0),
      fmt(r.benchCpu, 0),
      fmt(r.apiRssMb, 0),
      trouble ? '<-- FAILURES' : '',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const left = new Set([0, header.length - 1]);
  const row = (cells) => cells.map((c, i) => (left.has(i) ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  console.log(row(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  ').trimEnd());
  for (const l of lines) console.log(row(l));
}

function printFailures(rows) {
  const failed = rows.filter((r) => r.non2xx > 0 || r.errors > 0 || r.badBodies > 0);
  if (!failed.length) return;
  console.log('');
  console.log('!!! FAILED REQUESTS: these figures include non-2xx responses, connection errors or unexpected bodies !!!');
  for (const r of failed) {
    const codes = Object.entries(r.statuses)
      .map(([s, c]) => `${s}×${c}`)
      .join(' ');
    console.log(`  ${r.op} @ ${r.connections} conns: statuses ${codes || '(none)'}`);
    for (const [status, body] of r.samples) console.log(`    HTTP ${status}: ${body}`);
    for (const [message, count] of r.errorSamples) console.log(`    connection error ×${count}: ${message}`);
    if (r.badBodySample !== undefined) console.log(`    unexpected 2xx body ×${r.badBodies}: ${r.badBodySample}`);
  }
}

function machineLine(loadBefore) {
  const cpus = os.cpus();
  const model = cpus[0]?.model?.trim() ?? 'unknown CPU';
  return `machine: nproc ${os.availableParallelism()} (${model}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, node ${process.version}, ${os.type()} ${os.release()}; load average before the run ${loadBefore.map((l) => l.toFixed(2)).join(' ')} (other work on the machine skews the figures)`;
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

async function dropDatabase(pg, serverUrl, name) {
  const client = new pg.Client({ connectionString: withDatabase(serverUrl, 'postgres'), connectionTimeoutMillis: 10_000, statement_timeout: 30_000 });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS "${name.replaceAll('"', '""')}" WITH (FORCE)`);
  } finally {
    await client.end().catch(() => {});
  }
}

async function main() {
  const signals = trapSignals((signal) => {
    say(`${signal} received: stopping, then cleaning up`);
    abort.abort(new StackError(`interrupted by ${signal}`));
    currentLoad?.stop();
  });
  const cleanups = []; // run in reverse order, each one even if another fails
  let exitCode = 0;

  try {
    const cfg = settings();
    const loadBefore = os.loadavg();
    await ensureInstalled();
    checkInterrupted(signals);
    const services = await ensureServices({ purpose: 'start', need: ['postgres', 'redis'] });
    cleanups.push(['stop private services', () => services.stop()]);
    checkInterrupted(signals);

    const { default: autocannon } = await import('autocannon');
    const { default: pg } = await import('pg');

    // Our own database, next to the one DATABASE_URL names (or the default one).
    const runTag = `${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
    const dbName = `opensym_bench_${runTag}`;
    const databaseUrl = withDatabase(services.databaseUrl, dbName);
    if (!(await createDatabaseIfMissing(databaseUrl))) throw new StackError(`database ${dbName} already exists; not touching it`);
    cleanups.push([
      `drop database ${dbName}`,
      async () => {
        await dropDatabase(pg, services.databaseUrl, dbName);
        say(`dropped database ${dbName}`);
      },
    ]);
    checkInterrupted(signals);

    say(`migrating ${redact(databaseUrl)}`);
    const env = { ...process.env, DATABASE_URL: databaseUrl };
    await runCaptured('migrate deploy', ['--import', 'tsx', 'packages/db/tools/migrate.mts', 'deploy'], env);
    checkInterrupted(signals);

    // The org, bot and token, with the admin command (the same as `npm run -s admin -- … --json`).
    const orgSlug = `bench-${runTag.replace(/_/g, '-')}`;
    const admin = async (...args) => JSON.parse(await runCaptured(`admin ${args.slice(0, 2).join(' ')}`, ['scripts/admin.mjs', ...args, '--json'], env));
    await admin('org', 'create', '--slug', orgSlug);
    await admin('bot', 'create', '--org', orgSlug, '--name', 'terraform');
    const { token } = await admin('token', 'issue', '--org', orgSlug, '--bot', 'terraform', '--label', 'bench');
    checkInterrupted(signals);

    const port = await findFreePort(18080);
    const baseUrl = `http://${HOST}:${port}`;
    const serverEnv = { ...env, PORT: String(port), HOST, REDIS_URL: services.redisUrl, LOG_LEVEL: 'warn' };
    const poolSize = process.env.DB_POOL_SIZE || '10 (default)';
    say(`starting the API on ${baseUrl} (DB_POOL_SIZE ${poolSize})`);
    const server = startServer(serverEnv);
    cleanups.push(['stop the API', () => stopServer(server)]);
    await waitReady(server, baseUrl, signals);
    const startupRssMb = (procStatusKb(server.pid, 'VmRSS') ?? NaN) / 1024;

    say(`creating fixtures: a flow graph, ${READ_IDS} integrations, ${FIND_FLOWS} flows`);
    const setupStart = Date.now();
    const fixtures = await createFixtures(api(baseUrl, token), runTag);
    say(`fixtures created in ${((Date.now() - setupStart) / 1000).toFixed(1)} s`);

    const ops = operations(fixtures, runTag);
    const ctx = { baseUrl, token, serverPid: server.pid };
    const rows = [];
    say(
      `measuring ${cfg.ops.join(', ')} at ${cfg.connections.join(', ')} connections, ${cfg.duration} s each (+${cfg.warmup} s warm-up per operation)` +
        (cfg.quick ? ' [BENCH_QUICK]' : ''),
    );
    for (const name of cfg.ops) {
      const op = ops[name];
      checkInterrupted(signals);
      // Warm-up (JIT, pool connections, caches): not in the table, but its failures are not hidden either.
      const warm = await measure(autocannon, ctx, op, Math.min(8, Math.max(...cfg.connections)), cfg.warmup);
      if (warm.non2xx || warm.errors || warm.badBodies) {
        say(`  !! warm-up of ${op.label}: non-2xx ${warm.non2xx}, errors ${warm.errors}, bad bodies ${warm.badBodies}`);
        printFailures([{ ...warm, op: `${op.label} (warm-up)` }]);
      }
      for (const connections of cfg.connections) {
        checkInterrupted(signals);
        if (server.exited) throw new StackError(`the API exited (${server.exit}) during the run:\n${serverTail(server)}`);
        const r = await measure(autocannon, ctx, op, connections, cfg.duration);
        checkInterrupted(signals);
        rows.push(r);
        const flag = r.non2xx || r.errors || r.badBodies ? `  !! non-2xx ${r.non2xx}, errors ${r.errors}, bad bodies ${r.badBodies}` : '';
        say(`  ${op.label} @ ${connections}: ${fmt(r.rps, 0)} req/s, p99 ${fmt(r.p99, 2)} ms${flag}`);
      }
    }
    if (server.exited) throw new StackError(`the API exited (${server.exit}) during the run:\n${serverTail(server)}`);

    const peakRssKb = procStatusKb(server.pid, 'VmHWM');
    console.log('');
    console.log(machineLine(loadBefore));
    console.log(
      `api: pid ${server.pid}, DB_POOL_SIZE ${poolSize}, LOG_LEVEL warn; RSS after start ${fmt(startupRssMb, 0)} MB, peak RSS (VmHWM) ${fmt((peakRssKb ?? NaN) / 1024, 0)} MB`,
    );
    console.log(`load: autocannon ${cfg.duration} s per row, HTTP/1.1 keep-alive, no pipelining; latency over all responses; cpu% is per core (200% = both of 2 cores)`);
    console.log('');
    printTable(rows);
    printFailures(rows);
    const levels = Object.entries(server.byLevel)
      .map(([l, c]) => `${l} ${c}`)
      .join(', ');
    console.log('');
    if (server.lines === 0) console.log('api log: no lines at LOG_LEVEL=warn');
    else {
      console.log(`api log: ${server.lines} lines (${levels}); most frequent:`);
      for (const [message, count] of [...server.messages].sort((a, b) => b[1] - a[1]).slice(0, 8)) console.log(`  ×${count}  ${message}`);
    }
  } catch (err) {
    if (signals.signal) say(`interrupted by ${signals.signal}`);
    else {
      reportError('bench', err);
      exitCode = 1;
    }
  } finally {
    for (const [what, fn] of cleanups.reverse()) {
      try {
        await fn();
      } catch (err) {
        console.error(`[bench] cleanup: ${what} failed: ${err.message}`);
        exitCode ||= 1;
      }
    }
  }
  if (signals.signal) exitCode = signalExitCode(signals.signal);
  process.exitCode = exitCode;
}

await main();
