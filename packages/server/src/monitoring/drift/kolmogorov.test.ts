// The one-sample Kolmogorov distribution against values derived without this module's code paths:
// closed forms worked out by hand, Massey's published critical values, agreement between two different
// methods in the region where both apply, and Kolmogorov's limiting law for very large n.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { durbinCdf, kolmogorovSf, pelzGoodCdf, smirnovSf } from './kolmogorov.js';

const close = (actual: number, expected: number, tol: number, what = ''): void => {
  assert.ok(Math.abs(actual - expected) <= tol, `${what} ${actual} vs ${expected} (tolerance ${tol})`);
};

test('closed forms at the ends of the range (worked by hand)', () => {
  // n = 1: D_1 = max(U, 1 − U), so Pr(D_1 ≥ d) = 2(1 − d) for d ≥ 1/2.
  close(kolmogorovSf(1, 0.7), 0.6, 1e-15);
  // n·d ≤ 1/2: D_n ≥ 1/(2n) always.
  assert.equal(kolmogorovSf(10, 0.04), 1);
  // 1/2n < d ≤ 1/n: Pr(D_n < d) = n!/nⁿ (2nd − 1)ⁿ. n = 3, d = 0.3: 6/27 · 0.8³ = 0.113777…
  close(kolmogorovSf(3, 0.3), 1 - (6 / 27) * 0.8 ** 3, 1e-14);
  // d ≥ 1: impossible; d ≤ 0: certain.
  assert.equal(kolmogorovSf(5, 1), 0);
  assert.equal(kolmogorovSf(5, 0), 1);
});

test('the one-sided Smirnov tail by hand: n = 2, d = 0.6 has the single term (1 − d)² = 0.16', () => {
  close(smirnovSf(2, 0.6), 0.16, 1e-15);
  // n = 3, d = 0.5: j ∈ {0, 1}: d·[(1−d)³/d + 3·(1 − d − 1/3)²·(d + 1/3)⁰] = 0.125 + 1.5·(1/6)² = 0.1666…
  close(smirnovSf(3, 0.5), 0.125 + 1.5 / 36, 1e-15);
  // For d ≥ 1/2 the two one-sided events are disjoint: the two-sided tail is exactly twice the one-sided.
  close(kolmogorovSf(3, 0.5), 2 * smirnovSf(3, 0.5), 1e-15);
});

test("Massey's (1951) two-sided critical values: Pr(D_n ≥ c) = 0.05 and 0.01", () => {
  // Tabulated to five decimals of c, so p is right to about 1e-4.
  const table: Array<[number, number, number]> = [
    [5, 0.56328, 0.05],
    [10, 0.40925, 0.05],
    [20, 0.29408, 0.05],
    [30, 0.2417, 0.05],
    [40, 0.21012, 0.05],
    [5, 0.66853, 0.01],
    [10, 0.48893, 0.01],
    [20, 0.35241, 0.01],
  ];
  for (const [n, c, alpha] of table) close(kolmogorovSf(n, c), alpha, 2e-4, `n=${n} c=${c}`);
});

test("Durbin's exact matrix method and the Pelz-Good series agree where both are valid", () => {
  // Two unrelated computations of the same CDF; Pelz-Good's error shrinks as n grows.
  for (const [n, tol] of [
    [200, 2e-6],
    [1000, 1e-7],
    [5000, 1e-8],
  ] as const) {
    for (const lambda of [0.5, 1, 1.3]) {
      const d = lambda / Math.sqrt(n);
      close(durbinCdf(n, d), pelzGoodCdf(n, d), tol, `n=${n} λ=${lambda}`);
    }
  }
});

test("very large n approaches Kolmogorov's limit Q(λ) = 2 Σ (−1)^(k−1) exp(−2k²λ²)", () => {
  const Q = (l: number): number => {
    let s = 0;
    for (let k = 1; k < 100; k++) s += 2 * (-1) ** (k - 1) * Math.exp(-2 * k * k * l * l);
    return s;
  };
  // Q(1.3581) = 0.05 and Q(1.6276) = 0.01: the textbook asymptotic critical values 1.36/√n and 1.63/√n.
  close(Q(1.3581), 0.05, 1e-5);
  const n = 1_000_000;
  for (const lambda of [0.6, 1, 1.3581, 1.6276, 2])
    close(kolmogorovSf(n, lambda / 1000), Q(lambda), 5e-4, `λ=${lambda}`);
});

test('SciPy reference values (scipy.stats.kstwo.sf, SciPy 1.17.1, computed while developing)', () => {
  // One point per method region; relative agreement to 1e-9.
  const cases: Array<[number, number, number]> = [
    [10, 0.274, 0.3715203845434957],
    [140, 0.2, 2.1981563302200222e-5],
    [500, 0.03, 0.7473166700457021],
    [980, 0.02, 0.8202969830139522],
    [20000, 0.01, 0.03638603905248727],
  ];
  for (const [n, d, p] of cases) close(kolmogorovSf(n, d) / p, 1, 1e-9, `n=${n} d=${d}`);
});
