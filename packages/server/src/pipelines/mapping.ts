// Turns a source row into the model's instance (its features) and the row's key, or into a reject
// reason. Conversions are driven by each feature's contract type, so a CSV "7" feeds an integer
// feature, a Parquet BIGINT feeds a number, and a timestamp column can feed month/dayOfWeek/hour.
import type { Manifest } from '@ferry/core';
import type { PipelineConfig } from '../config/schemas/pipelines.js';

export type SourceRow = Record<string, unknown>;

/**
 * Marks a row the source could not even parse (a bad JSON line, a CSV record with the wrong field
 * count). A string key, not a Symbol, so it survives the structured clone to a prep worker; the NUL
 * character keeps it apart from any real column name.
 */
export const UNREADABLE = '\u0000ferry:unreadable';
export interface UnreadableRow {
  [UNREADABLE]: string;
  raw: string;
}

/**
 * The key "column" that is the row's 0-based position in the source read order: a stable id for an
 * immutable file that has no id column of its own (e.g. a published dataset).
 */
export const ROW_NUMBER_KEY = '$row';

export interface MappedRow {
  key: string;
  instance: Record<string, unknown>;
}

export type Transform =
  'number' | 'integer' | 'string' | 'boolean' | 'month' | 'dayOfWeek' | 'hour' | 'dayOfMonth' | 'year';

interface FeaturePlan {
  feature: string;
  column: string;
  transform: Transform | undefined;
  type: string;
}

export interface RowMapper {
  readonly features: readonly FeaturePlan[];
  readonly keyColumns: readonly string[];
  /** Source columns the pipeline reads (key + features), so columnar readers skip the rest. */
  readonly columns: readonly string[];
  /** The mapped row, or a reason to reject it. */
  map(row: SourceRow, rowNumber: number): MappedRow | { reject: string; key: string | null };
  key(row: SourceRow, rowNumber: number): string | null;
}

/** Joins composite keys; `|` inside a value is escaped so keys stay unambiguous. */
export function encodeKey(values: readonly unknown[]): string {
  return values.map((v) => keyPart(v).replace(/\\/g, '\\\\').replace(/\|/g, '\\|')).join('|');
}

function keyPart(v: unknown): string {
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'bigint') return v.toString();
  return String(v);
}

/** Builds the mapper; throws an Error naming the bad setting when the pipeline and the contract disagree. */
export function compileRowMapper(p: PipelineConfig, manifest: Manifest): RowMapper {
  const inputs = new Map(manifest.inputs.map((i) => [i.name, i]));
  const plans = new Map<string, FeaturePlan>();
  // Listed features use their mapping; every other feature reads the same-named (or renamed) column.
  const listed = new Set(p.select.map((e) => (typeof e === 'string' ? e : e.feature)));
  const entries = [
    ...p.select,
    ...manifest.inputs.filter((i) => !listed.has(i.name) && i.type !== 'tensor').map((i) => i.name),
  ];
  entries.forEach((e, i) => {
    const m = typeof e === 'string' ? { feature: e } : e;
    const input = inputs.get(m.feature);
    if (!input)
      throw new Error(
        `select/${i}: "${m.feature}" is not a feature of ${manifest.name}@${manifest.version} (features: ${[...inputs.keys()].join(', ')})`,
      );
    if (input.type === 'tensor')
      throw new Error(`select/${i}: "${m.feature}" is a raw tensor input; pipelines score feature-form models only`);
    plans.set(m.feature, {
      feature: m.feature,
      column: m.column ?? p.rename[m.feature] ?? m.feature,
      transform: m.transform as Transform | undefined,
      type: input.type,
    });
  });
  for (const [feature, column] of Object.entries(p.rename)) {
    if (!inputs.has(feature))
      throw new Error(`rename/${feature}: not a feature of ${manifest.name}@${manifest.version}`);
    if (!plans.has(feature))
      plans.set(feature, { feature, column, transform: undefined, type: inputs.get(feature)!.type });
  }
  const features = [...plans.values()];
  const keyColumns = Array.isArray(p.key) ? p.key : [p.key];
  const columns = [...new Set([...keyColumns.filter((c) => c !== ROW_NUMBER_KEY), ...features.map((f) => f.column)])];

  const key = (row: SourceRow, rowNumber: number): string | null => {
    const values = keyColumns.map((c) => (c === ROW_NUMBER_KEY ? rowNumber : row[c]));
    if (values.some((v) => v === undefined || v === null || v === '')) return null;
    return encodeKey(values);
  };

  return {
    features,
    keyColumns,
    columns,
    key,
    map(row, rowNumber) {
      const unreadable = (row as Partial<UnreadableRow>)[UNREADABLE];
      if (unreadable !== undefined) return { reject: unreadable, key: null };
      const k = key(row, rowNumber);
      if (k === null)
        return {
          reject: `missing key column ${keyColumns
            .filter((c) => c !== ROW_NUMBER_KEY && (row[c] === undefined || row[c] === null || row[c] === ''))
            .map((c) => `"${c}"`)
            .join(', ')}`,
          key: null,
        };
      const instance: Record<string, unknown> = {};
      for (const f of features) {
        const raw = row[f.column];
        if (raw === undefined || raw === null || raw === '')
          return { reject: `${f.feature}: missing (source column "${f.column}")`, key: k };
        const v = convert(raw, f.transform ?? defaultTransform(f.type));
        if (v === undefined)
          return {
            reject: `${f.feature}: cannot read ${describe(raw)} from column "${f.column}" as ${f.transform ?? f.type}`,
            key: k,
          };
        instance[f.feature] = v;
      }
      return { key: k, instance };
    },
  };
}

