// What the batcher tells its runner about each batch: its rows, and whether it left an idle batcher
// (nothing else running or queued), which is when `placement: auto` may run it on the main thread.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DynamicBatcher, type Feeds } from './batcher.js';

// A few milliseconds, then two turns of the event loop: on a loaded machine the timer can fire before a
// wait the batcher armed with setImmediate has run (Node 22 CI saw it), and an immediate queued after
// that wait always runs after it.
const settle = async () => {
  await new Promise((r) => setTimeout(r, 5));
  for (let i = 0; i < 2; i++) await new Promise((r) => setImmediate(r));
};
const row = (v: number, rows = 1): Feeds => ({
  x: { dtype: 'float32', dims: [rows, 1], data: new Float32Array(rows).fill(v) },
});

/** A batcher whose runner records (rows, alone) and holds each batch until its gate is opened. */
function recording(maxBatchSize: number, concurrency: number) {
  const seen: Array<{ rows: number; alone: boolean }> = [];
  const gates: Array<() => void> = [];
  const b = new DynamicBatcher(
    { maxBatchSize, maxQueueDelayUs: 0, preferredBatchSizes: [], maxQueueDepth: 100, concurrency, batchable: true },
    async (feeds, rows, alone) => {
      seen.push({ rows, alone });
      await new Promise<void>((r) => gates.push(r));
      return { outputs: { y: feeds.x! }, inferMs: 0 };
    },
  );
  return { b, seen, gates };
}

test('a batch leaving an idle batcher is alone; one leaving while another runs or requests wait is not', async () => {
  const { b, seen, gates } = recording(2, 2);
  // Idle: the first request leaves alone.
  const a = b.submit(row(1, 3), 3).promise;
  assert.deepEqual(seen, [{ rows: 3, alone: true }]);
  // Another while the first runs: not alone (the second slot is free; it leaves at the end of the turn).
  const c = b.submit(row(2), 1).promise;
  await settle();
  assert.deepEqual(seen[1], { rows: 1, alone: false });
  // Both slots busy: three requests queue; when a slot frees, the next batch leaves with one still waiting.
  const rest = [3, 4, 5].map((v) => b.submit(row(v), 1).promise);
  await settle();
  assert.equal(seen.length, 2);
  gates.shift()!();
  await a;
  await settle();
  assert.deepEqual(seen[2], { rows: 2, alone: false });
  // A slot frees while the other still runs: the last waiting request leaves, not alone either.
  gates.shift()!();
  await c;
  await settle();
  assert.deepEqual(seen[3], { rows: 1, alone: false });
  while (gates.length) gates.shift()!();
  const out = await Promise.all(rest);
  assert.deepEqual(
    out.map((o) => Array.from(o.outputs.y!.data as Float32Array)),
    [[3], [4], [5]],
  );
  // Idle again: alone.
  const last = b.submit(row(6), 1).promise;
  assert.deepEqual(seen[4], { rows: 1, alone: true });
  gates.shift()!();
  assert.deepEqual(Array.from((await last).outputs.y!.data as Float32Array), [6]);
  assert.equal(seen.length, 5);
});

test('requests that waited behind a batch are not alone, even when it has finished and nothing else waits', async () => {
  const { b, seen, gates } = recording(8, 1);
  const first = b.submit(row(1), 1).promise;
  // Two arrive while the first runs; with one slot they wait for it.
  const behind = [2, 3].map((v) => b.submit(row(v), 1).promise);
  await settle();
  assert.deepEqual(seen, [{ rows: 1, alone: true }]);
  gates.shift()!();
  await first;
  await settle();
  // Nothing runs and nothing else waits when they leave, but they waited: under load, not alone.
  assert.deepEqual(seen[1], { rows: 2, alone: false });
  gates.shift()!();
  assert.deepEqual(
    (await Promise.all(behind)).map((o) => Array.from(o.outputs.y!.data as Float32Array)),
    [[2], [3]],
  );
  await settle();
  const later = b.submit(row(4), 1).promise;
  assert.deepEqual(seen[2], { rows: 1, alone: true });
  gates.shift()!();
  await later;
});
