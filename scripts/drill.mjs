#!/usr/bin/env node
// `npm run drill [-- --short|--full] [names…]`: fault drills on the real stack (issue 8). Each drill runs the API and
// worker processes on a database and a Redis of its own, drives runs through the Events API (request, then
// approval), injects one fault, waits for every run to end, and then asserts "nothing lost, nothing granted twice,
// nothing left escalated past its expiry" against PostgreSQL (runs, events, grant ledger, audit trail and its hash
// chain), against the http strategy's target (which grants and revokes it received) and against the environment's
// http log destination (every audit entry delivered, in order per run), printing what it checked and the counts. Any violation fails the run (exit code 1). Durations are printed, never asserted.
//
// Drills (default: all, in this order):
//   worker-kill       kill -9 the worker mid-escalation and mid-de-escalation, restart it   (scripts/drill/worker-kill.mjs)
//   redis-loss        Redis killed and restarted empty on the same port                     (scripts/drill/redis-loss.mjs)
//   postgres-restart  PostgreSQL stopped (-m immediate) mid-run and started again           (scripts/drill/postgres-restart.mjs)
//   strategy-errors   the strategy API answers 500, then 429 + Retry-After, for a period     (scripts/drill/strategy-errors.mjs)
//   log-destination   the environment's http log destination down (503, dropped connections) (scripts/drill/log-destination.mjs)
//   worker-race       two workers on one queue prefix, revokes racing scheduled expiries     (scripts/drill/worker-race.mjs)
// Modes: --short (default; a few dozen runs of 2–6 s, faults of seconds: a few minutes for all) and --full
// (hundreds of runs, outages of 10–60 s; several minutes each).
//
// Servers: a private PostgreSQL (initdb in a temporary folder, on a free port from 55432) for the whole run, whose
// template database is migrated once and holds the org and bot token; each drill copies it into a database of its
// own and gets its own redis-server (free port from 56379, no persistence) and queue prefix. The shared PostgreSQL
// and Redis (5432/6379, DATABASE_URL/REDIS_URL) are never touched. Needs the Debian `postgresql` (server binaries
// under /usr/lib/postgresql/<major>/bin) and `redis-server` packages. Everything is removed at the end, also on
// failure or Ctrl-C. DRILL_DEBUG=1 also prints how long each cleanup step took.

import { performance } from 'node:perf_hooks';
import { StackError, ensureInstalled, reportError, signalExitCode, trapSignals } from './stack.mjs';
import { abort } from './bench/common.mjs';
import { apiLogLines, clientErrorLines, openSuite, say, workerLogLines } from './drill/harness.mjs';
import { verifyDrill } from './drill/verify.mjs';
import * as workerKill from './drill/worker-kill.mjs';
import * as redisLoss from './drill/redis-loss.mjs';
import * as postgresRestart from './drill/postgres-restart.mjs';
import * as strategyErrors from './drill/strategy-errors.mjs';
import * as workerRace from './drill/worker-race.mjs';
import * as logDestination from './drill/log-destination.mjs';

const DRILLS = [workerKill, redisLoss, postgresRestart, strategyErrors, logDestination, workerRace];

function parseArgs(argv) {
  const args = argv.filter((a) => a !== '--');
  if (args.includes('--help') || args.includes('-h')) {
    console.log(`usage: npm run drill [-- --short|--full] [${DRILLS.map((d) => d.name).join('|')} …]`);
    process.exit(0);
  }
  const full = args.includes('--full');
  if (full && args.includes('--short')) throw new StackError('give --short or --full, not both');
  const names = args.filter((a) => !a.startsWith('--'));
  const unknownFlags = args.filter((a) => a.startsWith('--') && a !== '--full' && a !== '--short');
  if (unknownFlags.length) throw new StackError(`unknown option(s) ${unknownFlags.join(', ')}; use --short or --full`);
  const unknown = names.filter((n) => !DRILLS.some((d) => d.name === n));
  if (unknown.length) throw new StackError(`unknown drill(s) ${unknown.join(', ')}; use ${DRILLS.map((d) => d.name).join(', ')} (default: all)`);
  return { full, drills: DRILLS.filter((d) => names.length === 0 || names.includes(d.name)) };
}

/** Runs cleanups in reverse order, each even if another fails; empties the list (safe to call twice). */
async function runCleanups(cleanups) {
  let ok = true;
  for (const [what, fn] of cleanups.splice(0).reverse()) {
    const t0 = performance.now();
    try {
      await fn();
      if (process.env.DRILL_DEBUG) say(`cleanup: ${what} (${Math.round(performance.now() - t0)} ms)`);
    } catch (err) {
      ok = false;
      console.error(`[drill] cleanup: ${what} failed: ${err.message}`);
    }
  }
  return ok;
}

