// A real multi-process cluster on this machine: two `ferry serve` replicas on the running Redis
// (shared prediction cache, per-test key prefix) and PostgreSQL (per-test schema), behind nginx
// running the repository's deploy/nginx/nginx.conf. One replica is SIGTERMed under load: no request
// through the proxy may fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'node:http';
import { Redis } from 'ioredis';
import {
  startChildServer,
  type ChildServer,
  freePort,
  localNginxConf,
  nginxBinary,
  slowModel,
  tempModelRepository,
  tinyClassifier,
  writeModelVersion,
  TEST_DATABASE_URL,
  uniqueSchemaName,
  withAdminClient,
} from '@ferry/test-kit';

const REDIS_URL = process.env.FERRY_TEST_REDIS_URL || 'redis://127.0.0.1:6379';
const NGINX_CONF = fileURLToPath(new URL('../../../../../deploy/nginx/nginx.conf', import.meta.url));

interface Outcome {
  status: number;
  ok: boolean;
  error?: string;
  sentAt: number;
  doneAt: number;
  cache?: string;
}

function post(port: number, path: string, body: unknown): Promise<Outcome> {
  const sentAt = Date.now();
  return new Promise((resolve) => {
    const data = JSON.stringify(body);
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => {
          text += d.toString();
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            ok: res.statusCode === 200 && text.includes('predictions'),
            sentAt,
            doneAt: Date.now(),
            ...(typeof res.headers['ferry-cache'] === 'string' && { cache: res.headers['ferry-cache'] }),
            ...(res.statusCode !== 200 && { error: text.slice(0, 200) }),
          }),
        );
      },
    );
    req.on('error', (e) => resolve({ status: 0, ok: false, error: e.message, sentAt, doneAt: Date.now() }));
    req.end(data);
  });
}

async function metric(url: string, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.split(' ').at(-1));
  }
  return sum;
}

const nginx = nginxBinary();

