import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { biasModel, startRepoServer, type RepoServer, adminHeaders, withTestAdminKey } from '@ferry/test-kit';

const close = (a: number, b: number, tol = 1e-5) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

describe('hot load, reload and unload', () => {
  let t: RepoServer;
  before(async () => {
    t = await startRepoServer([{ name: 'h', version: '1.0.0', files: biasModel(0) }], {}, withTestAdminKey());
  });
  after(() => t.close());
  const admin = (method: 'GET' | 'POST', url: string) => t.server.app.inject({ method, url, headers: adminHeaders });
  const predict = (url = '/v1/models/h/predict') =>
    t.server.app.inject({ method: 'POST', url, headers: adminHeaders, payload: { instances: [{ x: [2, 1] }] } });

  test("600 concurrent requests across repeated reloads: none fails, each answer is one version's exactly", async () => {
    const answers = new Map<number, number>([[0, 2]]);
    const requests: Array<
      Promise<{ statusCode: number; body: string; json(): { predictions: Array<{ value: number }> } }>
    > = [];
    const reloads: Array<Promise<unknown>> = [];
    for (let round = 1; round <= 5; round++) {
      // New weights for the same version on disk, then an explicit reload while requests are in flight.
      await t.writeVersion('h', '1.0.0', biasModel(round));
      answers.set(round, 2 + round);
      for (let i = 0; i < 100; i++) requests.push(predict());
      // Awaited before the next write (a load reading a file being rewritten would rightly be refused);
      // the requests are not awaited, so they are in flight across the swap.
      reloads.push(
        await admin('POST', '/v1/admin/models/h/versions/1.0.0:load').then((r) => {
          assert.equal(r.statusCode, 200, r.body);
          return r.json();
        }),
      );
      for (let i = 0; i < 20; i++) requests.push(predict());
    }
    const results = await Promise.all(requests);
    assert.equal(results.length, 600);
    const failed = results.filter((r) => r.statusCode !== 200);
    assert.equal(
      failed.length,
      0,
      failed
        .map((r) => r.body)
        .slice(0, 3)
        .join('\n'),
    );
    const valid = new Set(answers.values());
    const seen = new Set<number>();
    for (const r of results) {
      const value = Math.round(r.json().predictions[0]!.value * 1e5) / 1e5;
      assert.ok(valid.has(value), r.body);
      seen.add(value);
    }
    // The requests really spanned several generations (the swaps happened while they were in flight).
    assert.ok(seen.size >= 2, `answers from ${[...seen].join(', ')}`);
    const reports = (await Promise.all(reloads)) as Array<{ reloaded: string[] }>;
    for (const rep of reports) assert.deepEqual(rep.reloaded, ['h@1.0.0']);
    // After the last reload new requests see the last weights.
    close((await predict()).json().predictions[0]!.value, 7);
  });

  test('a new version loads from disk, and a bad one is refused while the old keeps serving', async () => {
    await t.writeVersion('h', '1.1.0', biasModel(100));
    const r = await admin('POST', '/v1/admin/models/h/versions/1.1.0:load');
    assert.equal(r.statusCode, 200, r.body);
    assert.deepEqual(r.json().loaded, ['h@1.1.0']);
    close((await predict('/v1/models/h/versions/1.1.0/predict')).json().predictions[0]!.value, 102);

    // A corrupt model file under the same version: refused with 422, 1.1.0 still answers with its old weights.
    await writeFile(join(t.dir, 'h', '1.1.0', 'model.onnx'), Buffer.from('not an onnx model'));
    const bad = await admin('POST', '/v1/admin/models/h/versions/1.1.0:load');
    assert.equal(bad.statusCode, 422, bad.body);
    assert.equal(bad.json().code, 'load-failed');
    assert.match(bad.json().detail, /h@1\.1\.0/);
    close((await predict('/v1/models/h/versions/1.1.0/predict')).json().predictions[0]!.value, 102);

    // An incompatible contract within major 1 is refused by repository:reload too (reported, not thrown).
    await t.writeVersion('h', '1.1.0', {
      ...biasModel(5),
      manifest: { ...biasModel(5).manifest, postprocess: undefined },
    });
    const rep = (await admin('POST', '/v1/admin/repository:reload')).json();
    assert.equal(rep.failed.length, 1);
    assert.match(rep.failed[0].error, /share major 1 but their contracts differ/);
    close((await predict('/v1/models/h/versions/1.1.0/predict')).json().predictions[0]!.value, 102);
  });

  test('unload refuses a version an alias points to; otherwise the version leaves service', async () => {
    await t.writeVersion('h', '1.1.0', biasModel(100));
    await t.writeAliases('h', 'stable: 1.1.0\n');
    assert.deepEqual((await admin('POST', '/v1/admin/repository:reload')).json().reloaded, ['h@1.1.0']);
    const inUse = await admin('POST', '/v1/admin/models/h/versions/1.1.0:unload');
    assert.equal(inUse.statusCode, 409);
    assert.equal(inUse.json().code, 'version-in-use');
    const ok = await admin('POST', '/v1/admin/models/h/versions/1.0.0:unload');
    assert.equal(ok.statusCode, 200, ok.body);
    assert.equal((await predict('/v1/models/h/versions/1.0.0/predict')).statusCode, 404);
    assert.deepEqual(
      (await t.server.app.inject({ url: '/v1/models/h', headers: adminHeaders }))
        .json()
        .versions.map((v: { version: string }) => v.version),
      ['1.1.0'],
    );
    // The version is still on disk: repository:reload brings it back.
    assert.deepEqual((await admin('POST', '/v1/admin/repository:reload')).json().loaded, ['h@1.0.0']);
    close((await predict('/v1/models/h/versions/1.0.0/predict')).json().predictions[0]!.value, 7);
  });

  test('Open Inference Protocol repository extension: index, unload, load', async () => {
    await t.writeVersion('g', '1.0.0', biasModel(-1));
    const index = () =>
      t.server.app.inject({ method: 'POST', url: '/v2/repository/index', headers: adminHeaders }).then((r) =>
        r
          .json()
          .filter((e: { state: string }) => e.state === 'READY')
          .map((e: { name: string }) => e.name),
      );
    assert.ok(!(await index()).includes('g'));
    const load = await admin('POST', '/v2/repository/models/g/load');
    assert.equal(load.statusCode, 200, load.body);
    assert.ok((await index()).includes('g'));
    const infer = await t.server.app.inject({
      method: 'POST',
      url: '/v2/models/g/infer',
      headers: adminHeaders,
      payload: { inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [2, 1] }] },
    });
    close(infer.json().outputs[0].data[0], 1);
    assert.equal((await admin('POST', '/v2/repository/models/g/unload')).statusCode, 200);
    const after = (
      await t.server.app.inject({ method: 'POST', url: '/v2/repository/index', headers: adminHeaders })
    ).json();
    assert.deepEqual(
      after.find((e: { name: string }) => e.name === 'g'),
      { name: 'g', state: 'UNAVAILABLE', reason: 'not loaded' },
    );
    assert.equal(
      (
        await t.server.app.inject({
          method: 'POST',
          url: '/v2/models/g/infer',
          headers: adminHeaders,
          payload: { inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [2, 1] }] },
        })
      ).statusCode,
      404,
    );
    assert.equal((await admin('POST', '/v2/repository/models/nope/load')).statusCode, 404);
  });

  test('a reload with new weights never serves answers cached from the old ones', async () => {
    const cached = (bias: number) => ({
      ...biasModel(bias),
      manifest: { ...biasModel(bias).manifest, cache: { enabled: true, ttlSeconds: 3600 } },
    });
    await t.writeVersion('k', '1.0.0', cached(0));
    assert.ok((await admin('POST', '/v1/admin/repository:reload')).json().loaded.includes('k@1.0.0'));
    const ask = () =>
      t.server.app.inject({
        method: 'POST',
        url: '/v1/models/k/predict',
        headers: adminHeaders,
        payload: { instances: [{ x: [2, 1] }] },
      });
    await ask();
    const hit = await ask();
    assert.equal(hit.headers['ferry-cache'], 'hit');
    close(hit.json().predictions[0].value, 2);
    await t.writeVersion('k', '1.0.0', cached(40));
    assert.deepEqual((await admin('POST', '/v1/admin/repository:reload')).json().reloaded, ['k@1.0.0']);
    const fresh = await ask();
    assert.equal(fresh.headers['ferry-cache'], 'miss');
    close(fresh.json().predictions[0].value, 42);
  });

  test('over a socket (predict lane, answer memo): new weights are never answered from the memo', async () => {
    await t.writeVersion('m', '1.0.0', {
      ...biasModel(0),
      manifest: { ...biasModel(0).manifest, cache: { enabled: true, ttlSeconds: 3600 } },
    });
    assert.ok((await admin('POST', '/v1/admin/repository:reload')).json().loaded.includes('m@1.0.0'));
    await t.server.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = t.server.app.server.address() as import('node:net').AddressInfo;
    const ask = async () => {
      const r = await fetch(`http://127.0.0.1:${port}/v1/models/m/predict`, {
        method: 'POST',
        headers: { ...adminHeaders, 'content-type': 'application/json' },
        body: JSON.stringify({ instances: [{ x: [2, 1] }] }),
      });
      return {
        cache: r.headers.get('ferry-cache'),
        value: ((await r.json()) as { predictions: Array<{ value: number }> }).predictions[0]!.value,
      };
    };
    await ask();
    const hit = await ask();
    assert.equal(hit.cache, 'hit');
    close(hit.value, 2);
    await t.writeVersion('m', '1.0.0', {
      ...biasModel(40),
      manifest: { ...biasModel(40).manifest, cache: { enabled: true, ttlSeconds: 3600 } },
    });
    assert.deepEqual((await admin('POST', '/v1/admin/repository:reload')).json().reloaded, ['m@1.0.0']);
    const fresh = await ask();
    assert.equal(fresh.cache, 'miss');
    close(fresh.value, 42);
  });

  test('--watch: a version copied into the folder is loaded, a removed one unloaded', { timeout: 60_000 }, async () => {
    const { watchRepository } = await import('../../rollout/watch.js');
    const { rm } = await import('node:fs/promises');
    const { pino } = await import('pino');
    const w = watchRepository(t.dir, t.server.manager, pino({ level: 'silent' }), 200);
    const until = async (cond: () => Promise<boolean>) => {
      const end = Date.now() + 30_000;
      while (!(await cond())) {
        if (Date.now() > end) throw new Error('the watcher did not apply the change');
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    try {
      await new Promise((r) => setTimeout(r, 300)); // let chokidar finish its initial scan
      await t.writeVersion('w', '1.0.0', biasModel(3));
      await until(async () => (await predict('/v1/models/w/predict')).statusCode === 200);
      close((await predict('/v1/models/w/predict')).json().predictions[0]!.value, 5);
      await rm(join(t.dir, 'w'), { recursive: true, force: true });
      await until(async () => (await predict('/v1/models/w/predict')).statusCode === 404);
    } finally {
      await w.close();
    }
  });

  test('path traversal and malformed names are refused before any file is touched', async () => {
    const urls = [
      '/v1/admin/models/..%2F..%2Fetc/versions/1.0.0:load',
      '/v1/admin/models/h/versions/..%2F..%2F1.0.0:load',
      '/v1/admin/models/%2E%2E/versions/1.0.0:load',
      '/v1/admin/models/h/versions/1.0.0%2F..%2F..:load',
      '/v1/admin/models/H/versions/1.0.0:load',
      '/v1/admin/models/h/versions/01.0.0:load',
      '/v2/repository/models/..%2Fh/load',
      '/v2/repository/models/%2Fetc%2Fpasswd/load',
      '/v1/models/..%2F..%2Fetc%2Fpasswd/predict',
      '/v1/models/h/versions/..%2F1.0.0/predict',
    ];
    for (const url of urls) {
      const r = await admin('POST', url);
      assert.ok(r.statusCode === 400 || r.statusCode === 404, `${url}: ${r.statusCode} ${r.body}`);
      assert.equal(r.headers['content-type'], 'application/problem+json; charset=utf-8', url);
      assert.doesNotMatch(r.body, /root:|ENOENT|EACCES|ferry-rollout-/, url);
    }
    const r = await admin('POST', '/v1/admin/models/h/versions/..%2F..%2F1.0.0:load');
    assert.equal(r.statusCode, 400);
    assert.equal(r.json().errors[0].pointer, '/path/version');
  });
});

