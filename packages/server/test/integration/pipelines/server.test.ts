// Pipelines inside the server: the cron scheduler triggers runs (one at a time, overlaps skipped),
// results are served from the store by the read routes, metrics are exported, and a bad `pipelines:`
// section stops the server at start with an error naming the setting.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { InjectOptions } from 'fastify';
import { loadConfig } from '../../config/index.js';
import { createServer } from '../../app/create-server.js';
import {
  startTestServer,
  type TestServer,
  tinyClassifier,
  expectedYes,
  fixtureRows,
  workspace,
  writeJsonl,
  type Workspace,
  adminHeaders,
  testAdminKey,
} from '@ferry/test-kit';
import { hashKey } from '../../auth/keys.js';

const ROWS = fixtureRows(40);
let ws: Workspace;
before(async () => {
  ws = await workspace();
  writeJsonl(join(ws.dir, 'rows.jsonl'), [...ROWS, { id: 'bad', amount: -1, items: 1, member: true, color: 'red' }]);
});
after(() => ws.remove());

const model = () => ({
  name: 'cls',
  version: '1.0.0',
  files: { onnx: tinyClassifier().onnx, manifest: tinyClassifier().manifest },
});
const pipeline = (extra: Record<string, unknown> = {}) => ({
  source: { kind: 'jsonl', path: join(ws.dir, 'rows.jsonl') },
  model: 'cls@1',
  key: 'id',
  chunkRows: 8,
  ...extra,
});

describe('pipeline scheduler', () => {
  let ts: TestServer;
  before(async () => {
    ts = await startTestServer([model()], { pipelines: { nightly: pipeline({ schedule: '* * * * * *' }) } });
  });
  after(async () => {
    await ts?.close();
  });

  test('a cron schedule triggers runs in the server, and an overlapping trigger is skipped', async () => {
    let runs: Array<{ status: string; trigger: string; rowsScored: number; rowsRejected: number }> = [];
    for (let i = 0; i < 300 && !runs.some((r) => r.status === 'completed'); i++) {
      await new Promise((r) => setTimeout(r, 100));
      runs = (await ts.server.app.inject({ url: '/v1/pipelines/nightly/runs' })).json<{ runs: typeof runs }>().runs;
    }
    const done = runs.find((r) => r.status === 'completed');
    assert.ok(done, `no scheduled run completed: ${JSON.stringify(runs)}`);
    assert.equal(done.trigger, 'schedule');
    assert.equal(done.rowsScored, 40);
    assert.equal(done.rowsRejected, 1);

    const sched = ts.server.pipelines.scheduler;
    const skippedBefore = sched.skipped.get('nightly') ?? 0;
    const first = sched.trigger('nightly');
    const second = sched.trigger('nightly');
    assert.deepEqual(second, { started: false, reason: 'running' });
    assert.ok((sched.skipped.get('nightly') ?? 0) > skippedBefore);
    if (first.started) assert.equal((await first.run).status, 'completed');
  });
});

