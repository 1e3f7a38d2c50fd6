// The serving core against real models: dynamic batching, per-request errors inside a batch,
// bounded queues, timeouts with every fallback policy, the circuit breaker, and single flight.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { InjectOptions } from 'fastify';
import {
  startTestServer,
  slowModel,
  oneThreadMatMulMsHere,
  tinyLinearModel,
  fastTwinOfSlow,
  lookupModel,
} from '@ferry/test-kit';

const lin = tinyLinearModel();
const lookup = lookupModel();
const post = (url: string, payload: unknown, headers: Record<string, string> = {}): InjectOptions => ({
  method: 'POST',
  url,
  payload: payload as object,
  headers,
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A slow model taking about `targetMs` a run here with one intra-op thread, as Ferry runs it. */
const slowModelTaking = (targetMs: number) => slowModel(targetMs, oneThreadMatMulMsHere());

function metric(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('dynamic batching', () => {
  test('concurrent requests of mixed sizes are batched, and each gets its own rows back', async () => {
    const t = await startTestServer(
      [
        {
          name: 'lin',
          version: '1.0.0',
          files: { ...lin, manifest: { ...lin.manifest, batching: { maxBatchSize: 16, maxQueueDelayUs: 20_000 } } },
        },
      ],
      { 'runtime.workers': 1 },
    );
    try {
      const requests = Array.from({ length: 12 }, (_, r) =>
        Array.from({ length: (r % 4) + 1 }, (_, k) => ({ x: Array.from({ length: 8 }, (_, c) => r * 10 + k + c / 8) })),
      );
      const replies = await Promise.all(
        requests.map((instances) => t.server.app.inject(post('/v1/models/lin/predict', { instances }))),
      );
      replies.forEach((r, i) => {
        assert.equal(r.statusCode, 200, r.body);
        const preds = r.json().predictions as Array<{ value: number }>;
        assert.equal(preds.length, requests[i]!.length);
        preds.forEach((p, k) =>
          assert.ok(Math.abs(p.value - lin.reference(requests[i]![k]!)[0]!) < 1e-4, `request ${i} row ${k}`),
        );
      });
      const metrics = (await t.server.app.inject({ url: '/metrics' })).body;
      const batches = metric(metrics, 'ferry_batch_size_count', 'model="lin"');
      const rows = metric(metrics, 'ferry_batch_size_sum', 'model="lin"');
      assert.equal(rows, 30, 'every row ran exactly once (warm-up bypasses the batcher)');
      assert.ok(batches < 12, `12 requests ran in ${batches} batches`);
      assert.ok(
        metric(metrics, 'ferry_batch_size_bucket', 'le="1",model="lin"') < batches,
        'some batches held more than one row',
      );
    } finally {
      await t.close();
    }
  });

  test('an inference error inside a batch fails only the request that caused it', async () => {
    const t = await startTestServer(
      [
        {
          name: 'lookup',
          version: '1.0.0',
          files: {
            ...lookup,
            manifest: { ...lookup.manifest, batching: { maxBatchSize: 32, maxQueueDelayUs: 20_000 } },
          },
        },
      ],
      { 'runtime.workers': 1, 'inference.breakerFailures': 100 },
    );
    try {
      const ids = [1, 2, 99, 4, 5];
      const replies = await Promise.all(
        ids.map((id) => t.server.app.inject(post('/v1/models/lookup/predict', { instances: [{ id: [id] }] }))),
      );
      replies.forEach((r, i) => {
        if (ids[i] === 99) {
          assert.equal(r.statusCode, 500, r.body);
          assert.equal(r.json().code, 'inference-failed');
          assert.equal(r.headers['content-type'], 'application/problem+json; charset=utf-8');
        } else {
          assert.equal(r.statusCode, 200, r.body);
          assert.deepEqual(r.json().predictions[0].y, lookup.reference({ id: [ids[i]!] }));
        }
      });
    } finally {
      await t.close();
    }
  });

  test('models without a batch dimension are never batched', async () => {
    const m = {
      ...lin,
      manifest: {
        ...lin.manifest,
        inputs: [{ name: 'x', type: 'tensor', dtype: 'float32', shape: [2, 8] }],
        batching: { maxBatchSize: 8, maxQueueDelayUs: 10_000 },
      },
    };
    const t = await startTestServer([{ name: 'fixed', version: '1.0.0', files: m }], { 'runtime.workers': 1 });
    try {
      const x = [lin.example.x, lin.example.x.map((v) => -v)];
      const replies = await Promise.all(
        [0, 1, 2].map(() => t.server.app.inject(post('/v1/models/fixed/predict', { instances: [{ x }] }))),
      );
      for (const r of replies) assert.equal(r.statusCode, 200, r.body);
      const metrics = (await t.server.app.inject({ url: '/metrics' })).body;
      assert.equal(metric(metrics, 'ferry_batch_size_count', 'model="fixed"'), 3);
      assert.equal(metric(metrics, 'ferry_batch_size_sum', 'model="fixed"'), 3);
    } finally {
      await t.close();
    }
  });
});

describe('load shedding', () => {
  test('past the queue bound the server answers 503 with Retry-After at once; accepted requests still finish', async () => {
    const slow = slowModel(150);
    const t = await startTestServer(
      [
        {
          name: 'slow',
          version: '1.0.0',
          files: { ...slow, manifest: { ...slow.manifest, batching: { enabled: false, maxQueueDepth: 2 } } },
        },
      ],
      { 'runtime.workers': 1 },
    );
    try {
      const replies = await Promise.all(
        Array.from({ length: 6 }, () =>
          t.server.app.inject(post('/v1/models/slow/predict', { instances: [slow.example] })),
        ),
      );
      const codes = replies.map((r) => r.statusCode).sort();
      assert.deepEqual(codes, [200, 200, 200, 503, 503, 503], 'one running, two queued, three shed');
      for (const r of replies.filter((x) => x.statusCode === 503)) {
        assert.equal(r.json().code, 'server-overloaded');
        assert.equal(r.headers['retry-after'], '1');
        assert.equal(r.json().limit, 2);
      }
      for (const r of replies.filter((x) => x.statusCode === 200))
        assert.ok(Math.abs(r.json().predictions[0].value - slow.reference(slow.example)[0]!) < 1e-4);
      const metrics = (await t.server.app.inject({ url: '/metrics' })).body;
      assert.equal(metric(metrics, 'ferry_shed_requests_total', 'model="slow"'), 3);
    } finally {
      await t.close();
    }
  });
});

describe('timeouts and fallbacks', () => {
  const slow = slowModel(150);
  const withFallback = (fallback: object, extra: object = {}) => ({
    ...slow,
    manifest: { ...slow.manifest, timeoutMs: 5000, fallback, ...extra },
  });

  test('static: a timeout answers the declared prediction, flagged in body, header and metrics', async () => {
    const t = await startTestServer(
      [{ name: 'slow', version: '1.0.0', files: withFallback({ policy: 'static', value: { value: -1 } }) }],
      { 'runtime.workers': 1 },
    );
    try {
      const r = await t.server.app.inject(
        post('/v1/models/slow/predict', { instances: [slow.example, slow.example] }, { 'ferry-timeout-ms': '20' }),
      );
      assert.equal(r.statusCode, 200, r.body);
      assert.deepEqual(r.json().predictions, [{ value: -1 }, { value: -1 }]);
      assert.deepEqual(r.json().fallback, { reason: 'timeout', policy: 'static' });
      assert.equal(r.headers['ferry-fallback'], 'timeout');
      const metrics = (await t.server.app.inject({ url: '/metrics' })).body;
      assert.equal(metric(metrics, 'ferry_fallbacks_total', 'reason="timeout",policy="static"'), 1);
      // Without the header the model's own timeout (5 s) applies and the real answer comes back.
      const ok = await t.server.app.inject(post('/v1/models/slow/predict', { instances: [slow.example] }));
      assert.equal(ok.json().fallback, undefined);
      assert.ok(Math.abs(ok.json().predictions[0].value - slow.reference(slow.example)[0]!) < 1e-4);
      // A header above the model's cap is capped, not honoured; a malformed one is a 400.
      const bad = await t.server.app.inject(
        post('/v1/models/slow/predict', { instances: [slow.example] }, { 'ferry-timeout-ms': 'soon' }),
      );
      assert.equal(bad.statusCode, 400);
      assert.match(bad.json().detail, /Ferry-Timeout-Ms/);
    } finally {
      await t.close();
    }
  });

  test('version: a timeout is answered by another version of the same model', async () => {
    const fast = fastTwinOfSlow();
    const t = await startTestServer(
      [
        { name: 'm', version: '1.1.0', files: withFallback({ policy: 'version', version: '1.0.0' }) },
        { name: 'm', version: '1.0.0', files: fast },
      ],
      { 'runtime.workers': 2 },
    ); // the fallback version runs on the worker the slow one is not blocking
    try {
      const r = await t.server.app.inject(
        post('/v1/models/m/predict', { instances: [slow.example] }, { 'ferry-timeout-ms': '20' }),
      );
      assert.equal(r.statusCode, 200, r.body);
      assert.equal(r.json().version, '1.0.0');
      assert.equal(r.headers['ferry-model-version'], '1.0.0');
      assert.deepEqual(r.json().fallback, { reason: 'timeout', policy: 'version', version: '1.0.0' });
      assert.ok(Math.abs(r.json().predictions[0].value - fast.reference(slow.example)[0]!) < 1e-4);
    } finally {
      await t.close();
    }
  });

  test('stale-cache: a timeout is answered by the last cached prediction for that input', async () => {
    const t = await startTestServer(
      [
        {
          name: 'slow',
          version: '1.0.0',
          files: withFallback({ policy: 'stale-cache' }, { cache: { enabled: true, ttlSeconds: 1 } }),
        },
      ],
      { 'runtime.workers': 1 },
    );
    try {
      const first = await t.server.app.inject(post('/v1/models/slow/predict', { instances: [slow.example] }));
      assert.equal(first.headers['ferry-cache'], 'miss');
      await sleep(1100); // let the entry expire: it is no longer a hit, but still there for the fallback
      const r = await t.server.app.inject(
        post('/v1/models/slow/predict', { instances: [slow.example] }, { 'ferry-timeout-ms': '20' }),
      );
      assert.equal(r.statusCode, 200, r.body);
      assert.deepEqual(r.json().fallback, { reason: 'timeout', policy: 'stale-cache' });
      assert.deepEqual(r.json().predictions, first.json().predictions);
      const unseen = await t.server.app.inject(
        post('/v1/models/slow/predict', { instances: [{ x: [9, 9, 9, 9] }] }, { 'ferry-timeout-ms': '20' }),
      );
      assert.equal(unseen.statusCode, 504, 'nothing cached for this input: the timeout stands');
      assert.equal(unseen.json().code, 'timeout');
    } finally {
      await t.close();
    }
  });

  test('none: a timeout is a 504 problem', async () => {
    const t = await startTestServer([{ name: 'slow', version: '1.0.0', files: withFallback({ policy: 'none' }) }], {
      'runtime.workers': 1,
    });
    try {
      const r = await t.server.app.inject(
        post('/v1/models/slow/predict', { instances: [slow.example] }, { 'ferry-timeout-ms': '20' }),
      );
      assert.equal(r.statusCode, 504);
      assert.equal(r.json().code, 'timeout');
      assert.equal(r.headers['content-type'], 'application/problem+json; charset=utf-8');
    } finally {
      await t.close();
    }
  });
});

describe('circuit breaker', () => {
  test('opens after consecutive failures, half-opens after the cool-down, closes on success; other models are untouched', async () => {
    const m = {
      ...lookup,
      manifest: {
        ...lookup.manifest,
        fallback: { policy: 'static', value: { y: [0, 0] }, breaker: { failures: 2, coolDownMs: 300 } },
      },
    };
    const t = await startTestServer(
      [
        { name: 'lookup', version: '1.0.0', files: m },
        { name: 'lin', version: '1.0.0', files: lin },
      ],
      { 'runtime.workers': 1 },
    );
    const call = (id: number) => t.server.app.inject(post('/v1/models/lookup/predict', { instances: [{ id: [id] }] }));
    const state = async () =>
      (await t.server.app.inject({ url: '/readyz' }))
        .json()
        .models.find((x: { key: string }) => x.key === 'lookup@1.0.0').breaker;
    try {
      const f1 = await call(50);
      assert.deepEqual(f1.json().fallback, { reason: 'error', policy: 'static' });
      assert.equal(await state(), 'closed');
      await call(50);
      assert.equal(await state(), 'open');
      // Open: even a good request gets the fallback, without running the model.
      const blocked = await call(1);
      assert.deepEqual(blocked.json().fallback, { reason: 'circuit-open', policy: 'static' });
      // Another model is unaffected.
      assert.equal(
        (await t.server.app.inject(post('/v1/models/lin/predict', { instances: [lin.example] }))).statusCode,
        200,
      );
      await sleep(350);
      // Half-open: one trial; it fails, so the breaker opens again.
      const trial = await call(77);
      assert.equal(trial.json().fallback.reason, 'error');
      assert.equal(await state(), 'open');
      await sleep(350);
      const good = await call(2);
      assert.equal(good.json().fallback, undefined, good.body);
      assert.deepEqual(good.json().predictions[0].y, lookup.reference({ id: [2] }));
      assert.equal(await state(), 'closed');
      const metrics = (await t.server.app.inject({ url: '/metrics' })).body;
      assert.equal(metric(metrics, 'ferry_breaker_state', 'model="lookup"'), 0);
      assert.equal(metric(metrics, 'ferry_fallbacks_total', 'reason="circuit-open"'), 1);
    } finally {
      await t.close();
    }
  });

  test('with fallback none an open breaker answers 503 circuit-open', async () => {
    const m = {
      ...lookup,
      manifest: { ...lookup.manifest, fallback: { policy: 'none', breaker: { failures: 1, coolDownMs: 60_000 } } },
    };
    const t = await startTestServer([{ name: 'lookup', version: '1.0.0', files: m }], { 'runtime.workers': 1 });
    try {
      assert.equal(
        (await t.server.app.inject(post('/v1/models/lookup/predict', { instances: [{ id: [42] }] }))).statusCode,
        500,
      );
      const r = await t.server.app.inject(post('/v1/models/lookup/predict', { instances: [{ id: [1] }] }));
      assert.equal(r.statusCode, 503);
      assert.equal(r.json().code, 'circuit-open');
      assert.equal(r.headers['retry-after'], '1');
    } finally {
      await t.close();
    }
  });
});

describe('single flight', () => {
  test('identical concurrent requests run one inference', async () => {
    const slow = slowModel(150);
    const t = await startTestServer(
      [
        {
          name: 'slow',
          version: '1.0.0',
          files: {
            ...slow,
            manifest: { ...slow.manifest, cache: { enabled: true, ttlSeconds: 60 }, batching: { enabled: false } },
          },
        },
      ],
      { 'runtime.workers': 1 },
    );
    try {
      const replies = await Promise.all(
        Array.from({ length: 8 }, () =>
          t.server.app.inject(post('/v1/models/slow/predict', { instances: [slow.example] })),
        ),
      );
      for (const r of replies) {
        assert.equal(r.statusCode, 200);
        assert.ok(Math.abs(r.json().predictions[0].value - slow.reference(slow.example)[0]!) < 1e-4);
      }
      const metrics = (await t.server.app.inject({ url: '/metrics' })).body;
      assert.equal(
        metric(metrics, 'ferry_batch_size_count', 'model="slow"'),
        1,
        'one inference for eight identical requests',
      );
    } finally {
      await t.close();
    }
  });
});

describe('placement', () => {
  test('a model placed inline answers the same as in a worker, batched, without touching the pool', async () => {
    const t = await startTestServer(
      [
        {
          name: 'inline',
          version: '1.0.0',
          files: {
            ...lin,
            manifest: {
              ...lin.manifest,
              runtime: { placement: 'inline' },
              batching: { maxBatchSize: 8, maxQueueDelayUs: 5000 },
            },
          },
        },
        { name: 'worker', version: '1.0.0', files: lin },
      ],
      { 'runtime.workers': 1 },
    );
    try {
      const xs = Array.from({ length: 6 }, (_, i) => Array.from({ length: 8 }, (_, c) => i - c / 3));
      const a = await Promise.all(
        xs.map((x) => t.server.app.inject(post('/v1/models/inline/predict', { instances: [{ x }] }))),
      );
      const b = await Promise.all(
        xs.map((x) => t.server.app.inject(post('/v1/models/worker/predict', { instances: [{ x }] }))),
      );
      a.forEach((r, i) => {
        assert.equal(r.statusCode, 200, r.body);
        assert.deepEqual(r.json().predictions, b[i]!.json().predictions);
        assert.ok(Math.abs(r.json().predictions[0].value - lin.reference({ x: xs[i]! })[0]!) < 1e-4);
      });
      const metrics = (await t.server.app.inject({ url: '/metrics' })).body;
      assert.ok(metric(metrics, 'ferry_batch_size_count', 'model="inline"') < 6, 'inline requests are batched too');
      assert.equal(metric(metrics, 'ferry_batches_total', 'model="inline",version="1.0.0",placement="worker"'), 0);
    } finally {
      await t.close();
    }
  });

  const placementOf = async (t: Awaited<ReturnType<typeof startTestServer>>, model: string) =>
    (await t.server.app.inject({ url: `/v1/models/${model}` })).json().placement as {
      mode: string;
      inlineMaxRows: number;
      inlineRunUs?: number;
      reason?: string;
    };
  /**
   * The placement once no re-timing is pending: a version timed while others loaded (every version
   * but the last to load, when several start together) is timed again 5 s later.
   */
  const settledPlacement = async (t: Awaited<ReturnType<typeof startTestServer>>, model: string) => {
    let p = await placementOf(t, model);
    for (let i = 0; i < 900 && p.reason?.includes('timed again') === true; i++) {
      await sleep(50);
      p = await placementOf(t, model);
    }
    return p;
  };
  const batches = async (t: Awaited<ReturnType<typeof startTestServer>>, model: string, where: string) =>
    metric(
      (await t.server.app.inject({ url: '/metrics' })).body,
      'ferry_batches_total',
      `model="${model}",version="1.0.0",placement="${where}"`,
    );

  test('auto (the default): an idle tiny model runs on the main thread, a busy one in the workers', async () => {
    const slow = slowModel(30);
    const t = await startTestServer(
      [
        { name: 'lin', version: '1.0.0', files: lin },
        {
          name: 'pinned',
          version: '1.0.0',
          files: { ...lin, manifest: { ...lin.manifest, runtime: { placement: 'worker' } } },
        },
        { name: 'slow', version: '1.0.0', files: slow },
      ],
      // Two cores whatever runs the test: on one, loaded batches run on the main thread (one-core.test.ts).
      { 'runtime.workers': 2, 'runtime.cores': 2 },
    );
    try {
      const auto = await settledPlacement(t, 'lin');
      assert.equal(auto.mode, 'auto');
      assert.ok(auto.inlineRunUs! > 0 && auto.inlineRunUs! <= 500, `one row measured ${auto.inlineRunUs} µs`);
      assert.equal(auto.inlineMaxRows, Math.max(1, Math.floor(500 / Math.max(auto.inlineRunUs!, 1))));
      assert.equal(auto.reason, undefined);
      // One request at a time: every batch finds the model idle and runs inline, with the worker's answer.
      for (let i = 0; i < 3; i++) {
        const x = Array.from({ length: 8 }, (_, c) => i + c / 4);
        const r = await t.server.app.inject(post('/v1/models/lin/predict', { instances: [{ x }] }));
        assert.equal(r.statusCode, 200, r.body);
        assert.ok(Math.abs(r.json().predictions[0].value - lin.reference({ x })[0]!) < 1e-4);
      }
      assert.equal(await batches(t, 'lin', 'inline'), 3);
      assert.equal(await batches(t, 'lin', 'worker'), 0);
      const xs = Array.from({ length: 16 }, (_, i) => Array.from({ length: 8 }, (_, c) => i - c));
      // Idle, but more rows than the bound allows on the main thread: a worker runs it.
      const workerBefore = await batches(t, 'lin', 'worker');
      const inlineBefore = await batches(t, 'lin', 'inline');
      const big = Array.from({ length: auto.inlineMaxRows + 1 }, (_, i) => ({ x: xs[i % xs.length]! }));
      const bigReply = await t.server.app.inject(post('/v1/models/lin/predict', { instances: big }));
      assert.equal(bigReply.statusCode, 200, bigReply.body);
      assert.equal(bigReply.json().predictions.length, big.length);
      assert.equal(await batches(t, 'lin', 'worker'), workerBefore + 1);
      assert.equal(await batches(t, 'lin', 'inline'), inlineBefore);

      // Placed in the workers by the contract: never inline.
      assert.deepEqual(await placementOf(t, 'pinned'), { mode: 'worker', inlineMaxRows: 0 });
      await t.server.app.inject(post('/v1/models/pinned/predict', { instances: [{ x: xs[0] }] }));
      assert.equal(await batches(t, 'pinned', 'inline'), 0);
      assert.equal(await batches(t, 'pinned', 'worker'), 1);

      // A model measured over the bound stays in the workers, and says why.
      const s = await placementOf(t, 'slow');
      assert.equal(s.inlineMaxRows, 0);
      assert.match(s.reason!, /over .*runtime\.inlineMaxRunUs \(500\)/);
      const r = await t.server.app.inject(post('/v1/models/slow/predict', { instances: [{ x: [1, 2, 3, 4] }] }));
      assert.equal(r.statusCode, 200, r.body);
      assert.equal(await batches(t, 'slow', 'inline'), 0);
    } finally {
      await t.close();
    }
  });

  test('auto: a batch that leaves while another of the model runs goes to a worker', async () => {
    // ~40 ms a run whatever its rows, within a bound raised to 100 ms: inline for a row or two when idle.
    const slow = slowModelTaking(40);
    const t = await startTestServer([{ name: 'slow', version: '1.0.0', files: slow }], {
      'runtime.workers': 2,
      'runtime.cores': 2,
      'runtime.inlineMaxRunUs': 100_000,
    });
    try {
      const p = await placementOf(t, 'slow');
      assert.ok(p.inlineMaxRows >= 1, JSON.stringify(p));
      const one = { instances: [{ x: [1, 2, 3, 4] }] };
      // More rows than the bound allows: a worker; a request arriving while it runs: a worker too.
      const big = t.server.app.inject(
        post('/v1/models/slow/predict', { instances: Array(p.inlineMaxRows + 1).fill(one.instances[0]) }),
      );
      // The batch is counted when it leaves, so once it shows, it is running (for ~40 ms).
      for (let i = 0; i < 2000 && (await batches(t, 'slow', 'worker')) < 1; i++) await sleep(1);
      const during = t.server.app.inject(post('/v1/models/slow/predict', one));
      for (const r of await Promise.all([big, during])) {
        assert.equal(r.statusCode, 200, r.body);
        for (const q of r.json().predictions)
          assert.ok(Math.abs(q.value - slow.reference({ x: [1, 2, 3, 4] })[0]!) < 1e-4);
      }
      assert.equal(await batches(t, 'slow', 'worker'), 2);
      assert.equal(await batches(t, 'slow', 'inline'), 0);
      // Idle again: on the main thread.
      const r = await t.server.app.inject(post('/v1/models/slow/predict', one));
      assert.equal(r.statusCode, 200, r.body);
      assert.equal(await batches(t, 'slow', 'inline'), 1);
    } finally {
      await t.close();
    }
  });

  test('auto: a busy event loop does not spoil the probe: each row is timed from its own start', async () => {
    // While the server starts, every check phase of the loop does 3 ms of other work. ONNX Runtime starts
    // a run from a setImmediate, after the rest of the turn; the row is timed from that start
    // (runtime/ort-session.ts), so the 3 ms are not the model's and the tiny model is placed at once.
    let spinning = true;
    const spin = () => {
      if (!spinning) return;
      const end = performance.now() + 3;
      while (performance.now() < end);
      setImmediate(spin);
    };
    setImmediate(spin);
    let t: Awaited<ReturnType<typeof startTestServer>>;
    try {
      t = await startTestServer([{ name: 'lin', version: '1.0.0', files: lin }], { 'runtime.workers': 1 });
    } finally {
      spinning = false;
    }
    try {
      const first = await placementOf(t, 'lin');
      assert.ok(first.inlineMaxRows >= 1, JSON.stringify(first));
      assert.ok(first.inlineRunUs! < 500, JSON.stringify(first));
      assert.equal(first.reason, undefined, JSON.stringify(first));
      const x = [1, 2, 3, 4, 5, 6, 7, 8];
      const r = await t.server.app.inject(post('/v1/models/lin/predict', { instances: [{ x }] }));
      assert.ok(Math.abs(r.json().predictions[0].value - lin.reference({ x })[0]!) < 1e-4);
      assert.equal(await batches(t, 'lin', 'inline'), 1);
      assert.equal(await batches(t, 'lin', 'worker'), 0);
    } finally {
      await t.close();
    }
  });

  test('auto: a probe timed while another version loads is timed again once it has loaded', async () => {
    // 'slow' warms up for ~0.4 s in the workers (20 runs of ~20 ms): 'lin' is timed on the main thread
    // meanwhile, with the workers busy on the same cores, so its probe proves nothing whatever it read.
    const slow = slowModelTaking(20);
    const slowFiles = {
      ...slow,
      manifest: { ...slow.manifest, warmup: { runs: 20 }, batching: { maxBatchSize: 4, maxQueueDelayUs: 1000 } },
    };
    const t = await startTestServer(
      [
        { name: 'lin', version: '1.0.0', files: lin },
        { name: 'slow', version: '1.0.0', files: slowFiles },
      ],
      { 'runtime.workers': 1 },
    );
    try {
      const first = await placementOf(t, 'lin');
      assert.match(first.reason!, /worker threads had other work while it was timed: timed again in 5 s$/);
      // Timed again with nothing else loading: placed on the main thread, no reason left.
      const p = await settledPlacement(t, 'lin');
      assert.equal(p.reason, undefined, JSON.stringify(p));
      assert.ok(p.inlineMaxRows >= 1, JSON.stringify(p));
      const x = [1, 2, 3, 4, 5, 6, 7, 8];
      const r = await t.server.app.inject(post('/v1/models/lin/predict', { instances: [{ x }] }));
      assert.ok(Math.abs(r.json().predictions[0].value - lin.reference({ x })[0]!) < 1e-4);
      assert.equal(await batches(t, 'lin', 'inline'), 1);
    } finally {
      await t.close();
    }
  });

  test('runtime.inlineMaxRunUs: 0 keeps every auto model in the workers', async () => {
    const t = await startTestServer([{ name: 'lin', version: '1.0.0', files: lin }], {
      'runtime.workers': 1,
      'runtime.inlineMaxRunUs': 0,
    });
    try {
      assert.deepEqual(await placementOf(t, 'lin'), {
        mode: 'auto',
        inlineMaxRows: 0,
        reason: 'runtime.inlineMaxRunUs is 0',
      });
      const x = [1, 2, 3, 4, 5, 6, 7, 8];
      const r = await t.server.app.inject(post('/v1/models/lin/predict', { instances: [{ x }] }));
      assert.ok(Math.abs(r.json().predictions[0].value - lin.reference({ x })[0]!) < 1e-4);
      assert.equal(await batches(t, 'lin', 'inline'), 0);
      assert.equal(await batches(t, 'lin', 'worker'), 1);
    } finally {
      await t.close();
    }
  });
});
