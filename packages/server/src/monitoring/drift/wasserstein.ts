// The first Wasserstein distance between two empirical distributions, exactly: the area between their
// ECDFs, ∫ |F_ref(x) − F_cur(x)| dx, summed over the gaps between consecutive distinct values (what
// scipy.stats.wasserstein_distance computes). Evidently's "wasserstein" test divides it by the
// reference's population standard deviation (floored at 0.001) so that one threshold fits every scale.

/** W1(u, v). NaN values must be removed by the caller. */
export function wassersteinDistance(u: ArrayLike<number>, v: ArrayLike<number>): number {
  const a = Float64Array.from(u).sort();
  const b = Float64Array.from(v).sort();
  const n1 = a.length;
  const n2 = b.length;
  if (n1 === 0 || n2 === 0) throw new RangeError('wassersteinDistance needs two non-empty samples');
  if (Number.isNaN(a[n1 - 1]) || Number.isNaN(b[n2 - 1]))
    throw new RangeError('wassersteinDistance: samples must not contain NaN');
  let i = 0;
  let j = 0;
  let area = 0;
  let x = Math.min(a[0]!, b[0]!);
  while (i < n1 || j < n2) {
    while (i < n1 && a[i]! <= x) i++;
    while (j < n2 && b[j]! <= x) j++;
    if (i === n1 && j === n2) break;
    const next = j >= n2 || (i < n1 && a[i]! <= b[j]!) ? a[i]! : b[j]!;
    area += Math.abs(i / n1 - j / n2) * (next - x);
    x = next;
  }
  return area;
}

/** Population standard deviation (numpy's `np.std`, ddof = 0), two passes. */
export function populationStd(x: ArrayLike<number>): number {
  const n = x.length;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += x[i]!;
  const mean = sum / n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (x[i]! - mean) ** 2;
  return Math.sqrt(ss / n);
}

/** Smallest denominator of the normed distance: a constant reference does not divide by zero. */
export const WASSERSTEIN_MIN_NORM = 0.001;

/**
 * W1(reference, current) / max(std(reference), 0.001).
 * @example normedWasserstein([0, 2], [1, 3]) // W1 = 1, std = 1 → 1
 */
export function normedWasserstein(reference: ArrayLike<number>, current: ArrayLike<number>): number {
  return wassersteinDistance(reference, current) / Math.max(populationStd(reference), WASSERSTEIN_MIN_NORM);
}
