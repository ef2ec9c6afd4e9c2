// The `load` section of `npm run bench` (issue 8): sustained Events-API load at increasing rates against an API and a
// worker process on this machine, every run going request → approve → escalate → (2 s later) deescalate through the
// `http` strategy to a receiver in the bench process. Printed per rate: achieved throughput, end-to-end latency
// (request sent → the target receives the escalate call) p50/p99/max, error rate, and the PostgreSQL and Redis round
// trips per run (its whole life, de-escalation included).
//
// Its own servers, unlike the other sections (scripts/drill/harness.mjs, as `npm run drill`): a private PostgreSQL
// with pg_stat_statements preloaded and a private redis-server, so that the counters see this section's traffic only:
//   - PostgreSQL statements per run: pg_stat_statements calls on the section's database (every statement the API and
//     worker send, BEGIN/COMMIT included, i.e. the round trips), and transactions per run (pg_stat_database
//     xact_commit + xact_rollback; each autocommit statement is one). The bench's own few queries are excluded.
//   - Redis commands per run: INFO commandstats deltas (INFO itself excluded). Commands that Lua scripts run inside
//     Redis are counted there too, so the round trips are the script calls (EVALSHA…) plus the other commands'
//     share; both figures are printed.
// The counters cover each rate's load and its drain, so background work (the reconciler's passes, metrics polls,
// BullMQ's blocking waits) is included, spread over the runs.
//
// Auto-approval: the flow's implementation approves in onRequest; until the engine runs onRequest hooks, each run is
// approved through the API right after its request (the output says which). Clients do not retry: an HTTP error is
// an error of the run.
//
// Environment:
//   BENCH_LOAD_RATES=10,20,40,80   offered runs/s, one level each (BENCH_QUICK=1: 5,10,20); a level whose achieved
//                                   rate falls below 70 % of the offered one ends the climb (saturated)
//   BENCH_LOAD_SECONDS=20          seconds of load per level (BENCH_QUICK=1: 4)
//   BENCH_LOAD_APPROVAL=hook       hook: the auto-approving flow (through the API while the engine runs no hooks);
//                                   api: a flow without implementation code, approved through the API (the cost of
//                                   the sandbox shows as the difference)
//   BENCH_LOAD_TOP=n               also print the n statements with the most PostgreSQL time and the n most frequent
//                                   Redis commands, over all levels (where the round trips go)
//   WORKER_CONCURRENCY, WORKER_DB_POOL_SIZE, DB_POOL_SIZE …   passed through to the worker and the API

import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { StackError } from '../stack.mjs';
import { CLK_TCK, cpuTicks, fmt, percentile, printColumns, quickMode } from './common.mjs';
import { AUTO_APPROVAL_NOTE, generateRuns, openDrill, openSuite, say as harnessSay, setSayPrefix, workerLogLines } from '../drill/harness.mjs';

const RUN_DURATION_S = 2; // access duration: runs de-escalate within the level's drain
const ESCALATE_TIMEOUT_MS = 30_000;
const DRAIN_TIMEOUT_MS = 60_000;
const STATS_FLUSH_MS = 1500; // backends report their counters to pg_stat_* at most once a second
const SATURATED = 0.7;
const OBSERVER = '/* load-bench observer */';

export function settings() {
  const quick = quickMode();
  const raw = process.env.BENCH_LOAD_RATES || (quick ? '5,10,20' : '10,20,40,80');
  const rates = raw.split(',').map((s) => Number(s.trim()));
  if (rates.some((r) => !Number.isFinite(r) || r <= 0 || r > 2000)) throw new StackError(`BENCH_LOAD_RATES=${raw}: give a comma-separated list of runs/s (0 < r ≤ 2000)`);
  const rawSeconds = process.env.BENCH_LOAD_SECONDS;
  const seconds = rawSeconds ? Number(rawSeconds) : quick ? 4 : 20;
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 3600) throw new StackError(`BENCH_LOAD_SECONDS=${rawSeconds}: give seconds (0 < s ≤ 3600)`);
  const approval = process.env.BENCH_LOAD_APPROVAL || 'hook';
  if (approval !== 'hook' && approval !== 'api') throw new StackError(`BENCH_LOAD_APPROVAL=${approval}: give hook or api`);
  return { quick, rates: [...new Set(rates)].sort((a, b) => a - b), seconds, approval };
}

