// Column-by-column drift between a reference and a current dataset, with Evidently's defaults: the
// test chosen per column by type and size (see `defaultStatTest`), each test's own threshold, and the
// dataset declared drifted when at least half (datasetDriftShare) of the tested columns drift.
import { STAT_TESTS, defaultStatTest } from './stattests.js';
import { DriftError } from './errors.js';
import { cleanCategorical, cleanNumerical, inferColumnType } from './values.js';
import {
  STAT_TEST_NAMES,
  type Column,
  type ColumnDrift,
  type ColumnDriftResult,
  type ColumnType,
  type DriftOptions,
  type DriftReport,
  type UntestedColumn,
} from './types.js';

export const DEFAULT_DATASET_DRIFT_SHARE = 0.5;

function validate(options: DriftOptions): void {
  const share = options.datasetDriftShare;
  if (share !== undefined && !(share >= 0 && share <= 1)) {
    throw new DriftError('drift-invalid-options', `datasetDriftShare must be between 0 and 1, got ${share}`);
  }
  for (const [name, o] of Object.entries(options.columns ?? {})) {
    if (o.test !== undefined && !(STAT_TEST_NAMES as readonly string[]).includes(o.test)) {
      throw new DriftError(
        'drift-invalid-options',
        `column "${name}": unknown test "${o.test}" (known: ${STAT_TEST_NAMES.join(', ')})`,
      );
    }
    if (o.threshold !== undefined && !(Number.isFinite(o.threshold) && o.threshold >= 0)) {
      throw new DriftError(
        'drift-invalid-options',
        `column "${name}": threshold must be a finite number ≥ 0, got ${o.threshold}`,
      );
    }
  }
  const numerical = new Set(options.numerical ?? []);
  const both = (options.categorical ?? []).filter((c) => numerical.has(c));
  if (both.length)
    throw new DriftError(
      'drift-invalid-options',
      `column(s) listed as both numerical and categorical: ${both.join(', ')}`,
    );
}

function byName(columns: readonly Column[], side: string): Map<string, Column> {
  const map = new Map<string, Column>();
  for (const c of columns) {
    if (map.has(c.name)) throw new DriftError('drift-invalid-options', `${side} has two columns named "${c.name}"`);
    map.set(c.name, c);
  }
  return map;
}

function typeOf(name: string, ref: Column, cur: Column, options: DriftOptions): ColumnType | undefined {
  return (
    ref.type ??
    cur.type ??
    (options.numerical?.includes(name) ? 'numerical' : undefined) ??
    (options.categorical?.includes(name) ? 'categorical' : undefined) ??
    inferColumnType(ref.values) ??
    inferColumnType(cur.values)
  );
}

function testColumn(name: string, ref: Column, cur: Column, options: DriftOptions): ColumnDriftResult {
  const untested = (reason: string, type?: ColumnType, nReference = 0, nCurrent = 0): UntestedColumn => ({
    column: name,
    testable: false,
    ...(type && { type }),
    reason,
    nReference,
    nCurrent,
  });
  const type = typeOf(name, ref, cur, options);
  if (!type) return untested('no values in either dataset after dropping missing and infinite ones');
  const clean = type === 'numerical' ? cleanNumerical : cleanCategorical;
  const r = clean(ref.values);
  const c = clean(cur.values);
  if (!r.ok) return untested(`reference: ${r.reason}`, type);
  if (!c.ok) return untested(`current: ${c.reason}`, type);
  const nReference = r.sample.values.length;
  const nCurrent = c.sample.values.length;
  if (nReference === 0)
    return untested('reference has no values after dropping missing and infinite ones', type, nReference, nCurrent);
  if (nCurrent === 0)
    return untested('current has no values after dropping missing and infinite ones', type, nReference, nCurrent);

  const nValues = new Set<number | string>([...r.sample.values, ...c.sample.values]).size;
  const override = options.columns?.[name];
  const spec = STAT_TESTS[override?.test ?? defaultStatTest(type, nReference, nValues)];
  if (!spec.types.includes(type)) {
    throw new DriftError(
      'drift-invalid-options',
      `column "${name}": test "${spec.name}" does not apply to a ${type} column (it needs ${spec.types.join(' or ')})`,
    );
  }
  const threshold = override?.threshold ?? spec.defaultThreshold;
  const outcome = spec.run(r.sample, c.sample);
  const score = (spec.kind === 'p_value' ? outcome.pValue : outcome.distance)!;
  const result: ColumnDrift = {
    column: name,
    testable: true,
    type,
    test: spec.name,
    testLabel: spec.label,
    statistic: outcome.statistic,
    ...(outcome.pValue !== undefined && { pValue: outcome.pValue }),
    ...(outcome.distance !== undefined && { distance: outcome.distance }),
    score,
    threshold,
    drift: spec.drifted(score, threshold), // false for NaN, as in Evidently
    nReference,
    nCurrent,
    nValues,
  };
  return result;
}

/**
 * Tests every column that reference and current share (matched by name; a column on one side only is
 * reported as untested) and sums up the dataset.
 * @example
 * detectDrift(
 *   [{ name: 'x', values: [1.5, 2.5, 3.5] }],
 *   [{ name: 'x', values: [7.5, 8.5, 9.5] }],
 * ).columns[0]
 * // { column: 'x', type: 'numerical', test: 'ks', statistic: 1, pValue: 0.1, threshold: 0.05, drift: false, ... }
 */
export function detectDrift(
  reference: readonly Column[],
  current: readonly Column[],
  options: DriftOptions = {},
): DriftReport {
  validate(options);
  const refs = byName(reference, 'reference');
  const curs = byName(current, 'current');
  const names = [...refs.keys(), ...[...curs.keys()].filter((n) => !refs.has(n))];
  const columns: ColumnDriftResult[] = names.map((name) => {
    const ref = refs.get(name);
    const cur = curs.get(name);
    if (!ref) return { column: name, testable: false, reason: 'not in the reference data', nReference: 0, nCurrent: 0 };
    if (!cur) return { column: name, testable: false, reason: 'not in the current data', nReference: 0, nCurrent: 0 };
    return testColumn(name, ref, cur, options);
  });
  const tested = columns.filter((c): c is ColumnDrift => c.testable);
  const driftedColumns = tested.filter((c) => c.drift).length;
  const share = tested.length ? driftedColumns / tested.length : 0;
  const driftShareThreshold = options.datasetDriftShare ?? DEFAULT_DATASET_DRIFT_SHARE;
  return {
    columns,
    dataset: {
      testedColumns: tested.length,
      driftedColumns,
      share,
      driftShareThreshold,
      datasetDrift: tested.length > 0 && share >= driftShareThreshold,
    },
  };
}
