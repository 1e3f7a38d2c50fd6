// Data drift detection: Evidently's default per-column tests (KS, chi-squared, z, normed Wasserstein,
// Jensen-Shannon; PSI and KL on request) between a reference and a current dataset, from columns,
// records or files, and the `ferry drift` command. Pure computation: no I/O except readTable and the CLI.
export {
  STAT_TEST_NAMES,
  type CellValue,
  type Column,
  type ColumnType,
  type StatTestName,
  type ColumnTestOptions,
  type DriftOptions,
  type ColumnDrift,
  type UntestedColumn,
  type ColumnDriftResult,
  type DatasetDrift,
  type DriftReport,
} from './types.js';
export { detectDrift, DEFAULT_DATASET_DRIFT_SHARE } from './detect-drift.js';
export { driftFromRecords, columnsFromRecords, toCell, type RecordSchema } from './records.js';
export {
  STAT_TESTS,
  defaultStatTest,
  SMALL_REFERENCE_MAX,
  type StatTestSpec,
  type StatTestOutcome,
} from './stattests.js';
export { inferColumnType, isMissing, MAX_CATEGORICAL_INTEGERS } from './values.js';
export { readTable, csvCell, type TableFormat } from './read-table.js';
export { formatReport, formatNumber, reportJson } from './format-report.js';
export { DriftError, DRIFT_ERROR_CODES, type DriftErrorCode } from './errors.js';
// The statistics themselves, for callers that want one test without the column machinery.
export { ksTwoSample, ksExactSf, KS_MAX_EXACT_N, type KsResult } from './ks-two-sample.js';
export { kolmogorovSf, smirnovSf } from './kolmogorov.js';
export { chiSquareTest, chiSquareSf, type ChiSquareResult } from './chi-square.js';
export { zTest, type ZTestResult } from './z-test.js';
export { wassersteinDistance, normedWasserstein, populationStd } from './wasserstein.js';
export { jensenShannonDistance, populationStabilityIndex, klDivergence } from './divergences.js';
export {
  sturgesBinEdges,
  histogramCounts,
  fillEmptyShares,
  binnedShares,
  PER_VALUE_BIN_LIMIT,
  type Sample,
  type BinnedShares,
} from './binning.js';
