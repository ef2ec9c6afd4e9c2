#!/usr/bin/env node
// `npm run check:generated`: regenerate the committed generated files and fail when that
// changed anything, i.e. when someone changed a source but did not commit what it generates.
//
//   node scripts/check-generated.mjs               runs `npm run -s generate:all` (if defined)
//   node scripts/check-generated.mjs -- cmd args   runs the given command instead
//
// Fails (exit 1, listing the files) when, afterwards, a tracked file differs from the index
// (`git diff`) or there are new untracked files under docs/ or packages/*/generated/.
// Staged changes count as committed, so `git add` the regenerated files to pass locally.
//
// Only Node built-ins.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const GENERATED_DIRS = [/^docs\//, /^packages\/[^/]+\/generated\//];

function fail(message) {
  console.error(`[check:generated] ${message}`);
  process.exit(1);
}

/** Run a command; its output goes to ours unless `capture`. Exits on failure. */
function run(command, args, { capture = false } = {}) {
  const result = spawnSync(command, args, {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', capture ? 'pipe' : 'inherit', capture ? 'pipe' : 'inherit'],
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error) fail(`${command}: could not start (${result.error.message})`);
  if (result.status !== 0) fail(`\`${[command, ...args].join(' ')}\` failed (exit code ${result.status}) ${result.stderr ?? ''}`.trim());
  return result.stdout ?? '';
}

function splitZ(output) {
  return output.split('\0').filter(Boolean);
}

/** The generator to run: the CLI arguments, else the root `generate:all` script if it exists. */
function generatorCommand(argv) {
  const args = argv[0] === '--' ? argv.slice(1) : argv;
  if (args.length > 0) return args;
  const { scripts = {} } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  if (scripts['generate:all']) return ['npm', 'run', '-s', 'generate:all'];
  return undefined;
}

function main() {
  run('git', ['rev-parse', '--is-inside-work-tree'], { capture: true });

  const command = generatorCommand(process.argv.slice(2));
  if (command) {
    console.log(`[check:generated] running ${command.join(' ')}`);
    run(command[0], command.slice(1));
  } else {
    console.log('[check:generated] no generate:all script in package.json; checking the working tree as it is');
  }

  const modified = splitZ(run('git', ['diff', '--name-only', '-z'], { capture: true }));
  const untracked = splitZ(run('git', ['ls-files', '--others', '--exclude-standard', '-z'], { capture: true })).filter((path) =>
    GENERATED_DIRS.some((pattern) => pattern.test(path)),
  );

  if (modified.length === 0 && untracked.length === 0) {
    console.log('[check:generated] ok: generated files are up to date');
    return;
  }
  console.error('[check:generated] generated files are out of date (regenerate with `npm run generate:all` and commit):');
  for (const path of modified) console.error(`  modified:  ${path}`);
  for (const path of untracked) console.error(`  new:       ${path}`);
  // The diff itself (truncated), so a CI log shows what changed without a checkout.
  const diff = run('git', ['--no-pager', 'diff', '--no-color'], { capture: true }).trimEnd().split('\n');
  if (diff.length > 1) console.error([...diff.slice(0, 200), ...(diff.length > 200 ? [`... (${diff.length - 200} more lines)`] : [])].join('\n'));
  process.exit(1);
}

main();
