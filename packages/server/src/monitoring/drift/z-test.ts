// The two-proportion z-test (pooled variance, two-sided) that Evidently's "z" test runs on binary
// columns: the first value in sorted order maps to 0, every other value to 1, and the shares of 1s in
// reference and current are compared.
import normalCdf from '@stdlib/stats-base-dists-normal-cdf';
import { countValues, sortDiscrete, type Discrete } from './counts.js';

export interface ZTestResult {
  /** z = (p_ref − p_cur) / √(P(1 − P)(1/n_ref + 1/n_cur)), P the pooled share. */
  statistic: number;
  pValue: number;
}

/**
 * @example zTest(['a','a','b','b'], ['a','b','b','b']) // z ≈ −0.730, p ≈ 0.4652
 */
export function zTest(reference: readonly Discrete[], current: readonly Discrete[]): ZTestResult {
  const ref = countValues(reference);
  const cur = countValues(current);
  // The same single value on both sides: Evidently answers p = 1 without computing (z would be 0/0).
  if (ref.size === 1 && cur.size === 1 && [...ref.keys()][0] === [...cur.keys()][0]) return { statistic: 0, pValue: 1 };
  const first = sortDiscrete([...new Set([...ref.keys(), ...cur.keys()])])[0]!;
  const n1 = reference.length;
  const n2 = current.length;
  const p1 = (n1 - (ref.get(first) ?? 0)) / n1;
  const p2 = (n2 - (cur.get(first) ?? 0)) / n2;
  const pooled = (p1 * n1 + p2 * n2) / (n1 + n2);
  const statistic = (p1 - p2) / Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
  // 2·Φ(−|z|) equals Evidently's 2·(1 − Φ(|z|)) but keeps its digits when p is tiny.
  return { statistic, pValue: Math.min(1, 2 * normalCdf(-Math.abs(statistic), 0, 1)) };
}
