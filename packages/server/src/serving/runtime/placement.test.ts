// The placement rule of `runtime.placement: auto`: when a main-thread copy is worth measuring, and how
// many rows an idle model may run there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  inconclusive,
  INLINE_MAX_MODEL_BYTES,
  inlineRefusal,
  placeFromRuns,
  REPROBE_AFTER_MS,
  timesBatches,
  variableCost,
  WORKER_FILTER_FACTOR,
  workerFilter,
} from './placement.js';

test('inlineRefusal: a bound of 0, no warm-up, a large file or a slow row refuse; a plausible model goes on', () => {
  assert.equal(inlineRefusal(0, [0.05], 1, 1000), 'runtime.inlineMaxRunUs is 0');
  assert.match(inlineRefusal(500, [], 1, 1000)!, /warm-up is off/);
  assert.match(
    inlineRefusal(500, [0.05], 1, INLINE_MAX_MODEL_BYTES + 1)!,
    /model's files \(64 MiB with external data\) are over 64 MiB/,
  );
  // Per row: the fastest worker's run ÷ the warm-up's rows, against the bound × the filter's factor.
  const limit = 500;
  const over = ((WORKER_FILTER_FACTOR * limit + 1) * 4) / 1000;
  assert.match(inlineRefusal(limit, [over, over * 2], 4, 1000)!, /a row ran 10001 µs in a worker at warm-up/);
  assert.equal(inlineRefusal(limit, [over * 0.99, over * 3], 4, 1000), undefined);
  // A cold, contended warm-up several times the bound is still measured for real.
  assert.equal(inlineRefusal(limit, [3], 1, 1000), undefined);
  // The filter alone is the refusal ModelService times again when other versions loaded meanwhile; the
  // other refusals are not the filter's, so they stand.
  assert.equal(workerFilter(limit, [over, over * 2], 4), inlineRefusal(limit, [over, over * 2], 4, 1000));
  assert.equal(workerFilter(limit, [over * 0.99], 4), undefined);
  assert.equal(workerFilter(limit, [], 4), undefined);
  assert.notEqual(inlineRefusal(limit, [over], 4, INLINE_MAX_MODEL_BYTES + 1), workerFilter(limit, [over], 4));
});

test('placeFromRuns: the lower quartile of the one-row runs decides; rows are bounded by the limit over it', () => {
  assert.deepEqual(placeFromRuns(500, [130, 90, 3000, 100, 110]), {
    mode: 'auto',
    inlineMaxRows: 5,
    inlineRunUs: 100,
  });
  // Seven rows of a ~450 µs model on a busy host: the median (570) would keep it off the main thread.
  const busyHost = [570, 452, 610, 449, 566, 590, 575];
  assert.equal(placeFromRuns(500, busyHost).inlineRunUs, 452);
  assert.equal(placeFromRuns(500, busyHost).inlineMaxRows, 1);
  // One fast outlier does not decide alone.
  assert.equal(placeFromRuns(500, [120, 600, 610, 620, 630, 640, 650]).inlineMaxRows, 0);
  // A fast model: many rows, but never 0 and never a division by a zero run.
  assert.equal(placeFromRuns(500, [20, 21, 19]).inlineMaxRows, 26);
  assert.equal(placeFromRuns(500, [0, 0, 0]).inlineMaxRows, 500);
  assert.equal(placeFromRuns(500, [499, 500, 501]).inlineMaxRows, 1);
  const slow = placeFromRuns(500, [600, 700, 650]);
  assert.equal(slow.inlineMaxRows, 0);
  assert.equal(slow.inlineRunUs, 600);
  assert.match(slow.reason!, /a row ran 600 µs on the main thread, over runtime.inlineMaxRunUs \(500\)/);
  // Nothing measured: never inline.
  assert.equal(placeFromRuns(500, []).inlineMaxRows, 0);
});

