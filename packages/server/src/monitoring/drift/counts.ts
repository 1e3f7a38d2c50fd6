// Value counts of discrete samples: the common ground of the chi-squared test, the z-test and the
// per-value binning of the distance tests.

/** A discrete value: a category key, or a number when a numerical column is binned per value. */
export type Discrete = number | string;

export function countValues(values: Iterable<Discrete>): Map<Discrete, number> {
  const counts = new Map<Discrete, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return counts;
}

/** The distinct values of both samples, reference's first-seen order, then current's new ones. */
export function unionKeys(reference: Map<Discrete, number>, current: Map<Discrete, number>): Discrete[] {
  const keys = [...reference.keys()];
  for (const k of current.keys()) if (!reference.has(k)) keys.push(k);
  return keys;
}

/**
 * Sorted as Python sorts them: numbers numerically; strings by code point; category keys that are
 * spelled numbers ("2", "10") numerically too, since they came from numeric cells.
 */
export function sortDiscrete(keys: readonly Discrete[]): Discrete[] {
  const numeric = keys.every((k) => typeof k === 'number' || (k !== '' && String(Number(k)) === k));
  return [...keys].sort(
    numeric
      ? (a, b) => Number(a) - Number(b)
      : (a, b) => {
          const x = String(a);
          const y = String(b);
          return x < y ? -1 : x > y ? 1 : 0;
        },
  );
}