describe('pipeline read routes', () => {
  let ts: TestServer;
  let runId: string;
  before(async () => {
    ts = await startTestServer([model()], {
      pipelines: {
        accounts: pipeline({ description: 'test accounts' }),
        files: pipeline({ sink: { kind: 'csv', dir: join(ws.dir, 'out') } }),
      },
    });
    const started = ts.server.pipelines.scheduler.trigger('accounts');
    assert.ok(started.started);
    runId = (await started.run).runId;
  });
  after(async () => {
    await ts?.close();
  });
  const inject = (opts: InjectOptions) => ts.server.app.inject(opts);

  test('GET /v1/pipelines lists pipelines with their last run', async () => {
    const res = await inject({ url: '/v1/pipelines' });
    assert.equal(res.statusCode, 200);
    const body = res.json<{
      pipelines: Array<{
        name: string;
        description?: string;
        sink: string;
        lastRun: { runId: string; status: string; rowsScored: number } | null;
        lastCompletedRun: { runId: string } | null;
      }>;
    }>();
    const a = body.pipelines.find((p) => p.name === 'accounts')!;
    assert.equal(a.description, 'test accounts');
    assert.equal(a.lastRun!.runId, runId);
    assert.equal(a.lastRun!.rowsScored, 40);
    assert.equal(a.lastCompletedRun!.runId, runId);
    const f = body.pipelines.find((p) => p.name === 'files')!;
    assert.equal(f.sink, 'csv');
    assert.equal(f.lastRun, null);
  });

  test('GET /v1/pipelines/{name}/predictions/{key} answers from the latest completed run', async () => {
    const res = await inject({ url: '/v1/pipelines/accounts/predictions/r7' });
    assert.equal(res.statusCode, 200);
    const body = res.json<{
      key: string;
      runId: string;
      model: string;
      version: string;
      scoredAt: string;
      prediction: { label: string; scores: { yes: number } };
    }>();
    assert.equal(body.key, 'r7');
    assert.equal(body.runId, runId);
    assert.equal(body.version, '1.0.0');
    assert.ok(Math.abs(body.prediction.scores.yes - expectedYes(ROWS[7]!)) < 1e-5);
    assert.ok(Date.parse(body.scoredAt) > 0);
  });

  test('unknown keys and pipelines are 404 problem+json; file-sink pipelines are 409', async () => {
    for (const [url, code, status] of [
      ['/v1/pipelines/accounts/predictions/nope', 'pipeline-prediction-not-found', 404],
      ['/v1/pipelines/accounts/predictions/bad', 'pipeline-prediction-not-found', 404], // a rejected row has no prediction
      ['/v1/pipelines/nope/predictions/r1', 'pipeline-not-found', 404],
      ['/v1/pipelines/__proto__/runs', 'pipeline-not-found', 404],
      ['/v1/pipelines/constructor/predictions/r1', 'pipeline-not-found', 404],
      ['/v1/pipelines/files/predictions/r1', 'pipeline-results-not-served', 409],
      [`/v1/pipelines/accounts/predictions/${'k'.repeat(190)}`, 'pipeline-prediction-not-found', 404],
      ['/v1/pipelines/accounts/runs?limit=abc', 'invalid-request', 400],
      ['/v1/pipelines/accounts/runs?limit=100000', 'invalid-request', 400],
    ] as const) {
      const res = await inject({ url });
      assert.equal(res.statusCode, status, `${url}: ${res.body}`);
      assert.match(String(res.headers['content-type']), /application\/problem\+json/);
      assert.equal(res.json<{ code: string }>().code, code, url);
    }
  });

  test('POST predictions:batchGet returns each key in order, found or not', async () => {
    const res = await inject({
      method: 'POST',
      url: '/v1/pipelines/accounts/predictions:batchGet',
      payload: { keys: ['r1', 'missing', 'r39', 'r1'] },
    });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json<{
      runId: string;
      predictions: Array<{ key: string; found: boolean; prediction?: { scores: { yes: number } } }>;
    }>();
    assert.equal(body.runId, runId);
    assert.deepEqual(
      body.predictions.map((p) => [p.key, p.found]),
      [
        ['r1', true],
        ['missing', false],
        ['r39', true],
        ['r1', true],
      ],
    );
    assert.ok(Math.abs(body.predictions[2]!.prediction!.scores.yes - expectedYes(ROWS[39]!)) < 1e-5);
  });

  test('hostile batchGet bodies are 400s naming the field', async () => {
    for (const [payload, pointer] of [
      [{}, '/keys'],
      [{ keys: 'r1' }, '/keys'],
      [{ keys: [] }, '/keys'],
      [{ keys: ['r1', 7] }, '/keys/1'],
      [{ keys: ['r1', ''] }, '/keys/1'],
      [{ keys: ['x'.repeat(1001)] }, '/keys/0'],
      [{ keys: Array.from({ length: 1001 }, (_, i) => `r${i}`) }, '/keys'],
      [[1, 2], '/'],
    ] as const) {
      const res = await inject({
        method: 'POST',
        url: '/v1/pipelines/accounts/predictions:batchGet',
        payload: payload as object,
      });
      assert.equal(res.statusCode, 400, `${JSON.stringify(payload).slice(0, 80)}: ${res.body}`);
      const problem = res.json<{ code: string; errors: Array<{ pointer: string }> }>();
      assert.equal(problem.code, 'invalid-request');
      assert.equal(problem.errors[0]!.pointer, pointer);
    }
    const notJson = await inject({
      method: 'POST',
      url: '/v1/pipelines/accounts/predictions:batchGet',
      headers: { 'content-type': 'application/json' },
      payload: '{"keys": [',
    });
    assert.equal(notJson.statusCode, 400);
  });

  test('metrics: rows by result, run duration and last success per pipeline', async () => {
    const text = (await inject({ url: '/metrics' })).body;
    assert.match(text, /ferry_pipeline_rows_total\{pipeline="accounts",result="scored"\} 40/);
    assert.match(text, /ferry_pipeline_rows_total\{pipeline="accounts",result="rejected"\} 1/);
    assert.match(text, /ferry_pipeline_run_duration_seconds_count\{pipeline="accounts",status="completed"\} 1/);
    const m = /ferry_pipeline_last_success_timestamp_seconds\{pipeline="accounts"\} ([\d.e+]+)/.exec(text);
    assert.ok(
      m,
      text
        .split('\n')
        .filter((l) => l.includes('pipeline'))
        .join('\n'),
    );
    assert.ok(Math.abs(Number(m[1]) - Date.now() / 1000) < 600);
  });
});

