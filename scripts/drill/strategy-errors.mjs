// Drill: the strategy's API fails for a period — first HTTP 500, then 429 with Retry-After — while runs escalate
// and de-escalate. Expected: the steps are retried with backoff (at least Retry-After), failed calls have no effect,
// and once the API answers again every run is escalated and de-escalated exactly once.

import { performance } from 'node:perf_hooks';
import { durations, generateRuns, openDrill, waitSettled } from './harness.mjs';

export const name = 'strategy-errors';
export const title = 'the strategy API answers 500, then 429 with Retry-After, for a period';

export async function run({ suite, cleanups, signals, full, say }) {
  const cfg = full
    ? { runs: 150, rate: 2, durations: durations(5, 20), outageMs: 60_000, retryAfterS: 5, afterGrants: 10, workerEnv: { JOB_BACKOFF_MS: '1000' } }
    : { runs: 30, rate: 5, durations: durations(2, 4), outageMs: 5000, retryAfterS: 1, afterGrants: 5, workerEnv: {} };
  const ctx = await openDrill(suite, name, { members: cfg.runs + 5, cleanups, signals, workerEnv: cfg.workerEnv });
  const notes = [];
  const load = generateRuns(ctx, { count: cfg.runs, ratePerS: cfg.rate, durationS: cfg.durations, approval: ctx.approval });
  await ctx.target.until(() => ctx.target.totals().grants >= cfg.afterGrants, 60_000);
  const start = performance.now();
  const half = start + cfg.outageMs / 2;
  const end = start + cfg.outageMs;
  const seen = { 500: 0, 429: 0 };
  ctx.target.failWith(() => {
    const now = performance.now();
    if (now < half) return (seen[500]++, { status: 500, body: { message: 'injected outage' } });
    if (now < end) return (seen[429]++, { status: 429, retryAfter: cfg.retryAfterS, body: { message: 'injected throttling' } });
    return undefined;
  });
  say(`${name}: the target answers 500 for ${cfg.outageMs / 2000} s, then 429 (Retry-After: ${cfg.retryAfterS}) for ${cfg.outageMs / 2000} s`);
  const runs = await load;
  const settle = await waitSettled(ctx, { timeoutMs: full ? 300_000 : 90_000, approval: ctx.approval });
  notes.push(`outage of ${cfg.outageMs / 1000} s after ${cfg.afterGrants} grants: ${seen[500]} calls answered 500, ${seen[429]} answered 429 with Retry-After: ${cfg.retryAfterS}`);
  return { ctx, runs, notes, settle };
}