test(
  'cluster: 2 ferry serve replicas on Redis + PostgreSQL behind nginx — shared cache across replicas, one replica SIGTERMed under load loses no request',
  { timeout: 180_000, skip: nginx ? false : 'nginx is not installed' },
  async () => {
    const repo = await tempModelRepository();
    const cls = tinyClassifier();
    await writeModelVersion(repo.dir, 'cls', '1.0.0', {
      ...cls,
      manifest: { ...cls.manifest, cache: { enabled: true, ttlSeconds: 120 } },
    });
    const slow = slowModel(15);
    await writeModelVersion(repo.dir, 'slow', '1.0.0', slow);
    const schema = uniqueSchemaName('ferry_cluster');
    const keyPrefix = `ferry-test-${schema}:`;
    const dir = mkdtempSync(join(tmpdir(), 'ferry-nginx-'));
    const env = {
      REDIS_URL,
      DATABASE_URL: TEST_DATABASE_URL,
      FERRY_STORE_SCHEMA: schema,
      FERRY_CACHE_KEY_PREFIX: keyPrefix,
      FERRY_RUNTIME_WARMUP_RUNS: '1',
      FERRY_LIFECYCLE_DRAIN_DELAY_MS: '1000',
      FERRY_SERVER_SHUTDOWN_GRACE_MS: '15000',
    };
    const replicas: ChildServer[] = [];
    let proxy: ChildProcess | undefined;
    const redis = new Redis(REDIS_URL);
    try {
      // Both replicas migrate the same schema at start: the store's migrations must tolerate that.
      replicas.push(
        ...(await Promise.all(
          [0, 1].map(() => startChildServer({ args: ['--models', repo.dir, '--workers', '1'], env })),
        )),
      );
      const [a, b] = replicas as [ChildServer, ChildServer];
      const port = await freePort();
      writeFileSync(
        join(dir, 'nginx.conf'),
        localNginxConf(readFileSync(NGINX_CONF, 'utf8'), [a.port, b.port], port, dir),
      );
      proxy = spawn(nginx!, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let nginxErr = '';
      proxy.stderr!.on('data', (d: Buffer) => {
        nginxErr += d.toString();
      });
      // Wait for nginx to listen.
      for (let i = 0; ; i++) {
        const r = await fetch(`http://127.0.0.1:${port}/readyz`).then(
          (x) => x.status,
          () => 0,
        );
        if (r === 200) break;
        assert.ok(i < 100, `nginx did not come up: ${nginxErr}`);
        await new Promise((res) => setTimeout(res, 100));
      }

      // Shared cache: a prediction computed on replica A is a cache hit on replica B.
      // The cache is written after the response goes out: wait until Redis holds the entries.
      const entries = async (n: number) => {
        for (let i = 0; ; i++) {
          const k = await redis.keys(`${keyPrefix}*`);
          if (k.length >= n) return k;
          assert.ok(i < 100, `Redis holds ${k.length} of ${n} cache entries`);
          await new Promise((r) => setTimeout(r, 50));
        }
      };
      const inst = { amount: 12.25, items: 3, member: false, color: 'red' };
      const first = await post(a.port, '/v1/models/cls/predict', { instances: [inst] });
      await entries(1);
      const second = await post(b.port, '/v1/models/cls/predict', { instances: [inst] });
      assert.ok(first.ok && second.ok);
      assert.equal(first.cache, 'miss');
      assert.equal(second.cache, 'hit', 'replica B answered from the entry replica A wrote to Redis');
      assert.ok((await metric(b.url, 'ferry_cache_requests_total', { result: 'hit' })) >= 1);
      // Through the proxy, repeats of 20 distinct instances: after the first round every answer is a hit, whichever
      // replica serves it.
      const distinct = Array.from({ length: 20 }, (_, i) => ({
        amount: 100 + i,
        items: i % 5,
        member: i % 2 === 0,
        color: 'blue',
      }));
      for (const x of distinct) assert.ok((await post(port, '/v1/models/cls/predict', { instances: [x] })).ok);
      await entries(21);
      const repeat = await Promise.all(distinct.map((x) => post(port, '/v1/models/cls/predict', { instances: [x] })));
      assert.deepEqual(
        repeat.map((r) => r.cache),
        distinct.map(() => 'hit'),
      );
      const hitsA = await metric(a.url, 'ferry_cache_requests_total', { result: 'hit' });
      const hitsB = await metric(b.url, 'ferry_cache_requests_total', { result: 'hit' });
      assert.ok(hitsA > 0 && hitsB > 0, `both replicas served hits (A ${hitsA}, B ${hitsB})`);
      const keys = await redis.keys(`${keyPrefix}*`);
      assert.equal(keys.length, 21, "one entry per distinct instance, under the test's prefix");

      // Load through nginx; SIGTERM replica A part-way. Every request must come back 200.
      const outcomes: Outcome[] = [];
      let stop = false;
      const t0 = Date.now();
      const clients = Array.from({ length: 8 }, async (_, c) => {
        let i = 0;
        while (!stop) {
          const x = [c, i++, 0.5, 1];
          const o = await post(port, '/v1/models/slow/predict', { instances: [{ x }] });
          outcomes.push(o);
        }
      });
      await new Promise((r) => setTimeout(r, 2000));
      const servedBeforeA = await metric(a.url, 'ferry_requests_total', { route: 'v1_predict', model: 'slow' });
      const sigAt = Date.now();
      a.proc.kill('SIGTERM');
      const exitA = await a.exited;
      await new Promise((r) => setTimeout(r, 2000));
      stop = true;
      await Promise.all(clients);
      const elapsedSec = (Date.now() - t0) / 1000;
      assert.equal(exitA.code, 0, 'replica A drained and exited cleanly');
      const failed = outcomes.filter((o) => !o.ok);
      assert.deepEqual(
        failed.map((o) => `${o.status} ${o.error ?? ''}`),
        [],
        'no request lost through the proxy',
      );
      const afterSig = outcomes.filter((o) => o.sentAt >= sigAt);
      assert.ok(afterSig.length > 0);
      assert.ok(
        outcomes.filter((o) => o.sentAt < sigAt && o.doneAt > sigAt).length > 0,
        'requests were in flight at SIGTERM',
      );
      assert.ok(servedBeforeA > 0, 'replica A took a share of the load before its SIGTERM');
      const servedB = await metric(b.url, 'ferry_requests_total', { route: 'v1_predict', model: 'slow' });
      // Answers are right whichever replica served them.
      const check = await post(port, '/v1/models/slow/predict', { instances: [{ x: [1, 2, 3, 4] }] });
      assert.ok(check.ok);
      // nginx logs each connection the stopped replica refused before passing the request on.
      const retried = (
        readFileSync(join(dir, 'error.log'), 'utf8').match(/Connection refused\) while connecting to upstream/g) ?? []
      ).length;
      const lat = outcomes.map((o) => o.doneAt - o.sentAt).sort((x, y) => x - y);
      console.log(
        `# cluster: ${outcomes.length} requests through nginx in ${elapsedSec.toFixed(1)} s (${(outcomes.length / elapsedSec).toFixed(0)} req/s), 0 failed; ${retried} refused by the stopped replica and retried by nginx on the other; ${afterSig.length} sent after SIGTERM to replica A; A exited ${exitA.at - sigAt} ms after SIGTERM (code ${exitA.code}); predict requests served: A ${servedBeforeA}+ before SIGTERM, B ${servedB}; p50 ${lat[Math.floor(lat.length / 2)]} ms, p99 ${lat[Math.floor(lat.length * 0.99)]} ms; shared cache: 21/21 repeats were hits (A ${hitsA}, B ${hitsB})`,
      );
    } finally {
      const left = await redis.keys(`${keyPrefix}*`).catch(() => []);
      if (left.length) await redis.del(...left).catch(() => undefined);
      redis.disconnect();
      proxy?.kill('SIGTERM');
      await Promise.all(replicas.map((r) => r.stop('SIGKILL')));
      rmSync(dir, { recursive: true, force: true });
      await repo.remove();
      await withAdminClient((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)).catch(() => undefined);
    }
  },
);
