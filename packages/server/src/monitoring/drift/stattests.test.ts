// The discrete tests, the Wasserstein distance, the binning and the divergences, each on examples
// small enough to work out by hand. P-values are checked against closed forms of the chi-squared and
// normal tails (erfc by its Taylor series, written here), not against the library the code uses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { binnedShares, fillEmptyShares, histogramCounts, sturgesBinEdges } from './binning.js';
import { chiSquareSf, chiSquareTest } from './chi-square.js';
import { jensenShannonDistance, klDivergence, populationStabilityIndex } from './divergences.js';
import { normedWasserstein, populationStd, wassersteinDistance } from './wasserstein.js';
import { zTest } from './z-test.js';

const close = (actual: number, expected: number, tol: number, what = ''): void => {
  assert.ok(Math.abs(actual - expected) <= tol, `${what} ${actual} vs ${expected} (tolerance ${tol})`);
};

/** erfc(x) = 1 − (2/√π) Σ (−1)ⁿ x^(2n+1) / (n!(2n+1)); exact to ~1e-15 for 0 ≤ x ≤ 2. */
function erfc(x: number): number {
  let sum = 0;
  let term = x;
  for (let n = 0; n < 80; n++) {
    sum += term / (2 * n + 1);
    term *= (-x * x) / (n + 1);
  }
  return 1 - (2 / Math.sqrt(Math.PI)) * sum;
}

test('chi-squared tails against closed forms: df 1 → erfc(√(x/2)), df 2 → e^(−x/2), df 4 → e^(−x/2)(1 + x/2)', () => {
  for (const x of [0.3, 1, 2, 3.84, 6]) {
    close(chiSquareSf(x, 1), erfc(Math.sqrt(x / 2)), 1e-13, `df1 x=${x}`);
    close(chiSquareSf(x, 2), Math.exp(-x / 2), 1e-14, `df2 x=${x}`);
    close(chiSquareSf(x, 4), Math.exp(-x / 2) * (1 + x / 2), 1e-14, `df4 x=${x}`);
  }
  // Far tail keeps its digits (1 − cdf would give 0): df 2, x = 200 → e^(−100).
  close(chiSquareSf(200, 2) / Math.exp(-100), 1, 1e-12);
  assert.equal(chiSquareSf(Infinity, 3), 0);
});

test('chi-squared: current counts against reference proportions scaled to the current size', () => {
  // ref a,a,b,b; cur a,a,a,b → expected 2, 2; observed 3, 1; χ² = 1/2 + 1/2 = 1 on 1 df.
  const r = chiSquareTest(['a', 'a', 'b', 'b'], ['a', 'a', 'a', 'b']);
  assert.equal(r.statistic, 1);
  assert.equal(r.degreesOfFreedom, 1);
  close(r.pValue, erfc(Math.sqrt(0.5)), 1e-13); // 0.3173…
  // Scaling: ref (n=4) a,a,b,b; cur (n=8) 6 a, 2 b → expected 4, 4; χ² = 4/4 + 4/4 = 2 → p = erfc(1).
  const s = chiSquareTest(['a', 'a', 'b', 'b'], ['a', 'a', 'a', 'a', 'a', 'a', 'b', 'b']);
  assert.equal(s.statistic, 2);
  close(s.pValue, erfc(1), 1e-13);
  // Three categories: expected 2, 2, 2; observed 4, 1, 1; χ² = (4 + 1 + 1)/2 = 3 on 2 df → e^(−1.5).
  const t = chiSquareTest(['a', 'a', 'b', 'b', 'c', 'c'], ['a', 'a', 'a', 'a', 'b', 'c']);
  assert.equal(t.statistic, 3);
  close(t.pValue, Math.exp(-1.5), 1e-14);
  // Identical samples: χ² = 0, p = 1.
  assert.deepEqual(chiSquareTest([1, 2, 3], [3, 2, 1]), { statistic: 0, pValue: 1, degreesOfFreedom: 2 });
});

