// How the distance tests (Jensen-Shannon, PSI, KL) turn two samples into two distributions over the same
// bins, as Evidently's `get_binned_data` does:
// - a numerical column whose reference has more than 20 distinct values is cut into equal-width bins
//   over reference and current together, with numpy's Sturges rule
//   (`np.histogram_bin_edges(concat(ref, cur), bins='sturges')`);
// - anything else gets one bin per distinct value seen in either sample;
// - each bin holds its share of its sample (count / sample size).
// PSI and KL then fill empty bins (they take logarithms of shares); Jensen-Shannon does not.
import { countValues, unionKeys, type Discrete } from './counts.js';

/** A numerical column is binned by Sturges' rule when its reference has more distinct values than this. */
export const PER_VALUE_BIN_LIMIT = 20;

/**
 * numpy's Sturges bin edges over `values`: ⌈ptp / (ptp / (log2 n + 1))⌉ equal-width bins between min and
 * max (the same floating-point steps numpy takes, so the count matches it at powers of two), edges
 * placed as `np.linspace` places them. For integer data numpy widens bins narrower than 1 to 1;
 * `integer` says whether the data is of an integer type.
 */
export function sturgesBinEdges(values: ArrayLike<number>, integer = false): Float64Array {
  const n = values.length;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (n === 0) {
    min = 0;
    max = 1;
  }
  const dataRange = n === 0 ? 0 : max - min;
  if (min === max) {
    min -= 0.5;
    max += 0.5;
  }
  let bins = 1;
  let width = n === 0 ? 0 : dataRange / (Math.log2(n) + 1);
  if (width) {
    // zero for constant data: one bin, as numpy
    if (integer && width < 1) width = 1;
    bins = Math.ceil((max - min) / width);
  }
  const edges = new Float64Array(bins + 1);
  const step = (max - min) / bins;
  for (let i = 0; i < bins; i++) edges[i] = i * step + min;
  edges[bins] = max;
  return edges;
}

/**
 * `np.histogram(values, edges)[0]`: bin i holds edges[i] ≤ v < edges[i+1], the last bin also v = its
 * right edge; values outside the edges are not counted.
 */
export function histogramCounts(values: ArrayLike<number>, edges: Float64Array): Float64Array {
  const bins = edges.length - 1;
  const counts = new Float64Array(bins);
  for (let k = 0; k < values.length; k++) {
    const v = values[k]!;
    if (!(v >= edges[0]!) || v > edges[bins]!) continue;
    // Largest i with edges[i] ≤ v.
    let lo = 0;
    let hi = bins;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (edges[mid]! <= v) lo = mid;
      else hi = mid - 1;
    }
    counts[Math.min(lo, bins - 1)]! += 1;
  }
  return counts;
}

/**
 * Replaces empty bins' shares, as Evidently does before PSI and KL: by 1e-4, or — when the smallest
 * non-zero share is itself at most 1e-4 — by that share / 1e6. Returns a new array.
 */
export function fillEmptyShares(shares: Float64Array): Float64Array {
  let smallest = Infinity;
  for (const s of shares) if (s !== 0 && s < smallest) smallest = s;
  const fill = smallest <= 1e-4 ? smallest / 1e6 : 1e-4;
  return shares.map((s) => (s === 0 ? fill : s));
}

export interface BinnedShares {
  reference: Float64Array;
  current: Float64Array;
  /** Sturges edges when the numerical column was cut into bins; absent when binned per value. */
  edges?: Float64Array;
}

export type Sample =
  { type: 'numerical'; values: Float64Array; integer: boolean } | { type: 'categorical'; values: readonly string[] };

function distinctCount(values: ArrayLike<number>): number {
  return new Set(Array.from(values)).size;
}

/** Shares of reference and current over common bins; `fillEmpty` for PSI and KL. */
export function binnedShares(reference: Sample, current: Sample, fillEmpty: boolean): BinnedShares {
  let out: BinnedShares;
  if (
    reference.type === 'numerical' &&
    current.type === 'numerical' &&
    distinctCount(reference.values) > PER_VALUE_BIN_LIMIT
  ) {
    const all = new Float64Array(reference.values.length + current.values.length);
    all.set(reference.values);
    all.set(current.values, reference.values.length);
    const edges = sturgesBinEdges(all, reference.integer && current.integer);
    const r = histogramCounts(reference.values, edges).map((c) => c / reference.values.length);
    const c = histogramCounts(current.values, edges).map((x) => x / current.values.length);
    out = { reference: r, current: c, edges };
  } else {
    const refValues = Array.from<Discrete>(reference.values);
    const curValues = Array.from<Discrete>(current.values);
    const ref = countValues(refValues);
    const cur = countValues(curValues);
    const keys = unionKeys(ref, cur);
    out = {
      reference: Float64Array.from(keys, (k) => (ref.get(k) ?? 0) / refValues.length),
      current: Float64Array.from(keys, (k) => (cur.get(k) ?? 0) / curValues.length),
    };
  }
  if (fillEmpty) out = { ...out, reference: fillEmptyShares(out.reference), current: fillEmptyShares(out.current) };
  return out;
}
