// Plumbing of `npm run drill` (scripts/drill.mjs) and the `load` section of `npm run bench`: private PostgreSQL and
// Redis servers that a drill may kill and restart, a migrated template database with an org and a bot token, and
// per drill a database copied from it, a Redis of its own, the API and worker processes, the http strategy's target
// (./target.mjs), a flow, members, an Events-API client that retries safely, a load generator and the wait for every
// run to settle.
//
// Private servers, not the shared ones: the drills kill and restart them, and the counters the load bench reads
// (pg_stat_statements, Redis INFO commandstats) must see only our own traffic. They live in temporary folders and
// are removed at the end. Only Node built-ins, stack.mjs and bench/common.mjs are imported statically; pg, ioredis
// and tsx are loaded by `openSuite` (after ensureInstalled()).
/* global fetch, AbortController, AbortSignal */

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT, StackError, findFreePort, findPostgresBinaries, redisPing, withDatabase } from '../stack.mjs';
import { HOST, api, createFlowGraph, loadBodies, runCaptured, serverTail, startServer, stopServer, waitReady, watchExit } from '../bench/common.mjs';
import { createLogSink, createTarget } from './target.mjs';

export { HOST, StackError };

const READY_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 15_000;
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

let prefix = 'drill';
/** Sets the prefix of progress lines ([drill] or [bench]). */
export function setSayPrefix(p) {
  prefix = p;
}
const t0 = performance.now();
export function say(message) {
  console.log(`[${prefix} +${((performance.now() - t0) / 1000).toFixed(1)}s] ${message}`);
}

export const tag = () => `${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;

// ---------------------------------------------------------------------------
// Private PostgreSQL (initdb in a temporary folder; stop/start at will)
// ---------------------------------------------------------------------------

/** initdb and pg_ctl refuse to run as root: as root they run as the `postgres` OS user, as in stack.mjs. */
function pgTool(cwd, command, args, what) {
  const [cmd, fullArgs] = isRoot ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args];
  const result = spawnSync(cmd, fullArgs, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (result.error) throw new StackError(`${what}: could not start (${result.error.message})`);
  if (result.status !== 0) throw new StackError(`${what} failed (exit code ${result.status}): ${`${result.stdout}${result.stderr}`.trim().split('\n').slice(-6).join(' | ')}`);
}

/**
 * A PostgreSQL server of our own on a free port, data in a temporary folder (fsync off: only processes die here,
 * never the machine). `preload`: shared_preload_libraries (e.g. pg_stat_statements for the load bench).
 */
export async function startPrivatePostgres({ label = 'drill', preload = [] } = {}) {
  const bins = findPostgresBinaries();
  const root = mkdtempSync(join(os.tmpdir(), `opensym-${label}-pg-`));
  chmodSync(root, 0o755);
  if (isRoot) {
    const chown = spawnSync('chown', ['postgres:postgres', root], { encoding: 'utf8' });
    if (chown.status !== 0) throw new StackError(`chown postgres ${root} failed: ${chown.stderr.trim()}`);
  }
  const pgdata = join(root, 'data');
  const logFile = join(root, 'postgres.log');
  const port = await findFreePort(55432);
  const server = {
    port,
    root,
    logFile,
    url: `postgresql://postgres@${HOST}:${port}/postgres`,
    running: false,
    async start() {
      pgTool(root, bins.pgCtl, ['-D', pgdata, '-l', logFile, '-w', '-t', '60', 'start'], 'pg_ctl start');
      server.running = true;
    },
    /** mode: fast (clean) or immediate (like a crash: no checkpoint, recovery at the next start). */
    async stop(mode = 'fast') {
      pgTool(root, bins.pgCtl, ['-D', pgdata, '-m', mode, '-w', '-t', '60', 'stop'], `pg_ctl stop -m ${mode}`);
      server.running = false;
    },
    async destroy() {
      if (server.running) await server.stop('immediate').catch(() => {});
      rmSync(root, { recursive: true, force: true });
    },
    logTail: (n = 10) => {
      try {
        return readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
      } catch {
        return '(no log)';
      }
    },
  };
  try {
    pgTool(root, bins.initdb, ['-D', pgdata, '--auth=trust', '--username=postgres', '--encoding=UTF8', '--locale=C', '--no-sync'], 'initdb');
    const conf = [
      `port = ${port}`,
      `listen_addresses = '${HOST}'`,
      "unix_socket_directories = ''",
      'fsync = off',
      'max_connections = 200',
      ...(preload.length ? [`shared_preload_libraries = '${preload.join(',')}'`] : []),
      '',
    ].join('\n');
    writeFileSync(join(pgdata, 'postgresql.conf'), `${readFileSync(join(pgdata, 'postgresql.conf'), 'utf8')}\n# scripts/drill/harness.mjs\n${conf}`);
    await server.start();
  } catch (err) {
    await server.destroy();
    throw err;
  }
  return server;
}

