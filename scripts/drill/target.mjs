// The strategy's target system for the drills: packages/testing's HTTP receiver (the `http` strategy POSTs to it)
// with a model of the access it holds, so that a drill can check the target's side of "nothing granted twice,
// nothing left granted" independently of PostgreSQL.
//
// The model is a real idempotent target's: access per identity (the requester's username, one member per run in
// the drills), an escalate applies the grant when it is received (before the reply, so a worker killed while waiting
// for the reply leaves the access in place, the worst case), and a repeat of the same operation — the same
// Idempotency-Key, which the engine derives from the event id — is a redelivery, answered without a second effect.
// A grant with another key while the identity already holds the access is a DOUBLE GRANT (two escalations of one
// access without a revoke in between); a revoke of access that is not held, other than a redelivery, is a
// REVOKE WITHOUT GRANT. Failure answers (scripted 5xx/429) change nothing.

import { performance } from 'node:perf_hooks';

/**
 * `receiver`: a started packages/testing HTTP receiver. Returns the model; `failWith(fn)` scripts answers: fn(call)
 * returns undefined (apply and answer 200) or a ScriptedResponse without effect; `slow(fn)` returns a delay in ms
 * for calls that are applied and then answered late.
 */
export function createTarget(receiver) {
  const calls = []; // every call: { type, runId, identity, key, at, epochMs, outcome }
  const state = new Map(); // identity -> { granted, grantKey, revokeKey, grants, revokes }
  const byRun = new Map(); // runId -> { escalate: n, deescalate: n, firstEscalateMs, firstDeescalateMs }
  const violations = [];
  let failWith;
  let slow;
  let unknown = 0;
  const waiters = new Set();

  const identityState = (identity) => {
    let s = state.get(identity);
    if (!s) state.set(identity, (s = { granted: false, grantKey: undefined, revokeKey: undefined, grants: 0, revokes: 0 }));
    return s;
  };
  const runEntry = (runId) => {
    let r = byRun.get(runId);
    if (!r) byRun.set(runId, (r = { escalate: 0, deescalate: 0, redeliveries: 0, failures: 0 }));
    return r;
  };

  receiver.respondWith((request) => {
    const json = request.json;
    const type = json?.event?.type;
    const srn = json?.run?.srn;
    if ((type !== 'escalate' && type !== 'deescalate') || typeof srn !== 'string') {
      unknown++;
      return { status: 400, body: { message: 'not an escalate/deescalate payload' } };
    }
    const runId = srn.slice(-36);
    const identity = json?.run?.actors?.request?.username ?? runId;
    const key = request.headers['idempotency-key'];
    const now = performance.now();
    const call = { type, runId, identity, key, at: now, epochMs: performance.timeOrigin + now, path: request.path, outcome: '' };
    calls.push(call);
    const run = runEntry(runId);
    const scripted = failWith?.(call);
    if (scripted) {
      call.outcome = `answered ${scripted.status ?? 200} (no effect)`;
      run.failures++;
      return scripted;
    }
    const s = identityState(identity);
    if (type === 'escalate') {
      if (s.granted && s.grantKey === key) {
        call.outcome = 'redelivery';
        run.redeliveries++;
      } else if (s.granted) {
        call.outcome = 'DOUBLE GRANT';
        violations.push(`double grant: ${identity} (run ${runId}) was granted again (Idempotency-Key ${key}) while holding the access granted with ${s.grantKey}`);
      } else {
        call.outcome = 'granted';
        Object.assign(s, { granted: true, grantKey: key });
        s.grants++;
        run.escalate++;
        run.firstEscalateMs ??= call.epochMs;
      }
    } else if (!s.granted && s.revokeKey === key) {
      call.outcome = 'redelivery';
      run.redeliveries++;
    } else if (!s.granted) {
      call.outcome = 'REVOKE WITHOUT GRANT';
      violations.push(`revoke without grant: ${identity} (run ${runId}) got a revoke (Idempotency-Key ${key}) while holding no access`);
    } else {
      call.outcome = 'revoked';
      Object.assign(s, { granted: false, revokeKey: key });
      s.revokes++;
      run.deescalate++;
      run.firstDeescalateMs ??= call.epochMs;
    }
    for (const w of [...waiters]) w();
    const delayMs = slow?.(call);
    return delayMs ? { status: 200, body: { body: {}, errors: [] }, delayMs } : undefined;
  });

  return {
    calls,
    byRun,
    violations,
    get unknown() {
      return unknown;
    },
    /** Scripts failure answers: fn(call) → a ScriptedResponse (no effect) or undefined. */
    failWith(fn) {
      failWith = fn;
    },
    /** Scripts slow answers after the effect: fn(call) → delay ms or undefined. */
    slow(fn) {
      slow = fn;
    },
    /** Resolves once `predicate()` holds (checked on every call), or after timeoutMs with false. */
    until(predicate, timeoutMs) {
      if (predicate()) return Promise.resolve(true);
      return new Promise((resolvePromise) => {
        const check = () => {
          if (!predicate()) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolvePromise(true);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          resolvePromise(false);
        }, timeoutMs);
        waiters.add(check);
      });
    },
    /** What the target did for one identity: { granted, grants, revokes } (undefined: never called). */
    identity: (identity) => state.get(identity),
    /** Identities that still hold access. */
    granted() {
      return [...state].filter(([, s]) => s.granted).map(([identity]) => identity);
    },
    totals() {
      const by = (outcome) => calls.filter((c) => c.outcome === outcome).length;
      return {
        calls: calls.length,
        escalateCalls: calls.filter((c) => c.type === 'escalate').length,
        deescalateCalls: calls.filter((c) => c.type === 'deescalate').length,
        grants: by('granted'),
        revokes: by('revoked'),
        redeliveries: by('redelivery'),
        failedAnswers: calls.filter((c) => c.outcome.startsWith('answered')).length,
        doubleGrants: by('DOUBLE GRANT'),
        revokesWithoutGrant: by('REVOKE WITHOUT GRANT'),
        leftGranted: [...state.values()].filter((s) => s.granted).length,
      };
    },
  };
}

/**
 * A log destination of type `http` for the drills: packages/testing's HTTP receiver recording every audit entry it
 * is sent (one JSON entry per POST, `id` stable across deliveries). `down(fn)` scripts failure answers (no effect).
 */
export function createLogSink(receiver) {
  const arrivals = []; // first arrival of each entry id, in order: { id, runId }
  const seen = new Map(); // id -> deliveries accepted
  let refused = 0;
  let down;
  receiver.respondWith((request) => {
    const scripted = down?.();
    if (scripted) {
      refused++;
      return scripted;
    }
    const entry = request.json;
    const id = entry?.id;
    if (typeof id !== 'string') return { status: 400, body: { message: 'not a log entry' } };
    const n = seen.get(id) ?? 0;
    seen.set(id, n + 1);
    if (n === 0) arrivals.push({ id, runId: typeof entry.run?.srn === 'string' ? entry.run.srn.slice(-36) : undefined });
    return { status: 200, body: {} };
  });
  return {
    arrivals,
    seen,
    get refused() {
      return refused;
    },
    /** fn() → a ScriptedResponse while the destination is down, undefined when it is up. */
    down(fn) {
      down = fn;
    },
    redeliveries: () => [...seen.values()].reduce((n, c) => n + c - 1, 0),
  };
}
