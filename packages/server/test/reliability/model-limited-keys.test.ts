// Reliability (issue 24, item 3): a key with scope `jobs` (and `pipelines:read`, `predict`) limited
// to one model must not reach another model's data on any route that names or returns it: jobs
// (list, read, events, cancel), a pipeline's stored predictions, the traffic time series, and the
// model names a 404 lists.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, tinyClassifier, tinyLinearModel, withTestAdminKey, type TestServer } from '@ferry/test-kit';
import { hashKey } from '../auth/keys.js';

const cls = tinyClassifier();
const lin = tinyLinearModel();
const LIMITED = 'limited-key-0123456789abcdef';
const limited = { authorization: `Bearer ${LIMITED}` };

describe('a key limited to one model', () => {
  let ts: TestServer;
  let otherJob: string;
  let ownJob: string;
  before(async () => {
    ts = await startTestServer(
      [
        { name: 'spam', version: '1.0.0', files: { onnx: lin.onnx, manifest: lin.manifest } },
        { name: 'flight', version: '1.0.0', files: { onnx: cls.onnx, manifest: cls.manifest } },
      ],
      {
        ...withTestAdminKey([
          {
            id: 'spam-only',
            sha256: hashKey(LIMITED),
            scopes: ['jobs', 'predict', 'pipelines:read'],
            models: ['spam'],
            rateLimitMax: 0,
          },
        ]),
        // No workers: jobs stay queued (an active one is what the report cancelled; queued is refused the same way).
        'jobs.workers': false,
        pipelines: {
          'flight-scores': { source: { kind: 'jsonl', path: '/nonexistent.jsonl' }, model: 'flight@1', key: 'id' },
          'spam-scores': { source: { kind: 'jsonl', path: '/nonexistent.jsonl' }, model: 'spam@1', key: 'id' },
        },
      },
    );
    const admin = { authorization: 'Bearer test-admin-key-0123456789abcdef' };
    const a = await ts.server.app.inject({
      method: 'POST',
      url: '/v1/models/flight/jobs',
      headers: admin,
      payload: { instances: [cls.example] },
    });
    assert.equal(a.statusCode, 202, a.body);
    otherJob = a.json<{ id: string }>().id;
    const b = await ts.server.app.inject({
      method: 'POST',
      url: '/v1/models/spam/jobs',
      headers: limited,
      payload: { instances: [lin.example] },
    });
    assert.equal(b.statusCode, 202, b.body);
    ownJob = b.json<{ id: string }>().id;
  });
  after(() => ts.close());

  const get = (url: string, method: 'GET' | 'DELETE' = 'GET') =>
    ts.server.app.inject({ method, url, headers: limited });

  test('cannot list another model’s jobs, and an unfiltered list shows only its own', async () => {
    assert.equal((await get('/v1/jobs?model=flight')).statusCode, 403);
    const all = (await get('/v1/jobs')).json<{ jobs: Array<{ id: string; model: string }> }>();
    assert.deepEqual(
      all.jobs.map((j) => j.id),
      [ownJob],
    );
  });

  test('cannot read, watch or cancel another model’s job (404: it does not exist for this key)', async () => {
    assert.equal((await get(`/v1/jobs/${otherJob}`)).statusCode, 404);
    assert.equal((await get(`/v1/jobs/${otherJob}/events`)).statusCode, 404);
    assert.equal((await get(`/v1/jobs/${otherJob}`, 'DELETE')).statusCode, 404);
    // Still queued: the refused cancel changed nothing.
    const doc = await ts.server.app.inject({
      method: 'GET',
      url: `/v1/jobs/${otherJob}`,
      headers: { authorization: 'Bearer test-admin-key-0123456789abcdef' },
    });
    assert.equal(doc.json().state, 'queued');
    // Its own job is readable.
    assert.equal((await get(`/v1/jobs/${ownJob}`)).statusCode, 200);
  });

  test('cannot read another model’s pipeline predictions, nor see the pipeline listed', async () => {
    const r = await get('/v1/pipelines/flight-scores/predictions/1');
    assert.equal(r.statusCode, 404);
    assert.equal(r.json().code, 'pipeline-not-found');
    assert.deepEqual(r.json().available, ['spam-scores']);
    const own = await get('/v1/pipelines/spam-scores/predictions/1');
    assert.equal(own.json().code, 'pipeline-prediction-not-found');
    const list = (await get('/v1/pipelines')).json<{ pipelines: Array<{ name: string }> }>();
    assert.deepEqual(
      list.pipelines.map((p) => p.name),
      ['spam-scores'],
    );
    const bulk = await ts.server.app.inject({
      method: 'POST',
      url: '/v1/pipelines/flight-scores/predictions:batchGet',
      headers: limited,
      payload: { keys: ['1'] },
    });
    assert.equal(bulk.statusCode, 404);
  });

  test('traffic time series: only its own model', async () => {
    assert.equal((await get('/v1/metrics/timeseries?model=flight')).statusCode, 403);
    assert.equal((await get('/v1/metrics/timeseries')).statusCode, 403);
    const own = await get('/v1/metrics/timeseries?model=spam');
    assert.equal(own.statusCode, 200);
    assert.ok(own.json<{ models: string[] }>().models.every((m) => m === 'spam'));
  });

  test('an unknown model name does not list the other models', async () => {
    for (const url of ['/v1/metrics/timeseries?model=nope', '/v1/jobs?model=nope', '/v1/pipelines/nope/runs']) {
      const r = await get(url);
      assert.ok(r.statusCode === 403 || r.statusCode === 404, `${url}: ${r.statusCode}`);
      assert.ok(!r.body.includes('flight'), `${url} names another model: ${r.body}`);
    }
  });
});
