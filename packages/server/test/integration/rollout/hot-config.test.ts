// What changes while serving besides model files: /openapi.json after hot loads and unloads, rollout
// blocks in ferry.config.yaml (start, reload, precedence over aliases.yaml), and API key rotation
// (config:reload, the keys file under watch, SIGHUP on a real `ferry serve` process).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { Validator } from '@seriousme/openapi-schema-validator';
import {
  biasModel,
  startRepoServer,
  type RepoServer,
  adminHeaders,
  testAdminKey,
  withTestAdminKey,
  slowModel,
  tempModelRepository,
  writeModelVersion,
} from '@ferry/test-kit';
import { canaryBucket } from '../../rollout/rollout-manager.js';
import { hashKey } from '../../auth/keys.js';
import { loadConfig, type ConfigSources } from '../../config/index.js';
import { createServer, type FerryServer } from '../../app/create-server.js';

const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const waitFor = async (cond: () => Promise<boolean>, what: string, ms = 30_000) => {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
};
const instances = { instances: [{ x: [2, 1] }] };

describe('/openapi.json follows hot loads and unloads', () => {
  let t: RepoServer;
  before(async () => {
    t = await startRepoServer([{ name: 'm', version: '1.0.0', files: biasModel(0) }], {}, withTestAdminKey());
  });
  after(() => t.close());
  const doc = async () => (await t.server.app.inject({ url: '/openapi.json' })).json();

  test('a version loaded after start appears with its typed schemas, an unloaded one disappears, the document stays valid', async () => {
    assert.equal((await doc()).paths['/v1/models/m/versions/1.1.0/predict'], undefined);
    await t.writeVersion('m', '1.1.0', biasModel(5));
    const load = await t.server.app.inject({
      method: 'POST',
      url: '/v1/admin/models/m/versions/1.1.0:load',
      headers: adminHeaders,
    });
    assert.equal(load.statusCode, 200, load.body);
    let d = await doc();
    const op = d.paths['/v1/models/m/versions/1.1.0/predict'].post;
    assert.equal(op.requestBody.content['application/json'].schema.$ref, '#/components/schemas/m_1.1.0_PredictRequest');
    // The version's own typed schema, the same one its description serves.
    const described = (await t.server.app.inject({ url: '/v1/models/m/versions/1.1.0', headers: adminHeaders })).json();
    assert.deepEqual(d.components.schemas['m_1.1.0_PredictRequest'], described.schemas.request);
    assert.equal(
      d.components.schemas['m_1.1.0_PredictRequest'].oneOf[0].properties.instances.items.properties.x.type,
      'array',
    );
    // The default version moved to the newest: the unpinned path now describes 1.1.0.
    assert.match(d.paths['/v1/models/m/predict'].post.summary, /now 1\.1\.0/);
    // A new model through repository:reload.
    await t.writeVersion('n', '2.0.0', biasModel(1));
    const rep = (
      await t.server.app.inject({ method: 'POST', url: '/v1/admin/repository:reload', headers: adminHeaders })
    ).json();
    assert.deepEqual(rep.loaded, ['n@2.0.0']);
    d = await doc();
    assert.ok(d.paths['/v1/models/n/predict'].post);
    assert.ok(d.components.schemas['n_2.0.0_PredictResponse']);
    const valid = await new Validator().validate(d);
    assert.equal(valid.valid, true, JSON.stringify(valid.errors ?? null).slice(0, 800));
    // Unloaded: gone from paths and components.
    assert.equal(
      (
        await t.server.app.inject({
          method: 'POST',
          url: '/v1/admin/models/m/versions/1.1.0:unload',
          headers: adminHeaders,
        })
      ).statusCode,
      200,
    );
    d = await doc();
    assert.equal(d.paths['/v1/models/m/versions/1.1.0/predict'], undefined);
    assert.equal(d.components.schemas['m_1.1.0_PredictRequest'], undefined);
    assert.match(d.paths['/v1/models/m/predict'].post.summary, /now 1\.0\.0/);
  });
});

