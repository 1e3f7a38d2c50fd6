// The batching rule: sizes from timings (per-row gain, latency budget), and the probe's stopping rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  capForInline,
  chooseBatching,
  MAX_DELAY_US,
  MAX_PROBE_ROWS,
  probeBatching,
  type ProbeTiming,
} from './defaults.js';

const timed = (f: (rows: number) => number, upTo = 128): ProbeTiming[] => {
  const out: ProbeTiming[] = [];
  for (let rows = 1; rows <= upTo; rows *= 2) out.push({ rows, ms: f(rows) });
  return out;
};

test('a model with a large fixed cost per run batches up to the probe limit', () => {
  // 0.2 ms a run plus 2 µs a row: each doubling is much cheaper per row, every size within 5 ms.
  const c = chooseBatching(timed((n) => 0.2 + 0.002 * n));
  assert.equal(c.maxBatchSize, 128);
  assert.equal(c.maxQueueDelayUs, 202);
});

test('rows that cost the same at any size are batched up to the budget; a row that gets dearer stops it', () => {
  // Per-row cost falls to 8 rows, then stays flat: the budget max(5, 8 × 1.1) = 8.8 ms allows 32 rows (7.2 ms).
  assert.equal(chooseBatching(timed((n) => (n <= 8 ? 1 + 0.1 * n : 1.8 * (n / 8)))).maxBatchSize, 32);
  // Past 4 rows a row costs 50% more (a cache spill): 4 rows.
  assert.equal(chooseBatching(timed((n) => (n <= 4 ? 1 + 0.1 * n : 0.35 * 1.5 * n))).maxBatchSize, 4);
});

test('one disturbed size is passed over, not taken as the end of the gains', () => {
  // Per-row cost falls all the way (0.2 ms a run + 2 µs a row), but the 8-row run was slowed 3× by
  // something else on the machine: the sizes after it still count, so 128 rows are chosen, not 4.
  const c = chooseBatching(timed((n) => (0.2 + 0.002 * n) * (n === 8 ? 3 : 1)));
  assert.equal(c.maxBatchSize, 128);
});

test('probeBatching takes the run time that run() reports (measured where it ran) over its own clock', async () => {
  // The clock says every call took 40 ms (a busy event loop); the runs say 0.1 ms + 0.01 ms a row.
  let clock = 0;
  const r = await probeBatching(
    async (rows) => {
      clock += 40;
      return 0.1 + 0.01 * rows;
    },
    16,
    () => clock,
  );
  assert.deepEqual(
    r.timings.map((t) => Math.round(t.ms * 1000) / 1000),
    [0.11, 0.12, 0.14, 0.18, 0.26],
  );
  assert.equal(r.maxBatchSize, 16);
  assert.equal(r.maxQueueDelayUs, 110);
});

test('the latency budget bounds the size: max(5 ms, 8 × one row)', () => {
  // 3 ms a run + 1 ms a row: the budget is max(5, 8 × 4) = 32 ms; 16 rows take 19 ms, 32 rows 35 ms.
  assert.equal(chooseBatching(timed((n) => 3 + n)).maxBatchSize, 16);
  // A 0.55 ms model: the 5 ms floor applies; 64 rows take 3.7 ms, 128 rows 6.9 ms.
  assert.equal(chooseBatching(timed((n) => 0.5 + 0.05 * n)).maxBatchSize, 64);
});

test('no batching gain at all: the budget alone bounds the size; the delay is the one-row time, capped', () => {
  // 50 ms a row: the budget is 8 × 50 = 400 ms, so 8 rows.
  const c = chooseBatching(timed((n) => 50 * n));
  assert.equal(c.maxBatchSize, 8);
  assert.equal(c.maxQueueDelayUs, MAX_DELAY_US);
  assert.deepEqual(chooseBatching([]), { maxBatchSize: 1, maxQueueDelayUs: 0 });
});