/** Counters of the section's database and Redis (see the header). */
/** The statements with the most PostgreSQL time and the most frequent Redis commands (BENCH_LOAD_TOP), per run. */
async function printTop(observer, redis, dbName, n, runs) {
  const { rows } = await observer.query(
    `SELECT calls, total_exec_time + total_plan_time AS ms, regexp_replace(query, '\\s+', ' ', 'g') AS query FROM pg_stat_statements
     WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1) ORDER BY total_exec_time + total_plan_time DESC LIMIT $2`,
    [dbName, n],
  );
  console.log(`top ${n} statements by PostgreSQL time (calls/run, ms/run), over ${runs} runs:`);
  for (const r of rows) console.log(`  ${fmt(Number(r.calls) / runs, 2).padStart(6)}  ${fmt(Number(r.ms) / runs, 2).padStart(6)}  ${r.query.slice(0, 200)}`);
  const commands = [];
  for (const line of (await redis.info('commandstats')).split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (m) commands.push([m[1], Number(m[2])]);
  }
  commands.sort((a, b) => b[1] - a[1]);
  console.log(`top ${n} Redis commands (calls/run): ${commands.slice(0, n).map(([c, k]) => `${c} ${fmt(k / runs, 1)}`).join(', ')}`);
}

async function counters(observer, redis, dbName) {
  await observer.query('SELECT pg_stat_clear_snapshot()');
  const { rows: [pgRow] } = await observer.query(
    `SELECT (SELECT (xact_commit + xact_rollback)::bigint FROM pg_stat_database WHERE datname = $1) AS xacts,
            (SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1) AND query NOT LIKE '%load-bench observer%') AS statements`,
    [dbName],
  );
  let commands = 0;
  let scripts = 0;
  for (const line of (await redis.info('commandstats')).split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (!m || m[1] === 'info') continue;
    commands += Number(m[2]);
    if (/^(evalsha|eval|evalsha_ro|eval_ro|fcall|fcall_ro)$/.test(m[1])) scripts += Number(m[2]);
  }
  return { xacts: Number(pgRow.xacts), statements: Number(pgRow.statements), commands, scripts };
}

/** CPU ticks of the private PostgreSQL: its postmaster and every process it forked (backends come and go). */
function privatePgTicks(pgRoot) {
  let postmaster;
  try {
    postmaster = Number(readFileSync(join(pgRoot, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return NaN;
  }
  let total = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(name) === postmaster || Number(fields[1]) === postmaster) total += Number(fields[11]) + Number(fields[12]);
    } catch {
      // exited meanwhile
    }
  }
  return total;
}

/** CPU ticks of the section's processes; backends that exited between two readings are missed (short levels). */
function cpu(ctx) {
  const sum = (pids) => pids.reduce((n, pid) => n + (cpuTicks(pid) ?? 0), 0);
  return { worker: sum(ctx.workers.map((w) => w.pid)), api: cpuTicks(ctx.server.pid) ?? NaN, pg: privatePgTicks(ctx.suite.postgres.root), redis: cpuTicks(ctx.redis.pid) ?? NaN };
}