/** A server over a repository and a config file the test rewrites; reloads read the file again. */
async function startConfigured(
  files: { config: Record<string, unknown>; aliases?: string },
  extra: Record<string, unknown> = {},
) {
  const repo = await tempModelRepository('ferry-hotcfg-');
  await writeModelVersion(repo.dir, 'm', '1.0.0', biasModel(0));
  await writeModelVersion(repo.dir, 'm', '1.1.0', biasModel(10));
  if (files.aliases) await writeFile(join(repo.dir, 'm', 'aliases.yaml'), files.aliases);
  const configFile = `${repo.dir}.config.yaml`;
  await writeFile(configFile, stringify(files.config));
  const sources: ConfigSources = {
    file: configFile,
    env: {},
    overrides: {
      'models.dir': repo.dir,
      'runtime.workers': 1,
      'runtime.warmupRuns': 1,
      'log.level': 'silent',
      'store.url': 'sqlite::memory:',
      ...extra,
    },
  };
  const cleanup = async () => {
    await repo.remove();
    await rm(configFile, { force: true });
  };
  let server: FerryServer;
  try {
    server = await createServer(loadConfig(sources), { logger: false, configSources: sources });
  } catch (e) {
    await cleanup();
    throw e;
  }
  await server.loaded;
  return {
    server,
    repo: repo.dir,
    configFile,
    writeConfig: (c: Record<string, unknown>) => writeFile(configFile, stringify(c)),
    async close() {
      await server.close();
      await cleanup();
    },
  };
}

describe('rollout blocks in ferry.config.yaml', () => {
  const canary = (weight: unknown) => ({
    models: { rollout: { m: { stable: '1.0.0', canary: { version: '1.1.0', weight } } } },
  });

  test('are applied at start and refused at start with the file and JSON pointer of the bad key', async () => {
    const s = await startConfigured({ config: canary(30) });
    try {
      assert.deepEqual(s.server.rollout.status('m').canary, {
        version: '1.1.0',
        weight: 30,
        requests: { stable: 0, canary: 0 },
      });
      const client = Array.from({ length: 200 }, (_, i) => `c${i}`).find((c) => canaryBucket('m', c) < 3000)!;
      const r = await s.server.app.inject({
        method: 'POST',
        url: '/v1/models/m/predict',
        headers: { 'ferry-client-id': client },
        payload: instances,
      });
      assert.equal(r.headers['ferry-model-version'], '1.1.0');
      assert.ok(Math.abs(r.json().predictions[0].value - 12) < 1e-5);
    } finally {
      await s.close();
    }
    await assert.rejects(
      startConfigured({ config: canary(140) }),
      /config\.yaml: \/models\/rollout\/m\/canary\/weight: expected a percentage from 0 to 100/,
    );
    await assert.rejects(
      startConfigured({ config: { models: { rollout: { m: { canary: { version: '1.1.0', wieght: 5 } } } } } }),
      /\/models\/rollout\/m\/canary\/wieght: unknown key/,
    );
    await assert.rejects(
      startConfigured({ config: { models: { rollout: { ghost: { stable: '1.0.0' } } } } }),
      /\/models\/rollout\/ghost: no model "ghost"/,
    );
  });

  test('a model with a policy in both files is refused, naming both', async () => {
    await assert.rejects(
      startConfigured({ config: canary(30), aliases: 'stable: 1.0.0\n' }),
      (e: Error) => /m\/aliases\.yaml/.test(e.message) && /\.config\.yaml \(\/models\/rollout\/m\)/.test(e.message),
    );
  });

  test('repository:reload applies a changed block; a bad change or a conflict is refused and the old policy keeps applying', async () => {
    const s = await startConfigured({ config: { ...canary(30), auth: { keys: [testAdminKey] } } });
    const reload = () =>
      s.server.app.inject({ method: 'POST', url: '/v1/admin/repository:reload', headers: adminHeaders });
    try {
      await s.writeConfig({ ...canary(50), auth: { keys: [testAdminKey] } });
      const ok = await reload();
      assert.equal(ok.statusCode, 200, ok.body);
      assert.deepEqual(ok.json().failed, []);
      assert.equal(s.server.rollout.status('m').canary?.weight, 50);
      await s.writeConfig({ ...canary(140), auth: { keys: [testAdminKey] } });
      const bad = (await reload()).json();
      assert.equal(bad.failed.length, 1);
      assert.match(bad.failed[0].error, /\/models\/rollout\/m\/canary\/weight: expected a percentage/);
      assert.equal(s.server.rollout.status('m').canary?.weight, 50);
      await s.writeConfig({ ...canary(10), auth: { keys: [testAdminKey] } });
      await writeFile(join(s.repo, 'm', 'aliases.yaml'), 'stable: 1.1.0\n');
      const conflict = (await reload()).json();
      assert.match(conflict.failed[0].error, /set in both .*aliases\.yaml and .*\.config\.yaml/);
      assert.equal(s.server.rollout.status('m').canary?.weight, 50);
      // Removing the block hands the model to its aliases.yaml.
      await s.writeConfig({ auth: { keys: [testAdminKey] } });
      assert.deepEqual((await reload()).json().failed, []);
      assert.equal(s.server.rollout.status('m').canary, null);
      assert.equal(s.server.rollout.status('m').defaultVersion, '1.1.0');
    } finally {
      await s.close();
    }
  });
});