test('chi-squared: a value reference never had makes χ² infinite and p = 0; a single shared value gives p = 1', () => {
  assert.deepEqual(chiSquareTest(['a', 'b'], ['a', 'b', 'c']), { statistic: Infinity, pValue: 0, degreesOfFreedom: 2 });
  // A value missing from current only is fine: ref a,b; cur a,a → expected 1, 1; observed 2, 0 → χ² = 1 + 1 = 2 on 1
  // df.
  const m = chiSquareTest(['a', 'b'], ['a', 'a']);
  assert.equal(m.statistic, 2);
  close(m.pValue, erfc(1), 1e-13);
  assert.deepEqual(chiSquareTest(['a', 'a'], ['a']), { statistic: 0, pValue: 1, degreesOfFreedom: 0 });
});

test('z-test: pooled two-proportion z, first sorted value → 0, two-sided p = erfc(|z|/√2)', () => {
  // ref a,a,b,b; cur a,b,b,b: shares of "not a" 0.5 and 0.75, pooled 0.625;
  // z = −0.25 / √(0.625·0.375·(1/4 + 1/4)) = −0.7302967…
  const r = zTest(['a', 'a', 'b', 'b'], ['a', 'b', 'b', 'b']);
  close(r.statistic, -0.25 / Math.sqrt(0.625 * 0.375 * 0.5), 1e-15);
  close(r.pValue, erfc(Math.abs(r.statistic) / Math.SQRT2), 1e-13); // 0.4652…
  // Two different constants: ref 3× a, cur 2× b → shares 0 and 1, pooled 0.4: z = −1/√(0.24·(1/3 + 1/2)) = −√5.
  const c = zTest(['a', 'a', 'a'], ['b', 'b']);
  close(c.statistic, -Math.sqrt(5), 1e-14);
  close(c.pValue, erfc(Math.sqrt(5) / Math.SQRT2), 1e-13); // 0.0253…
  // The same single value on both sides: p = 1 (Evidently's special case; z would be 0/0).
  assert.deepEqual(zTest([true, true].map(String), ['true']), { statistic: 0, pValue: 1 });
});

test('z-test sorts numbers numerically, so 2 (not 10) is the value mapped to 0', () => {
  // ref 2,2,10; cur 2,10,10 → shares of "not 2": 1/3 and 2/3 → z negative. Sorted as text, "10" < "2" would flip the
  // sign.
  assert.ok(zTest([2, 2, 10], [2, 10, 10]).statistic < 0);
  assert.ok(zTest(['2', '2', '10'], ['2', '10', '10']).statistic < 0);
});

test('Wasserstein-1: area between the ECDFs; normed by the population std of the reference', () => {
  assert.equal(wassersteinDistance([0, 2], [1, 3]), 1); // a shift by 1 moves all mass by 1
  assert.equal(wassersteinDistance([0], [0, 1]), 0.5); // half the mass moves from 0 to 1
  close(wassersteinDistance([1, 2, 3, 4], [4, 3, 2, 1]), 0, 0);
  close(wassersteinDistance([0, 1, 2, 3], [10.5, 11.5, 12.5, 13.5]), 10.5, 1e-12);
  assert.equal(populationStd([0, 2]), 1);
  assert.equal(normedWasserstein([0, 2], [1, 3]), 1);
  // Constant reference: std 0 is floored at 0.001.
  close(normedWasserstein([5, 5, 5], [5, 5, 6]), 1 / 3 / 0.001, 1e-9);
  assert.throws(() => wassersteinDistance([1], [Number.NaN]), RangeError);
});

test("Sturges edges as numpy's histogram_bin_edges(bins='sturges') places them", () => {
  // 0..99: n = 100, bins = ⌈99 / (99 / (log2 100 + 1))⌉ = ⌈7.64⌉ = 8 equal bins of 12.375.
  const values = Array.from({ length: 100 }, (_, i) => i);
  assert.deepEqual([...sturgesBinEdges(values)], [0, 12.375, 24.75, 37.125, 49.5, 61.875, 74.25, 86.625, 99]);
  // Constant data: one bin, v ± 0.5.
  assert.deepEqual([...sturgesBinEdges([3, 3, 3])], [2.5, 3.5]);
  // Integer data with bins narrower than 1 get width 1: 2^20 values in 0..20 → log2 n + 1 = 21 > 20 = range
  // (numpy 2.4: 20 bins for the int64 array, 21 for the same values as float64).
  const many = Array.from({ length: 2 ** 20 }, (_, i) => i % 21);
  assert.equal(sturgesBinEdges(many, true).length - 1, 20);
  assert.equal(sturgesBinEdges(many, false).length - 1, 21);
});

