// Drill: Redis dies (kill -9) while runs are requested, escalated and waiting for their expiry, and comes back
// empty on the same port: every queued job and every scheduled de-escalation is gone. Expected: API and worker
// reconnect, the reconciler re-adds what PostgreSQL says is missing, nothing is lost and every run is de-escalated.

import { setTimeout as sleep } from 'node:timers/promises';
import { durations, generateRuns, openDrill, waitSettled } from './harness.mjs';

export const name = 'redis-loss';
export const title = 'Redis restarts with data loss (kill -9, an empty redis-server on the same port)';

export async function run({ suite, cleanups, signals, full, say }) {
  const cfg = full ? { runs: 150, rate: 5, durations: durations(10, 30), downMs: 10_000, afterGrants: 40 } : { runs: 30, rate: 6, durations: durations(3, 6), downMs: 1500, afterGrants: 8 };
  const ctx = await openDrill(suite, name, { members: cfg.runs + 5, cleanups, signals });
  const notes = [];
  const load = generateRuns(ctx, { count: cfg.runs, ratePerS: cfg.rate, durationS: cfg.durations, approval: ctx.approval });
  await ctx.target.until(() => ctx.target.totals().grants >= cfg.afterGrants, 60_000);
  const { Redis } = suite;
  const probe = new Redis(ctx.redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await probe.connect();
  const keysBefore = await probe.dbsize();
  const delayed = await probe.zcard(`${ctx.queuePrefix}:deescalate:delayed`);
  probe.disconnect();
  await ctx.redis.kill9();
  say(`${name}: kill -9 redis-server :${ctx.redis.port} (${keysBefore} keys, ${delayed} scheduled de-escalations); down for ${cfg.downMs / 1000} s`);
  await sleep(cfg.downMs);
  await ctx.redis.start();
  const fresh = new Redis(ctx.redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await fresh.connect();
  const keysAfter = await fresh.dbsize();
  fresh.disconnect();
  notes.push(`Redis killed with ${keysBefore} keys (${delayed} scheduled de-escalations) after ${ctx.target.totals().grants} grants, down ${cfg.downMs / 1000} s, restarted empty (${keysAfter} keys)`);
  const runs = await load;
  const settle = await waitSettled(ctx, { timeoutMs: full ? 180_000 : 60_000, approval: ctx.approval });
  return { ctx, runs, notes, settle };
}
