// Pearson's chi-squared goodness-of-fit test of the current counts against the reference proportions,
// as Evidently's "chisquare" test runs it: expected count of a value = its reference count scaled by
// n_current / n_reference; scipy.stats.chisquare(f_obs, f_exp) on the union of values seen in either
// sample, with k − 1 degrees of freedom.
import gammainc from '@stdlib/math-base-special-gammainc';
import { countValues, unionKeys, type Discrete } from './counts.js';

export interface ChiSquareResult {
  /** Σ (observed − expected)² / expected; Infinity when current has a value reference never had. */
  statistic: number;
  pValue: number;
  degreesOfFreedom: number;
}

/** Upper tail of the chi-squared distribution, Pr(X ≥ x), as the regularised upper incomplete gamma Q(k/2, x/2). */
export function chiSquareSf(x: number, degreesOfFreedom: number): number {
  if (x === Infinity) return 0;
  if (x <= 0) return 1;
  return gammainc(x / 2, degreesOfFreedom / 2, true, true);
}

/**
 * @example chiSquareTest(['a','a','b','b'], ['a','a','a','b']) // χ² = 1, df = 1, p ≈ 0.3173
 */
export function chiSquareTest(reference: readonly Discrete[], current: readonly Discrete[]): ChiSquareResult {
  const ref = countValues(reference);
  const cur = countValues(current);
  const keys = unionKeys(ref, cur);
  const scale = current.length / reference.length;
  let statistic = 0;
  for (const k of keys) {
    const expected = (ref.get(k) ?? 0) * scale;
    const observed = cur.get(k) ?? 0;
    statistic += (observed - expected) ** 2 / expected; // x/0 = Infinity for a value new in current
  }
  const degreesOfFreedom = keys.length - 1;
  // One value in both samples: nothing can differ. SciPy returns NaN here, which Evidently reads as
  // "no drift" (NaN < threshold is false); p = 1 says the same in a number JSON can carry.
  if (degreesOfFreedom === 0) return { statistic: 0, pValue: 1, degreesOfFreedom };
  return { statistic, pValue: chiSquareSf(statistic, degreesOfFreedom), degreesOfFreedom };
}
