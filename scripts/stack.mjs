#!/usr/bin/env node
// Shared plumbing for `npm start`, `npm test` and `npm run db:migrate`:
// install dependencies when needed, find or start PostgreSQL and Redis,
// create the database and apply migrations.
//
// Only Node built-ins here: this file runs BEFORE `npm ci` has installed anything.
//
// CLI:
//   node scripts/stack.mjs migrate   ensure deps + PostgreSQL, create the db, migrate deploy
//   node scripts/stack.mjs stop      stop private instances left running under .data/
//
// Environment knobs (mostly for tests of these scripts themselves):
//   DATABASE_URL / REDIS_URL              use these servers, never start private ones
//   OPENSYM_PG_DEFAULT_PORT (5432)        where to look for an already running PostgreSQL
//   OPENSYM_REDIS_DEFAULT_PORT (6379)     where to look for an already running Redis
//   OPENSYM_PG_PRIVATE_PORT (54329)       first port tried for the private PostgreSQL
//   OPENSYM_REDIS_PRIVATE_PORT (63799)    first port tried for the private Redis
//   OPENSYM_DATA_DIR (<repo>/.data)       where private instances keep their data

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const DATA_DIR = resolve(process.env.OPENSYM_DATA_DIR ?? join(ROOT, '.data'));

const HOST = '127.0.0.1';
const DEFAULT_DB_NAME = 'opensym';
const MAINTENANCE_DB = 'postgres';

/** An expected failure: main() prints only its one-line message, no stack trace. */
export class StackError extends Error {}

export function log(message) {
  console.log(`[stack] ${message}`);
}

// ---------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------

/** npm that runs us (npm sets npm_execpath), so nested calls use the same npm version. */
export function npmCommand(args) {
  const execPath = process.env.npm_execpath;
  if (execPath && /npm-cli\.js$/.test(execPath)) return [process.execPath, [execPath, ...args]];
  return ['npm', args];
}

/**
 * Run a command with inherited stdio; resolve on exit 0, throw StackError otherwise.
 * stdin is ignored: nothing we run should prompt (CI has no stdin either).
 */
export function run(command, args, { env = process.env, cwd = ROOT, what = `${command} ${args.join(' ')}` } = {}) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', (err) => reject(new StackError(`${what}: could not start (${err.message})`)));
    child.on('exit', (code, signal) => {
      if (code === 0) resolvePromise();
      else reject(new StackError(`${what} failed (${signal ? `signal ${signal}` : `exit code ${code}`})`));
    });
  });
}

export function runNpm(args, options = {}) {
  const [command, fullArgs] = npmCommand(args);
  return run(command, fullArgs, { what: `npm ${args.join(' ')}`, ...options });
}

/** Run a command to completion, capturing output (for short helper commands only). */
function capture(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...options });
  if (result.error) throw new StackError(`${command}: could not start (${result.error.message})`);
  return result;
}

// ---------------------------------------------------------------------------
// Dependencies
// ---------------------------------------------------------------------------

