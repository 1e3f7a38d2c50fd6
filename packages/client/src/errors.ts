// Errors the client throws. A problem+json answer is rebuilt as the class its `code` belongs to, so an
// app writes `if (e instanceof InvalidInputError) showFieldErrors(e.errors)` instead of parsing bodies.
import { isErrorCode, type ErrorCode } from '@ferry/core';

export interface FieldIssue {
  pointer: string;
  reason: string;
}

/** An RFC 9457 problem document as Ferry writes it. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  code?: string;
  instance?: string;
  retryable?: boolean;
  errors?: FieldIssue[];
  [k: string]: unknown;
}

/** Base of everything the client throws. `code` is the server's code, or a client-side one. */
export class FerryClientError extends Error {
  readonly code: string;
  readonly status: number;
  readonly retryable: boolean;
  readonly problem: Problem | undefined;
  readonly requestId: string | undefined;
  /** From `Retry-After`, in ms, when the server sent one. */
  readonly retryAfterMs: number | undefined;

  constructor(
    message: string,
    init: {
      code: string;
      status?: number;
      retryable?: boolean;
      problem?: Problem;
      requestId?: string;
      retryAfterMs?: number;
      cause?: unknown;
    },
  ) {
    super(message, { cause: init.cause });
    this.name = new.target.name;
    this.code = init.code;
    this.status = init.status ?? 0;
    this.retryable = init.retryable ?? false;
    this.problem = init.problem;
    this.requestId = init.requestId;
    this.retryAfterMs = init.retryAfterMs;
  }
}

/** Any error the server answered with a problem document. */
export class FerryApiError extends FerryClientError {
  /** The server's code narrowed to the catalogue when it is one (newer servers may send others). */
  get knownCode(): ErrorCode | undefined {
    return isErrorCode(this.code) ? this.code : undefined;
  }
}
/** 400-family: the request does not fit the contract; `errors` has the JSON pointer and reason of each field. */
export class InvalidInputError extends FerryApiError {
  get errors(): FieldIssue[] {
    return Array.isArray(this.problem?.errors) ? this.problem.errors : [];
  }
}
export class PayloadTooLargeError extends FerryApiError {}
export class NotFoundError extends FerryApiError {}
/** 410: a version past its sunset; `problem.successor` names the version to move to. */
export class GoneError extends NotFoundError {}
export class UnauthorizedError extends FerryApiError {}
export class ForbiddenError extends FerryApiError {}
export class ConflictError extends FerryApiError {}
/** 503/429: overloaded, not ready, circuit open, rate limited. Retried automatically unless turned off. */
export class UnavailableError extends FerryApiError {}
export class RateLimitedError extends UnavailableError {}
export class ServerTimeoutError extends FerryApiError {}
export class ServerError extends FerryApiError {}

/** The server could not be reached (DNS, refused connection, CORS, offline). */
export class NetworkError extends FerryClientError {}
/** The call took longer than its `timeoutMs` (client side). */
export class ClientTimeoutError extends FerryClientError {}
/** The caller aborted through its AbortSignal. */
export class AbortedError extends FerryClientError {}

type ApiErrorClass = new (message: string, init: ConstructorParameters<typeof FerryApiError>[1]) => FerryApiError;

/** The class for each code of the catalogue; the compiler makes sure none is missing. */
export const ERROR_CLASSES: Record<ErrorCode, ApiErrorClass> = {
  'invalid-input': InvalidInputError,
  'invalid-json': InvalidInputError,
  'invalid-request': InvalidInputError,
  'unsupported-media-type': InvalidInputError,
  'body-too-large': PayloadTooLargeError,
  'too-many-instances': InvalidInputError,
  'tensor-too-large': InvalidInputError,
  'model-not-found': NotFoundError,
  'version-not-found': NotFoundError,
  'route-not-found': NotFoundError,
  'method-not-allowed': InvalidInputError,
  'model-not-ready': UnavailableError,
  'inference-failed': ServerError,
  'server-overloaded': UnavailableError,
  timeout: ServerTimeoutError,
  'circuit-open': UnavailableError,
  'shutting-down': UnavailableError,
  'edge-unsupported': ConflictError,
  internal: ServerError,
  'job-not-found': NotFoundError,
  'job-not-cancellable': ConflictError,
  'idempotency-key-reused': ConflictError,
  'callback-not-allowed': InvalidInputError,
  'queue-unavailable': UnavailableError,
  'store-unavailable': UnavailableError,
  'too-many-streams': RateLimitedError,
  unauthorized: UnauthorizedError,
  forbidden: ForbiddenError,
  'rate-limited': RateLimitedError,
  'version-retired': GoneError,
  'version-in-use': ConflictError,
  'load-failed': ConflictError,
  'pipeline-not-found': NotFoundError,
  'pipeline-prediction-not-found': NotFoundError,
  'pipeline-results-not-served': ConflictError,
  'not-streamable': InvalidInputError,
  'websocket-required': InvalidInputError,
  'invalid-audio': InvalidInputError,
  'invalid-message': InvalidInputError,
  'model-not-generative': InvalidInputError,
  'context-length-exceeded': InvalidInputError,
  // The server ended a token stream this client stopped reading: the client's own doing, not retryable as is.
  'stream-stalled': FerryApiError,
  'budget-exceeded': RateLimitedError,
  'upstream-failed': ServerError,
  'prompt-too-large': InvalidInputError,
};

/** For codes this client does not know yet (a newer server): the class of the status family. */
function classForStatus(status: number): ApiErrorClass {
  if (status === 401) return UnauthorizedError;
  if (status === 403) return ForbiddenError;
  if (status === 404) return NotFoundError;
  if (status === 410) return GoneError;
  if (status === 409) return ConflictError;
  if (status === 413) return PayloadTooLargeError;
  if (status === 429) return RateLimitedError;
  if (status === 503) return UnavailableError;
  if (status === 504) return ServerTimeoutError;
  if (status >= 500) return ServerError;
  return InvalidInputError;
}

/** Rebuilds the typed error from a problem document (or whatever body a proxy sent instead). */
export function errorFromProblem(
  status: number,
  body: unknown,
  meta: { requestId?: string; retryAfterMs?: number } = {},
): FerryApiError {
  const problem: Problem =
    body !== null && typeof body === 'object' && !Array.isArray(body)
      ? (body as Problem)
      : { detail: typeof body === 'string' ? body.slice(0, 500) : undefined };
  const code = typeof problem.code === 'string' ? problem.code : `http-${status}`;
  const Cls = isErrorCode(code) ? ERROR_CLASSES[code] : classForStatus(status);
  const retryable = typeof problem.retryable === 'boolean' ? problem.retryable : status === 503 || status === 429;
  return new Cls(problem.detail ?? problem.title ?? `HTTP ${status}`, {
    code,
    status,
    retryable,
    problem,
    ...(meta.requestId !== undefined && { requestId: meta.requestId }),
    ...(meta.retryAfterMs !== undefined && { retryAfterMs: meta.retryAfterMs }),
  });
}
