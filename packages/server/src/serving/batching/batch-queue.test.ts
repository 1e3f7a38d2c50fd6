// The queue both batchers share: a full queue is a 503 with Retry-After naming its limit, close()
// fails what waits with 503 shutting-down, and the delay lets frames that arrive together batch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TensorValue } from '@ferry/core';
import { FerryError } from '../../errors.js';
import { DynamicBatcher, type Feeds } from './batcher.js';
import { SequenceBatcher, type SequenceSpec } from './sequence-batcher.js';

const feeds = (): Feeds => ({ x: { dtype: 'float32', dims: [1, 2], data: new Float32Array([1, 2]) } });
const is503 = (code: string) => (e: unknown) => {
  assert.ok(e instanceof FerryError);
  assert.equal(e.code, code);
  assert.equal(e.status, 503);
  assert.equal(e.headers['retry-after'], '1');
  return true;
};

test('dynamic: past maxQueueDepth a submission is refused at once; close fails the queued ones', async () => {
  let release!: () => void;
  const running = new Promise<void>((r) => {
    release = r;
  });
  const b = new DynamicBatcher(
    { maxBatchSize: 1, maxQueueDelayUs: 0, preferredBatchSizes: [], maxQueueDepth: 1, concurrency: 1, batchable: true },
    async (f) => {
      await running;
      return { outputs: f, inferMs: 0 };
    },
  );
  const first = b.submit(feeds(), 1); // runs
  const second = b.submit(feeds(), 1); // waits
  assert.equal(b.depth, 1);
  assert.equal(b.overloaded, true);
  assert.throws(
    () => b.submit(feeds(), 1),
    (e: unknown) => is503('server-overloaded')(e) && (e as FerryError).extra.limit === 1,
  );
  b.close();
  await assert.rejects(second.promise, is503('shutting-down'));
  assert.throws(() => b.submit(feeds(), 1), is503('shutting-down'));
  release();
  assert.equal((await first.promise).batchRows, 1);
});

const spec = (maxQueueDepth?: number): SequenceSpec => ({
  frameSamples: 2,
  input: 'in',
  output: 'p',
  state: [],
  constants: {},
  maxBatchSize: 4,
  maxQueueDelayUs: 20_000,
  ...(maxQueueDepth !== undefined && { maxQueueDepth }),
});
const scores = (f: Record<string, TensorValue>) => {
  const rows = f.in!.dims[0]!;
  return { p: { dtype: 'float32' as const, dims: [rows, 1], data: new Float32Array(rows).fill(rows) } };
};

test('sequence: frames that arrive within the delay run as one batch; the queue bound and close apply', async () => {
  const open = new SequenceBatcher(spec(), async (f) => scores(f));
  const rs = await Promise.all([1, 2, 3].map(() => open.submit(new Float32Array(2), [])));
  assert.deepEqual(
    rs.map((r) => r.score),
    [3, 3, 3],
  );
  assert.deepEqual([...open.batchSizes], [[3, 1]]);

  const bounded = new SequenceBatcher(spec(1), async (f) => scores(f));
  const queued = bounded.submit(new Float32Array(2), []);
  await assert.rejects(bounded.submit(new Float32Array(2), []), is503('server-overloaded'));
  bounded.close();
  await assert.rejects(queued, is503('shutting-down'));
  assert.equal(bounded.batchSizes.size, 0);
});