function mtimeMs(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

/** Why an install is needed, or undefined when node_modules is up to date. */
export function installReason(root = ROOT) {
  if (!existsSync(join(root, 'node_modules'))) return 'node_modules is missing';
  const lock = mtimeMs(join(root, 'package-lock.json'));
  if (lock === undefined) return undefined;
  // npm writes node_modules/.package-lock.json at the end of every install, so a
  // lock file newer than it means someone changed dependencies (git pull, branch switch).
  const hidden = mtimeMs(join(root, 'node_modules', '.package-lock.json'));
  if (hidden === undefined) return 'node_modules/.package-lock.json is missing';
  if (lock > hidden) return 'package-lock.json is newer than node_modules';
  return undefined;
}

export async function ensureInstalled(root = ROOT) {
  const reason = installReason(root);
  if (!reason) return false;
  const hasLock = existsSync(join(root, 'package-lock.json'));
  const args = hasLock ? ['ci'] : ['install'];
  log(`${reason}: running npm ${args[0]}`);
  await runNpm(args, { cwd: root });
  return true;
}

// ---------------------------------------------------------------------------
// Network helpers
// ---------------------------------------------------------------------------

/** True when something accepts TCP connections on host:port. */
export function isListening(host, port, timeoutMs = 1000) {
  return new Promise((resolvePromise) => {
    const socket = net.connect({ host, port });
    const done = (result) => {
      socket.destroy();
      resolvePromise(result);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** True when we can bind host:port ourselves (so a server we start there will too). */
function canBind(host, port) {
  return new Promise((resolvePromise) => {
    const server = net.createServer();
    server.once('error', () => resolvePromise(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolvePromise(true)));
  });
}

/** The first free port from `preferred` on; falls back to one the kernel picks. */
export async function findFreePort(preferred, host = HOST) {
  for (let port = preferred; port < preferred + 50 && port < 65536; port++) {
    if ((await canBind(host, port)) && !(await isListening(host, port, 300))) return port;
  }
  return new Promise((resolvePromise, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ host, port: 0 }, () => {
      const { port } = server.address();
      server.close(() => resolvePromise(port));
    });
  });
}

function envPort(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new StackError(`${name}=${raw} is not a valid port`);
  return port;
}

/** URL with any password replaced, safe to print. */
export function redact(url) {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparsable URL>';
  }
}

/** The same server URL pointing at another database. */
export function withDatabase(url, database) {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

export function databaseName(url) {
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
}

/** Fail early and clearly when a URL the user gave us points at nothing. */
async function assertReachable(label, url, defaultPort) {
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    throw new StackError(`${label} is not a valid URL: ${url}`);
  }
  // No host means a Unix socket (e.g. ?host=/var/run/postgresql): nothing to probe over TCP.
  if (!parsed.hostname) return;
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  const port = Number(parsed.port || defaultPort);
  if (!(await isListening(host, port, 3000))) {
    throw new StackError(`${label} points at ${host}:${port}, but nothing is listening there (${redact(url)})`);
  }
}

// ---------------------------------------------------------------------------
// Processes we did not spawn ourselves (daemons)
// ---------------------------------------------------------------------------

/** True if pid runs and is not a zombie (PID 1 here may not reap orphans). */
function isAlive(pid) {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return err.code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

function commandLine(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

async function waitFor(check, { timeoutMs, intervalMs = 100 }) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(intervalMs);
  }
  return check();
}

function tail(path, lines = 15) {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

// ---------------------------------------------------------------------------
// Private PostgreSQL
// ---------------------------------------------------------------------------

/** Newest (or PG_VERSION-matching) server binaries under /usr/lib/postgresql/<major>/bin. */
export function findPostgresBinaries(wantedMajor) {
  const base = '/usr/lib/postgresql';
  let majors = [];
  try {
    majors = readdirSync(base).filter((name) => /^\d+$/.test(name));
  } catch {
    // not installed at all
  }
  const complete = majors
    .filter((major) => ['initdb', 'pg_ctl', 'postgres'].every((bin) => existsSync(join(base, major, 'bin', bin))))
    .sort((a, b) => Number(b) - Number(a));
  if (complete.length === 0) {
    throw new StackError(
      'PostgreSQL server binaries (initdb, pg_ctl, postgres) not found under /usr/lib/postgresql/*/bin: install them with `apt-get install -y postgresql`, or set DATABASE_URL',
    );
  }
  const major = wantedMajor ?? complete[0];
  if (!complete.includes(major)) {
    throw new StackError(
      `${relative(ROOT, pgPaths().pgdata)} was created by PostgreSQL ${major}, but only ${complete.join(', ')} is installed: install postgresql-${major}, or delete the folder (its data is lost)`,
    );
  }
  const bin = join(base, major, 'bin');
  return { major, initdb: join(bin, 'initdb'), pgCtl: join(bin, 'pg_ctl') };
}

function pgPaths() {
  const root = join(DATA_DIR, 'postgres');
  return { root, pgdata: join(root, 'data'), socketDir: join(root, 'run'), logFile: join(root, 'postgres.log') };
}

function shellQuote(arg) {
  return `'${String(arg).replaceAll("'", `'\\''`)}'`;
}

/**
 * Run a PostgreSQL tool as the `postgres` OS user when we are root:
 * initdb and pg_ctl refuse to run as root.
 */
function pgToolCommand(command, args) {
  if (!isRoot) return [command, args];
  if (existsSync('/usr/sbin/runuser') || existsSync('/sbin/runuser')) {
    return ['runuser', ['-u', 'postgres', '--', command, ...args]];
  }
  return ['su', ['postgres', '-s', '/bin/sh', '-c', [command, ...args].map(shellQuote).join(' ')]];
}

function runPgTool(command, args, what) {
  const [cmd, fullArgs] = pgToolCommand(command, args);
  // cwd inside the data root: the postgres user may not be allowed into ours (e.g. /root).
  const result = capture(cmd, fullArgs, { cwd: pgPaths().root });
  if (result.status !== 0) {
    const output = `${result.stdout}${result.stderr}`.trim().split('\n').slice(-10).join('\n');
    throw new StackError(`${what} failed (exit code ${result.status}): ${output}`);
  }
  return result.stdout;
}

/** Create the folders, owned by `postgres` when we are root. */
function preparePgDirs() {
  const { root, socketDir } = pgPaths();
  mkdirSync(socketDir, { recursive: true });
  if (!isRoot) return;
  if (capture('id', ['-u', 'postgres']).status !== 0) {
    throw new StackError('running as root, but there is no `postgres` OS user to run initdb as: install the Debian `postgresql` package, or run as a normal user');
  }
  const chown = capture('chown', ['-R', 'postgres:postgres', root]);
  if (chown.status !== 0) throw new StackError(`chown -R postgres ${root} failed: ${chown.stderr.trim()}`);
  // Every parent folder must be traversable by `postgres`, which is not the case under /root.
  const [cmd, args] = pgToolCommand('test', ['-w', root]);
  if (capture(cmd, args).status !== 0) {
    throw new StackError(`the postgres OS user cannot write to ${root} (a parent folder is not accessible): set OPENSYM_DATA_DIR to a folder it can reach`);
  }
}

/** Settings for the private instance, rewritten on every start (the port may change). */
function writePgConfig(port) {
  const { pgdata, socketDir } = pgPaths();
  const quote = (value) => `'${value.replaceAll("'", "''")}'`;
  // Unix socket paths are limited to ~107 bytes; deep checkouts get TCP only.
  const socket = join(socketDir, `.s.PGSQL.${port}`).length < 100 ? socketDir : '';
  const settings = [
    '# Written by scripts/stack.mjs on every start; edit postgresql.conf for your own settings.',
    `port = ${port}`,
    `listen_addresses = ${quote(HOST)}`,
    `unix_socket_directories = ${quote(socket)}`,
    '',
  ].join('\n');
  writeFileSync(join(pgdata, 'opensym.conf'), settings);
  const mainConf = join(pgdata, 'postgresql.conf');
  const include = "include_if_exists = 'opensym.conf'";
  const current = readFileSync(mainConf, 'utf8');
  if (!current.includes(include)) writeFileSync(mainConf, `${current}\n${include}\n`);
  if (isRoot) capture('chown', ['postgres:postgres', join(pgdata, 'opensym.conf'), mainConf]);
}

/** The running private server from postmaster.pid, or undefined. */
export function runningPrivatePostgres() {
  const { pgdata } = pgPaths();
  let lines;
  try {
    lines = readFileSync(join(pgdata, 'postmaster.pid'), 'utf8').split('\n');
  } catch {
    return undefined;
  }
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!pid || !isAlive(pid) || !/postgres/.test(commandLine(pid))) return undefined;
  return { pid, port };
}

async function startPrivatePostgres() {
  const { root, pgdata, logFile } = pgPaths();
  mkdirSync(root, { recursive: true });
  const versionFile = join(pgdata, 'PG_VERSION');
  const existingMajor = existsSync(versionFile) ? readFileSync(versionFile, 'utf8').trim() : undefined;
  const bins = findPostgresBinaries(existingMajor);
  const rel = relative(ROOT, root) || root;

  const running = runningPrivatePostgres();
  if (running) {
    // Probably another `npm start` / `npm test` of this checkout: share it, and leave it to its owner.
    log(`private PostgreSQL already running in ${rel} (pid ${running.pid}, port ${running.port}): reusing it and leaving it running (stop it with \`node scripts/stack.mjs stop\`)`);
    return { port: running.port, stop: async () => {} };
  }

  preparePgDirs();
  if (!existingMajor) {
    log(`initialising a new PostgreSQL ${bins.major} cluster in ${rel}`);
    runPgTool(bins.initdb, ['-D', pgdata, '--auth=trust', '--username=postgres', '--encoding=UTF8', '--locale=C'], 'initdb');
  }

  const port = await findFreePort(envPort('OPENSYM_PG_PRIVATE_PORT', 54329));
  writePgConfig(port);
  log(`starting private PostgreSQL ${bins.major} on ${HOST}:${port} (data: ${rel}, log: ${relative(ROOT, logFile)})`);
  runPgTool(bins.pgCtl, ['-D', pgdata, '-l', logFile, '-w', '-t', '60', 'start'], `pg_ctl start (see ${logFile})`);

  let stopped = false;
  return {
    port,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      log('stopping private PostgreSQL');
      runPgTool(bins.pgCtl, ['-D', pgdata, '-m', 'fast', '-w', '-t', '60', 'stop'], 'pg_ctl stop');
    },
  };
}

async function stopLeftoverPostgres() {
  const running = runningPrivatePostgres();
  if (!running) return false;
  const { pgdata } = pgPaths();
  const bins = findPostgresBinaries(readFileSync(join(pgdata, 'PG_VERSION'), 'utf8').trim());
  log(`stopping private PostgreSQL (pid ${running.pid}, port ${running.port})`);
  runPgTool(bins.pgCtl, ['-D', pgdata, '-m', 'fast', '-w', '-t', '60', 'stop'], 'pg_ctl stop');
  return true;
}

// ---------------------------------------------------------------------------
// Private Redis
// ---------------------------------------------------------------------------

function redisPaths() {
  const root = join(DATA_DIR, 'redis');
  return { root, conf: join(root, 'redis.conf'), pidFile: join(root, 'redis.pid'), logFile: join(root, 'redis.log') };
}

function findRedisServer() {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/bin', '/usr/sbin', '/usr/local/bin'])) {
    const candidate = join(dir || '.', 'redis-server');
    if (existsSync(candidate)) return candidate;
  }
  throw new StackError('redis-server not found: install it with `apt-get install -y redis-server`, or set REDIS_URL');
}

