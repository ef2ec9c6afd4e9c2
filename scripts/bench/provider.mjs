// The `provider` section of `npm run bench`: what the sym Terraform provider costs per terraform command, measured
// against the real API (the one bench.mjs starts, on its own PostgreSQL database), with the executable that
// `npm run build:provider` packages, installed by `terraform init` from its filesystem mirror (TF_CLI_CONFIG_FILE).
//
// Terraform starts a new provider process for every phase of a command (3 for `plan`, 4 for `apply`), so start-up
// dominates. Printed, all measured in this run and interleaved so that load from elsewhere hits every variant:
//   - spawn → handshake line of the provider executable, next to the floor: a bare Node process that opens a TLS
//     HTTP/2 listener and prints a line (scripts/bench/tls-floor.cjs), and a bare `node` printing a line;
//   - wall time of `terraform plan` (no state), `apply`, `plan` again (in sync: refresh, no changes) and `destroy`
//     for 1 and for 100 `sym_flow`s, and for the same counts of Terraform's built-in `terraform_data` holding the
//     same values (Terraform alone: no provider process, no API);
//   - the targets of issue 3 and whether they are met.
// The flows are realistic: an implementation file, vars, and params with a strategy and two prompt fields, in an
// environment with Slack, Okta, an AWS runtime, secrets, an error logger and log destinations (created over HTTP
// by bench.mjs, passed in as variables, so that the configuration holds exactly N resources).
//
// Environment:
//   BENCH_TF_RUNS=5            measured runs of each command (default 5; BENCH_QUICK=1: 1), after one warm-up run
//   BENCH_TF_FLOWS=1,100       resource counts
//   BENCH_HANDSHAKE_RUNS=15    starts timed per variant (default 15; BENCH_QUICK=1: 5)

import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ROOT, StackError } from '../stack.mjs';
import { abort, checkInterrupted, checkServer, cpuTicks, CLK_TCK, fmt, median, printColumns, quickMode, runCaptured, say } from './common.mjs';

const TERRAFORM_TIMEOUT_MS = 600_000;
const START_TIMEOUT_MS = 15_000;
const FLOOR_SCRIPT = join(ROOT, 'scripts/bench/tls-floor.cjs');
const MAGIC_COOKIE = { TF_PLUGIN_MAGIC_COOKIE: 'd602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2' };
const HANDSHAKE = /^1\|6\|tcp\|127\.0\.0\.1:\d+\|grpc\|[A-Za-z0-9+/]+$/;

/** The targets of issue 3. */
const TARGETS = { handshakeMs: 100, planVsFloor: 1.5, manyVsTerraformData: 3 };

function positiveInteger(name, fallback, max) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new StackError(`${name}=${raw}: give an integer 1..${max}`);
  return n;
}

export function settings() {
  const quick = quickMode();
  const flows = (process.env.BENCH_TF_FLOWS || '1,100').split(',').map((s) => Number(s.trim()));
  if (flows.some((n) => !Number.isInteger(n) || n < 1 || n > 1000)) throw new StackError(`BENCH_TF_FLOWS=${process.env.BENCH_TF_FLOWS}: give a comma-separated list of integers 1..1000`);
  return {
    quick,
    runs: positiveInteger('BENCH_TF_RUNS', quick ? 1 : 5, 100),
    warmup: !quick,
    flows: [...new Set(flows)].sort((a, b) => a - b),
    handshakeRuns: positiveInteger('BENCH_HANDSHAKE_RUNS', quick ? 5 : 15, 200),
  };
}

/** Node's environment for a child, without what would change how it starts (tsx's loader, inspector flags…). */
function childEnv(extra = {}) {
  const env = { ...process.env, ...extra };
  delete env.NODE_OPTIONS;
  return env;
}

// ---------------------------------------------------------------------------
// Start-up: spawn → first line on stdout
// ---------------------------------------------------------------------------

