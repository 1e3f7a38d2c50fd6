// Column-level drift: which test each column gets, which side of the threshold drifts, what is
// dropped before testing, the columns that cannot be tested, and the dataset verdict.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detectDrift } from './detect-drift.js';
import { DriftError } from './errors.js';
import { driftFromRecords } from './records.js';
import type { CellValue, Column, ColumnDrift, ColumnDriftResult, DriftOptions, UntestedColumn } from './types.js';
import { inferColumnType } from './values.js';

const tested = (r: ColumnDriftResult | undefined): ColumnDrift => {
  assert.ok(r && r.testable, `expected a tested column, got ${JSON.stringify(r)}`);
  return r;
};
const untested = (r: ColumnDriftResult | undefined): UntestedColumn => {
  assert.ok(r && !r.testable, `expected an untested column, got ${JSON.stringify(r)}`);
  return r;
};
/** n values cycling through `distinct` values (offset by `shift`). */
const cycle = (n: number, distinct: number, shift = 0): number[] =>
  Array.from({ length: n }, (_, i) => (i % distinct) + shift + 0.5);
const one = (
  ref: CellValue[],
  cur: CellValue[],
  options: DriftOptions = {},
  type?: Column['type'],
): ColumnDriftResult =>
  detectDrift(
    [{ name: 'c', values: ref, ...(type && { type }) }],
    [{ name: 'c', values: cur, ...(type && { type }) }],
    options,
  ).columns[0]!;

test("default test by type, reference size and number of distinct values (Evidently's table)", () => {
  const cases: Array<[Column['type'], number, number, string]> = [
    ['numerical', 1000, 6, 'ks'],
    ['numerical', 1000, 5, 'chisquare'],
    ['numerical', 1000, 3, 'chisquare'],
    ['numerical', 1000, 2, 'z'],
    ['numerical', 1000, 1, 'z'],
    ['numerical', 1001, 6, 'wasserstein'],
    ['numerical', 1001, 5, 'jensenshannon'],
    ['numerical', 1001, 2, 'jensenshannon'],
    ['categorical', 1000, 3, 'chisquare'],
    ['categorical', 1000, 2, 'z'],
    ['categorical', 1001, 3, 'jensenshannon'],
    ['categorical', 1001, 2, 'jensenshannon'],
  ];
  for (const [type, nRef, distinct, expected] of cases) {
    const r = tested(one(cycle(nRef, distinct), cycle(50, distinct), {}, type));
    assert.equal(r.test, expected, `${type} n_ref=${nRef} n_values=${distinct}`);
    assert.equal(r.nValues, distinct);
  }
  // n_values counts reference and current together: 3 + 3 new = 6 → ks.
  assert.equal(tested(one(cycle(100, 3), cycle(100, 3, 10), {}, 'numerical')).test, 'ks');
  // n_ref counts values left after dropping missing ones: 1001 rows with one null → 1000 → ks, not wasserstein.
  assert.equal(tested(one([...cycle(1000, 6), null], cycle(50, 6), {}, 'numerical')).test, 'ks');
});

