// The one failure type of upstream calls: carries what the retry loop, the breaker and the fallback
// need (status, Retry-After, whether any text already reached the client) without the upstream's body,
// which may echo secrets or prompts and is never shown to the caller.

export type UpstreamFailure =
  | 'http' // the upstream answered with an error status
  | 'connect' // no response head: refused, reset, DNS, connect timeout
  | 'first-token-timeout'
  | 'total-timeout'
  | 'stream-cut' // the stream ended before its finish event
  | 'malformed' // a body or chunk that is not the protocol
  | 'breaker-open'
  | 'queue-timeout'; // the provider's concurrency limit stayed full

export class UpstreamError extends Error {
  constructor(
    readonly provider: string,
    readonly failure: UpstreamFailure,
    message: string,
    readonly status?: number,
    /** From the upstream's Retry-After (seconds or date), in ms. */
    readonly retryAfterMs?: number,
    /** Text had already been passed on: the request cannot be retried or moved elsewhere. */
    public delivered = false,
  ) {
    super(message);
    this.name = 'UpstreamError';
  }

  /** 429, 5xx, 408, connection failures and timeouts may succeed on another try; 4xx (bad request, auth) will not. */
  get retryable(): boolean {
    if (this.delivered) return false;
    if (this.failure === 'http') return this.status === 429 || this.status === 408 || (this.status ?? 0) >= 500;
    return true;
  }
}

/** Retry-After as seconds or an HTTP date → milliseconds (undefined when absent or unreadable). */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const s = value.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(Number(s) * 1000);
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}