async function level(ctx, observer, redis, rate, seconds) {
  const count = Math.max(1, Math.round(rate * seconds));
  let ownQueries = 0;
  const before = await counters(observer, redis, ctx.dbName);
  const cpuBefore = cpu(ctx);
  const started = performance.now();
  const runs = await generateRuns(ctx, { count, ratePerS: rate, durationS: () => RUN_DURATION_S, approval: ctx.approval, deadlineMs: 0, label: `rate${rate}` });
  const sentS = (performance.now() - started) / 1000;
  const accepted = runs.filter((r) => r.runId && !r.approveError);
  const byRun = ctx.target.byRun;
  await ctx.target.until(() => accepted.every((r) => byRun.get(r.runId)?.firstEscalateMs !== undefined), ESCALATE_TIMEOUT_MS);
  // Drain: every accepted run de-escalated at the target, then in PostgreSQL.
  await ctx.target.until(() => accepted.every((r) => byRun.get(r.runId)?.firstDeescalateMs !== undefined), DRAIN_TIMEOUT_MS);
  const ids = accepted.map((r) => r.runId);
  let open = ids.length;
  for (const deadline = Date.now() + 10_000; open > 0 && Date.now() < deadline; ) {
    ownQueries++;
    const { rows } = await ctx.db.query(`${OBSERVER} SELECT count(*)::int AS n FROM "Run" WHERE "id" = ANY($1::uuid[]) AND "status" <> 'deescalated'`, [ids]);
    open = rows[0].n;
    if (open) await sleep(200);
  }
  const cpuAfter = cpu(ctx);
  await sleep(STATS_FLUSH_MS);
  const after = await counters(observer, redis, ctx.dbName);

  const latencies = [];
  let lastEscalation = 0;
  for (const r of accepted) {
    const at = byRun.get(r.runId)?.firstEscalateMs;
    if (at === undefined) continue;
    const sentEpoch = performance.timeOrigin + r.startedAt;
    latencies.push(at - sentEpoch);
    lastEscalation = Math.max(lastEscalation, at);
  }
  latencies.sort((a, b) => a - b);
  const firstSent = performance.timeOrigin + started;
  const escalated = latencies.length;
  const errors = new Map();
  for (const r of runs) {
    const e = r.requestError ? `request: ${r.requestError}` : r.approveError ? `approve: ${r.approveError}` : undefined;
    if (e) errors.set(e, (errors.get(e) ?? 0) + 1);
  }
  const failed = count - escalated;
  const n = Math.max(1, escalated);
  return {
    rate,
    count,
    sentS,
    escalated,
    notDeescalated: open,
    failed,
    errorPct: (failed / count) * 100,
    throughput: escalated / Math.max(0.001, (lastEscalation - firstSent) / 1000),
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies.at(-1),
    pgStatements: (after.statements - before.statements) / n,
    pgXacts: (after.xacts - before.xacts - ownQueries) / n,
    redisCommands: (after.commands - before.commands) / n,
    redisScripts: (after.scripts - before.scripts) / n,
    // CPU milliseconds per run: what other work on a shared machine skews least.
    cpuMs: Object.fromEntries(Object.keys(cpuAfter).map((k) => [k, ((cpuAfter[k] - cpuBefore[k]) * (1000 / CLK_TCK)) / n])),
    errors,
  };
}