test('thresholds: ks drifts at p ≤ t, chisquare and z at p < t, distances at d ≥ t', () => {
  const ks = tested(one([1.5, 2.5, 3.5, 4.5, 5.5, 6.5], [3.5, 4.5, 5.5, 6.5, 7.5, 8.5]));
  assert.equal(ks.test, 'ks');
  assert.equal(
    tested(
      one([1.5, 2.5, 3.5, 4.5, 5.5, 6.5], [3.5, 4.5, 5.5, 6.5, 7.5, 8.5], {
        columns: { c: { threshold: ks.pValue! } },
      }),
    ).drift,
    true,
  );
  const cat = ['a', 'b', 'c', 'a'];
  const chi = tested(one(cat, ['a', 'a', 'a', 'b', 'c']));
  assert.equal(chi.test, 'chisquare');
  assert.equal(
    tested(one(cat, ['a', 'a', 'a', 'b', 'c'], { columns: { c: { threshold: chi.pValue! } } })).drift,
    false,
  );
  const z = tested(one(['a', 'b'], ['a', 'a', 'b']));
  assert.equal(z.test, 'z');
  assert.equal(tested(one(['a', 'b'], ['a', 'a', 'b'], { columns: { c: { threshold: z.pValue! } } })).drift, false);
  const big = cycle(2000, 50);
  const w = tested(
    one(
      big,
      big.map((x) => x + 1),
    ),
  );
  assert.equal(w.test, 'wasserstein');
  assert.equal(
    tested(
      one(
        big,
        big.map((x) => x + 1),
        { columns: { c: { threshold: w.distance! } } },
      ),
    ).drift,
    true,
  );
  assert.equal(
    tested(
      one(
        big,
        big.map((x) => x + 1),
        { columns: { c: { threshold: w.distance! * 1.0000001 } } },
      ),
    ).drift,
    false,
  );
});

test('a large numerical reference: normed Wasserstein worked by hand', () => {
  // ref 0..1999: population std = √((n² − 1)/12) = 577.3501…; cur = ref + 100 → W1 = 100.
  const ref = Array.from({ length: 2000 }, (_, i) => i);
  const r = tested(
    one(
      ref,
      ref.map((x) => x + 100),
      {},
      'numerical',
    ),
  );
  assert.equal(r.test, 'wasserstein');
  assert.ok(Math.abs(r.distance! - 100 / Math.sqrt((2000 ** 2 - 1) / 12)) < 1e-9);
  assert.equal(r.drift, true); // 0.1732 ≥ 0.1
  assert.equal(r.threshold, 0.1);
});

test('a large categorical reference: Jensen-Shannon distance worked by hand', () => {
  // ref 3/4 a, 1/4 b (n = 2000); cur 1/2, 1/2. m = (5/8, 3/8).
  const ref = [...Array<string>(1500).fill('a'), ...Array<string>(500).fill('b')];
  const cur = [...Array<string>(50).fill('a'), ...Array<string>(50).fill('b')];
  const js2 =
    0.5 * (0.75 * Math.log(0.75 / 0.625) + 0.25 * Math.log(0.25 / 0.375)) +
    0.5 * (0.5 * Math.log(0.5 / 0.625) + 0.5 * Math.log(0.5 / 0.375));
  const r = tested(one(ref, cur));
  assert.equal(r.test, 'jensenshannon');
  assert.ok(Math.abs(r.statistic - Math.sqrt(js2)) < 1e-12);
  assert.equal(r.drift, Math.sqrt(js2) >= 0.1);
});

test('PSI and KL on request', () => {
  // ref a,a,b,b; cur a,b,b,b: shares (½, ½) vs (¼, ¾), no empty bins.
  const psi = tested(one(['a', 'a', 'b', 'b'], ['a', 'b', 'b', 'b'], { columns: { c: { test: 'psi' } } }));
  assert.equal(psi.testLabel, 'PSI');
  assert.ok(Math.abs(psi.distance! - (0.25 * Math.LN2 + 0.25 * Math.log(1.5))) < 1e-15);
  assert.equal(psi.drift, true); // 0.2747 ≥ 0.1
  const kl = tested(
    one(['a', 'a', 'b', 'b'], ['a', 'b', 'b', 'b'], { columns: { c: { test: 'kl_div', threshold: 0.2 } } }),
  );
  assert.ok(Math.abs(kl.distance! - (0.5 * Math.LN2 + 0.5 * Math.log(2 / 3))) < 1e-15);
  assert.equal(kl.drift, false); // 0.1438 < 0.2
});

