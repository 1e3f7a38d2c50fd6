// Runs every compiled test file (`*.test.js` under each workspace's dist/) with node's test runner.
// Node 20's runner does not expand globs itself, so this lists the files.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const roots = ['packages/core/dist', 'packages/server/dist', 'packages/tools/dist', 'packages/client/dist', 'examples/dist', 'bench/dist'];
const filter = process.argv.slice(2);

function walk(dir, out) {
  let entries;
  try { entries = readdirSync(dir); } catch { return out; }
  for (const e of entries) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (e.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const files = roots.flatMap((r) => walk(r, [])).filter((f) => filter.length === 0 || filter.some((s) => f.includes(s))).sort();
if (files.length === 0) {
  console.error('no test files found: run the build first');
  process.exit(1);
}
// No --test-force-exit: a file whose tests finished but that a leaked handle (a Redis client still
// retrying, a timer, a socket) keeps alive must hang the run where it can be seen, not be cut off.
const r = spawnSync(process.execPath, ['--test', `--test-concurrency=${process.env.FERRY_TEST_CONCURRENCY ?? 2}`, ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
