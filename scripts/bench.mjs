#!/usr/bin/env node
// `npm run bench [-- <section>…]`: figures from the real API process on a real PostgreSQL (never pass/fail).
//
// Sections (default: all, in this order):
//   api       entity-API throughput and latency under HTTP load (scripts/bench/api.mjs)
//   provider  the Terraform provider: start-up, and terraform plan/apply with 1 and 100 flows against the built-in
//             terraform_data, with the targets of issue 3 (scripts/bench/provider.mjs)
//   engine    the access flow engine: request → escalated latency and runs/s, expiry lateness, worker RSS, with the
//             targets of issue 4 (a worker process on the API's queue prefix; scripts/bench/engine.mjs)
//   load      sustained Events-API load with auto-approval at increasing rates: throughput, end-to-end latency,
//             error rate, PostgreSQL/Redis round trips per run (its own API, worker and private servers;
//             scripts/bench/load.mjs)
//   logs      delivery of audit entries to an http log destination: backlog throughput, and lag p50/p99 at a
//             steady rate (the log-delivery worker in a child process on the bench database; scripts/bench/logs.mjs)
//   sandbox   flow implementations in the sandbox: cold start per flow version, per-call overhead of a reducer and
//             of a hook that makes one SDK call (needs neither the API nor the database; scripts/bench/sandbox.mjs)
//   slack     a signed Slack Approve click to its acknowledgement, the strategy call and the card update, p50/p99
//             (an API and a worker of its own on the bench database, the local Slack fake; scripts/bench/slack.mjs)
// e.g. `npm run bench -- provider` runs only the provider section.
//
// Steps: install dependencies if needed, find or start PostgreSQL and Redis (stack.mjs), create and migrate a
// database of its own (opensym_bench_<random>), start apps/api/src/server.ts as a child process, create an org,
// a bot and a token with the admin command, create a flow graph (environment, strategy and what they need) over
// HTTP, then run the sections. On exit (also on error or Ctrl-C) it stops the server and drops its database.
//
// Environment (each section lists its own in its file):
//   BENCH_QUICK=1             shortest settings in every section (smoke run)
//   DB_POOL_SIZE              passed through to the API (its default is 10)
//   BENCH_API_NODE_ARGS       extra node flags for the API only, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
//   DATABASE_URL / REDIS_URL  servers to use (as for `npm start`); the bench database is created next to it
//
// Only stack.mjs and the section modules (which import nothing else at load) are imported statically: pg, tsx
// and autocannon are loaded after ensureInstalled().

import { randomBytes } from 'node:crypto';
import os from 'node:os';
import {
  StackError,
  createDatabaseIfMissing,
  ensureInstalled,
  ensureServices,
  findFreePort,
  redact,
  reportError,
  signalExitCode,
  trapSignals,
  withDatabase,
} from './stack.mjs';
import * as apiSection from './bench/api.mjs';
import {
  HOST,
  abort,
  api,
  checkInterrupted,
  cpuCalibrationMs,
  createFlowGraph,
  dropDatabase,
  loadBodies,
  machineLine,
  procStatusKb,
  runCaptured,
  say,
  startServer,
  stopServer,
  waitReady,
} from './bench/common.mjs';
import * as engineSection from './bench/engine.mjs';
import * as loadSection from './bench/load.mjs';
import * as logsSection from './bench/logs.mjs';
import * as sandboxSection from './bench/sandbox.mjs';
import * as providerSection from './bench/provider.mjs';
import * as slackSection from './bench/slack.mjs';

const SECTIONS = { api: apiSection, provider: providerSection, engine: engineSection, load: loadSection, logs: logsSection, sandbox: sandboxSection, slack: slackSection };

function chosenSections(argv) {
  const names = argv.filter((a) => a !== '--');
  const unknown = names.filter((n) => !(n in SECTIONS));
  if (unknown.length) throw new StackError(`unknown section(s) ${unknown.join(', ')}; use ${Object.keys(SECTIONS).join(', ')} (default: all)`);
  // Always in the documented order, whatever order they were given in.
  return Object.keys(SECTIONS).filter((n) => names.length === 0 || names.includes(n));
}

