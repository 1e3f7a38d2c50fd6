// A version's TypeScript handler (ferry.yaml `handler:`): loaded with the version in the worker threads,
// its preprocess/postprocess around the model, a predict that calls another model, its refusals as
// problem+json with the request's pointers, its answers held against the contract, reloaded with the version.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GraphBuilder } from '@ferry/tools/onnx';
import { startTestServer, type TestModel } from '@ferry/test-kit';

const W = [
  [-1.5, 1.5],
  [2, -2],
];

/** counts[N, 2] (positive words, negative words) → softmax(counts · W) over [negative, positive]. */
function countsModel(): Uint8Array {
  const g = new GraphBuilder({ name: 'word-counts' });
  g.input('counts', 'float32', ['batch', 2]).output('probs', 'float32', ['batch', 2]);
  g.floatInitializer('w', W.flat(), [2, 2]);
  g.node('Softmax', [g.op('MatMul', ['counts', 'w'])], ['probs'], { axis: 1 });
  return g.toBytes();
}

function expected(pos: number, neg: number): number[] {
  const z = [pos * W[0]![0]! + neg * W[1]![0]!, pos * W[0]![1]! + neg * W[1]![1]!];
  const m = Math.max(...z);
  const e = z.map((x) => Math.exp(x - m));
  return e.map((x) => x / (e[0]! + e[1]!));
}

const SENTIMENT_HANDLER = (generation: number) => `
import { isMainThread, threadId } from 'node:worker_threads';
import type { HandlerContext, ModelHandler, TensorValue } from '@ferry/core';

interface Review { text: string }
const POSITIVE = new Set(['good', 'great', 'love']);
const NEGATIVE = new Set(['bad', 'awful', 'hate']);

function words(text: string): string[] {
  return text.toLowerCase().split(/[^a-z]+/).filter((w) => w.length > 0);
}

const handler: ModelHandler<Review> = {
  preprocess(instances: Review[], ctx: HandlerContext): Record<string, TensorValue> {
    const data = new Float32Array(instances.length * 2);
    instances.forEach((r, i) => {
      if (r.text === 'explode') throw new Error('the handler exploded on purpose');
      const ws = words(r.text);
      if (ws.length === 0) ctx.invalid([{ pointer: '/' + i + '/text', reason: 'no words to read' }]);
      data[i * 2] = ws.filter((w) => POSITIVE.has(w)).length;
      data[i * 2 + 1] = ws.filter((w) => NEGATIVE.has(w)).length;
    });
    return { counts: { dtype: 'float32', dims: [instances.length, 2], data } };
  },
  postprocess(outputs, instances, ctx) {
    const predictions = ctx.decode(outputs, instances.length);
    return predictions.map((p, i) =>
      instances[i]!.text === 'break the contract'
        ? { ...p, label: 'maybe' }
        : { ...p, generation: ${generation}, onMainThread: isMainThread, thread: threadId },
    );
  },
};
export default handler;
`;

const ROUTER_HANDLER = `
import type { ModelHandler } from '@ferry/core';
export default {
  async predict(instances, ctx) {
    const answers = await ctx.predict('sentiment@1', instances.map((i) => ({ text: i.text })));
    return answers.map((a, i) => ({ sentiment: a.label, shouting: instances[i].text === instances[i].text.toUpperCase() }));
  },
} satisfies ModelHandler<{ text: string }>;
`;

function models(): TestModel[] {
  const onnx = countsModel();
  return [
    {
      name: 'sentiment',
      version: '1.0.0',
      files: {
        onnx,
        manifest: {
          handler: 'handler.ts',
          inputs: [{ name: 'text', type: 'string', maxLength: 10_000 }],
          outputs: [{ name: 'probs', dtype: 'float32', shape: [-1, 2] }],
          postprocess: { kind: 'classification', output: 'probs', labels: ['negative', 'positive'] },
          cache: { enabled: true, ttlSeconds: 60 },
          fallback: { policy: 'none', breaker: { failures: 100 } },
        },
        files: { 'handler.ts': SENTIMENT_HANDLER(1) },
      },
    },
    {
      name: 'router',
      version: '1.0.0',
      files: {
        onnx,
        manifest: {
          handler: 'handler.mts',
          inputs: [{ name: 'text', type: 'string' }],
          outputs: [{ name: 'probs' }],
          postprocess: { kind: 'raw' },
        },
        files: { 'handler.mts': ROUTER_HANDLER },
      },
    },
    {
      name: 'broken',
      version: '1.0.0',
      files: {
        onnx,
        manifest: {
          handler: 'handler.js',
          inputs: [{ name: 'text', type: 'string' }],
          outputs: [{ name: 'probs', dtype: 'float32', shape: [-1, 2] }],
          postprocess: { kind: 'raw' },
        },
        files: { 'handler.js': 'export default { preprocess( {' },
      },
    },
  ];
}