// ---------------------------------------------------------------------------
// Private Redis (a child process; kill -9 and an empty restart on the same port lose every job)
// ---------------------------------------------------------------------------

export async function startPrivateRedis({ port } = {}) {
  port ??= await findFreePort(56379);
  const dir = mkdtempSync(join(os.tmpdir(), 'opensym-drill-redis-'));
  const redis = { port, url: `redis://${HOST}:${port}`, child: undefined, pid: undefined, starts: 0 };
  redis.start = async () => {
    // No persistence: a restart comes back empty. hz 100: delayed jobs fire within ~10 ms (as in .ci/run).
    const child = spawn('redis-server', ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--hz', '100', '--dir', dir, '--daemonize', 'no'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += c));
    redis.child = child;
    redis.pid = child.pid;
    redis.exited = new Promise((r) => child.once('exit', r));
    const deadline = Date.now() + 15_000;
    while (!(await redisPing(port))) {
      if (child.exitCode !== null || Date.now() > deadline) throw new StackError(`redis-server on port ${port} did not start: ${stderr.trim() || 'no PONG'}`);
      await sleep(50);
    }
    redis.starts++;
  };
  redis.kill9 = async () => {
    if (!redis.child || redis.child.exitCode !== null) return;
    redis.child.kill('SIGKILL');
    await redis.exited;
  };
  redis.stop = async () => {
    if (redis.child && redis.child.exitCode === null) {
      redis.child.kill('SIGTERM');
      await Promise.race([redis.exited, sleep(5000).then(() => redis.child.kill('SIGKILL'))]);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  await redis.start();
  return redis;
}

// ---------------------------------------------------------------------------
// The worker process (apps/worker, as scripts/start.mjs runs it)
// ---------------------------------------------------------------------------

export function startWorkerProcess(env, name = 'worker') {
  const child = spawn(process.execPath, ['--no-node-snapshot', '--import', 'tsx', '--conditions=@opensym/source', 'apps/worker/src/main.ts'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // own process group: kill -9 reaches it and anything it spawned
  });
  const worker = { name, child, pid: child.pid, exited: false, exit: undefined, ready: false, tail: [], counts: new Map() };
  worker.exitPromise = watchExit(child, worker);
  const onData = (chunk) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      worker.tail.push(line);
      if (worker.tail.length > 40) worker.tail.shift();
      try {
        const parsed = JSON.parse(line);
        if (parsed.msg === 'worker ready') worker.ready = true;
        if (parsed.level >= 40) {
          const key = `${parsed.level >= 50 ? 'error' : 'warn'}: ${parsed.msg}${parsed.err?.message ? `: ${parsed.err.message.split('\n').filter(Boolean).at(-1).slice(0, 160)}` : ''}`;
          if (worker.counts.size < 40 || worker.counts.has(key)) worker.counts.set(key, (worker.counts.get(key) ?? 0) + 1);
        }
      } catch {
        worker.counts.set(`text: ${line.slice(0, 160)}`, (worker.counts.get(`text: ${line.slice(0, 160)}`) ?? 0) + 1);
      }
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  worker.waitReady = async () => {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (!worker.ready) {
      if (worker.exited) throw new StackError(`${name} exited (${worker.exit}) before it was ready:\n${worker.tail.slice(-12).join('\n')}`);
      if (Date.now() > deadline) throw new StackError(`${name} did not log "worker ready" within ${READY_TIMEOUT_MS / 1000} s:\n${worker.tail.slice(-12).join('\n')}`);
      await sleep(50);
    }
  };
  const signalGroup = (signal) => {
    try {
      process.kill(-worker.pid, signal);
    } catch (err) {
      if (err.code !== 'ESRCH') throw err;
    }
  };
  worker.kill9 = async () => {
    signalGroup('SIGKILL');
    await worker.exitPromise;
  };
  worker.stop = async () => {
    if (worker.exited) return;
    signalGroup('SIGTERM');
    const grace = new AbortController();
    const stopped = await Promise.race([worker.exitPromise.then(() => true), sleep(STOP_GRACE_MS, false, { signal: grace.signal }).catch(() => false)]);
    grace.abort();
    if (!stopped) {
      signalGroup('SIGKILL');
      await worker.exitPromise;
    }
  };
  return worker;
}

// ---------------------------------------------------------------------------
// The suite: one private PostgreSQL with a migrated template database (org, bot, token)
// ---------------------------------------------------------------------------

/**
 * Starts the private PostgreSQL and prepares the template every drill's database is copied from (CREATE DATABASE
 * … TEMPLATE: a fraction of a second, instead of migrating and running the admin command per drill).
 */
export async function openSuite({ label = 'drill', preload = [], cleanups }) {
  const { default: pg } = await import('pg');
  const { Redis } = await import('ioredis');
  const { tsImport } = await import('tsx/esm/api');
  const { startHttpReceiver } = await tsImport('../../packages/testing/src/http-receiver.ts', import.meta.url);
  const started = performance.now();
  const postgres = await startPrivatePostgres({ label, preload });
  cleanups.push([`remove the private PostgreSQL (${postgres.root})`, () => postgres.destroy()]);
  say(`private PostgreSQL on ${HOST}:${postgres.port} (${postgres.root})`);

  const template = `${label}_template`;
  const admin = new pg.Client({ connectionString: postgres.url });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${template}"`);
  await admin.end();
  const templateUrl = withDatabase(postgres.url, template);
  const env = { ...process.env, DATABASE_URL: templateUrl };
  delete env.NODE_OPTIONS;
  await runCaptured('migrate deploy', ['--import', 'tsx', 'packages/db/tools/migrate.mts', 'deploy'], env);
  const orgSlug = label;
  const adminCmd = async (...args) => JSON.parse(await runCaptured(`admin ${args.slice(0, 2).join(' ')}`, ['scripts/admin.mjs', ...args, '--json'], env));
  await adminCmd('org', 'create', '--slug', orgSlug);
  await adminCmd('bot', 'create', '--org', orgSlug, '--name', 'drill');
  const { token } = await adminCmd('token', 'issue', '--org', orgSlug, '--bot', 'drill', '--label', label);
  const bodies = await loadBodies();
  say(`template database ${template} migrated, org ${orgSlug} with a bot token (${((performance.now() - started) / 1000).toFixed(1)} s)`);
  return { pg, Redis, startHttpReceiver, postgres, template, orgSlug, token, bodies, label, env };
}

// ---------------------------------------------------------------------------
// A drill's stack: database, Redis, API, target, flow, members, worker(s)
// ---------------------------------------------------------------------------

/** Worker settings for drills: a crashed worker's jobs are taken over in seconds, the reconciler passes often. */
export const DRILL_WORKER_ENV = {
  JOB_LOCK_DURATION_MS: '3000',
  JOB_STALLED_INTERVAL_MS: '1000',
  RECONCILE_INTERVAL_MS: '1000',
  JOB_BACKOFF_MS: '500',
  WORKER_DB_POOL_SIZE: '5',
  // Any free port for GET /metrics: drills run several workers at once.
  WORKER_METRICS_PORT: '0',
  LOG_LEVEL: 'info',
};

/**
 * Everything one drill runs on. `members`: how many requesters to create (one per run: each run is its own grant).
 * `workers`: worker processes to start. `workerEnv`: extra worker settings. `redis`: a started private Redis to use
 * (default: a new one, stopped with the drill). `approval: 'api'`: a flow without hooks, approved through the API
 * (default: the auto-approving flow, and the suite's detected mode). Cleanup is registered on `cleanups` as each
 * part starts.
 */
export async function openDrill(suite, name, { members = 200, workers = 1, workerEnv = {}, baseWorkerEnv = DRILL_WORKER_ENV, apiEnv = {}, cleanups, signals = {}, redis: givenRedis, approval: forcedApproval }) {
  const { pg } = suite;
  const runTag = tag();
  const dbName = `${suite.label}_${name.replace(/[^a-z0-9]/gi, '_')}_${runTag}`;
  const admin = new pg.Client({ connectionString: suite.postgres.url });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${dbName}" TEMPLATE "${suite.template}"`);
  await admin.end();
  const databaseUrl = withDatabase(suite.postgres.url, dbName);
  cleanups.push([
    `drop database ${dbName}`,
    async () => {
      if (!suite.postgres.running) return;
      const c = new pg.Client({ connectionString: suite.postgres.url });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
      } finally {
        await c.end().catch(() => {});
      }
    },
  ]);
  // A pool that survives a PostgreSQL restart: broken idle connections are dropped, new ones made on demand.
  const db = new pg.Pool({ connectionString: databaseUrl, max: 3, connectionTimeoutMillis: 10_000 });
  db.on('error', () => {});
  cleanups.push(['close the drill database pool', () => db.end()]);

  const redis = givenRedis ?? (await startPrivateRedis());
  if (!givenRedis) cleanups.push([`stop redis-server :${redis.port}`, () => redis.stop()]);
  const queuePrefix = `${suite.label}_${runTag}`;

  const receiver = await suite.startHttpReceiver();
  cleanups.push(['close the strategy target', () => receiver.close()]);
  const target = createTarget(receiver);
  const logReceiver = await suite.startHttpReceiver();
  cleanups.push(['close the log destination', () => logReceiver.close()]);
  const logs = createLogSink(logReceiver);

  const port = await findFreePort(18180);
  const baseUrl = `http://${HOST}:${port}`;
  const baseEnv = { ...process.env, DATABASE_URL: databaseUrl, REDIS_URL: redis.url, QUEUE_PREFIX: queuePrefix };
  delete baseEnv.NODE_OPTIONS;
  const server = startServer({ ...baseEnv, PORT: String(port), HOST, LOG_LEVEL: 'warn', DB_POOL_SIZE: '5', ...apiEnv });
  cleanups.push(['stop the API', () => stopServer(server)]);
  const workerEnvFull = { ...baseEnv, ...baseWorkerEnv, ...workerEnv };
  const procs = [];
  const ctx = {
    name,
    suite,
    db,
    redis,
    receiver,
    target,
    logs,
    server,
    baseUrl,
    databaseUrl,
    dbName,
    queuePrefix,
    workers: procs,
    workerEnv: workerEnvFull,
    runTag,
    /** Starts one more worker process and waits until it is ready. */
    async startWorker(label = `worker ${procs.length + 1}`) {
      const started = performance.now();
      const w = startWorkerProcess(workerEnvFull, label);
      procs.push(w);
      cleanups.push([`stop ${label}`, () => w.stop()]);
      await w.waitReady();
      w.startMs = performance.now() - started;
      return w;
    },
  };
  const startingWorkers = Array.from({ length: workers }, () => startWorkerProcess(workerEnvFull, `worker ${procs.length + 1}`)).map((w, i) => {
    w.name = `worker ${i + 1}`;
    procs.push(w);
    cleanups.push([`stop ${w.name}`, () => w.stop()]);
    return w;
  });
  await waitReady(server, baseUrl, signals);
  await Promise.all(startingWorkers.map((w) => w.waitReady()));
  say(`${name}: database ${dbName}, redis-server :${redis.port}, API ${baseUrl}, ${procs.length} worker(s) ready`);

  const call = api(baseUrl, suite.token);
  const graph = await createFlowGraph(call, suite.bodies);
  const post = (path, body) => call('POST', `entities/${path}`, body);
  // The environment's log destinations: only an http one to the drill's log sink (the graph's own point at hosts that
  // do not exist here), so that every drill can check that each audit entry was delivered.
  const logDestination = await post('log-destinations', { type: 'http', integration_id: '<null>', settings: { url: `${logReceiver.url}/logs` } });
  const envUrl = `${baseUrl}/api/v1/entities/environments/${graph.environmentId}`;
  const headers = { authorization: `Bearer ${suite.token}`, 'content-type': 'application/json' };
  const environment = await (await fetch(envUrl, { headers: { authorization: headers.authorization } })).json();
  for (const k of ['id', 'created_at', 'updated_at']) delete environment[k];
  const patched = await fetch(envUrl, { method: 'PATCH', headers, body: JSON.stringify({ ...environment, log_destination_ids: [logDestination.id] }) });
  if (patched.status !== 200) throw new StackError(`setup: PATCH environment → HTTP ${patched.status}: ${(await patched.text()).slice(0, 300)}`);
  const accessTarget = await post('access-targets', { type: 'custom', slug: `drill-db-${name}`, label: 'Drill DB', settings: { identifier: 'drill' } });
  const strategy = await post('access-strategies', {
    type: 'http',
    slug: `drill-http-${name}`,
    integration_id: '<null>',
    targets: [accessTarget.id],
    settings: { url: `${receiver.url}/grant` },
  });
  const flow = await post('flows', {
    slug: `drill-access-${name}`,
    implementation: Buffer.from(forcedApproval === 'api' ? 'export {}\n' : AUTO_APPROVE_IMPL).toString('base64'),
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
  ctx.flowSrn = `${suite.orgSlug}:flow:${flow.slug}:latest`;
  ctx.targetId = accessTarget.id;

  const { rows } = await db.query(
    `INSERT INTO "User" ("id", "orgId", "type", "role", "email", "username", "firstName", "lastName", "updatedAt")
     SELECT gen_random_uuid(), o."id", 'normal'::"UserType", 'member'::"UserRole", $2 || g || '@example.com', $2 || g || '@example.com', 'Drill', 'Member ' || g, now()
     FROM "Organization" o, generate_series(1, $3::int) g WHERE o."slug" = $1 RETURNING "email"`,
    [suite.orgSlug, `${name}-member-`, members],
  );
  let next = 0;
  ctx.nextMember = () => {
    if (next >= rows.length) throw new StackError(`${name}: ran out of members (${rows.length})`);
    return rows[next++].email;
  };
  ctx.events = eventsClient(baseUrl, suite.token);
  // The first drill finds out how runs get approved (suite.approval), with a probe run that is verified like the rest.
  ctx.probeRunIds = [];
  if (forcedApproval) {
    ctx.approval = forcedApproval;
    return ctx;
  }
  if (!suite.approval) {
    const { mode, probeRunId } = await detectAutoApproval(ctx);
    suite.approval = mode;
    ctx.probeRunIds.push(probeRunId);
    say(AUTO_APPROVAL_NOTE[mode]);
  }
  ctx.approval = suite.approval;
  return ctx;
}

/**
 * The flow's implementation: onRequest approves every request. Once the engine runs on_request hooks (see
 * packages/engine/src/steps.ts), runs approve themselves; until then `detectAutoApproval` notices and the load
 * approves each run through the API right after requesting it.
 */
export const AUTO_APPROVE_IMPL = `import { ApprovalTemplate } from '@opensym/sdk'

export function onRequest() {
  return ApprovalTemplate.approve({ reason: 'auto-approved (drill / load bench)' })
}
`;

/**
 * Whether the engine runs the flow's onRequest hook: one probe run, requested and left alone for up to `waitMs`.
 * Returns 'hook' when it got approved by itself, else 'api' (and approves the probe, so that it ends normally).
 */
export async function detectAutoApproval(ctx, { waitMs = 4000, durationS = 1 } = {}) {
  const r = await ctx.events('events/request', requestBody(ctx, ctx.nextMember(), durationS), { key: `probe-${ctx.runTag}` });
  if (!r.ok) throw new StackError(`${ctx.name}: the probe request failed: ${r.error ?? `HTTP ${r.status} ${JSON.stringify(r.body)}`}`);
  const runId = r.body.run_id;
  const deadline = Date.now() + waitMs;
  while (Date.now() < deadline) {
    const { rows } = await ctx.db.query(`SELECT "status"::text AS s FROM "Run" WHERE "id" = $1`, [runId]);
    if (rows[0] && rows[0].s !== 'requested') return { mode: 'hook', probeRunId: runId };
    await sleep(100);
  }
  await ctx.events('events/approve', { run_id: runId }, { key: `probe-approve-${ctx.runTag}` });
  return { mode: 'api', probeRunId: runId };
}

export const AUTO_APPROVAL_NOTE = {
  hook: 'auto-approval: the flow\'s onRequest hook approves each run (engine)',
  api: 'auto-approval: the engine does not run onRequest hooks yet, so each run is approved through the API (POST /events/approve, bot token) right after its request',
};

export function requestBody(ctx, email, durationS) {
  return { flow_srn: ctx.flowSrn, flow_inputs: { reason: 'drill', duration: durationS, target_id: ctx.targetId }, user_email: email };
}

// ---------------------------------------------------------------------------
// Events API client: retries what may be retried, with an Idempotency-Key, until a deadline
// ---------------------------------------------------------------------------

export function eventsClient(baseUrl, token) {
  /** POSTs until 200, a final (non-retryable) error, or the deadline. Never throws for HTTP or network errors. */
  return async function post(path, body, { key, deadlineMs = 60_000, timeoutMs = 15_000 } = {}) {
    const deadline = Date.now() + deadlineMs;
    const started = performance.now();
    let attempts = 0;
    let last;
    for (;;) {
      attempts++;
      try {
        const res = await fetch(`${baseUrl}/api/v1/${path}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(key ? { 'idempotency-key': key } : {}) },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(timeoutMs),
        });
        const text = await res.text();
        let json;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        if (res.status === 200) return { ok: true, status: 200, body: json, attempts, ms: performance.now() - started };
        const retryable = res.status >= 500 || res.status === 429 || json?.is_retryable === true;
        last = `HTTP ${res.status}${json?.code ? ` ${json.code}` : ''}: ${(json?.message ?? text).slice(0, 160)}`;
        if (!retryable || !key) return { ok: false, status: res.status, body: json, error: last, attempts, ms: performance.now() - started };
      } catch (err) {
        last = err.cause?.code ?? err.name ?? err.message;
        if (!key && attempts > 1) return { ok: false, status: 0, error: last, attempts, ms: performance.now() - started };
      }
      if (Date.now() >= deadline) return { ok: false, status: 0, error: `gave up after ${attempts} attempts: ${last}`, attempts, ms: performance.now() - started };
      await sleep(Math.min(1000, 50 * 2 ** Math.min(attempts, 5)));
    }
  };
}

// ---------------------------------------------------------------------------
// Load: runs at a steady rate, each requested then approved (unless the hook approves)
// ---------------------------------------------------------------------------

/**
 * `count` runs started at `ratePerS`, run i with duration `durationS(i)` seconds. Each is requested, then approved
 * through the API unless `approval` is 'hook'. Clients retry (same Idempotency-Key) for up to `deadlineMs`: a
 * request that never got its 200 is not lost if it failed, and is found in PostgreSQL if it was committed anyway.
 * `label` makes the Idempotency-Keys unique when one drill generates several batches.
 */
export async function generateRuns(ctx, { count, ratePerS, durationS, approval = 'api', deadlineMs = 60_000, onRun, label = 'load' }) {
  const started = performance.now();
  const runs = [];
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      await sleep(Math.max(0, started + (i * 1000) / ratePerS - performance.now()));
      const run = { i, email: ctx.nextMember(), startedAt: performance.now() };
      runs.push(run);
      const req = await ctx.events('events/request', requestBody(ctx, run.email, durationS(i)), { key: `${ctx.runTag}-${label}-request-${i}`, deadlineMs });
      run.requestAttempts = req.attempts;
      if (!req.ok) {
        run.requestError = req.error;
        return;
      }
      run.runId = req.body.run_id;
      run.requestMs = req.ms;
      if (approval === 'api') {
        const appr = await ctx.events('events/approve', { run_id: run.runId }, { key: `${ctx.runTag}-${label}-approve-${i}`, deadlineMs });
        run.approveAttempts = appr.attempts;
        if (!appr.ok) run.approveError = appr.error;
        else run.approveMs = appr.ms;
      }
      run.acceptedAt = performance.now();
      onRun?.(run);
    }),
  );
  return runs;
}

/** Durations from `min` to `max` seconds, cycling over the runs. */
export const durations = (min, max) => (i) => min + (i % (max - min + 1));

/** Errors the clients saw, most frequent first, as "×n message" lines. */
export function clientErrorLines(runs, limit = 5) {
  return [...clientErrors(runs)].sort((a, b) => b[1] - a[1]).slice(0, limit).map(([m, n]) => `×${n} ${m}`);
}

/** Error messages of a generator's runs, counted. */
export function clientErrors(runs) {
  const counts = new Map();
  for (const r of runs) {
    for (const e of [r.requestError && `request: ${r.requestError}`, r.approveError && `approve: ${r.approveError}`].filter(Boolean)) counts.set(e, (counts.get(e) ?? 0) + 1);
  }
  return counts;
}

/**
 * Waits until every run in the drill's database has ended and no event is pending. Runs still `requested` a few
 * seconds after the load (a request committed although its client saw an error, or an approval that gave up) are
 * approved here through the API — the drill's "approver" — unless the hook approves. Returns what it did.
 */
export async function waitSettled(ctx, { timeoutMs, approval = 'api' }) {
  const started = Date.now();
  const swept = new Set();
  let last = { open: -1, pending: -1 };
  while (Date.now() - started < timeoutMs) {
    try {
      const { rows } = await ctx.db.query(
        `SELECT (SELECT count(*)::int FROM "Run" WHERE "status" IN ('requested', 'approved', 'escalated')) AS open,
                (SELECT count(*)::int FROM "RunEvent" WHERE "status" = 'pending') AS pending`,
      );
      last = rows[0];
      if (last.open === 0 && last.pending === 0) return { settled: true, seconds: (Date.now() - started) / 1000, swept: swept.size };
      if (approval === 'api') {
        const { rows: stuck } = await ctx.db.query(
          `SELECT r."id" FROM "Run" r WHERE r."status" = 'requested' AND r."createdAt" < now() - interval '3 seconds'
             AND NOT EXISTS (SELECT 1 FROM "RunEvent" e WHERE e."runId" = r."id" AND e."name" = 'approve')`,
        );
        for (const { id } of stuck) {
          if (swept.has(id)) continue;
          swept.add(id);
          await ctx.events('events/approve', { run_id: id }, { key: `${ctx.runTag}-sweep-${id}`, deadlineMs: 10_000 });
        }
      }
    } catch {
      // PostgreSQL restarting: ask again
    }
    await sleep(300);
  }
  return { settled: false, seconds: (Date.now() - started) / 1000, swept: swept.size, last };
}

/** The worker processes' warnings and errors, most frequent first. */
export function workerLogLines(ctx, limit = 6) {
  const all = new Map();
  for (const w of ctx.workers) for (const [k, n] of w.counts) all.set(k, (all.get(k) ?? 0) + n);
  return [...all].sort((a, b) => b[1] - a[1]).slice(0, limit);
}

export function apiLogLines(ctx, limit = 4) {
  return [...ctx.server.messages].sort((a, b) => b[1] - a[1]).slice(0, limit);
}

export { serverTail };