function defaultTransform(type: string): Transform | undefined {
  if (type === 'number') return 'number';
  if (type === 'integer') return 'integer';
  if (type === 'boolean') return 'boolean';
  if (type === 'string' || type === 'category') return undefined;
  return undefined;
}

function describe(v: unknown): string {
  const s = typeof v === 'string' ? JSON.stringify(v) : v instanceof Date ? v.toISOString() : String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

// Date-time text as written by most exports: 2001-01-14, 2001/01/14 21:55, 2001-01-14T21:55:00(Z|±hh:mm).
const DATE_TEXT = /^(\d{4})[-/](\d{2})[-/](\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$/;

/** Calendar parts of a date value. Times without a zone are read as written (wall clock), not shifted. */
function dateParts(
  v: unknown,
): { y: number; mo: number; d: number; h: number; mi: number; s: number; dow: number } | undefined {
  let date: Date | undefined;
  if (v instanceof Date) date = v;
  else if (typeof v === 'number' && Number.isFinite(v)) date = new Date(v);
  else if (typeof v === 'bigint') date = new Date(Number(v));
  else if (typeof v === 'string') {
    const m = DATE_TEXT.exec(v.trim());
    if (!m) return undefined;
    if (m[7]) date = new Date(v.trim().replace(' ', 'T'));
    else date = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +(m[4] ?? 0), +(m[5] ?? 0), +(m[6] ?? 0)));
  }
  if (!date || Number.isNaN(date.getTime())) return undefined;
  return {
    y: date.getUTCFullYear(),
    mo: date.getUTCMonth() + 1,
    d: date.getUTCDate(),
    h: date.getUTCHours(),
    mi: date.getUTCMinutes(),
    s: date.getUTCSeconds(),
    dow: date.getUTCDay(),
  };
}

function toNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

export function convert(v: unknown, t: Transform | undefined): unknown {
  switch (t) {
    case undefined:
      return typeof v === 'bigint' ? v.toString() : v;
    case 'number':
      return toNumber(v);
    case 'integer': {
      const n = toNumber(v);
      return n !== undefined && Number.isInteger(n) ? n : undefined;
    }
    case 'string':
      return v instanceof Date ? v.toISOString() : String(v);
    case 'boolean':
      if (typeof v === 'boolean') return v;
      if (v === 1 || v === 0) return v === 1;
      if (typeof v === 'string') {
        const s = v.trim().toLowerCase();
        if (s === 'true' || s === '1') return true;
        if (s === 'false' || s === '0') return false;
      }
      return undefined;
    default: {
      const p = dateParts(v);
      if (!p) return undefined;
      if (t === 'month') return p.mo;
      if (t === 'dayOfWeek') return p.dow;
      if (t === 'hour') return p.h + p.mi / 60 + p.s / 3600;
      if (t === 'dayOfMonth') return p.d;
      return p.y;
    }
  }
}
