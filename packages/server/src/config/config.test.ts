import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, configLeaves, ConfigError, coreCount, workerCount } from './index.js';

test('defaults < file < environment < flags', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-cfg-'));
  writeFileSync(
    join(dir, 'ferry.config.yaml'),
    'server:\n  port: 9000\n  host: 127.0.0.1\nlimits:\n  maxInstances: 50\nruntime:\n  workers: 3\n',
  );
  const base = loadConfig({ cwd: dir, env: {} });
  assert.equal(base.server.port, 9000);
  assert.equal(base.limits.maxInstances, 50);
  assert.equal(base.limits.maxStringLength, 1_000_000, 'defaults fill what the file leaves out');
  assert.equal(base.models.dir, join(dir, 'models'), 'relative paths resolve against the working folder');
  const env = loadConfig({
    cwd: dir,
    env: {
      FERRY_SERVER_PORT: '9100',
      FERRY_LIMITS_MAX_INSTANCES: '7',
      FERRY_RUNTIME_EXECUTION_PROVIDERS: 'cpu, xnnpack',
    },
  });
  assert.equal(env.server.port, 9100);
  assert.equal(env.limits.maxInstances, 7);
  assert.deepEqual(env.runtime.executionProviders, ['cpu', 'xnnpack']);
  assert.equal(env.server.host, '127.0.0.1');
  const flags = loadConfig({
    cwd: dir,
    env: { FERRY_SERVER_PORT: '9100' },
    overrides: { 'server.port': '9200', 'runtime.workers': undefined },
  });
  assert.equal(flags.server.port, 9200);
  assert.equal(flags.runtime.workers, 3);
  assert.ok(Object.isFrozen(flags) && Object.isFrozen(flags.server), 'the config is frozen');
});

test('REDIS_URL and DATABASE_URL stand in for their settings; empty ones count as unset, FERRY_* forms win', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-cfg-'));
  writeFileSync(
    join(dir, 'ferry.config.yaml'),
    'store:\n  url: postgres://db/ferry\nredis:\n  url: redis://cache:6379\n',
  );
  const file = loadConfig({ cwd: dir, env: {} });
  assert.deepEqual([file.store.url, file.redis.url], ['postgres://db/ferry', 'redis://cache:6379']);
  const conventional = loadConfig({
    cwd: dir,
    env: { DATABASE_URL: 'postgres://other/x', REDIS_URL: 'redis://other:1' },
  });
  assert.deepEqual([conventional.store.url, conventional.redis.url], ['postgres://other/x', 'redis://other:1']);
  // A template that expanded to nothing must not swap PostgreSQL for the embedded SQLite file.
  const empty = loadConfig({ cwd: dir, env: { DATABASE_URL: '', REDIS_URL: '' } });
  assert.deepEqual([empty.store.url, empty.redis.url], ['postgres://db/ferry', 'redis://cache:6379']);
  const ferry = loadConfig({
    cwd: dir,
    env: { DATABASE_URL: 'postgres://other/x', FERRY_STORE_URL: '', FERRY_REDIS_URL: '' },
  });
  assert.deepEqual(
    [ferry.store.url, ferry.redis.url],
    ['', ''],
    'FERRY_STORE_URL= / FERRY_REDIS_URL= choose the embedded defaults on purpose',
  );
});

test('bad settings are refused with where they came from', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-cfg-'));
  assert.throws(
    () => loadConfig({ cwd: dir, env: { FERRY_SERVER_PORT: 'eighty' } }),
    (e: unknown) => e instanceof ConfigError && /FERRY_SERVER_PORT: "eighty" is not a number/.test(e.message),
  );
  assert.throws(() => loadConfig({ cwd: dir, env: { FERRY_SERVER_PORT: '70000' } }), /\/server\/port/);
  writeFileSync(join(dir, 'ferry.config.yaml'), 'server:\n  prot: 1\n');
  assert.throws(() => loadConfig({ cwd: dir, env: {} }), /\/server\/prot/);
  writeFileSync(join(dir, 'ferry.config.yaml'), 'server: [\n');
  assert.throws(() => loadConfig({ cwd: dir, env: {} }), /invalid YAML/);
  assert.throws(() => loadConfig({ cwd: dir, env: {}, file: 'missing.yaml' }), /cannot read config file/);
  assert.throws(() => loadConfig({ env: {}, overrides: { 'server.nope': 1 } }), /unknown setting "server\.nope"/);
});

test('every setting has an environment variable', () => {
  const names = configLeaves().map((l) => l.env);
  assert.ok(names.includes('FERRY_SERVER_BODY_LIMIT_BYTES'));
  assert.ok(names.includes('FERRY_RUNTIME_INTRA_OP_THREADS'));
  assert.equal(new Set(names).size, names.length);
});

test('runtime.cores: the affinity unless set; workers follow it unless set', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-cfg-'));
  const unset = loadConfig({ cwd: dir, env: {} });
  assert.equal(coreCount(unset), availableParallelism());
  assert.equal(workerCount(unset), availableParallelism());
  const quota = loadConfig({ cwd: dir, env: { FERRY_RUNTIME_CORES: '1' } });
  assert.equal(coreCount(quota), 1);
  assert.equal(workerCount(quota), 1);
  const both = loadConfig({ cwd: dir, env: { FERRY_RUNTIME_CORES: '3', FERRY_RUNTIME_WORKERS: '2' } });
  assert.equal(coreCount(both), 3);
  assert.equal(workerCount(both), 2);
  assert.throws(() => loadConfig({ cwd: dir, env: { FERRY_RUNTIME_CORES: '-1' } }), ConfigError);
});
