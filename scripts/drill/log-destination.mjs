// Drill: the environment's log destination (http) is down for a period — first answering 503, then dropping
// connections — while runs go through. Expected: delivery retries with backoff and, once it is back, every audit
// entry arrives (at least once, in order per run); the runs themselves are not held up (their steps do not wait for
// delivery), and nothing else changes: the usual checks hold.

import { performance } from 'node:perf_hooks';
import { durations, generateRuns, openDrill, waitSettled } from './harness.mjs';

export const name = 'log-destination';
export const title = 'a log destination down for a period (503, then connections dropped)';

export async function run({ suite, cleanups, signals, full, say }) {
  const cfg = full ? { runs: 150, rate: 3, durations: durations(5, 20), outageMs: 60_000, afterEntries: 40 } : { runs: 30, rate: 6, durations: durations(2, 5), outageMs: 6000, afterEntries: 10 };
  const ctx = await openDrill(suite, name, { members: cfg.runs + 5, cleanups, signals });
  const notes = [];
  const load = generateRuns(ctx, { count: cfg.runs, ratePerS: cfg.rate, durationS: cfg.durations, approval: ctx.approval });
  const deadline = Date.now() + 60_000;
  while (ctx.logs.arrivals.length < cfg.afterEntries && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  const start = performance.now();
  const half = start + cfg.outageMs / 2;
  const end = start + cfg.outageMs;
  const deliveredBefore = ctx.logs.arrivals.length;
  ctx.logs.down(() => {
    const now = performance.now();
    if (now < half) return { status: 503, body: { message: 'injected outage' } };
    if (now < end) return { destroy: true };
    return undefined;
  });
  say(`${name}: the log destination answers 503 for ${cfg.outageMs / 2000} s, then drops connections for ${cfg.outageMs / 2000} s (${deliveredBefore} entries delivered before)`);
  const runs = await load;
  const settle = await waitSettled(ctx, { timeoutMs: full ? 180_000 : 60_000, approval: ctx.approval });
  notes.push(`log destination down for ${cfg.outageMs / 1000} s after ${deliveredBefore} entries delivered: ${ctx.logs.refused} deliveries refused (503 or dropped connection)`);
  return { ctx, runs, notes, settle, logTimeoutMs: full ? 300_000 : 60_000 };
}
