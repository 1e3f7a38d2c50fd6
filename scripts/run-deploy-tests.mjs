// Runs the deployment tests (deploy/test/*.test.mjs): the packed npm packages installed outside the
// monorepo, the container image built and run with podman, the compose stack as containers. They are
// slow and need the npm registry (and podman for the image tests), so neither `npm test` nor
// `npm run test:unit` runs them; `.ci/run` does. They need the build and the models first.
//   node scripts/run-deploy-tests.mjs                # every deployment test
//   node scripts/run-deploy-tests.mjs packages       # files whose name contains one of the arguments
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const dir = 'deploy/test';
const filter = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.test.mjs'))
  .filter((f) => filter.length === 0 || filter.some((s) => f.includes(s)))
  .sort()
  .map((f) => join(dir, f));
if (files.length === 0) {
  console.error('no deployment test matches');
  process.exit(1);
}
// One at a time: each builds or installs a whole stack, and the machine has few cores.
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
