// The two-sample Kolmogorov-Smirnov test, two-sided, as SciPy's `ks_2samp(x, y)` computes it in its
// default mode (method='auto'): the exact null distribution when both samples have at most 10,000
// values, otherwise SciPy's asymptotic form, the one-sample distribution of D at n = round(n1·n2/(n1+n2)).
//
// The exact p-value counts lattice paths (Hodges 1958, "The significance probability of the Smirnov
// two-sample test", Ark. Mat. 3). Under the null hypothesis every interleaving of the two sorted samples
// is equally likely; an interleaving is a monotone path from (0,0) to (n1,n2), and D ≥ d exactly when
// the path touches a point (i,j) with |i/n1 − j/n2| ≥ d. Instead of counting paths (the counts overflow)
// this propagates, per point, the *share* of the paths reaching it that have already touched the
// boundary: B(i,j) = (i·B(i−1,j) + j·B(i,j−1)) / (i+j), B = 1 on and beyond the boundary. Those shares stay
// in [0,1], and computing the outside probability directly (rather than 1 − inside) keeps tiny p-values
// accurate — the same idea as Viehmann (2021), arXiv:2102.08037.
import { kolmogorovSf } from './kolmogorov.js';

/** SciPy's `MAX_AUTO_N`: above this sample size, method='auto' switches to the asymptotic p-value. */
export const KS_MAX_EXACT_N = 10000;

export interface KsResult {
  /** D, the largest distance between the two empirical CDFs. */
  statistic: number;
  pValue: number;
  method: 'exact' | 'asymptotic';
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Banker's rounding, as numpy's `np.round`. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Pr(D ≥ h / lcm(m, n)) under the null hypothesis, for samples of sizes m and n: the share of lattice
 * paths from (0,0) to (m,n) that touch a point with |i·n' − j·m'| ≥ h, where m' = m/g, n' = n/g.
 */
export function ksExactSf(m: number, n: number, h: number): number {
  if (h <= 0) return 1;
  const g = gcd(m, n);
  const mg = m / g; // weight of a step in j
  const ng = n / g; // weight of a step in i
  // Point (i,j) is inside when |i·ng − j·mg| < h, i.e. j in [lo(i), hi(i)].
  const lo = (i: number): number => Math.max(0, Math.ceil((i * ng - h + 1) / mg));
  const hi = (i: number): number => Math.min(n, Math.floor((i * ng + h - 1) / mg));
  const B = new Float64Array(n + 1).fill(1);
  let prevLo = 0;
  for (let j = 0; j <= hi(0); j++) B[j] = 0;
  for (let i = 1; i <= m; i++) {
    const a = lo(i);
    const b = hi(i);
    if (a > b) return 1; // every path crosses the boundary in this column
    for (let j = prevLo; j < a; j++) B[j] = 1;
    for (let j = a; j <= b; j++) B[j] = j === 0 ? B[0]! : (i * B[j]! + j * B[j - 1]!) / (i + j);
    prevLo = a;
  }
  return Math.min(1, Math.max(0, B[n]!));
}

/**
 * Two-sided two-sample KS test. NaN values must be removed by the caller.
 * @example ksTwoSample([1, 2, 3], [4, 5, 6]) // { statistic: 1, pValue: 0.1, method: 'exact' }
 */
export function ksTwoSample(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  mode: 'auto' | 'exact' | 'asymptotic' = 'auto',
): KsResult {
  const a = Float64Array.from(x).sort();
  const b = Float64Array.from(y).sort();
  const n1 = a.length;
  const n2 = b.length;
  if (n1 === 0 || n2 === 0) throw new RangeError('ksTwoSample needs two non-empty samples');
  if (Number.isNaN(a[n1 - 1]) || Number.isNaN(b[n2 - 1]))
    throw new RangeError('ksTwoSample: samples must not contain NaN'); // sort puts NaN last
  const g = gcd(n1, n2);
  const n1g = n1 / g;
  const n2g = n2 / g;
  // Walk the distinct values of both samples; at each, compare the ECDFs in exact integer units of
  // 1/lcm (for the exact method) and as SciPy's floating-point difference (for the asymptotic one).
  let i = 0;
  let j = 0;
  let h = 0;
  let dFloat = 0;
  while (i < n1 || j < n2) {
    const v = j >= n2 || (i < n1 && a[i]! <= b[j]!) ? a[i]! : b[j]!;
    while (i < n1 && a[i]! <= v) i++;
    while (j < n2 && b[j]! <= v) j++;
    h = Math.max(h, Math.abs(i * n2g - j * n1g));
    dFloat = Math.max(dFloat, Math.abs(i / n1 - j / n2));
  }
  const exact = mode === 'exact' || (mode === 'auto' && Math.max(n1, n2) <= KS_MAX_EXACT_N);
  if (exact) {
    const lcm = n1g * n2;
    return { statistic: h / lcm, pValue: ksExactSf(n1, n2, h), method: 'exact' };
  }
  const en = (n1 * n2) / (n1 + n2);
  return { statistic: dFloat, pValue: kolmogorovSf(roundHalfEven(en), dFloat), method: 'asymptotic' };
}
