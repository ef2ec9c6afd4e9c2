#!/usr/bin/env node
// `npm start`: install dependencies if needed, find or start PostgreSQL and Redis,
// create + migrate the database, then run the API and the worker in the foreground.
// Ctrl-C / SIGTERM stops both, then any private PostgreSQL/Redis we started.
//
// Only Node built-ins (and ./stack.mjs): this runs before `npm ci`.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  ROOT,
  StackError,
  createDatabaseIfMissing,
  ensureInstalled,
  ensureServices,
  migrateDeploy,
  redact,
  reportError,
  runNpm,
  signalExitCode,
  trapSignals,
} from './stack.mjs';

// isolated-vm needs --no-node-snapshot: the worker runs flow code, and so does the API's Slack app (prefetch
// reducers, the flows filter).
const CHILDREN = [
  { name: 'api', entry: 'apps/api/src/server.ts', nodeArgs: ['--no-node-snapshot', '--import', 'tsx', '--conditions=@opensym/source'] },
  { name: 'worker', entry: 'apps/worker/src/main.ts', nodeArgs: ['--no-node-snapshot', '--import', 'tsx', '--conditions=@opensym/source'] },
];

// How long api/worker get to shut down after the signal before we SIGKILL them.
const GRACE_MS = Number(process.env.OPENSYM_SHUTDOWN_GRACE_MS ?? 15000);

function say(message) {
  console.log(`[start] ${message}`);
}

function describeExit(code, signal) {
  return signal ? `signal ${signal}` : `exit code ${code}`;
}

/** Exit that counts as a clean stop after we sent `sent`. */
function isCleanStop(code, signal, sent) {
  const stopSignals = new Set(['SIGINT', 'SIGTERM', sent]);
  if (signal) return stopSignals.has(signal);
  return code === 0 || [...stopSignals].some((s) => code === signalExitCode(s));
}

function spawnChild({ name, entry, nodeArgs }, env) {
  // Own process group (detached), so each child gets exactly one signal, from us:
  // a terminal Ctrl-C would otherwise reach it directly as well as forwarded,
  // and a second SIGINT usually means "exit now" to a Node program.
  const child = spawn(process.execPath, [...nodeArgs, entry], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'inherit', 'inherit'], // JSON logs pass through untouched
    detached: true,
  });
  return { name, child, exited: false };
}

function signalGroup(proc, signal) {
  if (!proc.child.pid) return; // never started (spawn error)
  try {
    process.kill(-proc.child.pid, signal); // the whole group: the child and anything it spawned
  } catch (err) {
    if (err.code !== 'ESRCH') throw err;
  }
}

/**
 * Run all children; resolve with our exit code once every one has exited.
 * One exiting on its own stops the rest (exit code non-zero).
 */
function supervise(env) {
  const procs = CHILDREN.map((spec) => spawnChild(spec, env));
  let stopping = false;
  let sentSignal;
  let failure; // { message, code }
  let killTimer;

  const stopAll = (signal) => {
    if (stopping) return;
    stopping = true;
    sentSignal = signal;
    for (const proc of procs) if (!proc.exited) signalGroup(proc, signal);
    killTimer = setTimeout(() => {
      for (const proc of procs) {
        if (proc.exited) continue;
        say(`${proc.name} did not stop within ${GRACE_MS / 1000} s; killing it`);
        failure ??= { message: `${proc.name} had to be killed`, code: 1 };
        signalGroup(proc, 'SIGKILL');
      }
    }, GRACE_MS);
  };

  const done = new Promise((resolvePromise) => {
    let remaining = procs.length;
    const onExit = (proc, code, signal) => {
      if (proc.exited) return;
      proc.exited = true;
      remaining -= 1;
      if (!stopping) {
        failure = { message: `${proc.name} exited unexpectedly (${describeExit(code, signal)})`, code: code || 1, reported: true };
        say(`${failure.message}; stopping the rest`);
        stopAll('SIGTERM');
      } else if (!isCleanStop(code, signal, sentSignal)) {
        failure ??= { message: `${proc.name} stopped with ${describeExit(code, signal)}`, code: 1 };
      }
      if (remaining === 0) {
        clearTimeout(killTimer);
        if (failure && !failure.reported) say(failure.message);
        resolvePromise(failure ? failure.code : 0);
      }
    };
    for (const proc of procs) {
      proc.child.on('exit', (code, signal) => onExit(proc, code, signal));
      proc.child.on('error', (err) => {
        say(`${proc.name} could not be started: ${err.message}`);
        onExit(proc, 1, null);
      });
    }
  });

  return {
    done,
    shutdown(signal) {
      // Programs conventionally treat SIGHUP as "reload", not "stop".
      const forward = signal === 'SIGHUP' ? 'SIGTERM' : signal;
      say(`${signal} received: stopping ${procs.filter((p) => !p.exited).map((p) => p.name).join(' and ')}`);
      stopAll(forward);
    },
  };
}

function assertEntriesExist() {
  for (const { name, entry } of CHILDREN) {
    if (!existsSync(join(ROOT, entry))) throw new StackError(`${entry} (the ${name}) does not exist`);
  }
}

let supervisor;
const signals = trapSignals((signal) => {
  if (supervisor) supervisor.shutdown(signal);
  else say(`${signal} received: stopping after the current step`);
});

async function main() {
  const interrupted = () => {
    if (signals.signal) throw new StackError(`interrupted by ${signals.signal}`);
  };

  await ensureInstalled();
  interrupted();
  assertEntriesExist();
  // The Prisma client is generated into a gitignored folder, so a fresh clone has none,
  // and a schema change needs a new one. It takes about a second.
  await runNpm(['run', '-s', 'generate']);
  interrupted();

  const services = await ensureServices({ purpose: 'start' });
  try {
    interrupted();
    await createDatabaseIfMissing(services.databaseUrl);
    interrupted();
    await migrateDeploy(services.databaseUrl);
    interrupted();

    const port = process.env.PORT || '8080';
    const env = { ...process.env, DATABASE_URL: services.databaseUrl, REDIS_URL: services.redisUrl, PORT: port };
    say(`database ${redact(services.databaseUrl)}, redis ${redact(services.redisUrl)}`);
    say(`starting api (PORT=${port}) and worker; Ctrl-C stops everything`);
    supervisor = supervise(env);
    return await supervisor.done;
  } finally {
    await services.stop();
  }
}

main().then(
  (code) => {
    if (code === 0) say('stopped');
    process.exit(code);
  },
  (err) => {
    reportError('start', err);
    process.exit(signals.signal ? signalExitCode(signals.signal) : 1);
  },
);