test('missing values (null, NaN, empty string) are dropped; infinities too', () => {
  const r = tested(one([1.5, null, Number.NaN, '', 2.5, Infinity, 3.5, -Infinity], [1.5, 2.5, null, 3.5, 4.5]));
  assert.equal(r.nReference, 3);
  assert.equal(r.nCurrent, 4);
  const c = tested(one(['x', null, '', 'y', 'z'], ['x', 'y', 'z', Number.NaN]));
  assert.equal(c.type, 'categorical');
  assert.equal(c.nReference, 3);
  assert.equal(c.nCurrent, 3);
  // Numeric strings in a numerical column are numbers (CSV, logs).
  assert.equal(tested(one(['1.5', '2.5', '3.5'], [1.5, 2.5, 3.5], {}, 'numerical')).pValue, 1);
});

test('columns that cannot be tested are reported with a reason, not thrown', () => {
  assert.match(untested(one([null, null], [1.5, 2.5], {}, 'numerical')).reason, /reference has no values/);
  assert.match(untested(one([1.5], [null, Number.NaN, ''], {}, 'numerical')).reason, /current has no values/);
  const none = untested(one([null], [null]));
  assert.equal(none.type, undefined);
  assert.match(none.reason, /no values in either dataset/);
  assert.match(untested(one([1.5, 'abc'], [1.5], {}, 'numerical')).reason, /non-numeric value: "abc"/);
  const report = detectDrift(
    [
      { name: 'a', values: [1] },
      { name: 'b', values: [1] },
    ],
    [
      { name: 'a', values: [1] },
      { name: 'z', values: [1] },
    ],
  );
  assert.deepEqual(
    report.columns.map((c) => [c.column, c.testable]),
    [
      ['a', true],
      ['b', false],
      ['z', false],
    ],
  );
  assert.match(untested(report.columns[1]).reason, /not in the current data/);
  assert.match(untested(report.columns[2]).reason, /not in the reference data/);
  assert.equal(report.dataset.testedColumns, 1);
});

test('constant columns, a single category, new categories, tiny samples', () => {
  const same = tested(one([5, 5, 5], [5, 5], {}, 'numerical'));
  assert.deepEqual([same.test, same.pValue, same.drift], ['z', 1, false]);
  const moved = tested(one([5, 5, 5], [6, 6], {}, 'numerical'));
  assert.equal(moved.test, 'z');
  assert.ok(Math.abs(moved.statistic + Math.sqrt(5)) < 1e-12); // worked in stattests.test.ts
  assert.equal(moved.drift, true); // p = 0.0253
  const single = tested(one(['a', 'a'], ['a'], { columns: { c: { test: 'chisquare' } } }));
  assert.deepEqual([single.pValue, single.drift], [1, false]);
  const fresh = tested(one(['a', 'b', 'c', 'a'], ['a', 'b', 'c', 'd']));
  assert.deepEqual([fresh.test, fresh.statistic, fresh.pValue, fresh.drift], ['chisquare', Infinity, 0, true]);
  const tiny = tested(one([1.5], [2.5], { columns: { c: { test: 'ks' } } }));
  assert.deepEqual([tiny.statistic, tiny.pValue, tiny.drift], [1, 1, false]);
  const two = tested(one([1.5, 2.5], [1.5, 2.5]));
  assert.deepEqual([two.test, two.pValue], ['z', 1]);
  // Wasserstein on a constant reference divides by the 0.001 floor.
  const w = tested(one([3, 3], [3, 4], { columns: { c: { test: 'wasserstein' } } }, 'numerical'));
  assert.ok(Math.abs(w.distance! - 0.5 / 0.001) < 1e-9);
});

