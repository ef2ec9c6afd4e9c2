// The `api` section of `npm run bench`: real HTTP load against the entity API with autocannon, at several
// concurrency levels, as a table (never pass/fail).
//
// Environment:
//   BENCH_DURATION=5          seconds per measurement (default 5; BENCH_QUICK=1: 1)
//   BENCH_CONNECTIONS=1,8,32  concurrency levels
//   BENCH_OPS=baseline,create,read,find  which operations to measure (baseline: GET /healthz, the HTTP floor)

import { StackError } from '../stack.mjs';
import {
  CLK_TCK,
  checkInterrupted,
  checkServer,
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
} from './common.mjs';

const READ_IDS = 300; // integrations pre-created for "read by id"
const FIND_FLOWS = 50; // flows pre-created for "find by slug"
const SETUP_CONCURRENCY = 4;

let currentLoad; // the running autocannon instance, stopped on a signal

/** Stops the running measurement at once (on Ctrl-C). */
export function stopLoad() {
  currentLoad?.stop();
}

export function settings() {
  const quick = quickMode();
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

/** On top of the shared flow graph: integrations to read by id and flows to find by slug. */
async function createFixtures(call, bodies, graph, runTag) {
  const post = (path, body) => call('POST', `entities/${path}`, body);
  const oktaIntegration = (slug) => ({ ...bodies.okta(graph.secretId), slug });
  const readIds = await pool(READ_IDS, SETUP_CONCURRENCY, async (i) => (await post('integrations', oktaIntegration(`read-${runTag}-${i}`))).id);
  // Mixed case on purpose: the API stores slugs lower-cased and finds them case-insensitively.
  const flow = (slug) => ({ ...bodies.flow(graph.environmentId, graph.strategyId), slug });
  const flowSlugs = await pool(FIND_FLOWS, SETUP_CONCURRENCY, async (i) => (await post('flows', flow(`Okta_Access_${i}`))).slug);
  return { oktaIntegration, readIds, flowSlugs };
}

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
  printColumns(header, lines);
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

/** Measures, then prints the table. `stack`: what bench.mjs set up (server, baseUrl, token, graph, bodies…). */
export async function run(stack, cfg) {
  const { default: autocannon } = await import('autocannon');
  const { server, signals } = stack;
  say(`api: creating fixtures: ${READ_IDS} integrations, ${FIND_FLOWS} flows`);
  const setupStart = Date.now();
  const fixtures = await createFixtures(stack.call, stack.bodies, stack.graph, stack.runTag);
  say(`api: fixtures created in ${((Date.now() - setupStart) / 1000).toFixed(1)} s`);

  const ops = operations(fixtures, stack.runTag);
  const ctx = { baseUrl: stack.baseUrl, token: stack.token, serverPid: server.pid };
  const rows = [];
  say(
    `api: measuring ${cfg.ops.join(', ')} at ${cfg.connections.join(', ')} connections, ${cfg.duration} s each (+${cfg.warmup} s warm-up per operation)` +
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
      checkServer(server);
      const r = await measure(autocannon, ctx, op, connections, cfg.duration);
      checkInterrupted(signals);
      rows.push(r);
      const flag = r.non2xx || r.errors || r.badBodies ? `  !! non-2xx ${r.non2xx}, errors ${r.errors}, bad bodies ${r.badBodies}` : '';
      say(`  ${op.label} @ ${connections}: ${fmt(r.rps, 0)} req/s, p99 ${fmt(r.p99, 2)} ms${flag}`);
    }
  }
  checkServer(server);

  const peakRssKb = procStatusKb(server.pid, 'VmHWM');
  console.log('');
  console.log('== entity API ==');
  console.log(
    `api: pid ${server.pid}, DB_POOL_SIZE ${stack.poolSize}, LOG_LEVEL warn; RSS after start ${fmt(stack.startupRssMb, 0)} MB, peak RSS (VmHWM) ${fmt((peakRssKb ?? NaN) / 1024, 0)} MB`,
  );
  console.log(`load: autocannon ${cfg.duration} s per row, HTTP/1.1 keep-alive, no pipelining; latency over all responses; cpu% is per core (200% = both of 2 cores)`);
  console.log('');
  printTable(rows);
  printFailures(rows);
}
