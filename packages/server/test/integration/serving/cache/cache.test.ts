// The prediction cache: canonical, version-scoped keys; the embedded LRU; Redis shared by two
// servers; and Redis going away and coming back, against a real redis-server this test starts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer as createNetServer } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { cacheKey, MemoryStore } from '../../../serving/cache/index.js';
import { startTestServer, type TestServer, tinyClassifier } from '@ferry/test-kit';

const cls = tinyClassifier();
const cached = { ...cls, manifest: { ...cls.manifest, cache: { enabled: true, ttlSeconds: 60 } } };
const json = (body: string) => ({
  method: 'POST' as const,
  url: '/v1/models/cls/predict',
  payload: body,
  headers: { 'content-type': 'application/json' },
});

test('keys are canonical: feature order and number spelling do not change them; versions and values do', () => {
  const inputs = cls.manifest.inputs;
  const a = JSON.parse('{"amount": 72.5, "items": 2, "member": true, "color": "green"}');
  const b = JSON.parse('{"color": "green", "member": true, "items": 2.0, "amount": 7.25e1}');
  assert.equal(cacheKey('p:', 'cls@1.0.0', inputs, a), cacheKey('p:', 'cls@1.0.0', inputs, b));
  assert.match(cacheKey('p:', 'cls@1.0.0', inputs, a), /^p:cls@1\.0\.0:[A-Za-z0-9_-]{43}$/);
  assert.notEqual(cacheKey('p:', 'cls@1.0.0', inputs, a), cacheKey('p:', 'cls@1.0.1', inputs, a));
  assert.notEqual(
    cacheKey('p:', 'cls@1.0.0', inputs, a),
    cacheKey('p:', 'cls@1.0.0', inputs, { ...a, amount: 72.50001 }),
  );
  assert.notEqual(
    cacheKey('p:', 'cls@1.0.0', inputs, { ...a, color: 'green\u0001' }),
    cacheKey('p:', 'cls@1.0.0', inputs, a),
  );
});

test('the in-process LRU is bounded in bytes', async () => {
  const store = new MemoryStore(10_000);
  const entries = Array.from(
    { length: 200 },
    (_, i) => [`k${i}`, { prediction: { label: 'x'.repeat(50) }, storedAt: Date.now() }] as const,
  );
  await store.setMany(entries, 60_000);
  assert.ok(store.size < 200 && store.size > 10, `${store.size} entries kept`);
  const [first, last] = await store.getMany(['k0', 'k199']);
  assert.equal(first, undefined, 'oldest evicted');
  assert.ok(last);
});

describe('embedded cache through the API', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer([
      { name: 'cls', version: '1.0.0', files: cached },
      { name: 'cls', version: '1.1.0', files: cached },
    ]);
  });
  after(() => t.close());

  test('miss, then hit for the same input however it is written; never across versions', async () => {
    const first = await t.server.app.inject(
      json('{"instances":[{"amount":72.5,"items":2,"member":true,"color":"green"}]}'),
    );
    assert.equal(first.headers['ferry-cache'], 'miss');
    const second = await t.server.app.inject(
      json('{"instances":[{"color":"green","member":true,"items":2.0,"amount":7.25e1}]}'),
    );
    assert.equal(second.headers['ferry-cache'], 'hit');
    assert.deepEqual(second.json().predictions, first.json().predictions);
    const pinned = await t.server.app.inject({
      ...json('{"instances":[{"amount":72.5,"items":2,"member":true,"color":"green"}]}'),
      url: '/v1/models/cls@1.0.0/predict',
    });
    assert.equal(pinned.headers['ferry-cache'], 'miss', "another version never serves this version's results");
    const mixed = await t.server.app.inject(
      json(
        '{"instances":[{"amount":72.5,"items":2,"member":true,"color":"green"},{"amount":1,"items":2,"member":true,"color":"green"}]}',
      ),
    );
    assert.equal(mixed.headers['ferry-cache'], 'partial');
    assert.deepEqual(mixed.json().predictions[0], first.json().predictions[0]);
    const metrics = (await t.server.app.inject({ url: '/metrics' })).body;
    assert.match(metrics, /ferry_cache_requests_total\{model="cls",version="1\.1\.0",result="hit"\} 2/);
    assert.match(metrics, /ferry_cache_requests_total\{model="cls",version="1\.1\.0",result="miss"\} 2/);
  });
});

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createNetServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function startRedis(port: number): Promise<ChildProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-redis-'));
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: 'ignore' },
  );
  const probe = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  for (let i = 0; i < 100; i++) {
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      return child;
    } catch {
      probe.disconnect();
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error('redis-server did not start');
}

