// Where SQLite and PostgreSQL store the same value differently, these helpers hide it, so code that
// reads and writes the store never branches on the dialect.
import type { StoreDialect } from './store-url.js';

export interface ColumnCodec {
  /** A JSON column value: JSON text (PostgreSQL casts the text parameter to JSONB). Throws on values JSON cannot hold
   * (BigInt, cycles).
   */
  json(value: unknown): string;
  /** A JSON column read back: SQLite returns the text, the pg driver has already parsed JSONB. */
  parseJson(raw: unknown): unknown;
  /** A boolean column value: 0/1 for SQLite (it cannot bind booleans), a boolean for PostgreSQL. */
  bool(value: boolean): number | boolean;
  parseBool(raw: unknown): boolean;
  /** An integer read back: BIGINT may come as a string or bigint from some drivers; epoch ms and ids fit a double. */
  int(raw: unknown): number;
}

function toInt(raw: unknown): number {
  if (typeof raw === 'number') return raw;
  if (typeof raw === 'bigint') return Number(raw);
  if (typeof raw === 'string' && raw.trim() !== '') {
    const n = Number(raw);
    if (Number.isFinite(n)) return n;
  }
  throw new TypeError(
    `expected an integer column value, got ${typeof raw === 'string' ? JSON.stringify(raw) : typeof raw}`,
  );
}

function toJson(value: unknown): string {
  const text = JSON.stringify(value === undefined ? null : value);
  // JSON.stringify returns undefined for functions and symbols; store them as null rather than a NULL column.
  return text ?? 'null';
}

const sqliteCodec: ColumnCodec = Object.freeze({
  json: toJson,
  parseJson: (raw: unknown) => (typeof raw === 'string' ? (JSON.parse(raw) as unknown) : (raw ?? null)),
  bool: (value: boolean) => (value ? 1 : 0),
  parseBool: (raw: unknown) => raw === 1 || raw === 1n || raw === true,
  int: toInt,
});

const postgresCodec: ColumnCodec = Object.freeze({
  json: toJson,
  // JSONB arrives parsed, and a JSON string value arrives as a JS string: never parse it again.
  parseJson: (raw: unknown) => raw ?? null,
  bool: (value: boolean) => value,
  parseBool: (raw: unknown) => raw === true,
  int: toInt,
});

export function columnCodec(dialect: StoreDialect): ColumnCodec {
  return dialect === 'postgres' ? postgresCodec : sqliteCodec;
}
