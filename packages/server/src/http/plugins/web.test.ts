import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InjectOptions } from 'fastify';
import { startTestServer, type TestServer, tinyClassifier } from '@ferry/test-kit';
import { quantileFromBuckets } from '../../monitoring/timeseries.js';

const cls = tinyClassifier();

describe('artifact routes, timeseries and dashboard serving', () => {
  let t: TestServer;
  let dashDir: string;
  before(async () => {
    dashDir = await mkdtemp(join(tmpdir(), 'ferry-dash-'));
    await mkdir(join(dashDir, 'assets'));
    await writeFile(join(dashDir, 'index.html'), '<!doctype html><title>Ferry dashboard</title>');
    await writeFile(join(dashDir, 'assets', 'app-abc123.js'), 'console.log(1)');
    t = await startTestServer(
      [
        { name: 'cls', version: '1.0.0', files: cls },
        {
          name: 'cls',
          version: '1.2.0',
          files: { ...cls, manifest: { ...cls.manifest, cache: { enabled: true, ttlSeconds: 600 } } },
        },
      ],
      { 'web.dashboardDir': dashDir, 'web.timeseriesIntervalSeconds': 0 },
    );
  });
  after(async () => {
    await t.close();
    await rm(dashDir, { recursive: true, force: true });
  });
  const inject = (o: InjectOptions) => t.server.app.inject(o);

  test('serves the exact ONNX bytes with a strong sha-256 ETag and immutable caching; 304 on If-None-Match', async () => {
    const r = await inject({ url: '/v1/models/cls/versions/1.0.0/artifact' });
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers['content-type'], 'application/octet-stream');
    const disk = await readFile(join(t.repoDir, 'cls', '1.0.0', 'model.onnx'));
    assert.deepEqual(r.rawPayload, disk);
    const etag = String(r.headers.etag);
    assert.equal(etag, `"sha256-${createHash('sha256').update(disk).digest('base64url')}"`);
    assert.ok(!etag.startsWith('W/'), 'strong ETag');
    assert.equal(r.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(Number(r.headers['content-length']), disk.length);

    const again = await inject({
      url: '/v1/models/cls/versions/1.0.0/artifact',
      headers: { 'if-none-match': `"other", ${etag}` },
    });
    assert.equal(again.statusCode, 304);
    assert.equal(again.rawPayload.length, 0);
    assert.equal(again.headers.etag, etag);
    const stale = await inject({
      url: '/v1/models/cls/versions/1.0.0/artifact',
      headers: { 'if-none-match': '"sha256-nope"' },
    });
    assert.equal(stale.statusCode, 200);
  });

  test('the contract comes with the artifact digest and its own ETag; floating refs redirect to the exact version', async () => {
    const c = await inject({ url: '/v1/models/cls/versions/1.2.0/artifact/contract' });
    assert.equal(c.statusCode, 200);
    const body = c.json();
    assert.equal(body.version, '1.2.0');
    assert.deepEqual(body.contract.postprocess.labels, ['no', 'yes']);
    const a = await inject({ url: '/v1/models/cls/versions/1.2.0/artifact' });
    assert.equal(body.artifact.etag, a.headers.etag);
    assert.equal(body.artifact.bytes, a.rawPayload.length);
    assert.equal(
      (
        await inject({
          url: '/v1/models/cls/versions/1.2.0/artifact/contract',
          headers: { 'if-none-match': String(c.headers.etag) },
        })
      ).statusCode,
      304,
    );

    const major = await inject({ url: '/v1/models/cls/versions/1/artifact' });
    assert.equal(major.statusCode, 307);
    assert.equal(major.headers.location, '/v1/models/cls/versions/1.2.0/artifact');
    assert.notEqual(major.headers['cache-control'], 'public, max-age=31536000, immutable');
    const latest = await inject({ url: '/v1/models/cls/versions/latest/artifact/contract' });
    assert.equal(latest.headers.location, '/v1/models/cls/versions/1.2.0/artifact/contract');
  });

  test('hostile model and version names are problem+json 4xx, never 5xx', async () => {
    for (const [url, status, code] of [
      ['/v1/models/nope/versions/1.0.0/artifact', 404, 'model-not-found'],
      ['/v1/models/cls/versions/9.9.9/artifact', 404, 'version-not-found'],
      ['/v1/models/..%2F..%2Fetc/versions/1.0.0/artifact', 404, 'model-not-found'],
      ['/v1/models/cls/versions/%2E%2E%2F%2E%2E/artifact', 404, 'version-not-found'],
      ['/v1/models/cls@1/versions/1.0.0/artifact', 400, 'invalid-request'],
    ] as const) {
      const r = await inject({ url });
      assert.equal(r.statusCode, status, url);
      assert.match(String(r.headers['content-type']), /application\/problem\+json/);
      assert.equal(r.json().code, code, url);
    }
  });

  test("the timeseries records throughput, latency and cache hit rate from the server's own metrics", async () => {
    const empty = await inject({ url: '/v1/metrics/timeseries' });
    assert.equal(empty.statusCode, 200);
    assert.equal(empty.json().points.length, 0);
    for (let i = 0; i < 3; i++) {
      const r = await inject({ method: 'POST', url: '/v1/models/cls/predict', payload: { instances: [cls.example] } });
      assert.equal(r.statusCode, 200);
    }
    await inject({
      method: 'POST',
      url: '/v1/models/cls/predict',
      payload: { instances: [{ ...cls.example, color: 'mauve' }] },
    });
    const rec = t.server.timeseries;
    await rec.sample();
    const all = (await inject({ url: '/v1/metrics/timeseries' })).json();
    assert.deepEqual(all.models, ['cls']);
    const p = all.points.at(-1);
    assert.equal(p.requests, 4);
    assert.ok(p.rps > 0);
    assert.ok(p.p50Ms > 0 && p.p99Ms >= p.p50Ms, JSON.stringify(p));
    assert.equal(p.errorRate, 0, '4xx are not errors of the server');
    // Three identical valid requests: one miss, then two hits.
    assert.ok(Math.abs(p.cacheHitRate - 2 / 3) < 1e-9, `cacheHitRate ${p.cacheHitRate}`);
    await rec.sample();
    const quiet = (await inject({ url: '/v1/metrics/timeseries?model=cls' })).json().points.at(-1);
    assert.equal(quiet.requests, 0);
    assert.equal(quiet.p99Ms, null);
    assert.equal((await inject({ url: '/v1/metrics/timeseries?model=..%2F' })).statusCode, 404);
  });

  test('quantiles interpolate inside histogram buckets', () => {
    assert.equal(
      quantileFromBuckets(
        [
          [10, 0],
          [20, 10],
          [Infinity, 10],
        ],
        0.5,
      ),
      15,
    );
    assert.equal(
      quantileFromBuckets(
        [
          [10, 0],
          [Infinity, 0],
        ],
        0.5,
      ),
      null,
    );
    assert.equal(
      quantileFromBuckets(
        [
          [10, 5],
          [Infinity, 10],
        ],
        0.99,
      ),
      10,
    );
  });

  test('serves the dashboard at / with no-cache HTML and immutable assets; the API keeps its problem documents', async () => {
    const root = await inject({ url: '/' });
    assert.equal(root.statusCode, 200);
    assert.match(root.body, /Ferry dashboard/);
    assert.equal(root.headers['cache-control'], 'no-cache');
    const asset = await inject({ url: '/assets/app-abc123.js' });
    assert.equal(asset.statusCode, 200);
    assert.equal(asset.headers['cache-control'], 'public, max-age=31536000, immutable');
    const api404 = await inject({ url: '/v1/nothing-here' });
    assert.equal(api404.statusCode, 404);
    assert.equal(api404.json().code, 'route-not-found');
    assert.equal((await inject({ url: '/docs' })).statusCode < 400, true);
  });
});

