// Public types of drift detection: columns in, a report out. Plain data, so a report can be stored,
// sent as JSON and compared across runs.

export type ColumnType = 'numerical' | 'categorical';

/** One cell. `null`, `NaN` and `''` are missing; ±Infinity is dropped too. */
export type CellValue = number | string | boolean | null;

export interface Column {
  name: string;
  /** Leave out to infer it from the values (see {@link inferColumnType}). */
  type?: ColumnType;
  values: ReadonlyArray<CellValue>;
}

/** Statistical tests, by Evidently's names. */
export const STAT_TEST_NAMES = ['ks', 'chisquare', 'z', 'wasserstein', 'jensenshannon', 'psi', 'kl_div'] as const;
export type StatTestName = (typeof STAT_TEST_NAMES)[number];

export interface ColumnTestOptions {
  /** Test to use instead of the one chosen by type and size. */
  test?: StatTestName;
  /** Threshold instead of the test's default (a p-value for ks/chisquare/z, a distance otherwise). */
  threshold?: number;
}

export interface DriftOptions {
  /** Per-column test and threshold overrides, by column name. */
  columns?: Readonly<Record<string, ColumnTestOptions>>;
  /** The dataset drifts when at least this share of the tested columns drift. Default 0.5. */
  datasetDriftShare?: number;
  /** Columns to treat as numerical (beats inference; a column's own `type` beats this). */
  numerical?: readonly string[];
  /** Columns to treat as categorical (beats inference; a column's own `type` beats this). */
  categorical?: readonly string[];
}

/** The result for one column that could be tested. */
export interface ColumnDrift {
  column: string;
  testable: true;
  type: ColumnType;
  test: StatTestName;
  /** Evidently's display name of the test, e.g. "K-S p_value". */
  testLabel: string;
  /**
   * The test statistic: D for ks, χ² for chisquare (Infinity when current has a value reference never
   * had), z for z, and the distance itself for the distance tests.
   */
  statistic: number;
  /** For ks, chisquare and z. Drift when pValue ≤ threshold (ks) or < threshold (chisquare, z). */
  pValue?: number;
  /** For wasserstein (normed), jensenshannon, psi and kl_div. Drift when distance ≥ threshold. */
  distance?: number;
  /** What Evidently calls the drift score: `pValue` or `distance`, whichever the test has. */
  score: number;
  threshold: number;
  drift: boolean;
  /** Values tested after dropping missing and infinite ones. */
  nReference: number;
  nCurrent: number;
  /** Distinct values in reference and current together (the size rule's n_values). */
  nValues: number;
}

/** A column that could not be tested, and why. It does not count towards the dataset share. */
export interface UntestedColumn {
  column: string;
  testable: false;
  type?: ColumnType;
  reason: string;
  nReference: number;
  nCurrent: number;
}

export type ColumnDriftResult = ColumnDrift | UntestedColumn;

export interface DatasetDrift {
  /** Columns that were tested. */
  testedColumns: number;
  driftedColumns: number;
  /** driftedColumns / testedColumns (0 when nothing was tested). */
  share: number;
  /** The datasetDriftShare in force. */
  driftShareThreshold: number;
  /** share ≥ driftShareThreshold, and at least one column tested. */
  datasetDrift: boolean;
}

export interface DriftReport {
  columns: ColumnDriftResult[];
  dataset: DatasetDrift;
}