async function main() {
  const signals = trapSignals((signal) => {
    say(`${signal} received: stopping, then cleaning up`);
    abort.abort(new StackError(`interrupted by ${signal}`));
    apiSection.stopLoad();
  });
  const cleanups = []; // run in reverse order, each one even if another fails
  let exitCode = 0;
  let server;

  try {
    const sections = chosenSections(process.argv.slice(2));
    // Settings first: a typo in a BENCH_* variable fails before anything is started.
    const configs = Object.fromEntries(sections.map((name) => [name, SECTIONS[name].settings()]));
    const loadBefore = os.loadavg();
    await ensureInstalled();
    checkInterrupted(signals);
    const services = await ensureServices({ purpose: 'start', need: ['postgres', 'redis'] });
    cleanups.push(['stop private services', () => services.stop()]);
    checkInterrupted(signals);

    const { default: pg } = await import('pg');

    // Our own database, next to the one DATABASE_URL names (or the default one).
    const runTag = `${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
    const dbName = `opensym_bench_${runTag}`;
    const databaseUrl = withDatabase(services.databaseUrl, dbName);
    if (!(await createDatabaseIfMissing(databaseUrl))) throw new StackError(`database ${dbName} already exists; not touching it`);
    cleanups.push([
      `drop database ${dbName}`,
      async () => {
        await dropDatabase(pg, services.databaseUrl, dbName);
        say(`dropped database ${dbName}`);
      },
    ]);
    checkInterrupted(signals);

    say(`migrating ${redact(databaseUrl)}`);
    const env = { ...process.env, DATABASE_URL: databaseUrl };
    await runCaptured('migrate deploy', ['--import', 'tsx', 'packages/db/tools/migrate.mts', 'deploy'], env);
    checkInterrupted(signals);

    // The org, bot and token, with the admin command (the same as `npm run -s admin -- … --json`).
    const orgSlug = `bench-${runTag.replace(/_/g, '-')}`;
    const admin = async (...args) => JSON.parse(await runCaptured(`admin ${args.slice(0, 2).join(' ')}`, ['scripts/admin.mjs', ...args, '--json'], env));
    await admin('org', 'create', '--slug', orgSlug);
    await admin('bot', 'create', '--org', orgSlug, '--name', 'terraform');
    const { token } = await admin('token', 'issue', '--org', orgSlug, '--bot', 'terraform', '--label', 'bench');
    checkInterrupted(signals);

    const port = await findFreePort(18080);
    const baseUrl = `http://${HOST}:${port}`;
    const queuePrefix = `opensym_bench_${runTag}`; // BullMQ keys of this run only (the engine section's worker uses it too)
    const serverEnv = { ...env, PORT: String(port), HOST, REDIS_URL: services.redisUrl, QUEUE_PREFIX: queuePrefix, LOG_LEVEL: 'warn' };
    const poolSize = process.env.DB_POOL_SIZE || '10 (default)';
    say(`starting the API on ${baseUrl} (DB_POOL_SIZE ${poolSize})`);
    server = startServer(serverEnv);
    cleanups.push(['stop the API', () => stopServer(server)]);
    await waitReady(server, baseUrl, signals);
    const startupRssMb = (procStatusKb(server.pid, 'VmRSS') ?? NaN) / 1024;

    const call = api(baseUrl, token);
    const bodies = await loadBodies();
    const graph = await createFlowGraph(call, bodies);
    const stack = { signals, server, baseUrl, token, orgSlug, runTag, call, bodies, graph, poolSize, startupRssMb, cleanups, databaseUrl, redisUrl: services.redisUrl, queuePrefix };

    console.log(machineLine(loadBefore));
    const speedBefore = await cpuCalibrationMs();
    console.log(`machine speed: a fixed JavaScript task takes ${speedBefore.toFixed(0)} ms (fastest of 3 fresh processes; compare runs only at similar speeds)`);
    for (const name of sections) {
      checkInterrupted(signals);
      await SECTIONS[name].run(stack, configs[name]);
    }
    const speedAfter = await cpuCalibrationMs();
    const drift = (speedAfter / speedBefore - 1) * 100;
    console.log(`\nmachine speed after the sections: ${speedAfter.toFixed(0)} ms (${speedBefore.toFixed(0)} ms before; ${drift >= 0 ? '+' : ''}${drift.toFixed(0)} %${Math.abs(drift) > 15 ? ': the machine changed speed during the run, the figures moved with it' : ''})`);
  } catch (err) {
    if (signals.signal) say(`interrupted by ${signals.signal}`);
    else {
      reportError('bench', err);
      exitCode = 1;
    }
  } finally {
    if (server) printApiLog(server);
    for (const [what, fn] of cleanups.reverse()) {
      try {
        await fn();
      } catch (err) {
        console.error(`[bench] cleanup: ${what} failed: ${err.message}`);
        exitCode ||= 1;
      }
    }
  }
  if (signals.signal) exitCode = signalExitCode(signals.signal);
  process.exitCode = exitCode;
}

/** What the API logged at warn and above: failures behind the figures show up here. */
function printApiLog(server) {
  const levels = Object.entries(server.byLevel)
    .map(([l, c]) => `${l} ${c}`)
    .join(', ');
  console.log('');
  if (server.lines === 0) console.log('api log: no lines at LOG_LEVEL=warn');
  else {
    console.log(`api log: ${server.lines} lines (${levels}); most frequent:`);
    for (const [message, count] of [...server.messages].sort((a, b) => b[1] - a[1]).slice(0, 8)) console.log(`  ×${count}  ${message}`);
  }
}

await main();