describe('native memory across load/unload cycles', () => {
  test('200 load/unload cycles keep RSS within a generous bound', { timeout: 600_000 }, async () => {
    const t = await startRepoServer(
      [
        { name: 'a', version: '1.0.0', files: biasModel(0) },
        { name: 'b', version: '1.0.0', files: biasModel(1) },
      ],
      {},
      withTestAdminKey(),
    );
    try {
      const cycle = async () => {
        const l = await t.server.manager.unloadVersion('b', '1.0.0');
        assert.deepEqual(l.unloaded, ['b@1.0.0']);
        const r = await t.server.manager.loadVersion('b', '1.0.0');
        assert.deepEqual(r.loaded, ['b@1.0.0']);
      };
      for (let i = 0; i < 20; i++) await cycle(); // allocator warm-up
      global.gc?.();
      const rss0 = process.memoryUsage().rss;
      for (let i = 0; i < 200; i++) await cycle();
      global.gc?.();
      const rss1 = process.memoryUsage().rss;
      const growthMb = (rss1 - rss0) / 2 ** 20;
      process.stdout.write(
        `# rss over 200 load/unload cycles: ${(rss0 / 2 ** 20).toFixed(1)} MB → ${(rss1 / 2 ** 20).toFixed(1)} MB (${growthMb >= 0 ? '+' : ''}${growthMb.toFixed(1)} MB)\n`,
      );
      // A leaked session per cycle (graph, arena, thread state) would add several MB each: 200 cycles → far above this.
      assert.ok(growthMb < 150, `RSS grew ${growthMb.toFixed(1)} MB`);
      const r = await t.server.app.inject({
        method: 'POST',
        url: '/v1/models/b/predict',
        headers: adminHeaders,
        payload: { instances: [{ x: [2, 1] }] },
      });
      close(r.json().predictions[0].value, 3);
    } finally {
      await t.close();
    }
  });
});