async function stopRedis(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

describe('Redis cache', () => {
  test('two servers on one Redis share hits', async () => {
    const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
    const prefix = `ferry:test:${process.pid}:${Date.now()}:`;
    const a = await startTestServer([{ name: 'cls', version: '1.0.0', files: cached }], {
      'redis.url': url,
      'cache.keyPrefix': prefix,
    });
    const b = await startTestServer([{ name: 'cls', version: '1.0.0', files: cached }], {
      'redis.url': url,
      'cache.keyPrefix': prefix,
    });
    try {
      assert.equal(a.server.cache.store.kind, 'redis');
      const body = '{"instances":[{"amount":10,"items":3,"member":false,"color":"red"}]}';
      const r1 = await a.server.app.inject(json(body));
      assert.equal(r1.headers['ferry-cache'], 'miss');
      let r2 = await b.server.app.inject(json(body));
      for (let i = 0; i < 20 && r2.headers['ferry-cache'] !== 'hit'; i++) {
        // the write is asynchronous
        await new Promise((r) => setTimeout(r, 25));
        r2 = await b.server.app.inject(json(body));
      }
      assert.equal(r2.headers['ferry-cache'], 'hit', "the other replica's result is served");
      assert.deepEqual(r2.json().predictions, r1.json().predictions);
      const ttl = await (a.server.cache.store as unknown as { client: Redis }).client.pttl(
        (await (a.server.cache.store as unknown as { client: Redis }).client.keys(`${prefix}*`))[0]!,
      );
      assert.ok(ttl > 60_000, 'entries live past their TTL for the stale-cache fallback');
    } finally {
      const client = (a.server.cache.store as unknown as { client: Redis }).client;
      const keys = await client.keys(`${prefix}*`);
      if (keys.length) await client.del(...keys);
      await a.close();
      await b.close();
    }
  });

  test('Redis down: predictions are served without the cache, counted, logged once; the cache returns by itself', async () => {
    const port = await freePort();
    let redis = await startRedis(port);
    const t = await startTestServer([{ name: 'cls', version: '1.0.0', files: cached }], {
      'redis.url': `redis://127.0.0.1:${port}`,
      'redis.commandTimeoutMs': 100,
    });
    const body = (amount: number) => `{"instances":[{"amount":${amount},"items":3,"member":false,"color":"red"}]}`;
    try {
      assert.equal((await t.server.app.inject(json(body(1)))).headers['ferry-cache'], 'miss');
      await stopRedis(redis);
      for (let i = 0; i < 5; i++) {
        const r = await t.server.app.inject(json(body(1)));
        assert.equal(r.statusCode, 200, r.body);
        assert.equal(r.headers['ferry-cache'], 'miss');
        assert.equal(
          r.json().predictions[0].label,
          cls.reference({ amount: 1, items: 3, member: false, color: 'red' })[1]! > 0.5 ? 'yes' : 'no',
        );
      }
      const down = (await t.server.app.inject({ url: '/metrics' })).body;
      assert.match(down, /ferry_cache_requests_total\{model="cls",version="1\.0\.0",result="error"\} (\d+)/);
      redis = await startRedis(port);
      let back = false;
      for (let i = 0; i < 100 && !back; i++) {
        await t.server.app.inject(json(body(2)));
        back = (await t.server.app.inject(json(body(2)))).headers['ferry-cache'] === 'hit';
        if (!back) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(back, 'hits again once Redis is back, with no restart');
    } finally {
      await t.close();
      await stopRedis(redis);
    }
  });

  test('a closed port from the start: still serving', async () => {
    const port = await freePort();
    const t = await startTestServer([{ name: 'cls', version: '1.0.0', files: cached }], {
      'redis.url': `redis://127.0.0.1:${port}`,
    });
    try {
      const r = await t.server.app.inject(json('{"instances":[{"amount":3,"items":3,"member":false,"color":"red"}]}'));
      assert.equal(r.statusCode, 200);
      assert.equal(r.headers['ferry-cache'], 'miss');
    } finally {
      await t.close();
    }
  });
});
