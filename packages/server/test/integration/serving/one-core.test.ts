// `placement: auto` on one core (`runtime.cores: 1`, or a process whose CPU affinity is one CPU): a
// worker thread there only shares the core, so a loaded model's batches run on the main thread too,
// within the same bound, and a measured batch size is cut to what fits there when its rows are about as
// cheap. On more cores the loaded batches stay in the workers. Answers are the model's either way.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import type { InjectOptions } from 'fastify';
import { startTestServer, tinyLinearModel } from '@ferry/test-kit';

const ROOT = fileURLToPath(new URL('../../../../../', import.meta.url));
const lin = tinyLinearModel();
const post = (url: string, payload: unknown): InjectOptions => ({ method: 'POST', url, payload: payload as object });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Server = Awaited<ReturnType<typeof startTestServer>>;
interface Described {
  batching: { maxBatchSize: number; source: string; measuredMaxBatchSize?: number };
  placement: {
    inlineMaxRows: number;
    inlineRunUs?: number;
    loadedMaxRows?: number;
    loadedRunUs?: number;
    reason?: string;
  };
}

/** The version's batching and placement once no re-timing is pending (a probe may be timed again 5 s on). */
async function settled(t: Server, model: string): Promise<Described> {
  const read = async () => (await t.server.app.inject({ url: `/v1/models/${model}` })).json() as Described;
  let d = await read();
  for (let i = 0; i < 900 && d.placement.reason?.includes('timed again') === true; i++) {
    await sleep(50);
    d = await read();
  }
  return d;
}

