// Drill: PostgreSQL goes down mid-run (pg_ctl stop -m immediate: like a crash, every connection cut, crash recovery
// at the next start) and comes back. Expected: API requests fail (503/5xx) or wait while it is down and succeed on
// retry, the worker's steps roll back and are retried, nothing committed is lost, nothing is granted twice.

import { setTimeout as sleep } from 'node:timers/promises';
import { durations, generateRuns, openDrill, waitSettled } from './harness.mjs';

export const name = 'postgres-restart';
export const title = 'PostgreSQL restart mid-run (stop -m immediate, start)';

export async function run({ suite, cleanups, signals, full, say }) {
  const cfg = full ? { runs: 150, rate: 5, durations: durations(10, 30), downMs: 20_000, afterGrants: 40 } : { runs: 30, rate: 6, durations: durations(3, 6), downMs: 2000, afterGrants: 8 };
  const ctx = await openDrill(suite, name, { members: cfg.runs + 5, cleanups, signals });
  const notes = [];
  // Slow replies keep strategy calls in flight (inside their transactions) when the server goes away.
  ctx.target.slow(() => 300);
  const load = generateRuns(ctx, { count: cfg.runs, ratePerS: cfg.rate, durationS: cfg.durations, approval: ctx.approval, deadlineMs: cfg.downMs + 60_000 });
  await ctx.target.until(() => ctx.target.totals().grants >= cfg.afterGrants, 60_000);
  const before = ctx.target.totals();
  await suite.postgres.stop('immediate');
  say(`${name}: PostgreSQL stopped (-m immediate) after ${before.grants} grants; down for ${cfg.downMs / 1000} s`);
  await sleep(cfg.downMs);
  await suite.postgres.start();
  say(`${name}: PostgreSQL started again`);
  notes.push(`PostgreSQL stopped with -m immediate after ${before.grants} grants and ${before.calls} target calls, down ${cfg.downMs / 1000} s, started again (crash recovery)`);
  const runs = await load;
  const settle = await waitSettled(ctx, { timeoutMs: full ? 180_000 : 90_000, approval: ctx.approval });
  return { ctx, runs, notes, settle };
}
