// Drill: two worker processes on one queue prefix race on the same runs — each takes jobs from the same queues, both
// reconcilers re-add jobs every half second, and a third of the runs are revoked through the API right at their
// expiry so that the revoke's de-escalation and the scheduled one run at the same moment on different workers.
// Expected: no double grant, every run de-escalated exactly once (one revoke at the target each).

import { setTimeout as sleep } from 'node:timers/promises';
import { durations, generateRuns, openDrill, waitSettled } from './harness.mjs';

export const name = 'worker-race';
export const title = 'two workers racing on the same runs (one queue prefix), revokes racing scheduled expiries';

export async function run({ suite, cleanups, signals, full, say }) {
  const cfg = full ? { runs: 200, rate: 10, durations: durations(2, 8) } : { runs: 40, rate: 10, durations: durations(2, 4) };
  const ctx = await openDrill(suite, name, { members: cfg.runs + 5, cleanups, signals, workers: 2, workerEnv: { RECONCILE_INTERVAL_MS: '500' } });
  const notes = [];
  ctx.target.slow(() => 100);
  const revokes = { sent: 0, ok: 0, refused: 0, errors: new Map() };
  const pendingRevokes = [];
  const revokeAtExpiry = async (runId) => {
    // Wait for the escalation, then revoke within a few ms of expiresAt, when the scheduled de-escalation fires too.
    for (let i = 0; i < 300; i++) {
      const { rows } = await ctx.db.query(`SELECT EXTRACT(EPOCH FROM "expiresAt") * 1000 AS e FROM "Run" WHERE "id" = $1 AND "expiresAt" IS NOT NULL`, [runId]);
      if (rows[0]) {
        await sleep(Math.max(0, Number(rows[0].e) - Date.now() - 5));
        revokes.sent++;
        const r = await ctx.events('events/deescalate', { run_id: runId }, { key: `${ctx.runTag}-revoke-${runId}`, deadlineMs: 10_000 });
        if (r.ok) revokes.ok++;
        else if (r.status >= 400 && r.status < 500) revokes.refused++;
        else revokes.errors.set(r.error, (revokes.errors.get(r.error) ?? 0) + 1);
        return;
      }
      await sleep(100);
    }
  };
  const runs = await generateRuns(ctx, {
    count: cfg.runs,
    ratePerS: cfg.rate,
    durationS: cfg.durations,
    approval: ctx.approval,
    onRun: (r) => {
      if (r.i % 3 === 0 && r.runId) pendingRevokes.push(revokeAtExpiry(r.runId));
    },
  });
  await Promise.all(pendingRevokes);
  say(`${name}: ${revokes.sent} revokes sent at expiry: ${revokes.ok} accepted, ${revokes.refused} refused (already de-escalated)`);
  const settle = await waitSettled(ctx, { timeoutMs: full ? 180_000 : 60_000, approval: ctx.approval });
  const { rows } = await ctx.db.query(
    `SELECT count(*) FILTER (WHERE "fields"->>'deescalate_type' = 'scheduled')::int AS scheduled, count(*)::int AS total FROM "RunEvent" WHERE "name" = 'deescalate' AND "status" = 'success'`,
  );
  notes.push(
    `2 workers, reconcilers every 0.5 s; ${revokes.sent} revokes sent ~5 ms before expiresAt: ${revokes.ok} accepted, ${revokes.refused} refused as already de-escalated` +
      `${revokes.errors.size ? `, errors ${JSON.stringify([...revokes.errors])}` : ''}; de-escalations: ${rows[0].scheduled} scheduled, ${rows[0].total - rows[0].scheduled} by revoke`,
  );
  return { ctx, runs, notes, settle };
}