/** PING over raw RESP: true on +PONG (false while loading its append-only file). */
export function redisPing(port, host = HOST, timeoutMs = 1000) {
  return new Promise((resolvePromise) => {
    const socket = net.connect({ host, port });
    let reply = '';
    const done = (result) => {
      socket.destroy();
      resolvePromise(result);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

export function runningPrivateRedis() {
  const { pidFile, conf } = redisPaths();
  let pid;
  let port;
  try {
    pid = Number(readFileSync(pidFile, 'utf8').trim());
    port = Number(/^port (\d+)$/m.exec(readFileSync(conf, 'utf8'))?.[1]);
  } catch {
    return undefined;
  }
  if (!pid || !port || !isAlive(pid) || !/redis-server/.test(commandLine(pid))) return undefined;
  return { pid, port };
}

async function stopRedisPid(pid) {
  process.kill(pid, 'SIGTERM'); // redis shuts down gracefully on SIGTERM (flushes the AOF)
  if (!(await waitFor(() => !isAlive(pid), { timeoutMs: 15000 }))) {
    process.kill(pid, 'SIGKILL');
    throw new StackError(`private Redis (pid ${pid}) did not stop within 15 s; killed it`);
  }
}

async function startPrivateRedis() {
  const { root, conf, pidFile, logFile } = redisPaths();
  const rel = relative(ROOT, root) || root;
  const running = runningPrivateRedis();
  if (running) {
    log(`private Redis already running in ${rel} (pid ${running.pid}, port ${running.port}): reusing it and leaving it running (stop it with \`node scripts/stack.mjs stop\`)`);
    return { port: running.port, stop: async () => {} };
  }

  const server = findRedisServer();
  mkdirSync(root, { recursive: true });
  const port = await findFreePort(envPort('OPENSYM_REDIS_PRIVATE_PORT', 63799));
  const q = (value) => JSON.stringify(value); // redis.conf understands double-quoted, backslash-escaped strings
  writeFileSync(
    conf,
    [
      '# Written by scripts/stack.mjs on every start.',
      `port ${port}`,
      `bind ${HOST}`,
      `dir ${q(root)}`,
      // Keep queued jobs (e.g. scheduled access expiries) across restarts of the dev stack.
      'appendonly yes',
      'save ""',
      // Delayed jobs fire within ~10 ms instead of ~100 ms (see offline-stack.md §2).
      'hz 100',
      'daemonize yes',
      `pidfile ${q(pidFile)}`,
      `logfile ${q(logFile)}`,
      '',
    ].join('\n'),
  );
  log(`starting private Redis on ${HOST}:${port} (data: ${rel}, log: ${relative(ROOT, logFile)})`);
  const result = capture(server, [conf]);
  if (result.status !== 0) {
    throw new StackError(`redis-server failed to start (exit code ${result.status}): ${`${result.stdout}${result.stderr}`.trim() || tail(logFile)}`);
  }
  if (!(await waitFor(() => redisPing(port), { timeoutMs: 30000, intervalMs: 100 }))) {
    const pid = runningPrivateRedis()?.pid;
    if (pid) await stopRedisPid(pid).catch(() => {});
    throw new StackError(`private Redis did not answer PING on port ${port} within 30 s; last log lines:\n${tail(logFile)}`);
  }
  const pid = runningPrivateRedis()?.pid;

  let stopped = false;
  return {
    port,
    stop: async () => {
      if (stopped || !pid) return;
      stopped = true;
      log('stopping private Redis');
      await stopRedisPid(pid);
    },
  };
}

async function stopLeftoverRedis() {
  const running = runningPrivateRedis();
  if (!running) return false;
  log(`stopping private Redis (pid ${running.pid}, port ${running.port})`);
  await stopRedisPid(running.pid);
  return true;
}

// ---------------------------------------------------------------------------
// Services
// ---------------------------------------------------------------------------

/**
 * Find or start PostgreSQL and Redis.
 *
 * Order of preference for each: the URL from the environment; a server on the
 * default port; a private instance under .data/ (stopped again by stop()).
 *
 * purpose: 'start' | 'migrate' -> databaseUrl names the app database (default `opensym`);
 *          'test'              -> databaseUrl names the `postgres` maintenance database,
 *                                 from which the test setup creates its own databases.
 * need:    which services to ensure (migrate only needs PostgreSQL).
 */
export async function ensureServices({ purpose = 'start', need = ['postgres', 'redis'] } = {}) {
  const stops = [];
  const stop = async () => {
    // Reverse order; keep going on errors so one failure does not leak the other server.
    const errors = [];
    for (const fn of stops.splice(0).reverse()) {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length) throw errors[0];
  };

  // Reject malformed URLs before starting anything that would then need stopping.
  for (const name of ['DATABASE_URL', 'TEST_DATABASE_URL', 'REDIS_URL', 'TEST_REDIS_URL']) {
    if (!process.env[name]) continue;
    try {
      new URL(process.env[name]);
    } catch {
      throw new StackError(`${name} is not a valid URL: ${process.env[name]}`);
    }
  }

  try {
    const databaseUrl = need.includes('postgres') ? await resolvePostgres(purpose, stops) : undefined;
    const redisUrl = need.includes('redis') ? await resolveRedis(stops) : undefined;
    return { databaseUrl, redisUrl, stop, startedPrivate: stops.length > 0 };
  } catch (err) {
    await stop().catch((stopErr) => console.error(`[stack] while cleaning up: ${stopErr.message}`));
    throw err;
  }
}

async function resolvePostgres(purpose, stops) {
  const forTests = purpose === 'test';
  const explicit = forTests ? (process.env.TEST_DATABASE_URL || process.env.DATABASE_URL) : process.env.DATABASE_URL;
  if (explicit) {
    const name = forTests && process.env.TEST_DATABASE_URL ? 'TEST_DATABASE_URL' : 'DATABASE_URL';
    await assertReachable(name, explicit, 5432);
    // Tests get the maintenance db of the given server unless TEST_DATABASE_URL says otherwise:
    // the app database named in DATABASE_URL may not exist yet.
    const url = forTests && !process.env.TEST_DATABASE_URL ? withDatabase(explicit, MAINTENANCE_DB) : explicit;
    log(`PostgreSQL: using ${name} (${redact(url)})`);
    return url;
  }

  const dbName = forTests ? MAINTENANCE_DB : DEFAULT_DB_NAME;
  const defaultPort = envPort('OPENSYM_PG_DEFAULT_PORT', 5432);
  if (await isListening(HOST, defaultPort)) {
    const url = `postgresql://postgres@${HOST}:${defaultPort}/${dbName}`;
    log(`PostgreSQL: using the server already listening on ${HOST}:${defaultPort} (${url})`);
    return url;
  }

  log(`PostgreSQL: DATABASE_URL is unset and nothing listens on ${HOST}:${defaultPort}, so starting a private instance`);
  const instance = await startPrivatePostgres();
  stops.push(instance.stop);
  const url = `postgresql://postgres@${HOST}:${instance.port}/${dbName}`;
  log(`PostgreSQL: private instance ready (${url})`);
  return url;
}

async function resolveRedis(stops) {
  const explicit = process.env.TEST_REDIS_URL || process.env.REDIS_URL;
  if (explicit) {
    const name = process.env.TEST_REDIS_URL ? 'TEST_REDIS_URL' : 'REDIS_URL';
    await assertReachable(name, explicit, 6379);
    log(`Redis: using ${name} (${redact(explicit)})`);
    return explicit;
  }

  const defaultPort = envPort('OPENSYM_REDIS_DEFAULT_PORT', 6379);
  if (await isListening(HOST, defaultPort)) {
    const url = `redis://${HOST}:${defaultPort}`;
    log(`Redis: using the server already listening on ${HOST}:${defaultPort} (${url})`);
    return url;
  }

  log(`Redis: REDIS_URL is unset and nothing listens on ${HOST}:${defaultPort}, so starting a private instance`);
  const instance = await startPrivateRedis();
  stops.push(instance.stop);
  const url = `redis://${HOST}:${instance.port}`;
  log(`Redis: private instance ready (${url})`);
  return url;
}

/** Stop private instances left behind by a run that was killed (SIGKILL, crash). */
export async function stopLeftovers() {
  const pg = await stopLeftoverPostgres();
  const redis = await stopLeftoverRedis();
  if (!pg && !redis) log(`no private PostgreSQL or Redis running under ${DATA_DIR}`);
}

// ---------------------------------------------------------------------------
// Database
// ---------------------------------------------------------------------------

/** `pg` is installed by ensureInstalled(); psql is the fallback before that. */
async function loadPg() {
  try {
    const mod = await import('pg');
    return mod.default ?? mod;
  } catch (err) {
    if (err.code !== 'ERR_MODULE_NOT_FOUND') throw err;
    return undefined;
  }
}

function quoteIdent(name) {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Create the database named in `url` unless it exists. Returns true when it created it. */
export async function createDatabaseIfMissing(url) {
  const name = databaseName(url);
  if (!name || name === MAINTENANCE_DB) return false;
  const pg = await loadPg();
  const created = pg ? await createWithPg(pg, url, name) : createWithPsql(url, name);
  if (created) log(`created database ${quoteIdent(name)}`);
  return created;
}

async function createWithPg(pg, url, name) {
  const client = new pg.Client({ connectionString: withDatabase(url, MAINTENANCE_DB), connectionTimeoutMillis: 10000 });
  try {
    await client.connect();
  } catch (err) {
    throw new StackError(`cannot connect to PostgreSQL at ${redact(withDatabase(url, MAINTENANCE_DB))}: ${err.message}`);
  }
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (rowCount > 0) return false;
    await client.query(`CREATE DATABASE ${quoteIdent(name)}`);
    return true;
  } catch (err) {
    if (err.code === '42P04') return false; // created concurrently by someone else: fine
    throw new StackError(`creating database ${quoteIdent(name)} failed: ${err.message}`);
  } finally {
    await client.end().catch(() => {});
  }
}

function createWithPsql(url, name) {
  const maintenance = withDatabase(url, MAINTENANCE_DB);
  const exists = capture('psql', ['-X', '-tA', '-v', 'ON_ERROR_STOP=1', '-d', maintenance, '-c', `SELECT 1 FROM pg_database WHERE datname = '${name.replaceAll("'", "''")}'`]);
  if (exists.status !== 0) throw new StackError(`psql could not query ${redact(maintenance)}: ${exists.stderr.trim()}`);
  if (exists.stdout.trim() === '1') return false;
  const create = capture('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', maintenance, '-c', `CREATE DATABASE ${quoteIdent(name)}`]);
  if (create.status !== 0) throw new StackError(`creating database ${quoteIdent(name)} failed: ${create.stderr.trim()}`);
  return true;
}

/** Apply committed migrations (never creates new ones). */
export async function migrateDeploy(databaseUrl) {
  log(`applying migrations to ${redact(databaseUrl)}`);
  await runNpm(['run', '-s', 'migrate', '-w', '@opensym/db', '--', 'deploy'], {
    env: { ...process.env, DATABASE_URL: databaseUrl },
  });
}

// ---------------------------------------------------------------------------
// Signals
// ---------------------------------------------------------------------------

/**
 * Catch SIGINT/SIGTERM/SIGHUP so that Node does not die on the spot, leaving private
 * servers running. Repeats are ignored: under `npm start`, a Ctrl-C reaches us twice
 * (from the terminal and forwarded by npm).
 */
export function trapSignals(onFirstSignal = () => {}) {
  const state = { signal: undefined };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      if (state.signal) return;
      state.signal = signal;
      onFirstSignal(signal);
    });
  }
  return state;
}

