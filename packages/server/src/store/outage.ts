// Which errors mean "the store cannot be used right now" (as opposed to a bug or bad data): a
// PostgreSQL connection refused, cut or timed out, the pool exhausted, the server shutting down or
// out of resources; SQLite locked past its busy timeout, the disk full, an I/O error. Callers turn
// these into a 503 `store-unavailable` with Retry-After, which clients and proxies retry.
import { FerryError } from '../errors.js';

const NODE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENOSPC',
  'EIO',
]);
// SQLSTATE classes 08 (connection), 53 (insufficient resources), 57P (operator intervention: shutdown).
const PG_STATE = /^(08|53|57P)/;
const SQLITE_CODES = /^SQLITE_(BUSY|LOCKED|FULL|IOERR|CANTOPEN|READONLY|PROTOCOL)/;
const MESSAGES =
  /(timeout exceeded when trying to connect|Connection terminated|connection timeout|Query read timeout|Client has encountered a connection error|database is locked|database or disk is full|disk I\/O error)/i;

export function isStoreOutage(err: unknown): boolean {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && (NODE_CODES.has(code) || PG_STATE.test(code) || SQLITE_CODES.test(code)))
      return true;
    if (typeof message === 'string' && MESSAGES.test(message)) return true;
  }
  return false;
}

/** The 503 a caller answers when the store failed with an outage (`isStoreOutage`). */
export function storeUnavailable(cause: unknown): FerryError {
  return new FerryError('store-unavailable', {
    detail: 'the store (database) cannot be used right now; retry later',
    headers: { 'retry-after': '5' },
    cause,
  });
}