test('histogram bins are half-open except the last, which includes its right edge', () => {
  assert.deepEqual([...histogramCounts([0, 1, 1.5, 2, 3], new Float64Array([0, 1.5, 3]))], [2, 3]);
  assert.deepEqual([...histogramCounts([-1, 4], new Float64Array([0, 1.5, 3]))], [0, 0]);
});

test('empty bins get 1e-4, or the smallest share / 1e6 when that share is itself ≤ 1e-4', () => {
  assert.deepEqual([...fillEmptyShares(Float64Array.from([0.5, 0, 0.5]))], [0.5, 1e-4, 0.5]);
  assert.deepEqual([...fillEmptyShares(Float64Array.from([0.00005, 0, 0.99995]))], [0.00005, 0.00005 / 1e6, 0.99995]);
});

test('binned shares: per value below 21 distinct reference values, Sturges bins above', () => {
  const num = (v: number[]) => ({ type: 'numerical' as const, values: Float64Array.from(v), integer: false });
  const perValue = binnedShares(num([1, 1, 2, 3]), num([3, 4]), false);
  assert.deepEqual([...perValue.reference], [0.5, 0.25, 0.25, 0]);
  assert.deepEqual([...perValue.current], [0, 0, 0.5, 0.5]);
  assert.equal(perValue.edges, undefined);
  const ref = Array.from({ length: 21 }, (_, i) => i); // 21 distinct → binned
  const binned = binnedShares(num(ref), num([0, 20]), false);
  assert.ok(binned.edges);
  // 23 values over [0, 20]: ⌈log2 23 + 1⌉ = 6 bins of 20/6.
  assert.equal(binned.edges.length, 7);
  assert.deepEqual([...binned.current], [0.5, 0, 0, 0, 0, 0.5]);
  const cat = binnedShares(
    { type: 'categorical', values: ['x', 'y'] },
    { type: 'categorical', values: ['y', 'y', 'z', 'z'] },
    true,
  );
  assert.deepEqual([...cat.reference], [0.5, 0.5, 1e-4]);
  assert.deepEqual([...cat.current], [1e-4, 0.5, 0.5]);
});

test('Jensen-Shannon distance, PSI and KL on hand-computed shares (natural log)', () => {
  // Disjoint distributions: the largest JS divergence is ln 2, the distance √(ln 2).
  close(jensenShannonDistance([1, 0], [0, 1]), Math.sqrt(Math.LN2), 1e-15);
  assert.equal(jensenShannonDistance([0.2, 0.8], [0.2, 0.8]), 0);
  // p = (1/2, 1/2), q = (1/4, 3/4), m = (3/8, 5/8):
  // JS² = ½[½ ln(4/3) + ½ ln(4/5)] + ½[¼ ln(2/3) + ¾ ln(6/5)]
  const js2 =
    0.5 * (0.5 * Math.log(4 / 3) + 0.5 * Math.log(4 / 5)) + 0.5 * (0.25 * Math.log(2 / 3) + 0.75 * Math.log(6 / 5));
  close(jensenShannonDistance([0.5, 0.5], [0.25, 0.75]), Math.sqrt(js2), 1e-15);
  // Unnormalised input is normalised, as SciPy does.
  close(jensenShannonDistance([2, 2], [1, 3]), Math.sqrt(js2), 1e-15);
  // PSI = (½ − ¼) ln 2 + (½ − ¾) ln(2/3) = ¼ ln 2 + ¼ ln 1.5
  close(populationStabilityIndex([0.5, 0.5], [0.25, 0.75]), 0.25 * Math.LN2 + 0.25 * Math.log(1.5), 1e-15);
  // KL(p‖q) = ½ ln 2 + ½ ln(2/3)
  close(klDivergence([0.5, 0.5], [0.25, 0.75]), 0.5 * Math.LN2 + 0.5 * Math.log(2 / 3), 1e-15);
  assert.equal(klDivergence([1, 0], [0.5, 0.5]), Math.LN2);
});
