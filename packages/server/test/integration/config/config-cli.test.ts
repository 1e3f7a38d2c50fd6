// `ferry config` runs the CLI as a child process; the loader's own cases are in src/config/config.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

test('ferry config prints the effective configuration', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-cfg-'));
  const cli = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
  const { stdout } = await promisify(execFile)(process.execPath, [cli, 'config', '--port', '1234'], {
    cwd: dir,
    env: { ...process.env, FERRY_LIMITS_MAX_INSTANCES: '3' },
  });
  const cfg = parse(stdout);
  assert.equal(cfg.server.port, 1234);
  assert.equal(cfg.limits.maxInstances, 3);
});