async function batches(t: Server, model: string, where: 'inline' | 'worker'): Promise<number> {
  const text = (await t.server.app.inject({ url: '/metrics' })).body;
  const labels = `model="${model}",version="1.0.0",placement="${where}"`;
  const line = text.split('\n').find((l) => l.startsWith('ferry_batches_total{') && l.includes(labels));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** 64 requests at once, one row each: the first finds the model idle, the rest queue behind it. */
async function burst(t: Server, model: string, bodies: readonly unknown[]) {
  const replies = await Promise.all(bodies.map((b) => t.server.app.inject(post(`/v1/models/${model}/predict`, b))));
  for (const r of replies) assert.equal(r.statusCode, 200, r.body);
  return replies.map((r) => r.json() as { predictions: Array<Record<string, unknown>> });
}

describe('placement on one core', () => {
  const xs = Array.from({ length: 64 }, (_, i) => Array.from({ length: 8 }, (_, c) => (i - 32) / 8 + c / 16));

  for (const cores of [1, 2]) {
    test(`runtime.cores ${cores}: a loaded tiny model's batches run ${cores === 1 ? 'on the main thread' : 'in the workers'}`, async () => {
      const t = await startTestServer([{ name: 'lin', version: '1.0.0', files: lin }], {
        'runtime.cores': cores,
        'runtime.workers': cores,
      });
      try {
        const { batching, placement } = await settled(t, 'lin');
        assert.equal(batching.source, 'measured');
        assert.ok(placement.inlineMaxRows >= 1, JSON.stringify(placement));
        if (cores === 1) {
          // Timed in batches on the main thread: a tiny model fits every size the probe tries.
          assert.ok(placement.loadedMaxRows! >= Math.max(placement.inlineMaxRows, 64), JSON.stringify(placement));
          assert.ok(placement.loadedRunUs! > 0 && placement.loadedRunUs! <= 500, JSON.stringify(placement));
          assert.equal(batching.measuredMaxBatchSize, undefined, 'nothing to cut: its batches fit already');
        } else assert.equal(placement.loadedMaxRows, undefined, JSON.stringify(placement));
        const replies = await burst(
          t,
          'lin',
          xs.map((x) => ({ instances: [{ x }] })),
        );
        replies.forEach((r, i) =>
          assert.ok(Math.abs((r.predictions[0]!.value as number) - lin.reference({ x: xs[i]! })[0]!) < 1e-4),
        );
        const inline = await batches(t, 'lin', 'inline');
        const worker = await batches(t, 'lin', 'worker');
        // Batched either way (fewer batches than requests); where they ran is the rule under test.
        assert.ok(inline + worker < 64, `${inline} inline + ${worker} worker batches for 64 requests`);
        if (cores === 1) {
          assert.equal(worker, 0);
          assert.ok(inline >= 2, `${inline} inline batches`);
        } else {
          // The first request found the model idle (inline); the ones that waited behind it went to a worker.
          assert.ok(worker >= 1, `${worker} worker batches`);
        }
      } finally {
        await t.close();
      }
    });
  }

  test('runtime.cores 1: a model without a batch axis runs each request on the main thread, loaded or not', async () => {
    const fixed = {
      ...lin,
      manifest: { ...lin.manifest, inputs: [{ name: 'x', type: 'tensor', dtype: 'float32', shape: [2, 8] }] },
    };
    const t = await startTestServer([{ name: 'fixed', version: '1.0.0', files: fixed }], {
      'runtime.cores': 1,
      'runtime.workers': 1,
    });
    try {
      const { placement } = await settled(t, 'fixed');
      // One request is its whole input: no batch sizes to time (a [4, 8] run would fail), only the one row.
      assert.ok(placement.inlineMaxRows >= 1, JSON.stringify(placement));
      assert.equal(placement.loadedMaxRows, placement.inlineMaxRows, JSON.stringify(placement));
      const x = [xs[0]!, xs[1]!];
      const replies = await burst(
        t,
        'fixed',
        [0, 1, 2].map(() => ({ instances: [{ x }] })),
      );
      for (const r of replies) {
        const y = r.predictions[0]!.value as number[];
        assert.ok(Math.abs(y[0]! - lin.reference({ x: x[0]! })[0]!) < 1e-4, JSON.stringify(y));
        assert.ok(Math.abs(y[1]! - lin.reference({ x: x[1]! })[0]!) < 1e-4, JSON.stringify(y));
      }
      // Each request its own batch, every one on the main thread, queued or not.
      assert.equal(await batches(t, 'fixed', 'inline'), 3);
      assert.equal(await batches(t, 'fixed', 'worker'), 0);
    } finally {
      await t.close();
    }
  });

  test('runtime.cores 1: a measured size is cut to the batch that runs on the main thread, or kept and sent to the workers', async () => {
    // mlp-bench (256→1024→1024→10) without its batching block: Ferry measures the size. Its rows cost
    // about the same from ~16 rows up, and a few tens of rows fit the 500 µs bound on a current CPU.
    const dir = join(ROOT, 'models/mlp-bench/1.0.0');
    const manifest = parse(readFileSync(join(dir, 'ferry.yaml'), 'utf8')) as Record<string, unknown>;
    delete manifest.batching;
    delete manifest.name;
    delete manifest.version;
    const t = await startTestServer(
      [{ name: 'mlp', version: '1.0.0', files: { onnx: readFileSync(join(dir, 'model.onnx')), manifest } }],
      { 'runtime.cores': 1, 'runtime.workers': 1 },
    );
    try {
      const { batching, placement } = await settled(t, 'mlp');
      const seen = JSON.stringify({ batching, placement });
      assert.equal(batching.source, 'measured', seen);
      assert.ok(placement.inlineMaxRows >= 1, seen);
      assert.ok(placement.loadedMaxRows! >= placement.inlineMaxRows, seen);
      assert.ok(placement.loadedRunUs! <= 500, seen);
      const cut = batching.measuredMaxBatchSize !== undefined;
      if (cut) {
        // Cut: exactly the main thread's size, below what the probe chose.
        assert.equal(batching.maxBatchSize, placement.loadedMaxRows, seen);
        assert.ok(batching.measuredMaxBatchSize! > batching.maxBatchSize, seen);
      }
      // Each body answered alone first, then all 64 together: the same probabilities.
      const bodies = Array.from({ length: 64 }, (_, i) => ({
        instances: [{ x: Array.from({ length: 256 }, (_, c) => Math.sin(i * 31 + c)) }],
      }));
      const alone = [];
      for (const b of bodies.slice(0, 8)) alone.push(...(await burst(t, 'mlp', [b])));
      const inlineBefore = await batches(t, 'mlp', 'inline');
      const workerBefore = await batches(t, 'mlp', 'worker');
      const together = await burst(t, 'mlp', bodies);
      alone.forEach((a, i) => {
        const p = a.predictions[0]!.scores as Record<string, number>;
        const q = together[i]!.predictions[0]!.scores as Record<string, number>;
        for (const k of Object.keys(p))
          assert.ok(Math.abs(p[k]! - q[k]!) < 1e-5, `${k}: ${p[k]} alone, ${q[k]} batched`);
      });
      const inline = (await batches(t, 'mlp', 'inline')) - inlineBefore;
      const worker = (await batches(t, 'mlp', 'worker')) - workerBefore;
      assert.ok(inline + worker < 64, `${inline} inline + ${worker} worker batches`);
      // Cut, every batch fits the main thread.
      if (cut) assert.equal(worker, 0, seen);
    } finally {
      await t.close();
    }
  });
});