describe('pipeline config checks at start', () => {
  for (const [label, p, message] of [
    ['a bad cron', { schedule: 'every night' }, /pipelines\.bad\.schedule/],
    ['an unknown model', { model: 'nope@1' }, /pipelines\.bad\.model: model "nope" does not exist/],
    ['an unknown feature', { select: ['colour'] }, /pipelines\.bad\.select\/0: "colour" is not a feature/],
    ['a bad transform', { select: [{ feature: 'amount', transform: 'weekday' }] }, /pipelines\/bad\/select/],
    ['a non-SELECT query', { source: { kind: 'sql', query: 'drop table x' } }, /pipelines\.bad\.source\.query/],
    ['a bad chunkRows', { chunkRows: 0 }, /pipelines\/bad\/chunkRows/],
    ['an unknown key', { chunkrows: 10 }, /pipelines\/bad/],
  ] as const) {
    test(`${label} is refused with the setting named`, async () => {
      await assert.rejects(async () => {
        const cfg = loadConfig({
          env: {},
          overrides: {
            'models.dir': ws.repoDir,
            'store.url': 'sqlite::memory:',
            'log.level': 'silent',
            pipelines: { bad: { ...pipeline(), ...p } },
          },
        });
        const s = await createServer(cfg, { logger: false });
        await s.close();
      }, message);
    });
  }
});

describe('POST /v1/pipelines/{name}/runs: a run queued as shard jobs (admin)', () => {
  let ts: TestServer;
  const predictKey = 'pipelines-predict-only-0123456789';
  before(async () => {
    ts = await startTestServer([model()], {
      pipelines: { accounts: pipeline() },
      'auth.keys': [
        testAdminKey,
        { id: 'p', sha256: hashKey(predictKey), scopes: ['predict', 'pipelines:read'], models: [], rateLimitMax: 0 },
      ],
      'jobs.pollIntervalMs': 20,
    });
  });
  after(async () => {
    await ts?.close();
  });
  const post = (name: string, body: unknown, headers: Record<string, string> = adminHeaders) =>
    ts.server.app.inject({
      method: 'POST',
      url: `/v1/pipelines/${name}/runs`,
      headers,
      payload: body as Record<string, unknown>,
    });

  test('the in-process workers score every shard; the run is served; the same runId again queues nothing', async () => {
    const res = await post('accounts', { shards: 3, runId: 'api-run-1' });
    assert.equal(res.statusCode, 202, res.body);
    assert.equal(res.headers.location, '/v1/pipelines/accounts/runs');
    const q = res.json<{ runId: string; shards: number; jobs: string[]; created: number; queue: string }>();
    assert.deepEqual([q.runId, q.shards, q.jobs.length, q.created, q.queue], ['api-run-1', 3, 3, 3, 'sql']);
    let run:
      | {
          runId: string;
          status: string;
          shards: number;
          shardsCompleted: number;
          rowsScored: number;
          rowsRejected: number;
          trigger: string;
        }
      | undefined;
    for (let i = 0; i < 600 && run?.status !== 'completed'; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const runs = (await ts.server.app.inject({ url: '/v1/pipelines/accounts/runs', headers: adminHeaders })).json<{
        runs: Array<NonNullable<typeof run>>;
      }>().runs;
      run = runs.find((r) => r.runId === 'api-run-1');
    }
    assert.equal(run?.status, 'completed', JSON.stringify(run));
    assert.deepEqual(
      [run.shards, run.shardsCompleted, run.rowsScored, run.rowsRejected, run.trigger],
      [3, 3, 40, 1, 'queue'],
    );
    for (const i of [0, 7, 39]) {
      const p = (
        await ts.server.app.inject({ url: `/v1/pipelines/accounts/predictions/r${i}`, headers: adminHeaders })
      ).json<{ runId: string; prediction: { scores: { yes: number } } }>();
      assert.equal(p.runId, 'api-run-1');
      assert.ok(Math.abs(p.prediction.scores.yes - expectedYes(ROWS[i]!)) < 1e-5, `r${i}`);
    }
    const again = await post('accounts', { shards: 3, runId: 'api-run-1' });
    assert.equal(again.statusCode, 202);
    assert.deepEqual(again.json<{ jobs: string[]; created: number }>(), { ...again.json(), jobs: q.jobs, created: 0 });
  });

  test('hostile bodies are 400 naming the field; unknown pipelines 404; a non-admin key 403, no key 401', async () => {
    for (const [body, pointer] of [
      [{ shards: 0 }, '/shards'],
      [{ shards: 1001 }, '/shards'],
      [{ shards: '2' }, '/shards'],
      [{ shards: 1.5 }, '/shards'],
      [{ runId: '../etc' }, '/runId'],
      [{ runId: '' }, '/runId'],
      [{ runId: 'x'.repeat(200) }, '/runId'],
      [{ runId: 7 }, '/runId'],
      [{ shard: 2 }, '/shard'],
      [[1, 2], '/'],
    ] as const) {
      const res = await post('accounts', body);
      assert.equal(res.statusCode, 400, `${JSON.stringify(body)}: ${res.body}`);
      assert.match(String(res.headers['content-type']), /application\/problem\+json/);
      assert.equal(
        res.json<{ errors: Array<{ pointer: string }> }>().errors[0]!.pointer,
        pointer,
        JSON.stringify(body),
      );
    }
    assert.equal((await post('nope', {})).json<{ code: string }>().code, 'pipeline-not-found');
    assert.equal((await post('__proto__', {})).statusCode, 404);
    assert.equal((await post('accounts', {}, { authorization: `Bearer ${predictKey}` })).statusCode, 403);
    assert.equal((await post('accounts', {}, {})).statusCode, 401);
  });
});
