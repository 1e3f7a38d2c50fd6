// Reliability (issue 24, items 9, 10 and 12): hostile or unlucky requests answered with a 4xx or a
// retryable 503, never a 500 — deep JSON nesting, the store cut (PostgreSQL) or locked (SQLite)
// during a job submission, and callback URLs that only look like an allowed one.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import {
  startTestServer,
  tinyClassifier,
  TEST_DATABASE_URL,
  TcpProxy,
  uniqueSchemaName,
  withAdminClient,
  type TestServer,
} from '@ferry/test-kit';

const cls = tinyClassifier();
const MODELS = [{ name: 'cls', version: '1.0.0', files: { onnx: cls.onnx, manifest: cls.manifest } }];

describe('deep nesting and callback URLs', () => {
  let ts: TestServer;
  before(async () => {
    ts = await startTestServer(MODELS, {
      'jobs.workers': false,
      'jobs.webhooks.allow': ['https://hooks.example.com/hooks'],
    });
  });
  after(() => ts.close());

  test('10,000 and 100,000 nested brackets: 400 naming the depth limit, on every JSON route', async () => {
    for (const n of [10_000, 100_000]) {
      const nest = '['.repeat(n) + ']'.repeat(n);
      for (const [url, payload] of [
        ['/v1/models/cls/predict', `{"instances":${nest}}`],
        ['/v1/models/cls/predict', `{"instances":[{"amount":${nest}}]}`],
        ['/v1/models/cls/jobs', `{"instances":${nest}}`],
        ['/v2/models/cls/infer', `{"inputs":${nest}}`],
      ] as const) {
        const r = await ts.server.app.inject({
          method: 'POST',
          url,
          payload,
          headers: { 'content-type': 'application/json' },
        });
        assert.equal(r.statusCode, 400, `${url} (${n}): ${r.body.slice(0, 200)}`);
        assert.equal(r.json().limit, 64);
        assert.match(r.json().detail, /limits\.maxJsonDepth/);
      }
    }
    // Still serving.
    const ok = await ts.server.app.inject({
      method: 'POST',
      url: '/v1/models/cls/predict',
      payload: { instances: [cls.example] },
    });
    assert.equal(ok.statusCode, 200);
  });

  test('the callback allow-list matches origin and whole path segments', async () => {
    const submit = (callbackUrl: string) =>
      ts.server.app.inject({
        method: 'POST',
        url: '/v1/models/cls/jobs',
        payload: { instances: [cls.example], callbackUrl },
      });
    for (const bad of [
      'https://hooks.example.com/hooksevil',
      'https://hooks.example.com/hooks%2F..%2Fadmin',
      'https://hooks.example.com/hooks/..%2fadmin',
      'https://hooks.example.com.evil.test/hooks',
    ]) {
      const r = await submit(bad);
      assert.equal(r.statusCode, 400, bad);
      assert.equal(r.json().code, 'callback-not-allowed');
    }
    assert.equal((await submit('https://hooks.example.com/hooks/orders')).statusCode, 202);
  });
});

describe('store failures on job submission', () => {
  test('PostgreSQL cut: 503 store-unavailable with Retry-After, then 202 once it is back', async () => {
    const target = new URL(TEST_DATABASE_URL);
    const proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
    await proxy.start();
    const via = new URL(TEST_DATABASE_URL);
    via.port = String(proxy.port);
    const schema = uniqueSchemaName('ferry_rel_outage');
    const ts = await startTestServer(MODELS, {
      'store.url': via.toString(),
      'store.schema': schema,
      'store.connectTimeoutMs': 500,
      'jobs.workers': false,
    });
    try {
      const submit = () =>
        ts.server.app.inject({ method: 'POST', url: '/v1/models/cls/jobs', payload: { instances: [cls.example] } });
      await proxy.stop();
      const r = await submit();
      assert.equal(r.statusCode, 503, r.body);
      assert.equal(r.json().code, 'store-unavailable');
      assert.equal(r.headers['retry-after'], '5');
      // Reading a job during the outage is a 503 too, not a 500.
      const g = await ts.server.app.inject({ method: 'GET', url: '/v1/jobs/00000000-0000-4000-8000-000000000000' });
      assert.equal(g.statusCode, 503, g.body);
      await proxy.start();
      let ok = 0;
      for (let i = 0; i < 20 && ok !== 202; i++) {
        ok = (await submit()).statusCode;
        if (ok !== 202) await new Promise((res) => setTimeout(res, 200));
      }
      assert.equal(ok, 202);
    } finally {
      await ts.close();
      await proxy.stop();
      await withAdminClient((c) => c.query(`drop schema if exists "${schema}" cascade`));
    }
  });

  test('SQLite locked by another process: 503 store-unavailable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-rel-sqlite-'));
    const file = join(dir, 'ferry.db');
    const ts = await startTestServer(MODELS, {
      'store.url': `sqlite:${file}`,
      'store.busyTimeoutMs': 50,
      'jobs.workers': false,
    });
    const other = new BetterSqlite3(file);
    try {
      other.exec('BEGIN EXCLUSIVE');
      const r = await ts.server.app.inject({
        method: 'POST',
        url: '/v1/models/cls/jobs',
        payload: { instances: [cls.example] },
      });
      assert.equal(r.statusCode, 503, r.body);
      assert.equal(r.json().code, 'store-unavailable');
      assert.ok(r.headers['retry-after']);
      other.exec('ROLLBACK');
      const again = await ts.server.app.inject({
        method: 'POST',
        url: '/v1/models/cls/jobs',
        payload: { instances: [cls.example] },
      });
      assert.equal(again.statusCode, 202);
    } finally {
      other.close();
      await ts.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