/** Milliseconds from spawn to the first full line on stdout; the process is killed then. */
function timeFirstLine(command, args, env, check) {
  return new Promise((resolvePromise, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'], signal: abort.signal });
    let stdout = '';
    let stderr = '';
    let result;
    const timer = setTimeout(() => child.kill('SIGKILL'), START_TIMEOUT_MS);
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      const end = stdout.indexOf('\n');
      if (end < 0 || result) return;
      result = { ms: performance.now() - started, line: stdout.slice(0, end) };
      // A provider ignores SIGINT (Terraform stops it with a Shutdown call), and nothing here needs a clean exit.
      child.kill('SIGKILL');
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (!result) return reject(new StackError(`${relative(ROOT, command) || command} ended (${signal ?? `exit ${code}`}) without printing a line:\n${stderr.trim().slice(-1000)}`));
      if (check && !check.test(result.line)) return reject(new StackError(`${command} printed an unexpected first line: ${result.line.slice(0, 200)}`));
      resolvePromise(result.ms);
    });
  });
}

async function measureStarts(variants, runs, signals) {
  const times = new Map(variants.map((v) => [v.name, []]));
  // Interleaved, so that whatever else runs on the machine meanwhile hits every variant alike.
  for (let i = 0; i < runs; i++) {
    for (const v of variants) {
      checkInterrupted(signals);
      times.get(v.name).push(await timeFirstLine(v.command, v.args, v.env, v.check));
    }
  }
  return times;
}

// ---------------------------------------------------------------------------
// Terraform configurations
// ---------------------------------------------------------------------------

export const IMPLEMENTATION = `/** Who may approve, and where requests go: members approve, nobody approves their own request. */
export function getPermissions(event: { flow: { vars: Record<string, string | undefined> } }) {
  const admins = (event.flow.vars.admin_only ?? '').split(',').filter(Boolean)
  return { webappView: 'member', approveDeny: admins.length ? 'admin' : 'member', allowSelfApproval: false }
}

export function getRequestNotifications(event: { flow: { vars: Record<string, string | undefined> } }) {
  return [{ destinations: [{ type: 'slack_channel', channel: event.flow.vars.request_channel ?? '#sym-requests' }], timeout: null }]
}
`;

const VARIABLES = `variable "environment_id" {
  type = string
}

variable "strategy_id" {
  type = string
}
`;

/** N access flows, as a team writes them: one `sym_flow` per team, sharing an environment and a strategy. */
export function symConfig(org, count) {
  return `terraform {
  required_providers {
    sym = { source = "symopsio/sym" }
  }
}

provider "sym" {
  org = "${org}"
}

${VARIABLES}
resource "sym_flow" "access" {
  count = ${count}

  name           = "tf-bench-${count}-\${count.index}"
  label          = "Okta access \${count.index}"
  implementation = file("\${path.module}/impl.ts")
  environment_id = var.environment_id

  vars = {
    request_channel = "#sym-requests"
    team            = "team-\${count.index}"
  }

  params {
    strategy_id     = var.strategy_id
    allow_revoke    = true
    allowed_sources = ["slack", "api"]

    prompt_field {
      name     = "reason"
      label    = "Why do you need access?"
      type     = "string"
      required = true
    }

    prompt_field {
      name           = "duration"
      label          = "For how long?"
      type           = "duration"
      allowed_values = ["30m", "1h", "1d"]
      required       = true
    }
  }
}
`;
}

/** The same values in Terraform's built-in `terraform_data`: Terraform's own cost for N such resources. */
export function terraformDataConfig(count) {
  return `${VARIABLES}
resource "terraform_data" "access" {
  count = ${count}

  input = {
    name           = "tf-bench-${count}-\${count.index}"
    label          = "Okta access \${count.index}"
    implementation = file("\${path.module}/impl.ts")
    environment_id = var.environment_id
    vars = {
      request_channel = "#sym-requests"
      team            = "team-\${count.index}"
    }
    params = {
      strategy_id     = var.strategy_id
      allow_revoke    = true
      allowed_sources = ["slack", "api"]
      prompt_field = [
        { name = "reason", label = "Why do you need access?", type = "string", required = true },
        { name = "duration", label = "For how long?", type = "duration", allowed_values = ["30m", "1h", "1d"], required = true },
      ]
    }
  }
}
`;
}

// ---------------------------------------------------------------------------
// Terraform runs
// ---------------------------------------------------------------------------