test('type inference: floats numerical; strings, booleans and up to 10 distinct integers categorical', () => {
  assert.equal(inferColumnType([1.5, 2, 3]), 'numerical');
  assert.equal(inferColumnType([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), 'categorical');
  assert.equal(inferColumnType([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]), 'numerical');
  assert.equal(inferColumnType(['a', 'b']), 'categorical');
  assert.equal(inferColumnType([true, false]), 'categorical');
  assert.equal(inferColumnType([1.5, 'a', true]), 'categorical'); // mixed
  assert.equal(inferColumnType([null, Number.NaN, '', Infinity]), undefined);
  // Explicit lists beat inference, a column's own type beats the lists.
  const ints = Array.from({ length: 30 }, (_, i) => i % 3);
  assert.equal(tested(one(ints, ints)).type, 'categorical');
  assert.equal(
    tested(detectDrift([{ name: 'c', values: ints }], [{ name: 'c', values: ints }], { numerical: ['c'] }).columns[0])
      .type,
    'numerical',
  );
  assert.equal(
    tested(
      detectDrift([{ name: 'c', values: ints, type: 'categorical' }], [{ name: 'c', values: ints }], {
        numerical: ['c'],
      }).columns[0],
    ).type,
    'categorical',
  );
  // A mixed column is tested as categories, numbers and strings alike.
  assert.equal(tested(one([1, 'a', true, 1], [1, 'a', 'a'])).test, 'chisquare');
});

test('dataset drift: share of drifted tested columns ≥ datasetDriftShare (default 0.5)', () => {
  const cols = (shift: number): Column[] => [
    { name: 'drifts', values: ['a', 'b', 'c', 'a', 'b', 'c'].map((v) => (shift ? 'd' : v)) },
    { name: 'stays', values: ['a', 'b', 'c', 'a', 'b', 'c'] },
    { name: 'empty', values: [null, null] },
  ];
  const report = detectDrift(cols(0), cols(1));
  assert.deepEqual(report.dataset, {
    testedColumns: 2,
    driftedColumns: 1,
    share: 0.5,
    driftShareThreshold: 0.5,
    datasetDrift: true,
  });
  assert.equal(detectDrift(cols(0), cols(1), { datasetDriftShare: 0.6 }).dataset.datasetDrift, false);
  assert.equal(detectDrift([], []).dataset.datasetDrift, false);
});

test('bad options throw DriftError("drift-invalid-options")', () => {
  const isInvalid = (e: unknown): boolean => e instanceof DriftError && e.code === 'drift-invalid-options';
  const cols: Column[] = [{ name: 'c', values: ['a', 'b'] }];
  assert.throws(() => detectDrift(cols, cols, { columns: { c: { test: 'ks' } } }), isInvalid); // ks on categories
  assert.throws(() => detectDrift(cols, cols, { columns: { c: { test: 'nope' as 'ks' } } }), isInvalid);
  assert.throws(() => detectDrift(cols, cols, { columns: { c: { threshold: -1 } } }), isInvalid);
  assert.throws(() => detectDrift(cols, cols, { datasetDriftShare: 2 }), isInvalid);
  assert.throws(() => detectDrift(cols, cols, { numerical: ['c'], categorical: ['c'] }), isInvalid);
  assert.throws(() => detectDrift([...cols, ...cols], cols), isInvalid);
});

test('driftFromRecords: schema picks and types the fields; without one, every reference field is inferred', () => {
  const ref = Array.from({ length: 40 }, (_, i) => ({
    hour: i / 2,
    origin: ['ATL', 'SFO', 'BOS'][i % 3],
    requestId: `r${i}`,
  }));
  const cur = ref.map((r) => ({ ...r, hour: r.hour + 12, extra: 1n }));
  const withSchema = driftFromRecords(ref, cur, { numerical: ['hour'], categorical: ['origin'] });
  assert.deepEqual(
    withSchema.columns.map((c) => c.column),
    ['hour', 'origin'],
  );
  assert.equal(tested(withSchema.columns[0]).drift, true);
  assert.equal(tested(withSchema.columns[1]).drift, false);
  const inferred = driftFromRecords(ref, cur);
  assert.deepEqual(
    inferred.columns.map((c) => [c.column, c.testable && c.type]),
    [
      ['hour', 'numerical'],
      ['origin', 'categorical'],
      ['requestId', 'categorical'],
    ],
  );
  // A schema field the log lacks: untested, not a crash.
  const missing = driftFromRecords(
    ref,
    cur.map(({ origin: _o, ...rest }) => rest),
    { numerical: [], categorical: ['origin'] },
  );
  assert.match(untested(missing.columns[0]).reason, /current has no values/);
});
