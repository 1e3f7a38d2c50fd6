// Ragged batching: requests whose ids have different lengths share a batch, padded with the declared pad
// value; sequence outputs come back cut to each request; length-aware grouping under a token budget keeps
// short requests away from long ones. The runner computes a real per-token function of the padded batch
// (running sums over the mask), so a wrong pad value, offset or cut changes the answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TensorValue } from '@ferry/core';
import { DynamicBatcher, type Feeds } from './batcher.js';

const PAD = -7;
const request = (...rows: number[][]): Feeds => {
  const len = Math.max(...rows.map((r) => r.length));
  const ids = new BigInt64Array(rows.length * len).fill(BigInt(PAD));
  const mask = new BigInt64Array(rows.length * len);
  rows.forEach((r, i) =>
    r.forEach((v, k) => {
      ids[i * len + k] = BigInt(v);
      mask[i * len + k] = 1n;
    }),
  );
  return {
    ids: { dtype: 'int64', dims: [rows.length, len], data: ids },
    mask: { dtype: 'int64', dims: [rows.length, len], data: mask },
  };
};

/** Per token: the running sum of real ids so far (a sequence output); per row: the number of pad ids seen. */
function model(f: Feeds): Feeds {
  const [rows, len] = f.ids!.dims as [number, number];
  const ids = f.ids!.data as BigInt64Array;
  const mask = f.mask!.data as BigInt64Array;
  const running = new Float32Array(rows * len);
  const pads = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let k = 0; k < len; k++) {
      if (mask[r * len + k] === 1n) s += Number(ids[r * len + k]);
      else if (ids[r * len + k] === BigInt(PAD)) pads[r]!++;
      running[r * len + k] = s;
    }
  }
  return {
    running: { dtype: 'float32', dims: [rows, len], data: running } as TensorValue,
    pads: { dtype: 'float32', dims: [rows, 1], data: pads } as TensorValue,
  };
}

function batcher(extra: { maxTokensPerBatch?: number; lengthAware?: boolean } = {}) {
  const batches: number[][] = [];
  let release!: () => void;
  let gate = new Promise<void>((r) => (release = r));
  const b = new DynamicBatcher(
    {
      maxBatchSize: 64,
      maxQueueDelayUs: 0,
      preferredBatchSizes: [],
      maxQueueDepth: 100,
      concurrency: 1,
      batchable: true,
      padValues: { ids: PAD, mask: 0 },
      sequenceOutputs: ['running'],
      ...extra,
    },
    async (f) => {
      batches.push([f.ids!.dims[0]!, f.ids!.dims[1]!]);
      await gate;
      return { outputs: model(f), inferMs: 0 };
    },
  );
  return {
    b,
    batches,
    open: () => {
      release();
      gate = Promise.resolve();
    },
  };
}

test('requests of different lengths share one padded batch and get their own, un-padded outputs', async () => {
  const { b, batches, open } = batcher({ lengthAware: false });
  const first = b.submit(request([1]), 1); // runs alone while the others queue
  const reqs = [request([1, 2, 3]), request([4], [5, 6]), request([7, 8, 9, 10, 11])];
  const real = [3, 3, 5];
  const pending = reqs.map((r, i) => b.submit(r, r.ids!.dims[0]!, real[i]));
  open();
  await first.promise;
  const outs = await Promise.all(pending.map((p) => p.promise));
  assert.deepEqual(batches, [
    [1, 1],
    [4, 5],
  ]);
  // Each request's sequence output has its own padded length; the values equal running it alone.
  assert.deepEqual(outs[0]!.outputs.running!.dims, [1, 3]);
  assert.deepEqual(Array.from(outs[0]!.outputs.running!.data as Float32Array), [1, 3, 6]);
  assert.deepEqual(outs[1]!.outputs.running!.dims, [2, 2]);
  assert.deepEqual(Array.from(outs[1]!.outputs.running!.data as Float32Array), [4, 4, 5, 11]);
  assert.deepEqual(Array.from(outs[2]!.outputs.running!.data as Float32Array), [7, 15, 24, 34, 45]);
  // The batch was padded with the declared value: row [4] carried 4 pads in a batch of length 5.
  assert.deepEqual(Array.from(outs[1]!.outputs.pads!.data as Float32Array), [4, 3]);
  assert.equal(outs[1]!.batchRows, 4);
  assert.deepEqual(b.padding, { paddedTokens: 1 + 4 * 5, realTokens: 1 + 3 + 3 + 5 });
});

test('length-aware grouping under a token budget keeps short requests together', async () => {
  const lengths = [4, 200, 6, 190, 5, 210, 3, 180];
  const run = async (lengthAware: boolean) => {
    const { b, batches, open } = batcher({ maxTokensPerBatch: 800, lengthAware });
    const blocker = b.submit(request([1]), 1);
    const pending = lengths.map((n) => b.submit(request(Array.from({ length: n }, (_, k) => k)), 1, n));
    open();
    await blocker.promise;
    const outs = await Promise.all(pending.map((p) => p.promise));
    outs.forEach((o, i) => assert.equal(o.outputs.running!.dims[1], lengths[i]));
    return { batches: batches.slice(1), padding: b.padding };
  };
  const aware = await run(true);
  const fifo = await run(false);
  // Grouped: short texts never share a batch with long ones, and every batch stays within the token budget
  // and the default padding ratio (1.25).
  for (const [rows, len] of aware.batches) {
    assert.ok(rows * len <= 800, `${rows}×${len}`);
    assert.ok(len < 10 || len >= 180, `batch of length ${len}`);
  }
  assert.ok(aware.batches.length <= 6, `${aware.batches.length} batches`);
  const overhead = (p: { paddedTokens: number; realTokens: number }) => (p.paddedTokens - 1) / (p.realTokens - 1);
  assert.ok(overhead(aware.padding) < 1.15, `length-aware overhead ${overhead(aware.padding)}`);
  assert.ok(overhead(fifo.padding) > 1.5, `FIFO overhead ${overhead(fifo.padding)}`);
});
