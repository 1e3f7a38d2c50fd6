// The two-sample KS test. Exact p-values are checked against a brute-force enumeration of every
// interleaving of the two samples (the definition of the null distribution, with none of the lattice
// recursion), and against closed forms; the asymptotic branch against SciPy's rule for choosing it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kolmogorovSf } from './kolmogorov.js';
import { ksExactSf, ksTwoSample, KS_MAX_EXACT_N } from './ks-two-sample.js';

const close = (actual: number, expected: number, relTol: number, what = ''): void => {
  assert.ok(Math.abs(actual - expected) <= relTol * Math.abs(expected), `${what} ${actual} vs ${expected}`);
};

/** C(n, k) exactly. */
function binomial(n: number, k: number): bigint {
  let r = 1n;
  for (let i = 1; i <= k; i++) r = (r * BigInt(n - k + i)) / BigInt(i);
  return r;
}

/** D of two samples straight from the definition: max over all points of |F1 − F2|. */
function dDirect(x: number[], y: number[]): number {
  let d = 0;
  for (const t of [...x, ...y]) {
    const f1 = x.filter((v) => v <= t).length / x.length;
    const f2 = y.filter((v) => v <= t).length / y.length;
    d = Math.max(d, Math.abs(f1 - f2));
  }
  return d;
}

/**
 * Pr(D ≥ d) by enumerating all C(m+n, m) ways to interleave m x-ranks and n y-ranks (no ties): the
 * null distribution itself. D of an interleaving is the largest |i/m − j/n| along it.
 */
function bruteForceSf(m: number, n: number, d: number): number {
  let hits = 0;
  let total = 0;
  const walk = (i: number, j: number, maxD: number): void => {
    if (i === m && j === n) {
      total++;
      if (maxD >= d - 1e-12) hits++;
      return;
    }
    if (i < m) walk(i + 1, j, Math.max(maxD, Math.abs((i + 1) / m - j / n)));
    if (j < n) walk(i, j + 1, Math.max(maxD, Math.abs(i / m - (j + 1) / n)));
  };
  walk(0, 0, 0);
  return hits / total;
}

test('fully separated samples: D = 1 and p = 2 / C(m+n, m) (only "all x first" and "all y first")', () => {
  const r = ksTwoSample([1, 2, 3], [4, 5, 6]);
  assert.equal(r.statistic, 1);
  close(r.pValue, 0.1, 1e-14); // 2 / C(6,3) = 2/20
  assert.equal(r.method, 'exact');
  // The same far in the tail, where computing 1 − Pr(inside) would lose every digit: 2 / C(128, 64) ≈ 8.4e-38.
  const x = Array.from({ length: 64 }, (_, i) => i);
  const big = ksTwoSample(
    x,
    x.map((v) => v + 100),
  );
  close(big.pValue, 2 / Number(binomial(128, 64)), 1e-12);
  // Unequal sizes: 2 / C(30, 10).
  close(
    ksTwoSample(
      Array.from({ length: 10 }, (_, i) => i),
      Array.from({ length: 20 }, (_, i) => 50 + i),
    ).pValue,
    2 / Number(binomial(30, 10)),
    1e-12,
  );
});

test('tiny samples: n = 1 and 2', () => {
  assert.deepEqual(ksTwoSample([1], [2]), { statistic: 1, pValue: 1, method: 'exact' }); // both paths touch D = 1
  assert.deepEqual(ksTwoSample([1], [1]), { statistic: 0, pValue: 1, method: 'exact' });
  // [0] vs [1, 2, 3]: D = 1; the paths with D = 1 are x first or x last: 2 of C(4,1) = 4.
  assert.equal(ksTwoSample([0], [1, 2, 3]).pValue, 0.5);
  assert.equal(ksTwoSample([1, 2], [1, 2]).pValue, 1);
});

test('exact p-values equal brute-force enumeration of every interleaving', () => {
  // Sizes with gcd 1, gcd > 1 and equal sizes; every attainable D for each.
  for (const [m, n] of [
    [4, 6],
    [5, 7],
    [6, 6],
    [3, 9],
    [8, 5],
  ] as const) {
    // ksExactSf takes D in units of 1/lcm(m, n): h = |i·n/g − j·m/g|.
    const g = m === n ? m : [1, 2, 3, 4, 5, 6].filter((k) => m % k === 0 && n % k === 0).pop()!;
    const lcm = (m * n) / g;
    const seen = new Set<number>();
    for (let i = 0; i <= m; i++) for (let j = 0; j <= n; j++) seen.add(Math.abs((i * n - j * m) / g));
    assert.ok(seen.size > 3);
    for (const h of seen) {
      if (h === 0) continue;
      close(ksExactSf(m, n, h), bruteForceSf(m, n, h / lcm), 1e-12, `m=${m} n=${n} h=${h}`);
    }
  }
});

test('D and p from data, ties included, against the definitions', () => {
  const x = [0.1, 0.4, 0.4, 0.9, 1.3, 2.2, 2.2];
  const y = [0.4, 1.1, 1.3, 1.7, 2.5, 3.0, 3.1, 3.3];
  const r = ksTwoSample(x, y);
  close(r.statistic, dDirect(x, y), 1e-15);
  // SciPy applies the no-ties null distribution to the observed D; so does this.
  close(r.pValue, bruteForceSf(7, 8, r.statistic), 1e-12);
});

test("SciPy's method='auto' rule: exact up to 10,000 values per sample, then kstwo.sf(D, round(n1·n2/(n1+n2)))", () => {
  const x = Array.from({ length: KS_MAX_EXACT_N }, (_, i) => i / KS_MAX_EXACT_N);
  assert.equal(
    ksTwoSample(
      x,
      x.map((v) => v * 1.02),
    ).method,
    'exact',
  );
  // 10,001 each: n1·n2/(n1+n2) = 5000.5, which numpy rounds half to even: 5000.
  const a = Array.from({ length: 10001 }, (_, i) => i / 10001);
  const b = a.map((v) => v * 1.02);
  const r = ksTwoSample(a, b);
  assert.equal(r.method, 'asymptotic');
  close(r.pValue, kolmogorovSf(5000, r.statistic), 1e-15);
  // SciPy 1.17.1 ks_2samp on the same data (computed while developing): D = 0.019698030196980354, p =
  // 0.040750765848587056.
  close(r.statistic, 0.019698030196980354, 1e-12);
  close(r.pValue, 0.040750765848587056, 1e-9);
});

test('SciPy reference values for a larger exact case and an asymptotic one with unequal sizes', () => {
  // Deterministic samples; expected values from SciPy 1.17.1 `ks_2samp` while developing.
  const x = Array.from({ length: 1000 }, (_, i) => (i + 0.5) / 1000);
  const y = Array.from({ length: 12000 }, (_, i) => ((i + 0.5) / 12000) ** 1.1);
  const r = ksTwoSample(x, y);
  assert.equal(r.method, 'asymptotic');
  close(r.statistic, 0.035583333333333356, 1e-12);
  close(r.pValue, 0.18846063180921901, 1e-9);
});

test('rejects empty samples and NaN', () => {
  assert.throws(() => ksTwoSample([], [1]), RangeError);
  assert.throws(() => ksTwoSample([1, Number.NaN], [1]), RangeError);
});
