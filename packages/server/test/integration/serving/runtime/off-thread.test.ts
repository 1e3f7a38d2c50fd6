// Inference runs in worker threads: while a slow model is mid-inference, the HTTP thread keeps
// answering. Asserted by order of events, not by timing thresholds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, slowModel } from '@ferry/test-kit';

test('/healthz and /readyz answer while a slow model is mid-inference', async () => {
  const slow = slowModel(300);
  const t = await startTestServer([{ name: 'slow', version: '1.0.0', files: slow }], {
    'server.port': 0,
    'server.host': '127.0.0.1',
    'runtime.workers': 1,
  });
  try {
    const { url } = await t.server.listen();
    let predictDone = false;
    const predict = fetch(`${url}/v1/models/slow/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ instances: [slow.example] }),
    }).then(async (r) => {
      predictDone = true;
      return { status: r.status, body: (await r.json()) as { predictions: Array<{ value: number }> } };
    });
    while (t.server.service.pool.inFlight() === 0) await new Promise((r) => setImmediate(r));
    const answered: number[] = [];
    for (let i = 0; i < 5; i++) {
      const h = await fetch(`${url}/healthz`);
      assert.equal(h.status, 200);
      answered.push(i);
      assert.equal(predictDone, false, `health check ${i} answered only after the inference finished`);
    }
    assert.equal((await fetch(`${url}/readyz`)).status, 200);
    assert.equal(predictDone, false);
    assert.equal(t.server.service.pool.inFlight(), 1, 'the inference is still running in its worker');
    const r = await predict;
    assert.equal(r.status, 200);
    assert.ok(Math.abs(r.body.predictions[0].value - slow.reference(slow.example)[0]!) < 1e-5);
    assert.deepEqual(answered, [0, 1, 2, 3, 4]);
  } finally {
    await t.close();
  }
});

test('readiness stays false until models are loaded and warmed', async () => {
  const slow = slowModel(300);
  const t = await startTestServer(
    [{ name: 'slow', version: '1.0.0', files: slow }],
    { 'runtime.workers': 1, 'runtime.warmupRuns': 2 },
    { wait: false },
  );
  try {
    const before = await t.server.app.inject({ url: '/readyz' });
    assert.equal(before.statusCode, 503);
    assert.equal(before.json().models[0].state, 'loading');
    assert.equal((await t.server.app.inject({ url: '/v2/health/ready' })).statusCode, 503);
    assert.equal((await t.server.app.inject({ url: '/healthz' })).statusCode, 200, 'live while loading');
    const early = await t.server.app.inject({
      method: 'POST',
      url: '/v1/models/slow/predict',
      payload: { instances: [slow.example] },
    });
    assert.equal(early.statusCode, 503);
    assert.equal(early.json().code, 'model-not-ready');
    assert.equal(early.headers['retry-after'], '1');
    await t.server.loaded;
    assert.equal((await t.server.app.inject({ url: '/readyz' })).statusCode, 200);
    const metrics = (await t.server.app.inject({ url: '/metrics' })).body;
    const warm = /ferry_model_load_seconds\{model="slow",version="1\.0\.0",phase="warmup"\} ([0-9.e-]+)/.exec(metrics);
    assert.ok(warm && Number(warm[1]) > 0, 'warm-up time is reported and covers real inferences');
  } finally {
    await t.close();
  }
});