test('a TypeScript handler runs in the worker threads around the model, held to the contract', async () => {
  const t = await startTestServer(models(), { 'runtime.workers': 1 });
  try {
    const { app } = t.server;
    const states = new Map(t.server.service.states().map((s) => [s.key, s]));
    assert.equal(states.get('sentiment@1.0.0')?.state, 'ready', states.get('sentiment@1.0.0')?.error);
    assert.equal(states.get('router@1.0.0')?.state, 'ready', states.get('router@1.0.0')?.error);
    // A handler that does not parse fails its version alone, with the reason.
    assert.equal(states.get('broken@1.0.0')?.state, 'failed');
    assert.match(states.get('broken@1.0.0')!.error!, /SyntaxError|Unexpected/);

    const predict = (model: string, instances: unknown[]) =>
      app.inject({ method: 'POST', url: `/v1/models/${model}/predict`, payload: { instances } });

    const r = await predict('sentiment', [{ text: 'I love it, great!' }, { text: 'bad, awful, but good' }]);
    assert.equal(r.statusCode, 200, r.body);
    const [a, b] = r.json().predictions;
    for (const [p, pos, neg] of [
      [a, 2, 0],
      [b, 1, 2],
    ] as const) {
      const want = expected(pos, neg);
      assert.ok(Math.abs(p.scores.negative - want[0]!) < 1e-6, `${JSON.stringify(p)} vs ${want}`);
      assert.ok(Math.abs(p.scores.positive - want[1]!) < 1e-6);
      assert.equal(p.generation, 1);
      assert.equal(p.onMainThread, false, 'the handler runs in a worker thread');
      assert.ok(p.thread > 0);
    }
    assert.equal(a.label, 'positive');
    assert.equal(b.label, 'negative');

    // The contract still validates the input before the handler sees it.
    const missing = await predict('sentiment', [{ text: 'good' }, { txt: 'good' }]);
    assert.equal(missing.statusCode, 400);
    assert.ok(missing.json().errors.some((e: { pointer: string }) => e.pointer.startsWith('/instances/1/')));
    // The handler's own refusal: problem+json with the request's pointer (instance 2, not the handler's 0).
    const cached = await predict('sentiment', [{ text: 'I love it, great!' }]);
    // The prediction cache works for handler versions too (keyed by the handler's code as well).
    assert.equal(cached.headers['ferry-cache'], 'hit');
    assert.equal(cached.json().predictions[0].generation, 1);
    const refused = await predict('sentiment', [{ text: 'I love it, great!' }, { text: 'good' }, { text: '...' }]);
    assert.equal(refused.statusCode, 400, refused.body);
    assert.match(refused.headers['content-type'] as string, /application\/problem\+json/);
    assert.deepEqual(refused.json().errors, [{ pointer: '/instances/2/text', reason: 'no words to read' }]);
    // A handler that throws: 500 inference-failed naming the part; one that answers outside the contract: the same.
    const exploded = await predict('sentiment', [{ text: 'explode' }]);
    assert.equal(exploded.statusCode, 500);
    assert.equal(exploded.json().code, 'inference-failed');
    assert.match(exploded.json().detail, /handler preprocess: the handler exploded on purpose/);
    const offContract = await predict('sentiment', [{ text: 'break the contract' }]);
    assert.equal(offContract.statusCode, 500);
    assert.match(offContract.json().detail, /does not match the contract: \/label/);

    // predict in code, calling another model of the repository through its predict path.
    const routed = await predict('router', [{ text: 'GOOD' }, { text: 'hate this' }]);
    assert.equal(routed.statusCode, 200, routed.body);
    assert.deepEqual(routed.json().predictions, [
      { sentiment: 'positive', shouting: true },
      { sentiment: 'negative', shouting: false },
    ]);
    // A refusal from the called model surfaces as the handler's failure, not the caller's bad input.
    const routedBad = await predict('router', [{ text: '!!!' }]);
    assert.equal(routedBad.statusCode, 500);
    assert.match(routedBad.json().detail, /handler predict: .*no words to read/);

    // Reloaded with the version: a changed handler answers at once, and cached answers of the old one are not served.
    writeFileSync(join(t.repoDir, 'sentiment', '1.0.0', 'handler.ts'), SENTIMENT_HANDLER(2));
    const report = await t.server.manager.reloadRepository();
    assert.deepEqual(report.reloaded, ['sentiment@1.0.0'], JSON.stringify(report));
    const after = await predict('sentiment', [{ text: 'I love it, great!' }]);
    assert.equal(after.statusCode, 200, after.body);
    assert.equal(after.headers['ferry-cache'], 'miss');
    assert.equal(after.json().predictions[0].generation, 2);
    assert.equal((await app.inject({ url: '/healthz' })).statusCode, 200);
  } finally {
    await t.close();
  }
});
