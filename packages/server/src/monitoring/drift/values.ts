// From raw cells to testable samples: what counts as missing, how a column's type is inferred, and the
// cleaning each type gets before a test sees it (Evidently drops NaN and ±inf from both samples).
import type { Sample } from './binning.js';
import type { CellValue, ColumnType } from './types.js';

/** `null`, `undefined`, `NaN` and the empty string (an empty CSV cell) are missing. */
export function isMissing(v: unknown): boolean {
  return v === null || v === undefined || v === '' || (typeof v === 'number' && Number.isNaN(v));
}

/** Integer-valued numbers with at most this many distinct values are taken as categories (months, codes). */
export const MAX_CATEGORICAL_INTEGERS = 10;

/**
 * Type of a column from its values: any string or boolean → categorical (so mixed columns are
 * categorical); numbers with a fractional part → numerical; integers only → categorical when they
 * take at most 10 distinct values, numerical otherwise. Missing and infinite values are ignored;
 * undefined when nothing is left.
 * @example inferColumnType([1.5, 2, null]) // 'numerical'
 * @example inferColumnType([1, 2, 3, 2]) // 'categorical'
 */
export function inferColumnType(values: Iterable<CellValue | undefined>): ColumnType | undefined {
  const integers = new Set<number>();
  let seen = false;
  let fractional = false;
  for (const v of values) {
    if (isMissing(v) || v === Infinity || v === -Infinity) continue;
    seen = true;
    if (typeof v !== 'number') return 'categorical';
    if (Number.isInteger(v)) integers.add(v);
    else fractional = true;
  }
  if (!seen) return undefined;
  if (fractional) return 'numerical';
  return integers.size <= MAX_CATEGORICAL_INTEGERS ? 'categorical' : 'numerical';
}

export type Cleaned = { ok: true; sample: Sample } | { ok: false; reason: string };

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/**
 * A numerical column's finite numbers. Numeric strings ("1.5") are read as numbers; any other string,
 * and booleans, make the column untestable as numerical. `integer` records whether the column would
 * have an integer dtype in pandas (all cells integers, none missing), which changes numpy's binning.
 */
export function cleanNumerical(values: ReadonlyArray<CellValue | undefined>): Cleaned {
  const out: number[] = [];
  let integer = true;
  for (const v of values) {
    let x: number;
    if (isMissing(v)) {
      integer = false;
      continue;
    }
    if (typeof v === 'number') x = v;
    else if (typeof v === 'string' && NUMBER.test(v.trim())) {
      x = Number(v.trim());
      integer = false;
    } else if (typeof v === 'string' && /^[+-]?(inf|infinity|nan)$/i.test(v.trim())) {
      integer = false;
      continue;
    } else return { ok: false, reason: `numerical column holds a non-numeric value: ${JSON.stringify(v)}` };
    if (!Number.isFinite(x)) {
      integer = false;
      continue;
    }
    if (!Number.isInteger(x)) integer = false;
    out.push(x);
  }
  return { ok: true, sample: { type: 'numerical', values: Float64Array.from(out), integer } };
}

/** Category key of a cell: strings as they are, numbers and booleans spelled out ("7", "true"). */
export function categoryKey(v: number | string | boolean): string {
  return typeof v === 'string' ? v : String(v);
}

/** A categorical column's values as category keys, missing and infinite values dropped. */
export function cleanCategorical(values: ReadonlyArray<CellValue | undefined>): Cleaned {
  const out: string[] = [];
  for (const v of values) {
    if (isMissing(v) || v === Infinity || v === -Infinity) continue;
    out.push(categoryKey(v as number | string | boolean));
  }
  return { ok: true, sample: { type: 'categorical', values: out } };
}