/** Exit code for "stopped by this signal", as a shell reports it. */
export function signalExitCode(signal) {
  return 128 + (os.constants.signals[signal] ?? 1);
}

/** Print an error as one line (StackError) or with its stack (a bug). */
export function reportError(scope, err) {
  if (err instanceof StackError) console.error(`[${scope}] error: ${err.message}`);
  else console.error(`[${scope}] unexpected error:`, err);
}

// ---------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------

async function migrateCommand() {
  const signals = trapSignals((signal) => log(`${signal} received: finishing the current step, then stopping`));
  await ensureInstalled();
  const services = await ensureServices({ purpose: 'migrate', need: ['postgres'] });
  try {
    await createDatabaseIfMissing(services.databaseUrl);
    if (signals.signal) throw new StackError(`interrupted by ${signals.signal}`);
    await migrateDeploy(services.databaseUrl);
  } finally {
    await services.stop();
  }
  if (signals.signal) process.exitCode = signalExitCode(signals.signal);
}

async function cli(argv) {
  const [command] = argv;
  if (command === 'migrate') return migrateCommand();
  if (command === 'stop') return stopLeftovers();
  console.error('usage: node scripts/stack.mjs migrate|stop');
  process.exitCode = 2;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  cli(process.argv.slice(2)).catch((err) => {
    reportError('stack', err);
    process.exitCode = 1;
  });
}