function terraform(dir, env, args) {
  return new Promise((resolvePromise, reject) => {
    const started = performance.now();
    const child = spawn('terraform', [...args, '-no-color'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'], signal: abort.signal, timeout: TERRAFORM_TIMEOUT_MS });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => resolvePromise({ ms: performance.now() - started, code: code ?? -1, signal, stdout, stderr }));
  });
}

/** The steps of one cycle, each with the exit code and the output it must give. */
function steps(count) {
  return [
    { key: 'planEmpty', label: 'plan, no state', args: ['plan', '-input=false', '-detailed-exitcode'], code: 2, expect: `Plan: ${count} to add, 0 to change, 0 to destroy.` },
    { key: 'apply', label: 'apply (create)', args: ['apply', '-input=false', '-auto-approve'], code: 0, expect: `Apply complete! Resources: ${count} added, 0 changed, 0 destroyed.` },
    // Refreshes every resource (ReadResource: one API read each for sym) and must find nothing to do.
    { key: 'planSynced', label: 'plan, in sync', args: ['plan', '-input=false', '-detailed-exitcode'], code: 0, expect: 'No changes.' },
    { key: 'destroy', label: 'destroy', args: ['destroy', '-input=false', '-auto-approve'], code: 0, expect: `Destroy complete! Resources: ${count} destroyed.` },
  ];
}

const STEP_LABELS = Object.fromEntries(steps(1).map((s) => [s.key, s.label]));

/** plan, apply, plan, destroy in one workspace; resolves with the milliseconds of each (and the API's CPU time). */
async function cycle(workspace, server, signals) {
  const out = {};
  for (const step of steps(workspace.count)) {
    checkInterrupted(signals);
    checkServer(server);
    const apiTicks0 = cpuTicks(server.pid);
    const r = await terraform(workspace.dir, workspace.env, step.args);
    const apiTicks = cpuTicks(server.pid);
    if (r.code !== step.code || !r.stdout.includes(step.expect)) {
      const tail = `${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-25).join('\n');
      throw new StackError(`terraform ${step.args[0]} of ${workspace.name} exited ${r.signal ?? r.code} (expected ${step.code} and "${step.expect}"):\n${tail}`);
    }
    out[step.key] = { ms: r.ms, apiMs: apiTicks0 === undefined || apiTicks === undefined ? NaN : ((apiTicks - apiTicks0) / CLK_TCK) * 1000 };
  }
  return out;
}

async function buildExecutable() {
  say('provider: npm run build:provider (keeps the executable when the bundle has not changed)');
  const stdout = await runCaptured(
    'build:provider',
    ['--import', 'tsx', '--conditions=@opensym/source', 'apps/provider/scripts/build.ts', '--runs', '0', '--json'],
    childEnv(),
    { timeout: 600_000 },
  );
  const result = JSON.parse(stdout.trim().split('\n').at(-1));
  say(`provider: ${relative(ROOT, result.executable)} (${fmt(result.executableBytes / 2 ** 20)} MB, ${result.reused ? 'kept' : 'built'})`);
  return result;
}

function terraformVersion() {
  const r = spawnSync('terraform', ['version', '-json'], { encoding: 'utf8', env: childEnv({ CHECKPOINT_DISABLE: '1' }) });
  if (r.error) throw new StackError(`the provider section needs terraform on PATH (${r.error.message})`);
  try {
    return JSON.parse(r.stdout).terraform_version;
  } catch {
    return r.stdout.trim().split('\n')[0];
  }
}

// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

const ms = (n) => `${fmt(n, 0)} ms`;
const ratio = (a, b) => `${fmt(a / b, 2)}×`;
const stat = (values) => ({ median: median(values), min: Math.min(...values), runs: values });

function verdict(ok) {
  return ok ? '[met]    ' : '[NOT MET]';
}

function report({ cfg, build, tfVersion, starts, startNames, results, extraCa }) {
  console.log('');
  console.log('== terraform provider ==');
  console.log(`provider: ${relative(ROOT, build.executable)} (Node single executable with ${build.startup === "snapshot" ? "a startup snapshot" : "code cache"}, ${fmt(build.executableBytes / 2 ** 20)} MB); terraform ${tfVersion}`);
  console.log(`start: spawn → first line on stdout, ${cfg.handshakeRuns} runs each, interleaved; median (min):`);
  printColumns(
    ['process', 'median', 'min', 'runs'],
    startNames.map((name) => {
      const s = stat(starts.get(name));
      return [name, ms(s.median), ms(s.min), s.runs.map((n) => Math.round(n)).join(' ')];
    }),
  );
  if (extraCa) {
    console.log(
      `note: NODE_EXTRA_CA_CERTS is set (${extraCa}); every Node process, the provider included, reads and parses it and Node's own root` +
        ' certificates at start, before any JavaScript runs (compare the last two rows). Terraform passes it on to providers.',
    );
  }

  console.log('');
  console.log(
    `terraform wall time, median (min) of ${cfg.runs} run(s) after ${cfg.warmup ? 'one warm-up run' : 'no warm-up'}, interleaved; sym_flow against terraform_data with the same values; api cpu: the API process during the sym command`,
  );
  const lines = [];
  for (const count of cfg.flows) {
    for (const key of Object.keys(STEP_LABELS)) {
      const sym = stat(results.get(`sym ${count}`).map((r) => r[key].ms));
      const data = stat(results.get(`terraform_data ${count}`).map((r) => r[key].ms));
      const api = median(results.get(`sym ${count}`).map((r) => r[key].apiMs));
      lines.push([STEP_LABELS[key], String(count), `${ms(sym.median)} (${fmt(sym.min, 0)})`, `${ms(data.median)} (${fmt(data.min, 0)})`, ratio(sym.median, data.median), ms(api)]);
    }
  }
  printColumns(['command', 'resources', 'sym', 'terraform_data', 'sym / data', 'api cpu'], lines, new Set([0]));

  // Targets: every ratio from figures of this run.
  console.log('');
  console.log('targets (floor: terraform alone, i.e. terraform_data, plus 3 starts of the floor process):');
  const handshake = median(starts.get(startNames[0]));
  const floorStart = median(starts.get(startNames[1]));
  console.log(`  ${verdict(handshake <= TARGETS.handshakeMs)} provider start ≤ ${TARGETS.handshakeMs} ms: ${ms(handshake)} (floor ${ms(floorStart)})`);
  const one = cfg.flows[0];
  const many = cfg.flows.at(-1);
  const med = (name, key) => median(results.get(name).map((r) => r[key].ms));
  if (one === 1) {
    for (const key of ['planEmpty', 'planSynced']) {
      const data = med('terraform_data 1', key);
      const floor = data + 3 * floorStart;
      const sym = med('sym 1', key);
      console.log(
        `  ${verdict(sym <= TARGETS.planVsFloor * floor)} 1-resource ${STEP_LABELS[key]} ≤ ${TARGETS.planVsFloor} × floor: ${ms(sym)} = ${ratio(sym, floor)} of ${ms(floor)} (terraform_data ${ms(data)} + 3 × ${ms(floorStart)})`,
      );
    }
  } else {
    console.log('  [skipped] 1-resource plan: BENCH_TF_FLOWS has no 1');
  }
  if (many >= 100) {
    for (const key of ['planEmpty', 'planSynced', 'apply']) {
      const sym = med(`sym ${many}`, key);
      const data = med(`terraform_data ${many}`, key);
      console.log(`  ${verdict(sym <= TARGETS.manyVsTerraformData * data)} ${many}-flow ${STEP_LABELS[key]} ≤ ${TARGETS.manyVsTerraformData} × terraform_data: ${ms(sym)} = ${ratio(sym, data)} of ${ms(data)}`);
    }
  } else {
    console.log('  [skipped] 100-flow plan and apply: BENCH_TF_FLOWS has no count ≥ 100');
  }
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

/** Measures, then prints. `stack`: what bench.mjs set up (server, baseUrl, token, org, graph, cleanups…). */
export async function run(stack, cfg) {
  const { server, signals } = stack;
  const tfVersion = terraformVersion();
  const build = await buildExecutable();
  checkInterrupted(signals);

  // Certificates: Terraform's client certificate in PLUGIN_CLIENT_CERT (the provider trusts it for mTLS), and the
  // floor's server certificate, made like the provider makes its own (P-256, by cert.ts).
  const { tsImport } = await import('tsx/esm/api');
  const { generateServerCertificate } = await tsImport('../../packages/tfplugin/src/transport/cert.ts', import.meta.url);
  const clientCert = generateServerCertificate({ organization: 'HashiCorp' });
  const floorCert = generateServerCertificate();
  const pluginEnv = childEnv({ ...MAGIC_COOKIE, PLUGIN_PROTOCOL_VERSIONS: '6', PLUGIN_MIN_PORT: '10000', PLUGIN_MAX_PORT: '25000', PLUGIN_CLIENT_CERT: clientCert.certPem });
  const extraCa = process.env.NODE_EXTRA_CA_CERTS;
  const startNames = ['sym provider (handshake line)', 'floor: node + TLS HTTP/2 listener', 'bare node printing a line'];
  const variants = [
    { name: startNames[0], command: build.executable, args: [], env: pluginEnv, check: HANDSHAKE },
    { name: startNames[1], command: process.execPath, args: [FLOOR_SCRIPT], env: { ...pluginEnv, BENCH_FLOOR_KEY: floorCert.keyPem, BENCH_FLOOR_CERT: floorCert.certPem } },
    { name: startNames[2], command: process.execPath, args: ['-e', 'process.stdout.write("started\\n")'], env: pluginEnv },
  ];
  if (extraCa) {
    const withoutCa = { ...pluginEnv };
    delete withoutCa.NODE_EXTRA_CA_CERTS;
    startNames.push('bare node, without NODE_EXTRA_CA_CERTS');
    variants.push({ ...variants[2], name: startNames[3], env: withoutCa });
  }
  say(`provider: timing starts, ${cfg.handshakeRuns} runs of ${variants.length} variants`);
  const starts = await measureStarts(variants, cfg.handshakeRuns, signals);

  // One workspace per (provider, count), in a home of its own: no ~/.terraformrc, no plugin cache.
  const home = mkdtempSync(join(os.tmpdir(), 'opensym-bench-tf-'));
  stack.cleanups.push(['remove the terraform workspaces', () => rmSync(home, { recursive: true, force: true })]);
  const env = childEnv({
    HOME: home,
    TF_CLI_CONFIG_FILE: build.cliConfig,
    TF_IN_AUTOMATION: '1',
    CHECKPOINT_DISABLE: '1',
    SYM_JWT: stack.token,
    SYM_API_URL: `${stack.baseUrl}/api/v1`,
  });
  for (const name of Object.keys(env)) if (/^TF_(LOG|DATA_DIR|PLUGIN_CACHE_DIR|REATTACH_PROVIDERS|CLI_ARGS|WORKSPACE)/.test(name)) delete env[name];
  const tfvars = JSON.stringify({ environment_id: stack.graph.environmentId, strategy_id: stack.graph.strategyId }, null, 2);
  const workspaces = [];
  for (const count of cfg.flows) {
    for (const kind of ['sym', 'terraform_data']) {
      const dir = join(home, `${kind}-${count}`);
      mkdirSync(dir);
      writeFileSync(join(dir, 'main.tf'), kind === 'sym' ? symConfig(stack.orgSlug, count) : terraformDataConfig(count));
      writeFileSync(join(dir, 'impl.ts'), IMPLEMENTATION);
      writeFileSync(join(dir, 'terraform.tfvars.json'), tfvars);
      const init = await terraform(dir, env, ['init', '-input=false']);
      if (init.code !== 0) throw new StackError(`terraform init of ${kind} ${count} failed:\n${`${init.stdout}\n${init.stderr}`.trim().split('\n').slice(-15).join('\n')}`);
      workspaces.push({ name: `${kind} ${count}`, kind, count, dir, env });
      checkInterrupted(signals);
    }
  }

  const results = new Map(workspaces.map((w) => [w.name, []]));
  const total = cfg.runs + (cfg.warmup ? 1 : 0);
  for (let round = 0; round < total; round++) {
    const warm = cfg.warmup && round === 0;
    say(`provider: ${warm ? 'warm-up run' : `run ${round + (cfg.warmup ? 0 : 1)} of ${cfg.runs}`}: plan, apply, plan, destroy for ${workspaces.map((w) => w.name).join(', ')}`);
    // Alternate the order, so that neither provider always runs right after the other's heaviest command.
    const order = round % 2 ? [...workspaces].reverse() : workspaces;
    for (const w of order) {
      const times = await cycle(w, server, signals);
      if (!warm) results.get(w.name).push(times);
    }
  }
  report({ cfg, build, tfVersion, starts, startNames, results, extraCa });
}
