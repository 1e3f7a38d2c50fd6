// The error catalogue: every code a Ferry server sends, with its HTTP status, title and whether a
// retry may succeed. The server raises errors from it and the client rebuilds them from it, so the two
// cannot drift apart. Codes are stable: listed in docs/errors.md, never reused or renamed.

export interface CatalogueEntry {
  status: number;
  title: string;
  retryable?: boolean;
}

/** Every error code Ferry emits. docs/errors.md documents each one (checked by a test). */
export const ERROR_CATALOGUE = {
  'invalid-input': { status: 400, title: "The request does not satisfy the model's contract" },
  'invalid-json': { status: 400, title: 'The request body is not valid JSON' },
  'invalid-request': { status: 400, title: 'The request is malformed' },
  'unsupported-media-type': { status: 415, title: 'Unsupported content type' },
  'body-too-large': { status: 413, title: 'The request body exceeds the configured limit' },
  'too-many-instances': { status: 400, title: 'Too many instances in one request' },
  'tensor-too-large': { status: 400, title: 'A tensor exceeds the configured element limit' },
  'model-not-found': { status: 404, title: 'No such model' },
  'version-not-found': { status: 404, title: 'No such model version' },
  'route-not-found': { status: 404, title: 'No such route' },
  'method-not-allowed': { status: 405, title: 'Method not allowed' },
  'model-not-ready': { status: 503, title: 'The model is not loaded yet', retryable: true },
  'inference-failed': { status: 500, title: 'The model failed to run', retryable: true },
  'server-overloaded': { status: 503, title: 'The server is overloaded', retryable: true },
  timeout: { status: 504, title: 'The prediction did not finish in time', retryable: true },
  'circuit-open': { status: 503, title: 'The model is failing; its circuit breaker is open', retryable: true },
  'shutting-down': { status: 503, title: 'The server is shutting down', retryable: true },
  'not-streamable': { status: 400, title: 'The model declares no streaming mode' },
  'websocket-required': { status: 426, title: 'The stream route speaks WebSocket only' },
  'invalid-audio': { status: 400, title: "The audio sent on a stream is not in the session's format" },
  'invalid-message': { status: 400, title: 'A stream message the protocol does not allow' },
  'model-not-generative': { status: 400, title: 'The model is not a generative model' },
  'context-length-exceeded': { status: 400, title: "The prompt and completion do not fit the model's context" },
  'stream-stalled': { status: 408, title: 'The client stopped reading a token stream' },
  'edge-unsupported': { status: 409, title: 'This model version cannot run on the edge' },
  internal: { status: 500, title: 'Internal server error', retryable: true },
  // Asynchronous jobs (jobs/).
  'job-not-found': { status: 404, title: 'No such job' },
  'job-not-cancellable': { status: 409, title: 'The job has already ended' },
  'idempotency-key-reused': { status: 422, title: 'The Idempotency-Key was used for a different request' },
  'callback-not-allowed': { status: 400, title: 'The callback URL is not allowed' },
  'queue-unavailable': { status: 503, title: 'The job queue cannot be reached', retryable: true },
  'store-unavailable': { status: 503, title: 'The job store cannot be reached', retryable: true },
  'too-many-streams': { status: 429, title: 'Too many open event streams', retryable: true },
  unauthorized: { status: 401, title: 'A valid API key is required' },
  forbidden: { status: 403, title: 'The API key does not allow this' },
  'rate-limited': { status: 429, title: 'Too many requests', retryable: true },
  'version-retired': { status: 410, title: 'This model version is past its sunset date' },
  'version-in-use': { status: 409, title: 'The version is still referenced by the rollout' },
  'load-failed': { status: 422, title: 'The model version could not be loaded; the previous one keeps serving' },
  'pipeline-not-found': { status: 404, title: 'No such batch pipeline' },
  'pipeline-prediction-not-found': { status: 404, title: 'No stored prediction for that key' },
  'pipeline-results-not-served': { status: 409, title: 'This pipeline writes its results to files, not to the store' },
  // LLM gateway (packages/server/src/llm/, docs/llm-gateway.md).
  'budget-exceeded': { status: 429, title: 'A token or spend budget is used up for this window', retryable: true },
  'upstream-failed': { status: 502, title: 'Every provider of the LLM route failed', retryable: true },
  'prompt-too-large': { status: 400, title: "The prompt does not fit the route's maximum even after trimming" },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** True when `code` is one of the catalogue's codes. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(ERROR_CATALOGUE, code);
}

/** A problem document as written on the wire. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  instance?: string;
  retryable?: boolean;
  [k: string]: unknown;
}

export const PROBLEM_TYPE_BASE = 'https://ferry.dev/problems/';
