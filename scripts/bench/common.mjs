// Plumbing shared by the sections of `npm run bench` (scripts/bench.mjs): child processes, the API server, setup
// requests over HTTP, /proc figures and small formatting helpers. Only Node built-ins and stack.mjs: the sections
// import their dependencies (autocannon, pg, tsx) after ensureInstalled().
/* global fetch, AbortController, AbortSignal */

import { execFile, spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT, StackError, withDatabase } from '../stack.mjs';

export const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 60_000;
const SERVER_STOP_GRACE_MS = 15_000;
const CHILD_TIMEOUT_MS = 180_000; // migrate, admin commands
const HTTP_TIMEOUT_MS = 10_000; // setup requests
export const CLK_TCK = 100; // Linux USER_HZ; /proc/<pid>/stat times are in these ticks

export function say(message) {
  console.log(`[bench] ${message}`);
}

/** BENCH_QUICK=1: every section takes its shortest settings (a smoke run). */
export function quickMode() {
  return process.env.BENCH_QUICK === '1' || process.env.BENCH_QUICK === 'true';
}

// ---------------------------------------------------------------------------
// Interruption: Ctrl-C stops the current step, then cleanup runs
// ---------------------------------------------------------------------------

/** Aborted on the first SIGINT/SIGTERM: child processes and setup requests are tied to it. */
export const abort = new AbortController();

export function checkInterrupted(signals) {
  if (signals.signal) throw new StackError(`interrupted by ${signals.signal}`);
}

// ---------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------

/** Runs a short node command to completion; returns stdout, throws a one-line StackError with its stderr. */
export function runCaptured(what, args, env, { timeout = CHILD_TIMEOUT_MS } = {}) {
  return new Promise((resolvePromise, reject) => {
    execFile(process.execPath, args, { cwd: ROOT, env, timeout, signal: abort.signal, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (!err) return resolvePromise(stdout);
      const detail = (stderr || stdout || '').trim().split('\n').filter(Boolean).slice(-3).join(' | ') || err.message;
      reject(new StackError(`${what} failed: ${detail}`));
    });
  });
}

/** The API server, with its output kept for the summary (and for errors). */
/** Resolves when `child` is gone, noting on `proc` that it exited and how (`exited`, `exit`). */
export function watchExit(child, proc) {
  return new Promise((resolvePromise) => {
    child.on('exit', (code, signal) => {
      proc.exited = true;
      proc.exit = signal ? `signal ${signal}` : `exit code ${code}`;
      resolvePromise();
    });
    child.on('error', (err) => {
      proc.exited = true;
      proc.exit = `could not start (${err.message})`;
      resolvePromise();
    });
  });
}