test('probeBatching times powers of two (fastest of three), stops past the budget, never exceeds maxRows', async () => {
  // A fake clock that each run advances by 0.3 ms + 0.5 ms a row (the first repeat 1 ms slower):
  // the budget is max(5, 8 × 0.8) = 6.4 ms, and 16 rows (8.3 ms) pass it and end the probe.
  let clock = 0;
  const seen: number[] = [];
  const r = await probeBatching(
    async (rows) => {
      seen.push(rows);
      clock += 0.3 + 0.5 * rows + (seen.filter((s) => s === rows).length === 1 ? 1 : 0);
    },
    128,
    () => clock,
  );
  assert.deepEqual(seen, [1, 1, 1, 2, 2, 2, 4, 4, 4, 8, 8, 8, 16, 16, 16]);
  assert.deepEqual(
    r.timings.map((t) => Math.round(t.ms * 1000) / 1000),
    [0.8, 1.3, 2.3, 4.3, 8.3],
  );
  // 8 rows take 4.3 ms, within the budget; 16 rows do not.
  assert.equal(r.maxBatchSize, 8);
  assert.equal(r.maxQueueDelayUs, 800);
  const capped = await probeBatching(async () => undefined, 4);
  assert.deepEqual(
    capped.timings.map((t) => t.rows),
    [1, 2, 4],
  );
  assert.ok(MAX_PROBE_ROWS >= 64);
});

test('a slow model is timed once a size and the probe ends after PROBE_MAX_MS', async () => {
  // 300 ms a run whatever its rows: one run at 1 row, one at 2, then the 500 ms probe time is spent.
  let clock = 0;
  const seen: number[] = [];
  const r = await probeBatching(
    async (rows) => {
      seen.push(rows);
      clock += 300;
    },
    128,
    () => clock,
  );
  assert.deepEqual(seen, [1, 2]);
  assert.equal(r.maxBatchSize, 2);
  assert.equal(r.maxQueueDelayUs, MAX_DELAY_US);
});

test("one core: batches are cut to the main thread's size only when the probe's rows there are about as cheap", () => {
  // mlp-bench's probe on the seventeenth session's host: ~16 µs a row from 16 rows up.
  const mlp: ProbeTiming[] = [
    { rows: 1, ms: 0.117 },
    { rows: 2, ms: 0.108 },
    { rows: 4, ms: 0.117 },
    { rows: 8, ms: 0.19 },
    { rows: 16, ms: 0.27 },
    { rows: 32, ms: 0.509 },
    { rows: 64, ms: 0.995 },
    { rows: 128, ms: 2.007 },
  ];
  assert.equal(capForInline(128, mlp, 32), 32);
  assert.equal(capForInline(128, mlp, 16), 16);
  // 8 rows cost 23.8 µs each, past 1.25 × the cheapest (15.5): the larger batches are worth the hop.
  assert.equal(capForInline(128, mlp, 8), undefined);
  // A size the probe did not time is judged by the largest probed size below it.
  assert.equal(capForInline(128, mlp, 20), 20);
  assert.equal(capForInline(128, mlp, 12), undefined);
  // A model whose rows keep getting cheaper past what fits keeps its size (the workers run it).
  const gains: ProbeTiming[] = [
    { rows: 1, ms: 0.2 },
    { rows: 2, ms: 0.25 },
    { rows: 64, ms: 1.28 },
  ];
  assert.equal(capForInline(64, gains, 2), undefined);
  // Nothing to cut: the size already fits, or one row is all that fits.
  assert.equal(capForInline(32, mlp, 32), undefined);
  assert.equal(capForInline(16, mlp, 32), undefined);
  assert.equal(capForInline(128, mlp, 1), undefined);
  // Only sizes the choice allows count as the cheapest rows; no timings, no cut.
  const fastBig: ProbeTiming[] = [
    { rows: 1, ms: 0.1 },
    { rows: 8, ms: 0.15 },
    { rows: 16, ms: 0.26 },
    { rows: 128, ms: 0.5 },
  ];
  assert.equal(capForInline(16, fastBig, 8), 8);
  assert.equal(capForInline(128, fastBig, 8), undefined);
  assert.equal(capForInline(128, [], 32), undefined);
});
