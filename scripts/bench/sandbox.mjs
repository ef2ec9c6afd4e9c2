// The `sandbox` section of `npm run bench`: what running flow implementations in the sandbox (packages/sandbox,
// isolated-vm) costs. It needs neither the API nor the database: the figures come from a child process
// (scripts/bench/sandbox-measure.mjs, run with `--no-node-snapshot` as the worker must be) on a realistic
// implementation (two reducers and a hook that makes one SDK call, `pagerduty.isOnCall`, answered at once by the
// host). Printed:
//   - cold start per flow version: compile (esbuild), then load (isolate, module set-up, exports) and first call;
//   - per-call overhead of a reducer and of the hook: with the next call's context made ready between calls (as
//     between real events) and back to back (the context is made on the call's path), with calls/s;
//   - 8 hook calls at a time (each on an isolate of its own), and the same module called in-process by
//     @opensym/sdk/testing, without isolation (the floor).
//
// Environment:
//   BENCH_SANDBOX_CALLS=2000   calls per measurement (BENCH_QUICK=1: 200)
//   BENCH_SANDBOX_FLOWS=30     flow versions loaded for the cold-start figures (BENCH_QUICK=1: 5)

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
    calls: positiveInteger('BENCH_SANDBOX_CALLS', quick ? 200 : 2000, 1_000_000),
    flows: positiveInteger('BENCH_SANDBOX_FLOWS', quick ? 5 : 30, 500),
  };
}

/** Figures in ms, or µs below 1 ms. */
const time = (ms) => (ms < 1 ? `${fmt(ms * 1000, 0)} µs` : `${fmt(ms, 2)} ms`);

export async function run(_stack, config) {
  console.log('');
  say(`sandbox: ${config.flows} flow versions, ${config.calls} calls per measurement`);
  const env = { ...process.env, NODE_OPTIONS: '' };
  const out = await runCaptured(
    'sandbox measurements',
    ['--no-node-snapshot', '--import', 'tsx', '--conditions=@opensym/source', 'scripts/bench/sandbox-measure.mjs', JSON.stringify(config)],
    env,
    { timeout: 600_000 },
  );
  const r = JSON.parse(out.trim().split('\n').pop());

  console.log('');
  console.log(`sandbox: cold start per flow version (${r.cold.load.n} versions; first load in the process, runtime build included: ${time(r.processFirstLoadMs)})`);
  printColumns(
    ['step', 'median', 'p95', ''],
    [
      ['compile (esbuild)', time(r.cold.compile.median), time(r.cold.compile.p95), ''],
      ['load (compile, isolate, module set-up)', time(r.cold.load.median), time(r.cold.load.p95), ''],
      ['first reducer call after load', time(r.cold.firstCall.median), time(r.cold.firstCall.p95), ''],
    ],
  );
  console.log(`memory: ~${fmt(r.rssPerIdleFlowMb, 1)} MB RSS per loaded flow version (its idle isolate and spare context)`);

  console.log('');
  console.log(`sandbox: per call (${r.reducer.spaced.n} calls each)`);
  const row = (what, m) => [what, time(m.median), time(m.p95), time(m.p99), m.perSecond ? fmt(m.perSecond, 0) : '-'];
  printColumns(
    ['call', 'median', 'p95', 'p99', 'calls/s'],
    [
      row('reducer getPermissions, context ready', r.reducer.spaced),
      row('reducer getPermissions, back to back', r.reducer.backToBack),
      row('hook onRequest + 1 SDK call, context ready', r.hook.spaced),
      row('hook onRequest + 1 SDK call, back to back', r.hook.backToBack),
      row('in-process reducer (sdk/testing, no isolation)', r.inProcess.reducer),
      row('in-process hook (sdk/testing, no isolation)', r.inProcess.hook),
    ],
    new Set([0]),
  );
  console.log(`hook onRequest, 8 calls at a time: ${fmt(r.hookConcurrent8PerSecond, 0)} calls/s`);
}
