// The `logs` section of `npm run bench`: delivery of audit entries to a log destination (packages/reporting) on
// the real stack — the bench database and Redis — with an `http` destination pointing at a receiver on loopback
// (packages/testing's startHttpReceiver, answering 200 at once). The figures come from a child process
// (scripts/bench/logs-measure.mjs, sources through tsx) running the log-delivery worker in process:
//   1. backlog: N entries recorded (as the engine records them: one transaction per event), then the worker started;
//      printed: entries/s until the destination's cursor reaches the chain head.
//   2. steady state: the worker running, entries recorded at a fixed rate for some seconds; printed: lag (receiver
//      arrival − commit of the entry) p50/p99/max. The lag includes the poll interval (LOG_POLL_MS) by design.
//
// Environment:
//   BENCH_LOGS_ENTRIES=4000   backlog size (BENCH_QUICK=1: 400)
//   BENCH_LOGS_RATE=200       entries/s recorded during the steady-state phase (BENCH_QUICK=1: 100)
//   BENCH_LOGS_SECONDS=10     length of the steady-state phase (BENCH_QUICK=1: 3)
//   BENCH_LOGS_POLL_MS=500    the worker's poll interval

import { StackError } from '../stack.mjs';
import { fmt, printColumns, quickMode, runCaptured, say } from './common.mjs';

function positiveInteger(name, fallback, max) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new StackError(`${name}=${raw}: give an integer 1..${max}`);
  return n;
}

export function settings() {
  const quick = quickMode();
  return {
    entries: positiveInteger('BENCH_LOGS_ENTRIES', quick ? 400 : 4000, 1_000_000),
    rate: positiveInteger('BENCH_LOGS_RATE', quick ? 100 : 200, 10_000),
    seconds: positiveInteger('BENCH_LOGS_SECONDS', quick ? 3 : 10, 3600),
    pollMs: positiveInteger('BENCH_LOGS_POLL_MS', 500, 60_000),
  };
}

export async function run(stack, config) {
  console.log('');
  say(`logs: http destination, backlog of ${config.entries} entries, then ${config.rate} entries/s for ${config.seconds} s (poll ${config.pollMs} ms)`);
  const env = { ...process.env, DATABASE_URL: stack.databaseUrl, REDIS_URL: stack.redisUrl, NODE_OPTIONS: '' };
  const input = JSON.stringify({ ...config, queuePrefix: `${stack.queuePrefix}-logs`, orgSlug: `${stack.orgSlug}-logs` });
  const out = await runCaptured('log delivery measurements', ['--import', 'tsx', '--conditions=@opensym/source', 'scripts/bench/logs-measure.mjs', input], env, { timeout: 900_000 });
  const r = JSON.parse(out.trim().split('\n').pop());
  console.log('');
  console.log('logs: delivery to an http destination (one signed POST per entry, 8 at a time) against a local receiver');
  printColumns(
    ['phase', 'entries', 'entries/s', 'lag p50', 'lag p99', 'lag max', ''],
    [
      ['backlog', String(r.backlog.entries), fmt(r.backlog.perSecond, 0), '', '', '', `${fmt(r.backlog.seconds, 2)} s to drain`],
      ['steady state', String(r.steady.entries), fmt(r.steady.perSecond, 0), `${fmt(r.steady.p50, 0)} ms`, `${fmt(r.steady.p99, 0)} ms`, `${fmt(r.steady.max, 0)} ms`, `${r.steady.requests} requests (duplicates ${r.steady.duplicates})`],
    ],
  );
}
