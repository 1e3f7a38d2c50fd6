// Errors of drift detection. Codes are stable strings (listed in docs/drift.md, which a test holds to
// this list); the CLI maps them to exit code 2 and a one-line message. Data that merely cannot be
// tested is not an error: the report says so per column.

export const DRIFT_ERROR_CODES = [
  /** Options that make no sense: an unknown test, a test that does not fit the column's type, a bad threshold. */
  'drift-invalid-options',
  /** A table that cannot be read: unknown format, malformed CSV, JSON or Parquet, a missing file. */
  'drift-unreadable-table',
] as const;

export type DriftErrorCode = (typeof DRIFT_ERROR_CODES)[number];

export class DriftError extends Error {
  readonly code: DriftErrorCode;
  constructor(code: DriftErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DriftError';
    this.code = code;
  }
}