export function startServer(env) {
  const extra = (process.env.BENCH_API_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  // --no-node-snapshot: the API's Slack app runs flow code in isolated-vm, as in scripts/start.mjs.
  const child = spawn(process.execPath, [...extra, '--no-node-snapshot', '--import', 'tsx', '--conditions=@opensym/source', 'apps/api/src/server.ts'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Own process group, like `npm start`: a terminal Ctrl-C reaches only us, and we stop it once.
    detached: true,
  });
  const server = { child, pid: child.pid, exited: false, exit: undefined, tail: [], lines: 0, byLevel: {}, messages: new Map() };
  server.exitPromise = watchExit(child, server);
  const onData = (chunk) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      server.lines++;
      server.tail.push(line);
      if (server.tail.length > 40) server.tail.shift();
      let level = 'text';
      let msg = line.slice(0, 160);
      try {
        const parsed = JSON.parse(line);
        level = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' }[parsed.level] ?? String(parsed.level);
        msg = `${parsed.msg ?? ''}${parsed.err?.message ? `: ${parsed.err.message.split('\n').filter(Boolean).at(-1)}` : ''}`.slice(0, 200);
      } catch {
        // not JSON (e.g. a crash message)
      }
      server.byLevel[level] = (server.byLevel[level] ?? 0) + 1;
      const key = `${level}: ${msg}`;
      if (server.messages.size < 50 || server.messages.has(key)) server.messages.set(key, (server.messages.get(key) ?? 0) + 1);
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  return server;
}

export function serverTail(server, lines = 12) {
  return server.tail.slice(-lines).join('\n') || '(no output)';
}

/** Throws when the API died: every figure after that would be about errors. */
export function checkServer(server) {
  if (server.exited) throw new StackError(`the API exited (${server.exit}) during the run:\n${serverTail(server)}`);
}

export async function stopServer(server) {
  if (!server || server.exited) return;
  const signalGroup = (signal) => {
    try {
      process.kill(-server.pid, signal);
    } catch (err) {
      if (err.code !== 'ESRCH') throw err;
    }
  };
  signalGroup('SIGTERM');
  const stopped = await Promise.race([server.exitPromise.then(() => true), sleep(SERVER_STOP_GRACE_MS).then(() => false)]);
  if (!stopped) {
    // The API's or the worker's (engine.mjs stops its worker process here too).
    say(`process ${server.pid} did not stop within ${SERVER_STOP_GRACE_MS / 1000} s of SIGTERM: killing it; its last lines:\n${serverTail(server, 8)}`);
    signalGroup('SIGKILL');
    await Promise.race([server.exitPromise, sleep(5000)]);
  }
}

export async function waitReady(server, baseUrl, signals) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = 'no answer yet';
  for (let attempt = 0; attempt < 1000 && Date.now() < deadline; attempt++) {
    checkInterrupted(signals);
    if (server.exited) throw new StackError(`the API exited (${server.exit}) before it was ready:\n${serverTail(server)}`);
    try {
      const res = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(2000) });
      if (res.status === 200) return;
      last = `HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`;
    } catch (err) {
      last = err.cause?.code ?? err.message;
    }
    await sleep(200);
  }
  throw new StackError(`the API was not ready within ${READY_TIMEOUT_MS / 1000} s (last: ${last}):\n${serverTail(server)}`);
}

// ---------------------------------------------------------------------------
// /proc figures
// ---------------------------------------------------------------------------

export function procStatusKb(pid, field) {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** utime + stime of one process, in clock ticks. */
export function cpuTicks(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]); // fields 14 and 15 of stat(5)
  } catch {
    return undefined;
  }
}

/** CPU ticks of every `postgres` process on the machine (backends come and go with the pool). */
export function postgresTicks() {
  const ticks = new Map();
  let entries;
  try {
    entries = readdirSync('/proc');
  } catch {
    return ticks;
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) !== 'postgres') continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks.set(name, Number(fields[11]) + Number(fields[12]));
    } catch {
      // exited meanwhile
    }
  }
  return ticks;
}

export function postgresTicksSince(before) {
  let total = 0;
  for (const [pid, t] of postgresTicks()) total += t - (before.get(pid) ?? 0);
  return total;
}

// ---------------------------------------------------------------------------
// HTTP setup (sequential-ish, bounded)
// ---------------------------------------------------------------------------

