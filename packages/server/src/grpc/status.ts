// Ferry's errors as gRPC statuses. The HTTP status of each catalogue code picks the gRPC code (400 →
// INVALID_ARGUMENT, 404 → NOT_FOUND, 503 → UNAVAILABLE, ...); the message is the problem's `detail`,
// and the trailers carry the stable `ferry-error-code` and the whole problem document
// (`ferry-problem-bin`, JSON) so a client can rebuild the error exactly as over REST.
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { FerryError, toProblem } from '../errors.js';

const BY_HTTP_STATUS: Record<number, status> = {
  400: status.INVALID_ARGUMENT,
  401: status.UNAUTHENTICATED,
  403: status.PERMISSION_DENIED,
  404: status.NOT_FOUND,
  405: status.UNIMPLEMENTED,
  408: status.DEADLINE_EXCEEDED,
  409: status.FAILED_PRECONDITION,
  // A retired version: the name is known but nothing serves it any more.
  410: status.NOT_FOUND,
  413: status.RESOURCE_EXHAUSTED,
  415: status.INVALID_ARGUMENT,
  422: status.INVALID_ARGUMENT,
  426: status.FAILED_PRECONDITION,
  429: status.RESOURCE_EXHAUSTED,
  503: status.UNAVAILABLE,
  504: status.DEADLINE_EXCEEDED,
};

/** The gRPC code for a Ferry error code and its HTTP status. */
export function grpcCodeFor(err: FerryError): status {
  // "No such route" over REST is "no such method" over gRPC (e.g. management RPCs without API keys).
  if (err.code === 'route-not-found') return status.UNIMPLEMENTED;
  return BY_HTTP_STATUS[err.status] ?? (err.status >= 500 ? status.INTERNAL : status.INVALID_ARGUMENT);
}

/** A gRPC error for anything thrown by a handler; unexpected errors become INTERNAL without internals. */
export function toServiceError(e: unknown): Partial<ServiceError> & { code: status; details: string } {
  const err = e instanceof FerryError ? e : new FerryError('internal', { detail: 'internal error', cause: e });
  const metadata = new Metadata();
  metadata.set('ferry-error-code', err.code);
  metadata.set('ferry-problem-bin', Buffer.from(JSON.stringify(toProblem(err)), 'utf8'));
  const retryAfter = err.headers['retry-after'];
  if (retryAfter !== undefined) metadata.set('retry-after', retryAfter);
  return { code: grpcCodeFor(err), details: err.detail, metadata };
}