test('one core: the largest batch timed within the bound runs on the main thread, loaded or not', () => {
  const rows = (n: number, us: number) => ({ rows: n, runsUs: [us, us * 1.1, us * 0.99, us * 3, us * 1.05] });
  // mlp-bench on the seventeenth session's host: ~100 µs a row alone, ~16 µs a row in batches.
  const one = [101, 98, 130, 99, 102, 100, 97];
  const placed = placeFromRuns(500, one, [rows(2, 120), rows(4, 110), rows(8, 190), rows(16, 260), rows(32, 520)]);
  assert.equal(placed.inlineMaxRows, 5);
  assert.equal(placed.inlineRunUs, 98);
  // The lower quartile of each size's runs: 32 rows ran 520 µs (the disturbed 3× run does not count).
  assert.equal(placed.loadedMaxRows, 16);
  assert.equal(placed.loadedRunUs, 260);
  // Sizes are taken in order and the first one over the bound ends them: a later fast figure is noise.
  assert.equal(placeFromRuns(500, one, [rows(16, 260), rows(2, 120), rows(32, 600), rows(64, 450)]).loadedMaxRows, 16);
  // Never fewer rows than one row's figure allows (the batch timings were disturbed).
  const noisy = placeFromRuns(500, one, [rows(2, 900)]);
  assert.equal(noisy.loadedMaxRows, 5);
  assert.equal(noisy.loadedRunUs, 490);
  // A tiny model fits every probed size.
  assert.equal(placeFromRuns(500, [20, 20, 20], [rows(64, 18), rows(128, 19)]).loadedMaxRows, 128);
  // More cores (no sizes timed), or a row over the bound: no loaded batch runs on the main thread.
  assert.equal(placeFromRuns(500, one).loadedMaxRows, undefined);
  assert.equal(placeFromRuns(500, [600, 700, 650], [rows(2, 100)]).loadedMaxRows, undefined);
  // Sizes are timed only on one core and for a row within the bound.
  assert.equal(timesBatches(true, 500, one), true);
  assert.equal(timesBatches(false, 500, one), false);
  assert.equal(timesBatches(true, 500, [600, 700, 650]), false);
  assert.equal(timesBatches(true, 0, one), false);
});

test('variableCost: padded or dynamically shaped inputs make one timed row meaningless; fixed shapes do not', () => {
  const tabular = [
    { name: 'x', type: 'tensor', shape: [-1, 8] },
    { name: 'age', type: 'number' },
  ];
  assert.equal(variableCost(tabular, []), undefined);
  assert.match(variableCost(tabular, ['input_ids'])!, /input "input_ids" is padded per batch/);
  assert.match(
    variableCost([...tabular, { name: 'img', type: 'tensor', shape: [-1, 3, -1, -1] }], [])!,
    /input "img" has a dynamic axis besides the batch/,
  );
  // A model without a batch axis whose one instance has a free length varies too.
  assert.match(variableCost([{ name: 'seq', type: 'tensor', shape: [1, -1] }], [])!, /input "seq"/);
});

test('a probe is timed again when the workers were busy, its fastest row was within the bound or the loop was busy', () => {
  const quiet = [20, 25, 22, 30, 24, 21, 26];
  const busy = [2000, 2400, 2100, 2600, 2200, 2300, 2500];
  const slowMachine = [40, 900, 950, 1000, 980, 920, 930];
  const placed = placeFromRuns(500, slowMachine);
  assert.equal(placed.inlineMaxRows, 0);
  assert.match(inconclusive(500, slowMachine, quiet, placed)!, /fastest row \(40 µs\) was within it/);
  // Every row over the bound while bare turns of the loop were as slow: the loop's time, not the model's.
  const loaded = [2100, 2500, 2200, 6400, 2300, 2150, 2700];
  assert.match(inconclusive(500, loaded, busy, placeFromRuns(500, loaded))!, /event loop was busy/);
  // Every row over the bound on a quiet loop: the model is slow.
  const slowModel = [600, 620, 640, 700, 610, 605, 615];
  assert.equal(inconclusive(500, slowModel, quiet, placeFromRuns(500, slowModel)), undefined);
  // Placed on the main thread: nothing to time again.
  const fast = [40, 42, 41, 39, 45, 40, 44];
  assert.equal(inconclusive(500, fast, busy, placeFromRuns(500, fast)), undefined);
  // Main-thread runs turned off, or nothing measured.
  assert.equal(inconclusive(0, slowMachine, busy, placeFromRuns(0, slowMachine)), undefined);
  assert.equal(inconclusive(500, [], [], placeFromRuns(500, [])), undefined);
  // The worker threads busy while it ran (versions loading, batches): proves nothing, whether it placed
  // the version in the workers or on the main thread (with fewer rows than a quiet machine would allow).
  const crowdedFast = [120, 110, 130, 125, 115, 118, 122];
  assert.match(
    inconclusive(500, crowdedFast, quiet, placeFromRuns(500, crowdedFast), true)!,
    /worker threads had other work/,
  );
  assert.match(inconclusive(500, slowModel, quiet, placeFromRuns(500, slowModel), true)!, /other work/);
  assert.equal(inconclusive(0, slowModel, quiet, placeFromRuns(0, slowModel), true), undefined);
  assert.ok(REPROBE_AFTER_MS.length > 0 && REPROBE_AFTER_MS.every((ms, i) => i === 0 || ms > REPROBE_AFTER_MS[i - 1]!));
});
