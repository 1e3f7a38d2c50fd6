// The job API end to end, looped over both queue backends with the same tests: the SQL queue in the
// store (SQLite) and BullMQ on the real Redis (a fresh queue name per server, obliterated after).
// Real servers, real ONNX models, in-process workers; webhooks go to the test's own HTTP receiver.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import {
  startTestServer,
  type TestServer,
  type TestModel,
  slowModel,
  tinyClassifier,
  TEST_DATABASE_URL,
  uniqueSchemaName,
  withAdminClient,
} from '@ferry/test-kit';
import { verifyWebhook } from '../../webhooks/index.js';
import { BullQueue } from '../../jobs/bullmq-queue.js';
import type { JobDocument } from '../../jobs/types.js';

const REDIS_URL = process.env.FERRY_TEST_REDIS_URL || 'redis://127.0.0.1:6379';
// The SQL queue runs on both store dialects (the job documents of BullMQ jobs live in the store too).
const BACKENDS = ['sql', 'sql-postgres', 'bullmq'] as const;

const cls = tinyClassifier();
const slow = slowModel(150);
const MODELS: TestModel[] = [
  { name: 'cls', version: '1.0.0', files: { onnx: cls.onnx, manifest: cls.manifest } },
  {
    name: 'slow',
    version: '1.0.0',
    files: { onnx: slow.onnx, manifest: { ...slow.manifest, batching: { enabled: false }, timeoutMs: 10_000 } },
  },
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startBackend(
  backend: (typeof BACKENDS)[number],
  overrides: Record<string, unknown> = {},
): Promise<TestServer> {
  const queue =
    (overrides['jobs.queueName'] as string | undefined) ?? `t-${process.pid}-${randomBytes(4).toString('hex')}`;
  const schema =
    backend === 'sql-postgres'
      ? ((overrides['store.schema'] as string | undefined) ?? uniqueSchemaName('ferry_jobs'))
      : undefined;
  const ts = await startTestServer(MODELS, {
    ...(schema !== undefined && { 'store.url': TEST_DATABASE_URL, 'store.schema': schema }),
    'jobs.backoffBaseMs': 40,
    'jobs.pollIntervalMs': 20,
    'jobs.stalledIntervalMs': 500,
    'jobs.lockDurationMs': 3000,
    'jobs.queueName': queue,
    'jobs.prefix': 'ferry-test',
    'jobs.chunkSize': 1,
    'jobs.shutdownGraceMs': 2000,
    ...(backend === 'bullmq' && { 'redis.url': REDIS_URL }),
    ...overrides,
  });
  const close = ts.close;
  return {
    ...ts,
    async close() {
      const b = ts.server.jobs.backend;
      await close();
      if (schema !== undefined) await withAdminClient((c) => c.query(`drop schema if exists "${schema}" cascade`));
      if (b instanceof BullQueue) {
        // A fresh connection: the server's is closed now.
        const { Queue } = await import('bullmq');
        const q = new Queue(queue, { connection: { url: REDIS_URL }, prefix: 'ferry-test' });
        await q.obliterate({ force: true }).catch(() => undefined);
        await q.close();
      }
    },
  };
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

for (const backend of BACKENDS) {
  describe(`jobs on the ${backend} queue`, () => {
    let ts: TestServer;
    before(async () => {
      ts = await startBackend(backend);
    });
    after(async () => {
      await ts.close();
    });

    const inject = (opts: InjectOptions): Promise<LightMyRequestResponse> => ts.server.app.inject(opts);
    const getJob = async (id: string) => (await inject({ method: 'GET', url: `/v1/jobs/${id}` })).json() as JobDocument;
    const until = (id: string, states: string[]) =>
      waitFor(`job ${id} in ${states}`, async () => {
        const j = await getJob(id);
        return states.includes(j.state) ? j : undefined;
      });

    test("submit → 202 with Location, poll until completed; the result is the model's output", async () => {
      const instances = [cls.example, { amount: 3, items: 0, member: false, color: 'red' }];
      const r = await inject({ method: 'POST', url: '/v1/models/cls/jobs', payload: { instances } });
      assert.equal(r.statusCode, 202, r.body);
      const sub = r.json() as JobDocument;
      assert.equal(r.headers.location, `/v1/jobs/${sub.id}`);
      assert.equal(sub.state, 'queued');
      assert.equal(sub.model, 'cls');
      assert.equal(sub.version, '1.0.0');
      const done = await until(sub.id, ['completed', 'failed']);
      assert.equal(done.state, 'completed', JSON.stringify(done.error));
      assert.equal(done.progress, 1);
      assert.equal(done.attempts, 1);
      assert.equal(done.error, null);
      assert.ok(
        done.startedAt && done.finishedAt && done.createdAt <= done.startedAt && done.startedAt <= done.finishedAt,
      );
      const preds = done.result!.predictions as Array<{ label: string; scores: Record<string, number> }>;
      assert.equal(preds.length, 2);
      instances.forEach((inst, i) => {
        const [no, yes] = cls.reference(inst as typeof cls.example);
        assert.ok(Math.abs(preds[i]!.scores.no! - no!) < 1e-5, `no score of ${i}`);
        assert.ok(Math.abs(preds[i]!.scores.yes! - yes!) < 1e-5, `yes score of ${i}`);
        assert.equal(preds[i]!.label, yes! > no! ? 'yes' : 'no');
      });
      // The same answer as the synchronous path.
      const sync = await inject({ method: 'POST', url: '/v1/models/cls/predict', payload: { instances } });
      assert.deepEqual(sync.json().predictions, preds);
    });

    test('columnar input and a pinned version work as for /predict', async () => {
      const r = await inject({
        method: 'POST',
        url: '/v1/models/cls/versions/1/jobs',
        payload: { inputs: { amount: [72.5], items: [2], member: [true], color: ['green'] } },
      });
      assert.equal(r.statusCode, 202, r.body);
      const done = await until(r.json().id, ['completed', 'failed']);
      assert.equal(done.state, 'completed');
      assert.ok(
        Math.abs(
          (done.result!.predictions[0] as { scores: { yes: number } }).scores.yes - cls.reference(cls.example)[1]!,
        ) < 1e-5,
      );
    });

    test('validation happens at submission: a bad job is a 4xx naming the field, and nothing is queued', async () => {
      const before = (await inject({ method: 'GET', url: '/v1/jobs?model=cls&limit=1000' })).json().jobs.length;
      const cases: Array<[unknown, number, string, RegExp]> = [
        [{ instances: [cls.example, { ...cls.example, amount: -5 }] }, 400, '/instances/1/amount', /out of range/],
        [{ instances: [{ ...cls.example, color: 'mauve' }] }, 400, '/instances/0/color', /unknown category/],
        [{ instances: [] }, 400, '/instances', /non-empty/],
        [{ instances: [cls.example], extra: 1 }, 400, '/extra', /unknown member/],
        [{ instances: [cls.example], callbackUrl: 'file:///etc/passwd' }, 400, '/callbackUrl', /scheme file/],
        [
          { instances: [cls.example], callbackUrl: 'http://example.com/hook' },
          400,
          '/callbackUrl',
          /disabled|allow-list/,
        ],
        [{ instances: [cls.example], timeoutMs: -1 }, 400, '/timeoutMs', /whole number/],
        [[1, 2], 400, '', /JSON object/],
      ];
      for (const [payload, status, pointer, reason] of cases) {
        const r = await inject({ method: 'POST', url: '/v1/models/cls/jobs', payload: payload as object });
        assert.equal(r.statusCode, status, `${JSON.stringify(payload)} → ${r.body}`);
        assert.match(r.headers['content-type'] as string, /application\/problem\+json/);
        const p = r.json();
        assert.ok(
          p.errors.some((e: { pointer: string; reason: string }) => e.pointer === pointer && reason.test(e.reason)),
          `${JSON.stringify(payload)}: ${r.body}`,
        );
      }
      const hostile = [
        inject({
          method: 'POST',
          url: '/v1/models/cls/jobs',
          payload: '{"instances": [',
          headers: { 'content-type': 'application/json' },
        }),
        inject({ method: 'POST', url: '/v1/models/nope/jobs', payload: { instances: [cls.example] } }),
        inject({
          method: 'POST',
          url: '/v1/models/cls/jobs',
          payload: { instances: [cls.example] },
          headers: { 'idempotency-key': 'x'.repeat(300) },
        }),
        inject({
          method: 'POST',
          url: '/v1/models/cls/jobs',
          payload: Buffer.from('hello'),
          headers: { 'content-type': 'image/png' },
        }),
        inject({
          method: 'POST',
          url: '/v1/models/cls/jobs',
          payload: '--b\r\ncontent-disposition: form-data; name="image"; filename="a.png"\r\n\r\nxx\r\n--b--\r\n',
          headers: { 'content-type': 'multipart/form-data; boundary=b' },
        }),
        inject({ method: 'GET', url: '/v1/jobs/not-a-job' }),
        inject({ method: 'GET', url: '/v1/jobs/00000000-0000-0000-0000-000000000000/events' }),
        inject({ method: 'DELETE', url: `/v1/jobs/${'a'.repeat(500)}` }),
        inject({ method: 'GET', url: '/v1/jobs?state=sleeping' }),
        inject({ method: 'GET', url: '/v1/jobs?limit=0' }),
        inject({ method: 'GET', url: '/v1/jobs?limit=abc' }),
        inject({ method: 'GET', url: '/v1/jobs?cursor=%%%' }),
        inject({ method: 'GET', url: '/v1/jobs?model=nope' }),
      ];
      const expected = [
        [400, 'invalid-json'],
        [404, 'model-not-found'],
        [400, 'invalid-request'],
        [415, 'unsupported-media-type'],
        [415, 'unsupported-media-type'],
        [404, 'job-not-found'],
        [404, 'job-not-found'],
        [404, 'route-not-found'],
        [400, 'invalid-request'],
        [400, 'invalid-request'],
        [400, 'invalid-request'],
        [400, 'invalid-request'],
        [404, 'model-not-found'],
      ];
      const answers = await Promise.all(hostile);
      answers.forEach((r, i) => {
        assert.equal(r.statusCode, expected[i]![0], `case ${i}: ${r.body}`);
        assert.equal(r.json().code, expected[i]![1], `case ${i}: ${r.body}`);
      });
      const afterCount = (await inject({ method: 'GET', url: '/v1/jobs?model=cls&limit=1000' })).json().jobs.length;
      assert.equal(afterCount, before, 'no job was created by a refused submission');
    });

    test('Idempotency-Key: a retried submission returns the first job; another body with the key is a 422', async () => {
      const key = `k-${randomBytes(6).toString('hex')}`;
      const payload = { instances: [cls.example] };
      const [a, b] = await Promise.all([
        inject({ method: 'POST', url: '/v1/models/cls/jobs', payload, headers: { 'idempotency-key': key } }),
        inject({ method: 'POST', url: '/v1/models/cls/jobs', payload, headers: { 'idempotency-key': key } }),
      ]);
      assert.equal(a.statusCode, 202);
      assert.equal(b.statusCode, 202);
      assert.equal(a.json().id, b.json().id, 'concurrent retries share one job');
      assert.equal([a, b].filter((r) => r.headers['idempotent-replayed'] === 'true').length, 1);
      await until(a.json().id, ['completed']);
      const c = await inject({
        method: 'POST',
        url: '/v1/models/cls/jobs',
        payload,
        headers: { 'idempotency-key': key },
      });
      assert.equal(c.statusCode, 202);
      assert.equal(c.json().id, a.json().id);
      assert.equal(c.json().state, 'completed', 'a replay after completion returns the finished job');
      const d = await inject({
        method: 'POST',
        url: '/v1/models/cls/jobs',
        payload: { instances: [{ ...cls.example, amount: 1 }] },
        headers: { 'idempotency-key': key },
      });
      assert.equal(d.statusCode, 422, d.body);
      assert.equal(d.json().code, 'idempotency-key-reused');
      const list = (await inject({ method: 'GET', url: '/v1/jobs?model=cls&limit=1000' })).json().jobs as JobDocument[];
      assert.equal(list.filter((j) => j.id === a.json().id).length, 1);
    });

    test('cancel: a queued job never runs; an active one stops between chunks; a finished one is a 409', async () => {
      const ts2 = await startBackend(backend, { 'jobs.concurrency': 1 });
      try {
        const inj = (opts: InjectOptions): Promise<LightMyRequestResponse> => ts2.server.app.inject(opts);
        const x = (v: number) => ({ x: [v, 0, 0, 0] });
        const first = (
          await inj({
            method: 'POST',
            url: '/v1/models/slow/jobs',
            payload: { instances: [x(1), x(2), x(3), x(4), x(5), x(6)] },
          })
        ).json() as JobDocument;
        const second = (
          await inj({ method: 'POST', url: '/v1/models/slow/jobs', payload: { instances: [x(7)] } })
        ).json() as JobDocument;
        const get = async (id: string) => (await inj({ method: 'GET', url: `/v1/jobs/${id}` })).json() as JobDocument;
        await waitFor('first active', async () => ((await get(first.id)).state === 'active' ? true : undefined));
        // The second waits behind the first (concurrency 1): cancelling it is immediate.
        const c2 = await inj({ method: 'DELETE', url: `/v1/jobs/${second.id}` });
        assert.equal(c2.statusCode, 200, c2.body);
        assert.equal(c2.json().state, 'cancelled');
        // The first is running: it is asked to stop, and stops before its last chunk.
        const c1 = await inj({ method: 'DELETE', url: `/v1/jobs/${first.id}` });
        assert.equal(c1.statusCode, 202, c1.body);
        const stopped = await waitFor('first cancelled', async () => {
          const j = await get(first.id);
          return j.state === 'cancelled' ? j : undefined;
        });
        assert.ok(stopped.progress < 1, `stopped at ${stopped.progress}`);
        assert.equal(stopped.result, null);
        // A job submitted after runs, proving the worker moved on; the cancelled second never ran.
        const third = (
          await inj({ method: 'POST', url: '/v1/models/slow/jobs', payload: { instances: [x(8)] } })
        ).json() as JobDocument;
        const done = await waitFor('third done', async () => {
          const j = await get(third.id);
          return j.state === 'completed' ? j : undefined;
        });
        assert.ok(Math.abs((done.result!.predictions[0] as { value: number }).value - slow.reference(x(8))[0]!) < 1e-4);
        const s = await get(second.id);
        assert.equal(s.state, 'cancelled');
        assert.equal(s.attempts, 0, 'the cancelled queued job never started');
        const again = await inj({ method: 'DELETE', url: `/v1/jobs/${third.id}` });
        assert.equal(again.statusCode, 409);
        assert.equal(again.json().code, 'job-not-cancellable');
      } finally {
        await ts2.close();
      }
    });

    test('list: filters by model and state, newest first, pages with a cursor', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const r = await inject({
          method: 'POST',
          url: '/v1/models/cls/jobs',
          payload: { instances: [{ ...cls.example, items: i }] },
        });
        ids.push(r.json().id);
      }
      for (const id of ids) await until(id, ['completed']);
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const url: string = `/v1/jobs?model=cls&state=completed&limit=2${cursor ? `&cursor=${cursor}` : ''}`;
        const page = (await inject({ method: 'GET', url })).json() as {
          jobs: JobDocument[];
          nextCursor: string | null;
        };
        assert.ok(page.jobs.length <= 2);
        for (const j of page.jobs) {
          assert.equal(j.model, 'cls');
          assert.equal(j.state, 'completed');
          assert.equal(j.result, undefined, 'lists leave results out');
        }
        seen.push(...page.jobs.map((j) => j.id));
        cursor = page.nextCursor;
      } while (cursor);
      assert.equal(new Set(seen).size, seen.length, 'no job on two pages');
      const mine = seen.filter((id) => ids.includes(id));
      assert.deepEqual(mine, [...ids].reverse(), 'newest first, all of them');
      const none = (await inject({ method: 'GET', url: '/v1/jobs?model=slow&state=completed&limit=1000' })).json()
        .jobs as JobDocument[];
      assert.ok(none.every((j) => j.model === 'slow'));
    });

    test('retries with backoff, then failed with the last error; an error that cannot succeed is not retried', async () => {
      // 150 ms per inference against a 30 ms timeout: every run times out (a retryable error).
      const r = await inject({
        method: 'POST',
        url: '/v1/models/slow/jobs',
        payload: { instances: [{ x: [1, 2, 3, 4] }], timeoutMs: 30 },
      });
      assert.equal(r.statusCode, 202, r.body);
      const failed = await until(r.json().id, ['failed', 'completed']);
      assert.equal(failed.state, 'failed');
      assert.equal(failed.attempts, 3, 'jobs.attempts runs');
      assert.equal(failed.error!.code, 'timeout');
      // Backoff 40 ms then 80 ms between the three runs of at least 30 ms each.
      assert.ok(
        Date.parse(failed.finishedAt!) - Date.parse(failed.startedAt!) >= 40 + 80 + 2 * 30,
        'the retries waited',
      );
      // A job whose input no longer fits the model (queued by a server with another contract) fails once.
      const { row } = await ts.server.jobs.store.insert({
        id: crypto.randomUUID(),
        model: 'cls',
        version: '1.0.0',
        input: { instances: [{ amount: 'lots' }], base: '/instances' },
        maxAttempts: 3,
        now: Date.now(),
      });
      await ts.server.jobs.backend.enqueue(row.id);
      const bad = await until(row.id, ['failed', 'completed']);
      assert.equal(bad.state, 'failed');
      assert.equal(bad.attempts, 1, 'invalid input is not retried');
      assert.equal(bad.error!.code, 'invalid-input');
      assert.ok(JSON.stringify(bad.error!.errors).includes('/instances/0/'));
    });

    test('metrics: jobs by result, job duration, queue length', async () => {
      const m = (await inject({ method: 'GET', url: '/metrics' })).body;
      assert.match(m, /ferry_jobs_total\{model="cls",result="submitted"\} \d+/);
      assert.match(m, /ferry_jobs_total\{model="cls",result="completed"\} \d+/);
      assert.match(m, /ferry_jobs_total\{model="slow",result="retried"\} [1-9]/);
      assert.match(m, /ferry_job_duration_seconds_count\{model="cls",state="completed"\} [1-9]/);
      assert.match(m, /ferry_job_queue_length\{state="waiting"\} 0/);
      assert.match(m, /ferry_job_queue_length\{state="active"\} 0/);
    });
  });

  test(`${backend}: close() stops taking jobs and hands an active job back after its grace; the next server finishes it`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-jobs-close-'));
    const shared: Record<string, unknown> = {
      'jobs.queueName': `t-${process.pid}-${randomBytes(4).toString('hex')}`,
      'jobs.concurrency': 1,
      ...(backend === 'sql-postgres'
        ? { 'store.schema': uniqueSchemaName('ferry_jobs') }
        : { 'store.url': `sqlite:${join(dir, 'jobs.db')}` }),
    };
    const x = (v: number) => ({ x: [v, 2, 0, 0] });
    const instances = [1, 2, 3, 4, 5, 6, 7, 8].map(x);
    const first = await startBackend(backend, shared);
    let second: TestServer | undefined;
    try {
      const r = await first.server.app.inject({ method: 'POST', url: '/v1/models/slow/jobs', payload: { instances } });
      assert.equal(r.statusCode, 202, r.body);
      const id = r.json().id as string;
      await waitFor('the job runs', async () => {
        const row = await first.server.jobs.store.get(id);
        return row && row.state === 'active' && Number(row.progress) > 0 ? true : undefined;
      });
      const closing = first.server.jobs.close(200);
      const refused = await first.server.app.inject({
        method: 'POST',
        url: '/v1/models/slow/jobs',
        payload: { instances: [x(1)] },
      });
      assert.equal(refused.statusCode, 503);
      assert.equal(refused.json().code, 'shutting-down');
      await closing;
      const handedBack = (await first.server.jobs.store.get(id))!;
      assert.equal(handedBack.state, 'queued', 'handed back to the queue, not failed');
      assert.equal(Number(handedBack.attempts), 0, 'the interrupted run does not count');
      await first.server.close();
      second = await startBackend(backend, shared);
      const s = second;
      const done = await waitFor('the next server completes it', async () => {
        const j = (await s.server.app.inject({ method: 'GET', url: `/v1/jobs/${id}` })).json() as JobDocument;
        return j.state === 'completed' || j.state === 'failed' ? j : undefined;
      });
      assert.equal(done.state, 'completed', JSON.stringify(done.error));
      assert.equal(done.attempts, 1);
      const ys = done.result!.predictions.map((p) => (p as { value: number }).value);
      assert.deepEqual(
        ys.map((y) => Math.round(y * 1000)),
        instances.map((i) => Math.round(slow.reference(i)[0]! * 1000)),
      );
    } finally {
      if (second) await second.close();
      else await first.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test(`${backend}: finished jobs are removed after jobs.retentionSeconds`, async () => {
    const t = await startBackend(backend, { 'jobs.retentionSeconds': 1, 'jobs.stalledIntervalMs': 300 });
    try {
      const r = await t.server.app.inject({
        method: 'POST',
        url: '/v1/models/cls/jobs',
        payload: { instances: [cls.example] },
      });
      const id = r.json().id as string;
      await waitFor('completed', async () =>
        (await t.server.app.inject({ method: 'GET', url: `/v1/jobs/${id}` })).json().state === 'completed'
          ? true
          : undefined,
      );
      const gone = await waitFor(
        'removed',
        async () => {
          const g = await t.server.app.inject({ method: 'GET', url: `/v1/jobs/${id}` });
          return g.statusCode === 404 ? g : undefined;
        },
        15_000,
      );
      assert.equal(gone.json().code, 'job-not-found');
    } finally {
      await t.close();
    }
  });

  describe(`jobs on the ${backend} queue: events, webhooks, retry to success`, () => {
    let ts: TestServer;
    let receiver: Server;
    let hookUrl = '';
    const received: Array<{ body: string; headers: IncomingMessage['headers'] }> = [];
    let failFirst = true;
    before(async () => {
      receiver = createHttpServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          received.push({ body: Buffer.concat(chunks).toString('utf8'), headers: req.headers });
          // The first delivery fails: the sender must retry.
          if (failFirst) {
            failFirst = false;
            res.writeHead(503).end();
            return;
          }
          res.writeHead(204).end();
        });
      });
      await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
      const port = (receiver.address() as { port: number }).port;
      hookUrl = `http://127.0.0.1:${port}/hooks/`;
      ts = await startBackend(backend, {
        'jobs.concurrency': 1,
        // Progress is coalesced to one event per interval (default 250 ms); the SSE test below counts one
        // event per instance, so the interval stays well under an instance's run on a slow or busy host.
        'jobs.events.minProgressIntervalMs': 50,
        'jobs.webhooks.allow': [hookUrl],
        'jobs.webhooks.secret': 'whsec-test',
        'jobs.webhooks.backoffMs': 50,
        'server.port': 0,
        'server.host': '127.0.0.1',
      });
    });
    after(async () => {
      await ts.close();
      receiver.close();
    });

    test('a callback gets the final document, signed; a failed delivery is retried', async () => {
      const r = await ts.server.app.inject({
        method: 'POST',
        url: '/v1/models/cls/jobs',
        payload: { instances: [cls.example], callbackUrl: `${hookUrl}job?x=1` },
      });
      assert.equal(r.statusCode, 202, r.body);
      const id = r.json().id as string;
      await waitFor('two deliveries', async () => (received.length >= 2 ? true : undefined));
      for (const d of received) {
        assert.ok(verifyWebhook(d.body, d.headers, ['whsec-test']), 'signature verifies');
        assert.ok(!verifyWebhook(d.body, d.headers, ['wrong-secret']));
        // One message id across the retry, so the receiver can drop the duplicate.
        assert.equal(d.headers['webhook-id'], `job_${id}`);
        assert.equal(d.headers['ferry-job-id'], id);
        const doc = JSON.parse(d.body) as JobDocument;
        assert.equal(doc.id, id);
        assert.equal(doc.state, 'completed');
        assert.ok(
          Math.abs(
            (doc.result!.predictions[0] as { scores: { yes: number } }).scores.yes - cls.reference(cls.example)[1]!,
          ) < 1e-5,
        );
      }
      assert.deepEqual(
        received.map((d) => d.headers['ferry-delivery-attempt']),
        ['1', '2'],
      );
      const doc = await waitFor('callback delivered', async () => {
        const j = (await ts.server.app.inject({ method: 'GET', url: `/v1/jobs/${id}` })).json() as JobDocument;
        return j.callback?.state === 'delivered' ? j : undefined;
      });
      assert.equal(doc.callback!.attempts, 2);
      // A URL outside the allow-list (another port) is refused at submission.
      const bad = await ts.server.app.inject({
        method: 'POST',
        url: '/v1/models/cls/jobs',
        payload: { instances: [cls.example], callbackUrl: hookUrl.replace(/:\d+\//, ':1/') },
      });
      assert.equal(bad.statusCode, 400);
      assert.equal(bad.json().code, 'callback-not-allowed');
    });

    test('SSE: queued → active → progress → completed, in order, ending with the document', async () => {
      const { url } = await ts.server.listen();
      const x = (v: number) => ({ x: [v, 1, 1, 1] });
      // The first job holds the only worker slot, so the watched one is seen queued first.
      const blocker = await fetch(`${url}/v1/models/slow/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ instances: [x(0), x(0)] }),
      });
      const watched = await fetch(`${url}/v1/models/slow/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ instances: [x(1), x(2), x(3)] }),
      });
      const id = ((await watched.json()) as JobDocument).id;
      await blocker.arrayBuffer();
      const res = await fetch(`${url}/v1/jobs/${id}/events`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type')!, /text\/event-stream/);
      const text = await res.text(); // the stream ends after the final event
      const events = text
        .split('\n\n')
        .filter((b) => b.includes('event:'))
        .map((b) => ({
          id: Number(/^id: (\d+)$/m.exec(b)![1]),
          event: /^event: (.+)$/m.exec(b)![1]!,
          data: JSON.parse(/^data: (.+)$/m.exec(b)![1]!) as JobDocument,
        }));
      const names = events.map((e) => e.event);
      assert.deepEqual(names, ['queued', 'active', 'progress', 'progress', 'completed'], text);
      assert.ok(
        events.every((e, i) => i === 0 || e.id > events[i - 1]!.id),
        'ids increase',
      );
      assert.deepEqual(
        events.slice(2, 4).map((e) => Math.round(e.data.progress * 3)),
        [1, 2],
      );
      const final = events.at(-1)!.data;
      assert.deepEqual(
        final.result!.predictions.map((p) => Math.round((p as { value: number }).value * 1000) / 1000),
        [x(1), x(2), x(3)].map((i) => Math.round(slow.reference(i)[0]! * 1000) / 1000),
      );
    });

    test('a worker that meets a model still warming up retries the job until it is ready, then completes', async () => {
      // A server that does not wait for its models before taking the job.
      const queue = `t-${process.pid}-${randomBytes(4).toString('hex')}`;
      const schema = backend === 'sql-postgres' ? uniqueSchemaName('ferry_jobs') : undefined;
      const s = await startTestServer(
        MODELS,
        {
          ...(schema !== undefined && { 'store.url': TEST_DATABASE_URL, 'store.schema': schema }),
          'jobs.attempts': 12,
          'jobs.backoffBaseMs': 40,
          'jobs.pollIntervalMs': 20,
          'runtime.warmupRuns': 10,
          'jobs.queueName': queue,
          'jobs.prefix': 'ferry-test',
          // The server would start its workers once the models are warm; this test starts them at once.
          'jobs.workers': false,
          ...(backend === 'bullmq' && { 'redis.url': REDIS_URL }),
        },
        { wait: false },
      );
      try {
        const r = await s.server.app.inject({
          method: 'POST',
          url: '/v1/models/slow/jobs',
          payload: { instances: [{ x: [1, 1, 1, 1] }] },
        });
        assert.equal(r.statusCode, 202, r.body);
        assert.equal(s.server.service.ready(), false, 'submitted while the model warms up');
        s.server.jobs.startWorkers();
        const done = await waitFor(
          'late job',
          async () => {
            const j = (
              await s.server.app.inject({ method: 'GET', url: `/v1/jobs/${r.json().id}` })
            ).json() as JobDocument;
            return ['completed', 'failed'].includes(j.state) ? j : undefined;
          },
          60_000,
        );
        assert.equal(done.state, 'completed', JSON.stringify(done.error));
        assert.ok(done.attempts > 1, `attempts ${done.attempts}: the first run met a model still warming up`);
        assert.equal(done.error, null, 'a completed job carries no error');
      } finally {
        await s.close();
        if (schema !== undefined) await withAdminClient((c) => c.query(`drop schema if exists "${schema}" cascade`));
        if (backend === 'bullmq') {
          const { Queue } = await import('bullmq');
          const q = new Queue(queue, { connection: { url: REDIS_URL }, prefix: 'ferry-test' });
          await q.obliterate({ force: true }).catch(() => undefined);
          await q.close();
        }
      }
    });
  });
}
