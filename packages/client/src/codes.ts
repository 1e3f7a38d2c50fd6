// Every error code a Ferry server sends, with its HTTP status and whether a retry may succeed.
// This mirrors the server's ERROR_CATALOGUE (packages/server/src/errors.ts); a test compares the two
// in both directions, so a code added to the server without being added here fails the build.
export const ERROR_CODES = {
  'invalid-input': { status: 400, retryable: false },
  'invalid-json': { status: 400, retryable: false },
  'invalid-request': { status: 400, retryable: false },
  'unsupported-media-type': { status: 415, retryable: false },
  'body-too-large': { status: 413, retryable: false },
  'too-many-instances': { status: 400, retryable: false },
  'tensor-too-large': { status: 400, retryable: false },
  'model-not-found': { status: 404, retryable: false },
  'version-not-found': { status: 404, retryable: false },
  'route-not-found': { status: 404, retryable: false },
  'method-not-allowed': { status: 405, retryable: false },
  'model-not-ready': { status: 503, retryable: true },
  'inference-failed': { status: 500, retryable: true },
  'server-overloaded': { status: 503, retryable: true },
  'timeout': { status: 504, retryable: true },
  'circuit-open': { status: 503, retryable: true },
  'shutting-down': { status: 503, retryable: true },
  'edge-unsupported': { status: 409, retryable: false },
  'internal': { status: 500, retryable: true },
  'job-not-found': { status: 404, retryable: false },
  'job-not-cancellable': { status: 409, retryable: false },
  'idempotency-key-reused': { status: 422, retryable: false },
  'callback-not-allowed': { status: 400, retryable: false },
  'queue-unavailable': { status: 503, retryable: true },
  'unauthorized': { status: 401, retryable: false },
  'forbidden': { status: 403, retryable: false },
  'rate-limited': { status: 429, retryable: true },
  'version-retired': { status: 410, retryable: false },
  'version-in-use': { status: 409, retryable: false },
  'load-failed': { status: 422, retryable: false },
  'pipeline-not-found': { status: 404, retryable: false },
  'pipeline-prediction-not-found': { status: 404, retryable: false },
  'pipeline-results-not-served': { status: 409, retryable: false },
  'not-streamable': { status: 400, retryable: false },
  'websocket-required': { status: 426, retryable: false },
  'invalid-audio': { status: 400, retryable: false },
  'invalid-message': { status: 400, retryable: false },
  'model-not-generative': { status: 400, retryable: false },
  'context-length-exceeded': { status: 400, retryable: false },
  'stream-stalled': { status: 408, retryable: false },
} as const satisfies Record<string, { status: number; retryable: boolean }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(ERROR_CODES, code);
}