describe('rollout blocks under --watch', () => {
  test('a changed config file is applied; a bad change is refused and the old policy keeps applying', async () => {
    const block = (weight: unknown) => ({
      models: { rollout: { m: { stable: '1.0.0', canary: { version: '1.1.0', weight } } } },
    });
    const s = await startConfigured({ config: block(30) });
    // The watcher `ferry serve --watch` installs (cli/main.ts), here over the test's config file.
    const watcher = s.server.configReloader.watch(s.server.config, 100);
    const weight = () => s.server.rollout.status('m').canary?.weight;
    try {
      await sleep(300); // chokidar's initial scan
      await s.writeConfig(block(60));
      await waitFor(async () => weight() === 60, 'weight 60 from the edited file');
      await s.writeConfig(block('lots'));
      await sleep(1500);
      assert.equal(weight(), 60);
      await s.writeConfig(block(5));
      await waitFor(async () => weight() === 5, 'weight 5 after the bad edit was fixed');
    } finally {
      await watcher.close();
      await s.close();
    }
  });
});

const SECRET_A = 'rotate-a-secret-0123456789abcdef';
const SECRET_B = 'rotate-b-secret-0123456789abcdef';
const keysYaml = (...entries: Array<[string, string]>) =>
  stringify({ keys: entries.map(([id, secret]) => ({ id, sha256: hashKey(secret), scopes: ['predict'] })) });

describe('settings a reload does not apply', () => {
  test('are named in the reload report (paths only, no values) while keys and rollout blocks are applied', async () => {
    const s = await startConfigured({ config: { auth: { keys: [testAdminKey] } } });
    try {
      const same = await s.server.app.inject({ method: 'POST', url: '/v1/admin/config:reload', headers: adminHeaders });
      assert.equal(same.statusCode, 200, same.body);
      assert.deepEqual(same.json().warnings, [], 'an unchanged file needs no restart');
      await s.writeConfig({
        auth: { keys: [testAdminKey] },
        cache: { maxBytes: 1234567 },
        redis: { url: 'redis://user:hunter2@127.0.0.1:1' },
        models: { rollout: { m: { stable: '1.1.0' } } },
      });
      const r = await s.server.app.inject({ method: 'POST', url: '/v1/admin/config:reload', headers: adminHeaders });
      assert.equal(r.statusCode, 200, r.body);
      const warnings = (r.json().warnings as string[]).filter((w) => w.includes('restart'));
      assert.deepEqual(
        warnings.map((w) => w.split(': ')[1]),
        [
          'cache.maxBytes changed; a reload applies only API keys and rollout blocks, restart to use it',
          'redis.url changed; a reload applies only API keys and rollout blocks, restart to use it',
        ],
      );
      assert.ok(!r.body.includes('hunter2'), 'no setting value in the report');
      // The rollout block in the same file was applied.
      assert.equal(s.server.rollout.status('m').defaultVersion, '1.1.0');
    } finally {
      await s.close();
    }
  });
});