test('without a dashboard build the server starts and / says how to build it', async () => {
  const t = await startTestServer([{ name: 'cls', version: '1.0.0', files: cls }], {
    'web.dashboardDir': join(tmpdir(), 'ferry-no-dashboard-here'),
    'web.timeseriesIntervalSeconds': 0,
  });
  try {
    const r = await t.server.app.inject({ url: '/' });
    assert.equal(r.statusCode, 200);
    assert.match(r.body, /dashboard is not built/);
    assert.match(r.body, /npm run build/);
    assert.equal((await t.server.app.inject({ url: '/healthz' })).statusCode, 200);
  } finally {
    await t.close();
  }
});

test('drift histograms: reference vs current shares per feature, binned as the drift tests bin them', async () => {
  // Reference: amounts around 20; live traffic: amounts around 80, and only blue.
  const ref = Array.from({ length: 200 }, (_, i) =>
    JSON.stringify({
      amount: 10 + (i % 21),
      items: i % 4,
      member: i % 2 === 0,
      color: ['red', 'green', 'blue'][i % 3],
    }),
  ).join('\n');
  // Drift data describes live traffic: like the drift report it is an admin route (absent without keys).
  const adminKey = 'adminKey0123456789abc';
  const t = await startTestServer(
    [
      {
        name: 'cls',
        version: '1.0.0',
        files: {
          ...cls,
          manifest: { ...cls.manifest, reference: 'reference.jsonl' },
          files: { 'reference.jsonl': ref },
        },
      },
    ],
    {
      'web.timeseriesIntervalSeconds': 0,
      'auth.keys': [
        { id: 'ops', sha256: createHash('sha256').update(adminKey).digest('hex'), scopes: ['admin', 'predict'] },
      ],
    },
  );
  const auth = { authorization: `Bearer ${adminKey}` };
  try {
    const instances = Array.from({ length: 40 }, (_, i) => ({
      amount: 70 + (i % 21),
      items: i % 4,
      member: true,
      color: 'blue',
    }));
    const p = await t.server.app.inject({
      method: 'POST',
      url: '/v1/models/cls/predict',
      payload: { instances },
      headers: auth,
    });
    assert.equal(p.statusCode, 200);
    assert.equal((await t.server.app.inject({ url: '/v1/models/cls/drift/histograms?window=1h' })).statusCode, 401);
    const r = await t.server.app.inject({ url: '/v1/models/cls/drift/histograms?window=1h', headers: auth });
    assert.equal(r.statusCode, 200, r.body);
    const cols = r.json().columns as Array<{
      column: string;
      labels: string[];
      reference: number[];
      current: number[];
      nReference: number;
      nCurrent: number;
    }>;
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    const amount = cols.find((c) => c.column === 'amount')!;
    assert.ok(amount, JSON.stringify(cols.map((c) => c.column)));
    assert.equal(amount.nReference, 200);
    assert.equal(amount.nCurrent, 40);
    assert.ok(Math.abs(sum(amount.reference) - 1) < 1e-9 && Math.abs(sum(amount.current) - 1) < 1e-9);
    const centre = (shares: number[]) => shares.reduce((a, s, i) => a + s * i, 0);
    assert.ok(centre(amount.current) > centre(amount.reference) + 2, 'the current mass sits in higher bins');
    assert.match(amount.labels[0]!, /^10–/);
    const color = cols.find((c) => c.column === 'color')!;
    assert.deepEqual(color.labels, ['red', 'green', 'blue']);
    assert.deepEqual(color.current, [0, 0, 1]);
    const bad = await t.server.app.inject({ url: '/v1/models/cls/drift/histograms?window=forever', headers: auth });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().code, 'invalid-request');
  } finally {
    await t.close();
  }
});
