// The one error tree of the server. Every failure a caller can see is a FerryError with a stable
// `code`; the HTTP layer writes it as application/problem+json (RFC 9457). Codes are listed in
// docs/errors.md and a test holds the two together: never reuse or rename a code. The catalogue
// itself lives in @ferry/core (error-catalogue.ts), shared with the client.
import {
  ERROR_CATALOGUE,
  PROBLEM_TYPE_BASE,
  type CatalogueEntry,
  type ErrorCode,
  type FieldIssue,
  type Problem,
} from '@ferry/core';

export { ERROR_CATALOGUE, PROBLEM_TYPE_BASE, type ErrorCode, type Problem } from '@ferry/core';

export interface FerryErrorOptions {
  detail?: string;
  cause?: unknown;
  retryable?: boolean;
  /** Extra members of the problem document (e.g. `errors`, `limit`, `available`). */
  extra?: Record<string, unknown>;
  headers?: Record<string, string>;
}

export class FerryError extends Error {
  readonly code: string;
  readonly status: number;
  readonly title: string;
  readonly retryable: boolean;
  readonly detail: string;
  readonly extra: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, opts: FerryErrorOptions = {}) {
    const entry: CatalogueEntry = ERROR_CATALOGUE[code];
    super(opts.detail ?? entry.title, { cause: opts.cause });
    this.name = 'FerryError';
    this.code = code;
    this.status = entry.status;
    this.title = entry.title;
    this.retryable = opts.retryable ?? entry.retryable ?? false;
    this.detail = opts.detail ?? entry.title;
    this.extra = opts.extra ?? {};
    this.headers = opts.headers ?? {};
  }
}

export function invalidInput(issues: FieldIssue[], detail?: string): FerryError {
  const first = issues[0];
  return new FerryError('invalid-input', {
    detail:
      detail ??
      (first
        ? `${first.pointer || '/'}: ${first.reason}${issues.length > 1 ? ` (${issues.length - 1} more in errors)` : ''}`
        : 'invalid input'),
    extra: { errors: issues },
  });
}

export function toProblem(err: FerryError, instance?: string): Problem {
  return {
    type: `${PROBLEM_TYPE_BASE}${err.code}`,
    title: err.title,
    status: err.status,
    detail: err.detail,
    code: err.code,
    ...(instance !== undefined && { instance }),
    ...(err.retryable && { retryable: true }),
    ...err.extra,
  };
}

/**
 * 503s the server answers by design while it cannot take the work: still loading, shedding load, a
 * model's circuit open, shutting down. They are counted in the request metrics, not logged as failures.
 */
const REFUSALS_BY_STATE: ReadonlySet<string> = new Set<ErrorCode>([
  'model-not-ready',
  'server-overloaded',
  'circuit-open',
  'shutting-down',
]);

/** A minimal logger shape, so the error tree does not depend on one logging library. */
interface ErrorLog {
  error(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

/**
 * Logs how a request ended in error: a failure of the server (a 5xx other than the refusals above) at
 * error, with the error and its stack; a refusal (every 4xx, and those 503s) at debug with its code
 * and detail, so a load balancer retrying a loading server does not fill the log.
 */
export function logRequestError(log: ErrorLog, fe: FerryError, err: unknown, failed = 'request failed'): void {
  if (fe.status >= 500 && !REFUSALS_BY_STATE.has(fe.code)) log.error({ err }, failed);
  else log.debug({ code: fe.code, detail: fe.detail }, 'request refused');
}