describe('API key rotation without a restart (in process)', () => {
  test('config:reload and the watched keys file add and remove keys; a malformed file keeps the old keys; in-flight requests finish', async () => {
    const dir = await tempModelRepository('ferry-keys-');
    const keysFile = join(dir.dir, 'keys.yaml');
    await writeFile(keysFile, keysYaml(['a', SECRET_A]));
    const slow = slowModel(400);
    const s = await startConfigured({ config: { auth: { keys: [testAdminKey], keysFile } } });
    const watcher = s.server.configReloader.watch(s.server.config, 100);
    const call = async (secret: string) =>
      (
        await s.server.app.inject({
          method: 'POST',
          url: '/v1/models/m/predict',
          headers: { authorization: `Bearer ${secret}` },
          payload: instances,
        })
      ).statusCode;
    try {
      assert.equal(await call(SECRET_A), 200);
      assert.equal(await call(SECRET_B), 401);
      // config:reload picks up a key added to the file.
      await writeFile(keysFile, keysYaml(['a', SECRET_A], ['b', SECRET_B]));
      const r = await s.server.app.inject({ method: 'POST', url: '/v1/admin/config:reload', headers: adminHeaders });
      assert.equal(r.statusCode, 200, r.body);
      assert.deepEqual(r.json().keys, ['test-admin', 'a', 'b']);
      assert.ok(!r.body.includes(hashKey(SECRET_A)));
      assert.equal(await call(SECRET_B), 200);
      // The watcher: a removed key is refused on its next request.
      await writeFile(keysFile, keysYaml(['b', SECRET_B]));
      await waitFor(async () => (await call(SECRET_A)) === 401, 'key a refused after its removal');
      assert.equal(await call(SECRET_B), 200);
      // A malformed set: refused (422 naming the file and pointer, no digest), the old keys keep working.
      await writeFile(keysFile, 'keys:\n  - { id: c, sha256: not-a-digest }\n');
      const bad = await s.server.app.inject({ method: 'POST', url: '/v1/admin/config:reload', headers: adminHeaders });
      assert.equal(bad.statusCode, 422);
      assert.match(bad.json().detail, /keys\.yaml: \/keys\/0\/sha256/);
      await sleep(600); // the watcher saw the change too
      assert.equal(await call(SECRET_B), 200);
      // In flight: a request that authenticated before its key was removed still finishes with its answer.
      await writeFile(keysFile, keysYaml(['b', SECRET_B]));
      await writeModelVersion(s.repo, 'slow', '1.0.0', {
        onnx: slow.onnx,
        manifest: { ...slow.manifest, batching: { enabled: false }, timeoutMs: 20_000 },
      });
      assert.deepEqual((await s.server.manager.reloadRepository()).loaded, ['slow@1.0.0']);
      const inflight = s.server.app.inject({
        method: 'POST',
        url: '/v1/models/slow/predict',
        headers: { authorization: `Bearer ${SECRET_B}` },
        payload: { instances: [{ x: [1, 1, 1, 1] }] },
      });
      await sleep(100);
      await writeFile(keysFile, keysYaml(['a', SECRET_A]));
      assert.equal(
        (await s.server.app.inject({ method: 'POST', url: '/v1/admin/config:reload', headers: adminHeaders }))
          .statusCode,
        200,
      );
      assert.equal(await call(SECRET_B), 401);
      const done = await inflight;
      assert.equal(done.statusCode, 200, done.body);
      assert.equal(done.json().predictions.length, 1);
    } finally {
      await watcher.close();
      await s.close();
      await dir.remove();
    }
  });
});