async function main() {
  const suiteCleanups = [];
  let drillCleanups = [];
  const signals = trapSignals((signal) => {
    say(`${signal} received: cleaning up`);
    abort.abort(new StackError(`interrupted by ${signal}`));
    // The drill in progress may wait on timers for a while: clean up now and leave.
    void runCleanups(drillCleanups)
      .then(() => runCleanups(suiteCleanups))
      .finally(() => process.exit(signalExitCode(signal)));
  });
  const results = [];
  let exitCode = 0;
  const started = performance.now();
  try {
    const { full, drills } = parseArgs(process.argv.slice(2));
    await ensureInstalled();
    say(`${full ? 'full' : 'short'} mode: ${drills.map((d) => d.name).join(', ')}`);
    const suite = await openSuite({ label: 'drill', cleanups: suiteCleanups });
    for (const drill of drills) {
      if (signals.signal) break;
      drillCleanups = [];
      const t0 = performance.now();
      console.log('');
      console.log(`== ${drill.name}: ${drill.title} ==`);
      let outcome;
      try {
        const { ctx, runs, notes, settle, logTimeoutMs } = await drill.run({ suite, cleanups: drillCleanups, signals, full, say });
        for (const n of notes) console.log(`  ${n}`);
        console.log(`  ${suite.approval === 'hook' ? 'runs approved by the flow\'s onRequest hook' : 'runs approved through the API (bot) right after their request'}; ` +
          `${settle.settled ? `all runs ended ${settle.seconds.toFixed(1)} s after the load` : `NOT all runs ended within ${settle.seconds.toFixed(0)} s (${JSON.stringify(settle.last)})`}` +
          `${settle.swept ? `; ${settle.swept} runs still requested after the load were approved by the drill's sweep` : ''}`);
        const errs = clientErrorLines(runs);
        if (errs.length) console.log(`  client errors (after retries): ${errs.join('; ')}`);
        const { violations } = await verifyDrill(ctx, runs, { logTimeoutMs });
        const logs = workerLogLines(ctx);
        if (logs.length) console.log(`  worker log (warn/error, most frequent): ${logs.map(([m, n]) => `×${n} ${m}`).join(' | ')}`);
        const api = apiLogLines(ctx);
        if (api.length) console.log(`  api log (warn/error, most frequent): ${api.map(([m, n]) => `×${n} ${m}`).join(' | ')}`);
        outcome = { violations, runs: runs.length };
      } catch (err) {
        if (signals.signal) throw err;
        reportError('drill', err);
        outcome = { violations: [`the drill did not complete: ${err.message.split('\n')[0]}`], runs: 0 };
      } finally {
        if (!(await runCleanups(drillCleanups))) exitCode = 1;
      }
      const seconds = (performance.now() - t0) / 1000;
      if (outcome.violations.length) {
        console.log(`  FAILED: ${outcome.violations.length} violation(s):`);
        for (const v of outcome.violations) console.log(`    - ${v}`);
      } else {
        console.log(`  passed: nothing lost, nothing granted twice, nothing left escalated past its expiry (${seconds.toFixed(1)} s)`);
      }
      results.push({ name: drill.name, ...outcome, seconds });
    }
    console.log('');
    console.log(`drills (${full ? 'full' : 'short'} mode, ${((performance.now() - started) / 1000).toFixed(0)} s in all):`);
    for (const r of results) console.log(`  ${r.violations.length ? 'FAILED' : 'passed'}  ${r.name.padEnd(17)} ${String(r.runs).padStart(4)} runs  ${r.seconds.toFixed(1).padStart(6)} s${r.violations.length ? `  ${r.violations.length} violation(s)` : ''}`);
    if (results.some((r) => r.violations.length)) exitCode = 1;
  } catch (err) {
    if (!signals.signal) {
      reportError('drill', err);
      exitCode = 1;
    }
  } finally {
    if (!(await runCleanups(drillCleanups))) exitCode ||= 1;
    if (!(await runCleanups(suiteCleanups))) exitCode ||= 1;
  }
  process.exitCode = signals.signal ? signalExitCode(signals.signal) : exitCode;
}

await main();
// stopServer's grace timer (bench/common.mjs) would keep the process alive for its 15 s after a clean stop.
process.exit(process.exitCode ?? 0);
