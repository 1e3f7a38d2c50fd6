// The registry of drift tests: what each computes, its default threshold and which side of the
// threshold means drift, and Evidently's default choice of test by column type and sample size.
import { binnedShares, type Sample } from './binning.js';
import { chiSquareTest } from './chi-square.js';
import type { Discrete } from './counts.js';
import { jensenShannonDistance, klDivergence, populationStabilityIndex } from './divergences.js';
import { ksTwoSample } from './ks-two-sample.js';
import type { ColumnType, StatTestName } from './types.js';
import { normedWasserstein } from './wasserstein.js';
import { zTest } from './z-test.js';

export interface StatTestOutcome {
  statistic: number;
  pValue?: number;
  distance?: number;
}

export interface StatTestSpec {
  name: StatTestName;
  /** Evidently's display name. */
  label: string;
  /** p_value tests drift on small scores, distance tests on large ones. */
  kind: 'p_value' | 'distance';
  defaultThreshold: number;
  /** Column types the test applies to. */
  types: readonly ColumnType[];
  /** Whether `score` (the p-value or the distance) means drift at `threshold`. */
  drifted(score: number, threshold: number): boolean;
  run(reference: Sample, current: Sample): StatTestOutcome;
}

const discrete = (s: Sample): Discrete[] => Array.from<Discrete>(s.values);
const numbers = (s: Sample): Float64Array => {
  if (s.type !== 'numerical') throw new TypeError('this test needs numerical samples');
  return s.values;
};
const both: readonly ColumnType[] = ['numerical', 'categorical'];

/** The tests, with Evidently's names, display names, default thresholds and comparisons. */
export const STAT_TESTS: Readonly<Record<StatTestName, StatTestSpec>> = Object.freeze({
  ks: {
    name: 'ks',
    label: 'K-S p_value',
    kind: 'p_value',
    defaultThreshold: 0.05,
    types: ['numerical'],
    drifted: (p, t) => p <= t,
    run: (r, c) => {
      const k = ksTwoSample(numbers(r), numbers(c));
      return { statistic: k.statistic, pValue: k.pValue };
    },
  },
  chisquare: {
    name: 'chisquare',
    label: 'chi-square p_value',
    kind: 'p_value',
    defaultThreshold: 0.05,
    types: both,
    drifted: (p, t) => p < t,
    run: (r, c) => {
      const x = chiSquareTest(discrete(r), discrete(c));
      return { statistic: x.statistic, pValue: x.pValue };
    },
  },
  z: {
    name: 'z',
    label: 'Z-test p_value',
    kind: 'p_value',
    defaultThreshold: 0.05,
    types: both,
    drifted: (p, t) => p < t,
    run: (r, c) => {
      const z = zTest(discrete(r), discrete(c));
      return { statistic: z.statistic, pValue: z.pValue };
    },
  },
  wasserstein: {
    name: 'wasserstein',
    label: 'Wasserstein distance (normed)',
    kind: 'distance',
    defaultThreshold: 0.1,
    types: ['numerical'],
    drifted: (d, t) => d >= t,
    run: (r, c) => {
      const d = normedWasserstein(numbers(r), numbers(c));
      return { statistic: d, distance: d };
    },
  },
  jensenshannon: {
    name: 'jensenshannon',
    label: 'Jensen-Shannon distance',
    kind: 'distance',
    defaultThreshold: 0.1,
    types: both,
    drifted: (d, t) => d >= t,
    run: (r, c) => {
      const b = binnedShares(r, c, false);
      const d = jensenShannonDistance(b.reference, b.current);
      return { statistic: d, distance: d };
    },
  },
  psi: {
    name: 'psi',
    label: 'PSI',
    kind: 'distance',
    defaultThreshold: 0.1,
    types: both,
    drifted: (d, t) => d >= t,
    run: (r, c) => {
      const b = binnedShares(r, c, true);
      const d = populationStabilityIndex(b.reference, b.current);
      return { statistic: d, distance: d };
    },
  },
  kl_div: {
    name: 'kl_div',
    label: 'Kullback-Leibler divergence',
    kind: 'distance',
    defaultThreshold: 0.1,
    types: both,
    drifted: (d, t) => d >= t,
    run: (r, c) => {
      const b = binnedShares(r, c, true);
      const d = klDivergence(b.reference, b.current);
      return { statistic: d, distance: d };
    },
  },
} satisfies Record<StatTestName, StatTestSpec>);

/** Reference samples up to this size get p-value tests; larger ones get distances. */
export const SMALL_REFERENCE_MAX = 1000;

/**
 * Evidently's default test. `nReference` counts the reference values left after dropping missing and
 * infinite ones; `nValues` the distinct values of reference and current together.
 *
 * | reference ≤ 1000 | numerical: ks if nValues > 5, chisquare if 3–5, z if ≤ 2 | categorical: chisquare if nValues >
 * 2, else z |
 * | reference > 1000 | numerical: wasserstein if nValues > 5, else jensenshannon | categorical: jensenshannon |
 */
export function defaultStatTest(type: ColumnType, nReference: number, nValues: number): StatTestName {
  if (nReference <= SMALL_REFERENCE_MAX) {
    if (type === 'numerical' && nValues > 5) return 'ks';
    return nValues > 2 ? 'chisquare' : 'z';
  }
  if (type === 'numerical' && nValues > 5) return 'wasserstein';
  return 'jensenshannon';
}