/** A setup client for the entities API: throws unless the status is the success one. */
export function api(baseUrl, token) {
  return async function call(method, path, body) {
    const res = await fetch(`${baseUrl}/api/v1/${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body ?? null),
      signal: AbortSignal.any([abort.signal, AbortSignal.timeout(HTTP_TIMEOUT_MS)]),
    });
    const text = await res.text();
    if (res.status !== (method === 'POST' ? 201 : 200)) throw new StackError(`setup: ${method} ${path} → HTTP ${res.status}: ${text.slice(0, 300)}`);
    return JSON.parse(text);
  };
}

/** Runs `count` calls of `fn(i)`, at most `limit` at a time. */
export async function pool(count, limit, fn) {
  const results = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      results[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
  return results;
}

/** The realistic bodies the API tests use (packages/testing), loaded through tsx once dependencies exist. */
export async function loadBodies() {
  const { tsImport } = await import('tsx/esm/api');
  const { entityBodies } = await tsImport('../../packages/testing/src/entity-bodies.ts', import.meta.url);
  return entityBodies;
}

/**
 * What every access flow needs, like apps/api/test/graph.ts: Slack, an AWS runtime with its secrets, Okta with its
 * API token, an error logger, two log destinations, the environment, an Okta group target and the Okta strategy.
 */
export async function createFlowGraph(call, bodies) {
  const post = (path, body) => call('POST', `entities/${path}`, body);
  const slack = await post('integrations', bodies.slack);
  const context = await post('integrations', bodies.context);
  const runtime = await post('runtimes', bodies.runtime(context.id));
  const secretSource = await post('secret-sources', bodies.secretSource(context.id));
  const secret = await post('secrets', bodies.secret(secretSource.id));
  const okta = await post('integrations', bodies.okta(secret.id));
  const errorLogger = await post('error-loggers', bodies.errorLogger(slack.id));
  const firehose = await post('log-destinations', bodies.firehose(context.id));
  const httpLog = await post('log-destinations', bodies.httpLog);
  const environment = await post(
    'environments',
    bodies.environment({ runtime: runtime.id, slack: slack.id, okta: okta.id, errorLogger: errorLogger.id, logs: [firehose.id, httpLog.id] }),
  );
  const oktaTarget = await post('access-targets', bodies.oktaTarget);
  const strategy = await post('access-strategies', bodies.strategy(okta.id, [oktaTarget.id]));
  return { secretId: secret.id, environmentId: environment.id, strategyId: strategy.id };
}

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------

export const fmt = (n, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '-');

export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Rows of cells as aligned columns; `left` holds the indexes of left-aligned columns. */
export function printColumns(header, lines, left = new Set([0, header.length - 1])) {
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const row = (cells) => cells.map((c, i) => (left.has(i) ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  console.log(row(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  ').trimEnd());
  for (const l of lines) console.log(row(l));
}

export function machineLine(loadBefore) {
  const cpus = os.cpus();
  const model = cpus[0]?.model?.trim() ?? 'unknown CPU';
  return `machine: nproc ${os.availableParallelism()} (${model}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, node ${process.version}, ${os.type()} ${os.release()}; load average before the run ${loadBefore.map((l) => l.toFixed(2)).join(' ')} (other work on the machine skews the figures)`;
}

/**
 * A fixed, allocation-heavy JavaScript task (maps of small objects and strings, like the services' request paths)
 * timed in fresh Node processes, fastest of `runs`. This machine's speed drifts (shared host): figures of runs whose
 * calibration differs are not comparable, and a change in it between the start and the end of a run says the
 * figures in between moved with the machine.
 */
export async function cpuCalibrationMs(runs = 3) {
  const task = `let h = 0; const t = performance.now();
    for (let r = 0; r < 3; r++) { const m = new Map(); for (let i = 0; i < 150000; i++) m.set('k' + i, { i, s: String(i * 7) });
      for (const [k, v] of m) h = (h + k.length + v.s.length + v.i) | 0 }
    process.stdout.write(String(performance.now() - t) + ' ' + h)`;
  const times = [];
  for (let i = 0; i < runs; i++) {
    const out = await new Promise((resolvePromise, reject) =>
      execFile(process.execPath, ['-e', task], { timeout: 60_000 }, (err, stdout) => (err ? reject(err) : resolvePromise(stdout))),
    );
    times.push(Number(String(out).split(' ')[0]));
  }
  return Math.min(...times);
}

export async function dropDatabase(pg, serverUrl, name) {
  const client = new pg.Client({ connectionString: withDatabase(serverUrl, 'postgres'), connectionTimeoutMillis: 10_000, statement_timeout: 30_000 });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS "${name.replaceAll('"', '""')}" WITH (FORCE)`);
  } finally {
    await client.end().catch(() => {});
  }
}
