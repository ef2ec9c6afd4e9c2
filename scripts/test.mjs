#!/usr/bin/env node
// `npm test [-- vitest args]`: install dependencies if needed, generate the Prisma client,
// find or start PostgreSQL and Redis, run `vitest run`, and exit with its code.
//
// Tests get TEST_DATABASE_URL/DATABASE_URL pointing at the server's `postgres` maintenance
// database; the test setup creates its own per-run database from it.
//
// Only Node built-ins (and ./stack.mjs): this runs before `npm ci`.

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, StackError, ensureInstalled, ensureServices, reportError, runNpm, signalExitCode, trapSignals } from './stack.mjs';

function say(message) {
  console.log(`[test] ${message}`);
}

/** vitest's own bin, run with our node: no npx/shell layer between us and it for signals. */
function vitestBin() {
  const dir = join(ROOT, 'node_modules', 'vitest');
  try {
    const { bin } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    return join(dir, typeof bin === 'string' ? bin : bin.vitest);
  } catch {
    throw new StackError('vitest is not installed (node_modules/vitest is missing): run `npm install`');
  }
}

let vitest;
const signals = trapSignals((signal) => {
  if (!vitest) return say(`${signal} received: stopping after the current step`);
  say(`${signal} received: stopping vitest`);
  try {
    process.kill(-vitest.pid, signal === 'SIGHUP' ? 'SIGTERM' : signal);
  } catch (err) {
    if (err.code !== 'ESRCH') throw err;
  }
});

function runVitest(args, env) {
  return new Promise((resolvePromise, reject) => {
    // Own process group, so a Ctrl-C reaches vitest once (forwarded by us), not twice.
    vitest = spawn(process.execPath, [vitestBin(), 'run', ...args], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'inherit', 'inherit'],
      detached: true,
    });
    vitest.on('error', (err) => reject(new StackError(`vitest could not be started: ${err.message}`)));
    vitest.on('exit', (code, signal) => resolvePromise(code ?? signalExitCode(signal)));
  });
}

async function main() {
  const interrupted = () => {
    if (signals.signal) throw new StackError(`interrupted by ${signals.signal}`);
  };
  await ensureInstalled();
  interrupted();
  await runNpm(['run', '-s', 'generate']);
  interrupted();

  const services = await ensureServices({ purpose: 'test' });
  try {
    interrupted();
    const env = {
      ...process.env,
      TEST_DATABASE_URL: services.databaseUrl,
      TEST_REDIS_URL: services.redisUrl,
      DATABASE_URL: services.databaseUrl,
      REDIS_URL: services.redisUrl,
    };
    return await runVitest(process.argv.slice(2), env);
  } finally {
    await services.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    reportError('test', err);
    process.exit(signals.signal ? signalExitCode(signals.signal) : 1);
  },
);
