// Drift between two lists of records (rows as objects), as the server holds them: the version's
// reference rows and the sampled prediction log. The schema, from the model's contract, says which
// fields are features and of what kind; without it every field of the reference is tested, typed by
// inference.
import { detectDrift } from './detect-drift.js';
import type { CellValue, Column, DriftOptions, DriftReport } from './types.js';

export interface RecordSchema {
  numerical: readonly string[];
  categorical: readonly string[];
}

/** A record's field as a cell: bigints as numbers, dates as ISO strings, objects and arrays as JSON. */
export function toCell(v: unknown): CellValue {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? Number(x) : x));
}

/** Field names in order of first appearance. */
function fieldsOf(records: ReadonlyArray<Record<string, unknown>>): string[] {
  const seen = new Set<string>();
  for (const r of records) for (const k of Object.keys(r)) seen.add(k);
  return [...seen];
}

/** Columns of `records` for the given fields (a field a record lacks is missing there). */
export function columnsFromRecords(
  records: ReadonlyArray<Record<string, unknown>>,
  fields: readonly string[],
): Column[] {
  return fields.map((name) => ({ name, values: records.map((r) => toCell(r[name])) }));
}

/**
 * Drift of `current` records against `reference` records.
 * @example
 * driftFromRecords(referenceRows, loggedRows, { numerical: ['hour', 'distance'], categorical: ['origin'] })
 */
export function driftFromRecords(
  reference: ReadonlyArray<Record<string, unknown>>,
  current: ReadonlyArray<Record<string, unknown>>,
  schema?: RecordSchema,
  options: DriftOptions = {},
): DriftReport {
  const fields = schema
    ? [...schema.numerical, ...schema.categorical]
    : fieldsOf(reference.length ? reference : current);
  const typed = (cols: Column[]): Column[] =>
    schema ? cols.map((c) => ({ ...c, type: schema.numerical.includes(c.name) ? 'numerical' : 'categorical' })) : cols;
  return detectDrift(typed(columnsFromRecords(reference, fields)), typed(columnsFromRecords(current, fields)), options);
}
