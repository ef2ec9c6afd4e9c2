// Drill: kill -9 the worker while escalations are in flight (the target has applied them and the worker waits for
// the reply, inside its transaction), restart it; then the same mid-de-escalation. Expected: the restarted worker
// takes the jobs over (JOB_LOCK_DURATION_MS), calls the target again with the same Idempotency-Key (a redelivery,
// no second grant) and records each grant and revoke once.

import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { durations, generateRuns, openDrill, waitSettled } from './harness.mjs';

export const name = 'worker-kill';
export const title = 'kill -9 the worker mid-escalation (and mid-de-escalation), restart it';

export async function run({ suite, cleanups, signals, full, say }) {
  const cfg = full
    ? { runs: 120, rate: 5, durations: durations(5, 15), slowMs: 1500, kills: ['escalate', 'deescalate', 'escalate', 'deescalate'], downMs: 3000 }
    : { runs: 24, rate: 8, durations: durations(3, 5), slowMs: 1500, kills: ['escalate', 'deescalate'], downMs: 1000 };
  const ctx = await openDrill(suite, name, { members: cfg.runs + 5, cleanups, signals });
  const notes = [];
  // Every reply comes late, after the target applied the change: a kill lands between the effect and the commit.
  ctx.target.slow(() => cfg.slowMs);
  const inFlight = (type) => ctx.target.calls.filter((c) => c.type === type && performance.now() - c.at < cfg.slowMs - 100).length;
  const load = generateRuns(ctx, { count: cfg.runs, ratePerS: cfg.rate, durationS: cfg.durations, approval: ctx.approval });

  let worker = ctx.workers[0];
  for (const [k, step] of cfg.kills.entries()) {
    const want = step === 'escalate' ? 3 : 2;
    const found = await ctx.target.until(() => inFlight(step) >= want, 60_000);
    if (!found) {
      notes.push(`!! kill ${k + 1}: never saw ${want} ${step} calls in flight; killed anyway`);
    }
    const n = inFlight(step);
    await worker.kill9();
    say(`${name}: kill -9 ${worker.name} (pid ${worker.pid}) with ${n} ${step} calls applied at the target and awaiting their reply`);
    await sleep(cfg.downMs);
    worker = await ctx.startWorker(`worker ${ctx.workers.length + 1} (restart ${k + 1})`);
    notes.push(`kill ${k + 1}: kill -9 ${ctx.workers.at(-2).name} with ${n} ${step} calls in flight; restarted after ${cfg.downMs / 1000} s, ready ${(worker.startMs / 1000).toFixed(1)} s later`);
  }
  const runs = await load;
  const settle = await waitSettled(ctx, { timeoutMs: full ? 180_000 : 60_000, approval: ctx.approval });
  return { ctx, runs, notes, settle };
}
