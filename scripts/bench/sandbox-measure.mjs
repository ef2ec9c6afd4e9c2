// Measurements of the `sandbox` section of `npm run bench`, run by scripts/bench/sandbox.mjs in a child process
// (isolated-vm needs `node --no-node-snapshot`, and the sandbox is loaded from its TypeScript sources through tsx).
// Argument: the settings as JSON. Prints one JSON object with the figures on stdout.

import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { compileFlow, createSandbox } from '@opensym/sandbox';
import { fakeEventData, runHook, runReducer } from '@opensym/sdk/testing';

const settings = JSON.parse(process.argv[2] ?? '{}');
const CALLS = settings.calls ?? 2000;
const FLOWS = settings.flows ?? 30;

/** A realistic implementation: the size and shape of the examples, with a hook that makes one SDK call. */
const SOURCE = (n) => `
import { ApprovalTemplate, PermissionLevel, pagerduty, slack, type Event, type Notification, type RequestPermission } from '@opensym/sdk'

const VERSION = ${n}
const list = (v: string | undefined) => (v ?? '').split(',').map((s) => s.trim()).filter(Boolean)

export function getPermissions(event: Event): RequestPermission {
  const admins = list(event.flow.vars.admin_only_targets)
  const target = event.payload.fields.target
  const needsAdmin = target === undefined || admins.includes(target.name)
  return { webappView: PermissionLevel.MEMBER, approveDeny: needsAdmin ? PermissionLevel.ADMIN : PermissionLevel.MEMBER, allowSelfApproval: false }
}

export function getRequestNotifications(event: Event): Notification[] {
  const channel = event.flow.vars.request_channel || '#sym-requests'
  return [{ destinations: [slack.channel(channel)], timeout: VERSION > 0 ? 3600 : null }, { destinations: [slack.channel('#backup')], timeout: null }]
}

export async function onRequest(event: Event) {
  if (await pagerduty.isOnCall(event.user, { scheduleName: 'Primary' })) return ApprovalTemplate.approve({ reason: 'On call' })
  return undefined
}
`;

const event = fakeEventData({
  flow: { vars: { request_channel: '#requests', admin_only_targets: 'prod,billing' } },
  payload: { fields: { reason: 'deploy', duration: 3600, target: { name: 'staging', type: 'okta_group', settings: { group_id: '00g1' } } } },
});

const stats = (samples) => {
  const s = [...samples].sort((a, b) => a - b);
  const at = (p) => s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
  return { n: s.length, median: at(50), p95: at(95), p99: at(99), mean: s.reduce((a, b) => a + b, 0) / s.length };
};

const host = { 'pagerduty.isOnCall': async () => false };
const result = {};

// Once per process: the sandbox runtime (the SDK bundled for isolates) is built on the first load.
let sandbox = createSandbox({ memoryLimitMb: 64, timeoutMs: 1000, host, maxIsolates: FLOWS + 8 });
{
  const t = performance.now();
  const r = await sandbox.load('warm-up', SOURCE(0));
  if (!r.ok) throw new Error(r.error.message);
  result.processFirstLoadMs = performance.now() - t;
}

// Cold start per flow version: a new key, so compile + isolate + module set-up (+ reading its exports).
const compileMs = [];
const loadMs = [];
const firstCallMs = [];
const rssBefore = process.memoryUsage().rss;
for (let i = 1; i <= FLOWS; i++) {
  let t = performance.now();
  const compiled = await compileFlow(SOURCE(i));
  compileMs.push(performance.now() - t);
  if (!compiled.ok) throw new Error(compiled.message);
  t = performance.now();
  const r = await sandbox.load({ flowId: `bench-${i}`, version: 1 }, SOURCE(i));
  loadMs.push(performance.now() - t);
  if (!r.ok) throw new Error(r.error.message);
  t = performance.now();
  const c = await r.flow.callReducer('getPermissions', event);
  firstCallMs.push(performance.now() - t);
  if (!c.ok) throw new Error(c.error.message);
}
await sleep(50);
result.cold = { compile: stats(compileMs), load: stats(loadMs), firstCall: stats(firstCallMs) };
result.rssPerIdleFlowMb = (process.memoryUsage().rss - rssBefore) / FLOWS / 2 ** 20;
await sandbox.close();

// Per-call overhead, on one loaded flow version.
sandbox = createSandbox({ memoryLimitMb: 64, timeoutMs: 1000, host });
const loaded = await sandbox.load('calls', SOURCE(1));
if (!loaded.ok) throw new Error(loaded.error.message);
const flow = loaded.flow;
const impl = { getPermissions: null, onRequest: null };

async function measure(call, { spaced }) {
  const samples = [];
  for (let i = 0; i < Math.min(50, CALLS / 10); i++) await call(); // warm-up
  const start = performance.now();
  for (let i = 0; i < CALLS; i++) {
    if (spaced) await sleep(2); // lets the next call's context be made ready in between, as between real events
    const t = performance.now();
    const r = await call();
    samples.push(performance.now() - t);
    if (r && r.ok === false) throw new Error(r.error.message);
  }
  const wall = performance.now() - start;
  return { ...stats(samples), perSecond: spaced ? undefined : (CALLS / wall) * 1000 };
}

const reducer = () => flow.callReducer('getPermissions', event);
const hook = () => flow.callHook('onRequest', event);
result.reducer = { spaced: await measure(reducer, { spaced: true }), backToBack: await measure(reducer, { spaced: false }) };
result.hook = { spaced: await measure(hook, { spaced: true }), backToBack: await measure(hook, { spaced: false }) };

// Concurrency: 8 calls at a time (each gets an isolate of its own).
{
  const total = CALLS;
  const t = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next++ < total) {
        const r = await hook();
        if (!r.ok) throw new Error(r.error.message);
      }
    }),
  );
  result.hookConcurrent8PerSecond = (total / (performance.now() - t)) * 1000;
}

// The same module called in-process by @opensym/sdk/testing (no isolation): the floor.
{
  const mod = await import('data:text/javascript,' + encodeURIComponent((await compileInProcess()).code));
  impl.getPermissions = mod.getPermissions;
  impl.onRequest = mod.onRequest;
  result.inProcess = {
    reducer: await measure(() => runReducer(impl, 'getPermissions', event), { spaced: false }),
    hook: await measure(() => runHook(impl, 'onRequest', event, { host }), { spaced: false }),
  };
}
await sandbox.close();

/** The benchmark module as plain ESM for Node, importing the SDK from the workspace. */
async function compileInProcess() {
  const { build } = await import('esbuild');
  const out = await build({
    stdin: { contents: SOURCE(1), loader: 'ts', sourcefile: 'impl.ts', resolveDir: process.cwd() },
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'neutral',
    conditions: ['@opensym/source'],
    alias: { '@opensym/sdk': '@opensym/sdk/flow' },
    mainFields: ['module', 'main'],
    logLevel: 'silent',
  });
  return { code: out.outputFiles[0].text };
}

process.stdout.write(JSON.stringify(result) + '\n');
