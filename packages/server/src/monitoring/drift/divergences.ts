// Distances between two binned distributions (shares from `binnedShares`), with SciPy's definitions,
// natural logarithms throughout:
// - Jensen-Shannon *distance* (scipy.spatial.distance.jensenshannon): √((KL(p‖m) + KL(q‖m)) / 2),
//   m = (p + q) / 2, on the shares as they are (empty bins allowed);
// - PSI: Σ (ref − cur) · ln(ref / cur), on filled shares;
// - Kullback-Leibler divergence KL(ref‖cur) (scipy.stats.entropy(ref, cur)), on filled shares,
//   each renormalised to sum to 1 as SciPy does.

/** x·ln(x/y), with 0·ln(0/y) = 0 (scipy.special.rel_entr). */
function relEntr(x: number, y: number): number {
  if (x === 0 && y >= 0) return 0;
  if (x > 0 && y > 0) return x * Math.log(x / y);
  return Infinity;
}

function normalised(p: ArrayLike<number>): Float64Array {
  let sum = 0;
  for (let i = 0; i < p.length; i++) sum += p[i]!;
  return Float64Array.from(p, (x) => x / sum);
}

/** @example jensenShannonDistance([1, 0], [0, 1]) // √(ln 2) ≈ 0.8326 */
export function jensenShannonDistance(p: ArrayLike<number>, q: ArrayLike<number>): number {
  const a = normalised(p);
  const b = normalised(q);
  let left = 0;
  let right = 0;
  for (let i = 0; i < a.length; i++) {
    const m = (a[i]! + b[i]!) / 2;
    left += relEntr(a[i]!, m);
    right += relEntr(b[i]!, m);
  }
  return Math.sqrt(Math.max(0, (left + right) / 2));
}

/** @example populationStabilityIndex([0.5, 0.5], [0.25, 0.75]) // 0.25·ln 2 + 0.25·ln 1.5 ≈ 0.2747 */
export function populationStabilityIndex(reference: ArrayLike<number>, current: ArrayLike<number>): number {
  let psi = 0;
  for (let i = 0; i < reference.length; i++)
    psi += (reference[i]! - current[i]!) * Math.log(reference[i]! / current[i]!);
  return psi;
}

/** @example klDivergence([0.5, 0.5], [0.25, 0.75]) // 0.5·ln 2 + 0.5·ln(2/3) ≈ 0.1438 */
export function klDivergence(reference: ArrayLike<number>, current: ArrayLike<number>): number {
  const p = normalised(reference);
  const q = normalised(current);
  let kl = 0;
  for (let i = 0; i < p.length; i++) kl += relEntr(p[i]!, q[i]!);
  return kl;
}
