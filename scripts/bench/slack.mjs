// The `slack` section of `npm run bench`: a signed Approve click to its effects, on the real stack (the bench's
// database and Redis): the API with the Slack app on a real port, the engine worker with the Slack notifier on its
// notify queue, the local Slack fake (packages/testing) and a strategy that records when it is called. The
// measurements run in a child process (packages/slack/scripts/bench-measure.ts, with tsx); per run a request goes
// through the Events API, its card is posted by the notify queue, then the click is sent over HTTP. Printed, p50/p99/
// max from the click being sent to: its acknowledgement, the strategy's escalate call, the card's chat.update at the
// fake.
//
// Environment:
//   BENCH_SLACK_RUNS=100         clicks measured (BENCH_QUICK=1: 20)
//   BENCH_SLACK_CONCURRENCY=1    clicks in flight at once

import { StackError } from '../stack.mjs';
import { fmt, printColumns, quickMode, runCaptured, say } from './common.mjs';

function positiveInteger(name, fallback, max) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new StackError(`${name}=${raw}: give an integer 1..${max}`);
  return n;
}

export function settings() {
  return {
    runs: positiveInteger('BENCH_SLACK_RUNS', quickMode() ? 20 : 100, 100_000),
    concurrency: positiveInteger('BENCH_SLACK_CONCURRENCY', 1, 256),
  };
}

export async function run(stack, config) {
  console.log('');
  say(`slack: ${config.runs} signed Approve clicks, ${config.concurrency} at a time`);
  const env = { ...process.env, NODE_OPTIONS: '', DATABASE_URL: stack.databaseUrl, REDIS_URL: stack.redisUrl, LOG_LEVEL: 'silent' };
  const out = await runCaptured(
    'slack measurements',
    ['--no-node-snapshot', '--import', 'tsx', '--conditions=@opensym/source', 'packages/slack/scripts/bench-measure.ts', JSON.stringify(config)],
    env,
    { timeout: 600_000 },
  );
  const r = JSON.parse(out.trim().split('\n').pop());
  const ms = (v) => `${fmt(v, 1)} ms`;
  const row = (what, s) => [what, ms(s.p50), ms(s.p99), ms(s.max), String(s.n)];
  console.log('');
  console.log(`slack: from a signed Approve click (${r.runs} runs, ${r.concurrency} at a time)`);
  printColumns(
    ['to', 'p50', 'p99', 'max', 'n'],
    [row('acknowledgement (HTTP 200)', r.ack), row('strategy escalate call', r.strategy), row('card update (chat.update at the fake)', r.card)],
    new Set([0]),
  );
}
