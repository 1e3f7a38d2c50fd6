// Runs compiled test files (`*.test.js` under each workspace's dist/) with node's test runner.
// Node 20's runner does not expand globs itself, so this lists the files.
//
// A test's kind is its folder: under an `integration/` folder it is an integration test (Redis,
// PostgreSQL, child processes, nginx, real sockets, slow), under `reliability/` a reliability test
// (attack and chaos scenarios on real servers: floods of streams, slow clients, store outages,
// drains; issue 24), under `browser/` a browser test (Chromium), anywhere else a unit test (beside
// the code, in-process, fast, service-free).
//   node scripts/run-tests.mjs                  every test (what `npm test` and .ci/run run)
//   node scripts/run-tests.mjs --unit           unit tests only
//   node scripts/run-tests.mjs --integration    the rest: integration, reliability and browser tests
//   node scripts/run-tests.mjs --reliability    the reliability group only
//   node scripts/run-tests.mjs --browser        browser tests only
// Other arguments keep the files whose path contains one of them.
import { readdirSync, statSync } from 'node:fs';
import { join, sep } from 'node:path';
import { spawnSync } from 'node:child_process';

const roots = [
  'packages/core/dist',
  'packages/server/dist',
  'packages/test-kit/dist',
  'packages/tools/dist',
  'packages/client/dist',
  'examples/dist',
  'bench/dist',
];
const args = process.argv.slice(2);
const kinds = new Set();
if (args.includes('--unit')) kinds.add('unit');
if (args.includes('--integration')) {
  kinds.add('integration');
  kinds.add('reliability');
  kinds.add('browser');
}
if (args.includes('--reliability')) kinds.add('reliability');
if (args.includes('--browser')) kinds.add('browser');
const filter = args.filter((a) => !a.startsWith('--'));

function walk(dir, out) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (e.endsWith('.test.js')) out.push(p);
  }
  return out;
}

export function kindOf(file) {
  const parts = file.split(sep);
  if (parts.includes('integration')) return 'integration';
  if (parts.includes('reliability')) return 'reliability';
  if (parts.includes('browser')) return 'browser';
  return 'unit';
}

const files = roots
  .flatMap((r) => walk(r, []))
  .filter((f) => kinds.size === 0 || kinds.has(kindOf(f)))
  .filter((f) => filter.length === 0 || filter.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error('no test files found: run the build first');
  process.exit(1);
}
// No --test-force-exit: a file whose tests finished but that a leaked handle (a Redis client still
// retrying, a timer, a socket) keeps alive must hang the run where it can be seen, not be cut off.
// Unit files are mostly process start-up and module loading, with waits between: three at a time keep two
// cores busier (59 s → 52 s for the unit layer on a 2-core machine). Integration files share Redis,
// PostgreSQL and timing-sensitive servers, so they stay at two.
const unitOnly = kinds.size === 1 && kinds.has('unit');
const concurrency = `--test-concurrency=${process.env.FERRY_TEST_CONCURRENCY ?? (unitOnly ? 3 : 2)}`;
const r = spawnSync(process.execPath, ['--test', concurrency, ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