describe('API key rotation on a running `ferry serve` (SIGHUP)', () => {
  test(
    'add a key, use it, remove it → 401, malformed file → old keys still work; no secret or digest in the log',
    { timeout: 120_000 },
    async () => {
      const repo = await tempModelRepository('ferry-sighup-');
      await writeModelVersion(repo.dir, 'm', '1.0.0', biasModel(0));
      const keysFile = join(repo.dir, '..', `${repo.dir.split('/').pop()}-keys.yaml`);
      const cfgFile = join(repo.dir, '..', `${repo.dir.split('/').pop()}.yaml`);
      await writeFile(keysFile, keysYaml(['a', SECRET_A]));
      await writeFile(cfgFile, stringify({ auth: { keysFile } }));
      const server = spawn(
        process.execPath,
        [
          CLI,
          'serve',
          '--models',
          repo.dir,
          '--config',
          cfgFile,
          '--port',
          '0',
          '--host',
          '127.0.0.1',
          '--workers',
          '1',
          '--log-level',
          'trace',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FERRY_STORE_URL: 'sqlite::memory:' } },
      );
      let log = '';
      server.stdout.on('data', (d) => {
        log += String(d);
      });
      server.stderr.on('data', (d) => {
        log += String(d);
      });
      try {
        const url = await new Promise<string>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no ready line: ${log}`)), 60_000);
          const check = () => {
            const line = log.split('\n').find((l) => l.includes('"msg":"ready"'));
            if (line) {
              clearTimeout(timer);
              resolve(JSON.parse(line).url as string);
            }
          };
          server.stdout.on('data', check);
          server.on('exit', (code) => reject(new Error(`server exited ${code}: ${log}`)));
        });
        const call = async (secret: string) =>
          (
            await fetch(`${url}/v1/models/m/predict`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` },
              body: JSON.stringify(instances),
            })
          ).status;
        const hup = async (until: () => Promise<boolean>, what: string) => {
          const before = log.length;
          server.kill('SIGHUP');
          await waitFor(
            async () =>
              log.slice(before).includes('configuration re-read') ||
              log.slice(before).includes('configuration reload refused'),
            `${what}: the reload`,
          );
          await waitFor(until, what, 5_000);
        };
        assert.equal(await call(SECRET_A), 200);
        assert.equal(await call(SECRET_B), 401);
        await writeFile(keysFile, keysYaml(['a', SECRET_A], ['b', SECRET_B]));
        await hup(async () => (await call(SECRET_B)) === 200, 'key b accepted');
        await writeFile(keysFile, keysYaml(['b', SECRET_B]));
        await hup(async () => (await call(SECRET_A)) === 401, 'key a refused');
        await writeFile(
          keysFile,
          `keys:\n  - { id: b, sha256: ${hashKey(SECRET_B)}, scopes: [predict] }\n  - { id: b, sha256: ${hashKey(SECRET_A)} }\n`,
        );
        await hup(async () => (await call(SECRET_B)) === 200, 'old keys after a malformed file');
        assert.match(log, /configuration reload refused/);
        assert.match(log, /configured twice/);
        assert.equal(await call(SECRET_A), 401);
        for (const s of [SECRET_A, SECRET_B, hashKey(SECRET_A), hashKey(SECRET_B)])
          assert.ok(!log.includes(s), 'a secret or digest reached the log');
      } finally {
        server.kill('SIGTERM');
        await new Promise((r) => server.once('exit', r));
        await repo.remove();
        await rm(keysFile, { force: true });
        await rm(cfgFile, { force: true });
      }
    },
  );
});