export async function run(stack, cfg) {
  setSayPrefix('bench');
  const say = (m) => harnessSay(`load: ${m}`);
  const cleanups = [];
  let observer;
  let redis;
  try {
    const suite = await openSuite({ label: 'bench_load', preload: ['pg_stat_statements'], cleanups });
    observer = new suite.pg.Client({ connectionString: suite.postgres.url });
    await observer.connect();
    await observer.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    const members = cfg.rates.reduce((n, r) => n + Math.round(r * cfg.seconds), 0) + 10;
    // Production worker settings (its defaults), but any free port for GET /metrics.
    const ctx = await openDrill(suite, 'load', { members, cleanups, signals: stack.signals, baseWorkerEnv: { WORKER_METRICS_PORT: '0', LOG_LEVEL: 'info' }, apiEnv: { DB_POOL_SIZE: process.env.DB_POOL_SIZE || '10' }, approval: cfg.approval === 'api' ? 'api' : undefined });
    redis = new suite.Redis(ctx.redis.url, { maxRetriesPerRequest: 2 });
    const results = [];
    for (const rate of cfg.rates) {
      if (stack.signals?.signal) break;
      say(`${rate} runs/s for ${cfg.seconds} s`);
      const l = await level(ctx, observer, redis, rate, cfg.seconds);
      results.push(l);
      say(`${rate} runs/s offered: ${fmt(l.throughput, 1)} runs/s escalated, p50 ${fmt(l.p50, 0)} ms, p99 ${fmt(l.p99, 0)} ms, errors ${fmt(l.errorPct, 1)} %`);
      if (l.throughput < SATURATED * rate || l.errorPct > 5) {
        say(`saturated at ${rate} runs/s (achieved ${fmt(l.throughput, 1)}, errors ${fmt(l.errorPct, 1)} %): no higher rates`);
        break;
      }
    }

    console.log('');
    console.log('== load: sustained Events API requests with auto-approval ==');
    console.log(`API + 1 worker process (production defaults) on a private PostgreSQL (pg_stat_statements) and redis-server (hz 100); http strategy → receiver in the bench process; each run lives ${RUN_DURATION_S} s`);
    console.log(cfg.approval === 'api' ? 'approval: BENCH_LOAD_APPROVAL=api — a flow without implementation code, each run approved through the API (bot) right after its request' : AUTO_APPROVAL_NOTE[ctx.approval]);
    console.log('latency: request sent → the target receives the escalate call; throughput: escalations / (last escalation − first request); errors: runs not escalated (HTTP error, no retries, or not within 30 s)');
    console.log('round trips per run (request → deescalate, background work included): PostgreSQL statements (pg_stat_statements, BEGIN/COMMIT included) and transactions; Redis commands (INFO commandstats, incl. those run inside Lua scripts) and script calls');
    console.log('');
    printColumns(
      ['offered/s', 'runs', 'runs/s', 'p50 ms', 'p99 ms', 'max ms', 'errors', 'pg stmts/run', 'pg xacts/run', 'redis cmds/run', 'redis scripts/run', 'cpu ms/run: worker', 'api', 'pg', 'redis', ''],
      results.map((l) => [
        fmt(l.rate, 0),
        String(l.count),
        fmt(l.throughput, 1),
        fmt(l.p50, 0),
        fmt(l.p99, 0),
        fmt(l.max, 0),
        `${fmt(l.errorPct, 1)} %`,
        fmt(l.pgStatements, 1),
        fmt(l.pgXacts, 1),
        fmt(l.redisCommands, 1),
        fmt(l.redisScripts, 1),
        fmt(l.cpuMs.worker, 1),
        fmt(l.cpuMs.api, 1),
        fmt(l.cpuMs.pg, 1),
        fmt(l.cpuMs.redis, 1),
        l.notDeescalated ? `${l.notDeescalated} NOT DE-ESCALATED` : l.throughput < SATURATED * l.rate ? 'saturated' : '',
      ]),
      new Set([15]),
    );
    for (const l of results) for (const [m, c] of [...l.errors].slice(0, 3)) console.log(`  ${l.rate}/s: ×${c} ${m}`);
    const logs = workerLogLines(ctx);
    if (logs.length) console.log(`worker log (warn/error, most frequent): ${logs.map(([m, c]) => `×${c} ${m}`).join(' | ')}`);
    if (cfg.quick) console.log('(BENCH_QUICK: short levels, indicative only)');
    const top = Number(process.env.BENCH_LOAD_TOP || 0);
    if (top > 0) await printTop(observer, redis, ctx.dbName, top, results.reduce((n, l) => n + l.count, 0));
  } finally {
    redis?.disconnect();
    await observer?.end().catch(() => {});
    for (const [what, fn] of cleanups.reverse()) {
      try {
        await fn();
      } catch (err) {
        console.error(`[bench] load cleanup: ${what} failed: ${err.message}`);
      }
    }
  }
}
