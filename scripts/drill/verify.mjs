// The end of every drill: "nothing lost, nothing granted twice, nothing left escalated past its expiry", checked
// against PostgreSQL (runs, events, grant ledger, audit trail and its hash chain) and against the strategy's target
// (./target.mjs), with the counts printed. Returns the violations; the drill fails when there is any.

import { fmt, percentile, runCaptured } from '../bench/common.mjs';

/**
 * `runs`: what the clients did (generateRuns). `expect`: { refusedDecisionsOk: true } and the like. Prints the report
 * and returns { violations, counts }.
 */
export async function verifyDrill(ctx, runs, { log = console.log, logTimeoutMs = 30_000 } = {}) {
  const v = [];
  const { db, target } = ctx;
  const now = Date.now();

  // --- runs: nothing lost --------------------------------------------------------------
  const { rows: dbRuns } = await db.query(
    `SELECT "id", "status"::text AS status, EXTRACT(EPOCH FROM "expiresAt") * 1000 AS expires, EXTRACT(EPOCH FROM "deescalatedAt") * 1000 AS deescalated,
            EXTRACT(EPOCH FROM "escalatedAt") * 1000 AS escalated FROM "Run"`,
  );
  const byId = new Map(dbRuns.map((r) => [r.id, r]));
  const accepted = [...runs.filter((r) => r.runId), ...(ctx.probeRunIds ?? []).map((runId) => ({ runId }))];
  const lost = accepted.filter((r) => !byId.has(r.runId));
  for (const r of lost) v.push(`LOST: run ${r.runId} was accepted (HTTP 200) but is not in PostgreSQL`);
  const known = new Set(accepted.map((r) => r.runId));
  const extra = dbRuns.filter((r) => !known.has(r.id));
  const clientFailed = runs.filter((r) => !r.runId).length;
  const statuses = {};
  for (const r of dbRuns) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
  const notEnded = dbRuns.filter((r) => r.status !== 'deescalated');
  for (const r of notEnded.slice(0, 10)) {
    const past = r.expires !== null && Number(r.expires) < now;
    v.push(
      r.status === 'escalated' && past
        ? `LEFT ESCALATED PAST ITS EXPIRY: run ${r.id} expired ${fmt((now - Number(r.expires)) / 1000, 1)} s ago`
        : `run ${r.id} ended ${r.status}, not deescalated`,
    );
  }
  if (notEnded.length > 10) v.push(`… and ${notEnded.length - 10} more runs not deescalated`);

  // --- events: one request, approve, escalate and deescalate each; nothing pending ----------
  const { rows: ev } = await db.query(
    `SELECT "runId", "name", "status"::text AS status, count(*)::int AS n FROM "RunEvent" GROUP BY 1, 2, 3`,
  );
  const perRun = new Map();
  const eventTotals = {};
  for (const e of ev) {
    const k = `${e.name}:${e.status}`;
    eventTotals[k] = (eventTotals[k] ?? 0) + e.n;
    let m = perRun.get(e.runId);
    if (!m) perRun.set(e.runId, (m = {}));
    m[k] = (m[k] ?? 0) + e.n;
  }
  const pending = Object.entries(eventTotals).filter(([k]) => k.endsWith(':pending')).reduce((n, [, c]) => n + c, 0);
  if (pending) v.push(`${pending} events still pending`);
  let stepViolations = 0;
  for (const r of dbRuns) {
    const m = perRun.get(r.id) ?? {};
    for (const step of ['request', 'approve', 'escalate', 'deescalate']) {
      const n = m[`${step}:success`] ?? 0;
      if (n !== 1 && stepViolations++ < 10) v.push(`run ${r.id}: ${n} successful ${step} events (expected 1)`);
    }
  }
  const { rows: errs } = await db.query(
    `SELECT "name", "error", count(*)::int AS n FROM "RunEvent" WHERE "status" = 'error' GROUP BY 1, 2 ORDER BY n DESC LIMIT 8`,
  );
  // Escalate/deescalate errors mean a step failed for good; a refused duplicate decision (a client retry with a new
  // key after giving up, or the sweep racing a late approval) is the API doing its job.
  for (const e of errs) if (e.name === 'escalate' || e.name === 'deescalate') v.push(`${e.n} ${e.name} events failed: ${e.error}`);

  // --- grant ledger: every lease ended, no grant left applied ---------------------------
  const { rows: [ledger] } = await db.query(
    `SELECT (SELECT count(*)::int FROM "GrantLease") AS leases, (SELECT count(*)::int FROM "GrantLease" WHERE "endedAt" IS NULL) AS open_leases,
            (SELECT count(*)::int FROM "Grant") AS grants, (SELECT count(*)::int FROM "Grant" WHERE "applied") AS applied,
            (SELECT count(*)::int FROM "Run" r WHERE r."escalatedAt" IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "GrantLease" l WHERE l."runId" = r."id")) AS escalated_without_lease`,
  );
  if (ledger.open_leases) v.push(`${ledger.open_leases} grant leases still open`);
  if (ledger.applied) v.push(`${ledger.applied} grants still applied in the ledger`);
  if (ledger.escalated_without_lease) v.push(`${ledger.escalated_without_lease} escalated runs without a lease`);

  // --- audit: one entry per completed event, chain intact --------------------------------
  // Entries are staged by their step and chained by the worker right after (packages/engine/src/audit.ts): wait for it.
  let staged = 0;
  for (let waited = 0; waited <= 10_000; waited += 100) {
    staged = (await db.query(`SELECT count(*)::int AS n FROM "AuditStaged"`)).rows[0].n;
    if (staged === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (staged) v.push(`${staged} audit entries still staged, not chained, 10 s after the runs settled`);
  const { rows: [audit] } = await db.query(
    `SELECT (SELECT count(*)::int FROM "AuditEntry") AS entries, (SELECT count(*)::int FROM "RunEvent" WHERE "status" <> 'pending') AS completed,
            (SELECT count(*)::int FROM "RunEvent" e WHERE e."status" <> 'pending' AND NOT EXISTS (SELECT 1 FROM "AuditEntry" a WHERE a."eventId" = e."id")) AS missing,
            (SELECT count(*)::int FROM "AuditEntry" a WHERE NOT EXISTS (SELECT 1 FROM "RunEvent" e WHERE e."id" = a."eventId")) AS orphans`,
  );
  if (audit.missing) v.push(`${audit.missing} completed events have no audit entry`);
  if (audit.orphans) v.push(`${audit.orphans} audit entries name no event`);
  let chain;
  try {
    const out = JSON.parse(await runCaptured('audit verify', ['scripts/admin.mjs', 'audit', 'verify', '--org', ctx.suite.orgSlug, '--json'], { ...process.env, DATABASE_URL: ctx.databaseUrl }));
    chain = out.ok ? `intact (${out.entries} entries)` : 'BROKEN';
    if (!out.ok) v.push(`the audit chain is broken: ${JSON.stringify(out.first_break)}`);
  } catch (err) {
    chain = 'BROKEN';
    v.push(`audit verify: ${err.message}`);
  }

  // --- the strategy's target: granted once, revoked once, nothing left granted ----------------
  const t = target.totals();
  for (const msg of target.violations.slice(0, 10)) v.push(msg);
  if (t.leftGranted) v.push(`the target still grants access to ${t.leftGranted} identities: ${target.granted().slice(0, 5).join(', ')}`);
  // Every grant the target applied is recorded once in PostgreSQL (an escalate/deescalate event that called the
  // strategy), and the other way round: a crash between the call and the commit must end as a redelivery, not as a
  // second grant or an unrecorded one.
  const { rows: [called] } = await db.query(
    `SELECT count(*) FILTER (WHERE "name" = 'escalate')::int AS escalates, count(*) FILTER (WHERE "name" = 'deescalate')::int AS deescalates
     FROM "RunEvent" WHERE "status" = 'success' AND "name" IN ('escalate', 'deescalate') AND coalesce("output"->'body'->>'strategy_called', 'true') <> 'false'`,
  );
  if (called.escalates !== t.grants) v.push(`the target applied ${t.grants} grants, PostgreSQL recorded ${called.escalates} escalations that called the strategy`);
  if (called.deescalates !== t.revokes) v.push(`the target applied ${t.revokes} revokes, PostgreSQL recorded ${called.deescalates} de-escalations that called the strategy`);
  // Per identity (one member per run, so per run unless a retried request made a second run for the same member).
  const { rows: owners } = await db.query(`SELECT r."id", r."status"::text AS status, u."username" FROM "Run" r JOIN "User" u ON u."id" = r."requesterId"`);
  let identityMismatch = 0;
  for (const o of owners) {
    const s = target.identity(o.username);
    if (o.status === 'deescalated' && (!s || s.grants < 1 || s.grants !== s.revokes) && identityMismatch++ < 10) {
      v.push(`run ${o.id} (${o.username}) is deescalated, but the target granted its identity ${s?.grants ?? 0}× and revoked it ${s?.revokes ?? 0}×`);
    }
  }
  const runIds = new Set(owners.map((o) => o.id));
  for (const runId of target.byRun.keys()) if (!runIds.has(runId)) v.push(`the target got calls for run ${runId}, which PostgreSQL does not know`);
  if (target.unknown) v.push(`the target got ${target.unknown} calls that were not escalate/deescalate payloads`);

  // --- the log destination: every audit entry delivered (at least once), in order per run ------------
  const { rows: entries } = await db.query(`SELECT "id", "runId" FROM "AuditEntry" ORDER BY "seq"`);
  const deliveredAll = () => entries.every((e) => ctx.logs.seen.has(e.id));
  const waitStarted = Date.now();
  while (!deliveredAll() && Date.now() - waitStarted < logTimeoutMs) await new Promise((r) => setTimeout(r, 200));
  const waitedS = (Date.now() - waitStarted) / 1000;
  const undelivered = entries.filter((e) => !ctx.logs.seen.has(e.id));
  if (undelivered.length) v.push(`${undelivered.length} audit entries were not delivered to the log destination within ${logTimeoutMs / 1000} s of the end (first: ${undelivered[0].id})`);
  const entryIds = new Set(entries.map((e) => e.id));
  const strangers = ctx.logs.arrivals.filter((a) => !entryIds.has(a.id));
  if (strangers.length) v.push(`the log destination got ${strangers.length} entries that are not in the audit trail`);
  const expectedOrder = new Map();
  for (const e of entries) (expectedOrder.get(e.runId) ?? expectedOrder.set(e.runId, []).get(e.runId)).push(e.id);
  const arrivedOrder = new Map();
  for (const a of ctx.logs.arrivals) if (entryIds.has(a.id)) (arrivedOrder.get(a.runId) ?? arrivedOrder.set(a.runId, []).get(a.runId)).push(a.id);
  let outOfOrder = 0;
  for (const [runId, ids] of expectedOrder) {
    const got = arrivedOrder.get(runId) ?? [];
    const common = ids.filter((id) => got.includes(id));
    if (common.some((id, i) => got[i] !== id) && outOfOrder++ < 5) v.push(`run ${runId}: its audit entries reached the log destination out of order`);
  }

  // --- lateness (figures, not asserted) ---------------------------------------------------
  const late = dbRuns.filter((r) => r.deescalated !== null && r.expires !== null).map((r) => Number(r.deescalated) - Number(r.expires)).sort((a, b) => a - b);
  const targetLate = dbRuns
    .map((r) => [r, target.byRun.get(r.id)?.firstDeescalateMs])
    .filter(([r, at]) => at !== undefined && r.expires !== null)
    .map(([r, at]) => at - Number(r.expires))
    .sort((a, b) => a - b);

  const counts = {
    clientRuns: runs.length,
    accepted: accepted.length,
    clientFailed,
    inDb: dbRuns.length,
    extra: extra.length,
    lost: lost.length,
    statuses,
    events: eventTotals,
    ledger,
    audit,
    target: t,
  };
  log(`  checked against PostgreSQL:`);
  log(
    `    runs: ${runs.length} started by clients${ctx.probeRunIds?.length ? ` (+ ${ctx.probeRunIds.length} probe)` : ''}, ${accepted.length} accepted (HTTP 200), ${clientFailed} not accepted (the client gave up: ${clientFailed ? 'error seen, not counted as lost' : '-'}); ` +
      `${dbRuns.length} in PostgreSQL (${extra.length} not known to a client${extra.length ? ': committed although the client saw an error' : ''}); lost ${lost.length}`,
  );
  log(`    statuses: ${JSON.stringify(statuses)}; escalated past expiry now: ${dbRuns.filter((r) => r.status === 'escalated' && r.expires !== null && Number(r.expires) < now).length}`);
  log(`    events: ${Object.entries(eventTotals).sort().map(([k, n]) => `${k} ${n}`).join(', ')}`);
  if (errs.length) log(`    error events: ${errs.map((e) => `${e.name} ×${e.n} (${String(e.error).slice(0, 100)})`).join('; ')}`);
  log(`    grant ledger: ${ledger.grants} grants (${ledger.applied} still applied), ${ledger.leases} leases (${ledger.open_leases} open), escalated runs without a lease ${ledger.escalated_without_lease}`);
  log(`    audit: ${audit.entries} entries for ${audit.completed} completed events (missing ${audit.missing}, orphans ${audit.orphans}); hash chain ${chain}`);
  log(`  checked against the strategy's target (http receiver):`);
  log(
    `    ${t.calls} calls: ${t.escalateCalls} escalate, ${t.deescalateCalls} deescalate; applied ${t.grants} grants and ${t.revokes} revokes; ` +
      `${t.redeliveries} redeliveries of an operation already applied (same Idempotency-Key: a retry after a lost reply, no second effect); ` +
      `${t.failedAnswers} answered with an injected failure; double grants ${t.doubleGrants}; revokes without grant ${t.revokesWithoutGrant}; identities left granted ${t.leftGranted}`,
  );
  log(`    cross-check: PostgreSQL recorded ${called.escalates} escalations and ${called.deescalates} de-escalations that called the strategy (the target applied ${t.grants} and ${t.revokes})`);
  log(`  checked against the log destination (http, a receiver in the drill process):`);
  log(
    `    ${entries.length - undelivered.length} of ${entries.length} audit entries delivered (${ctx.logs.redeliveries()} delivered again: at least once, de-duplicated by id), ` +
      `runs with entries out of order ${outOfOrder}; ${ctx.logs.refused} deliveries refused by an injected outage; all in ${fmt(waitedS, 1)} s after the runs ended`,
  );
  log(
    `  de-escalation lateness (not asserted): deescalatedAt − expiresAt p50 ${fmt(percentile(late, 50), 0)} ms, p99 ${fmt(percentile(late, 99), 0)} ms, max ${fmt(late.at(-1), 0)} ms; ` +
      `target revoke − expiresAt p50 ${fmt(percentile(targetLate, 50), 0)} ms, max ${fmt(targetLate.at(-1), 0)} ms`,
  );
  return { violations: v, counts };
}
