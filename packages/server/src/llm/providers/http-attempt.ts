// One HTTP attempt against an upstream with the provider's three timeouts (connect = until the response
// head, first token, total) and an SSE reader. node:http(s) over keep-alive agents carries the request
// (node-http.ts says why not fetch); the SSE framing is parsed by `eventsource-parser` (maintained,
// spec-conformant: multi-line data, comments, CRLF, chunks split anywhere), so no hand-written line
// splitting stands between an upstream and a client.
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { traceHeaders } from '../../telemetry/index.js';
import { UpstreamError, parseRetryAfter, type UpstreamFailure } from '../upstream-error.js';
import { postUpstream, type UpstreamResponse } from './node-http.js';

export interface AttemptTimeouts {
  /** Extra CAs for HTTPS (the provider's `caFile`; '' for the system's only). */
  caFile?: string;
  connectTimeoutMs: number;
  firstTokenTimeoutMs: number;
  totalTimeoutMs: number;
}

export class HttpAttempt {
  readonly signal: AbortSignal;
  readonly #ctl = new AbortController();
  #why: UpstreamFailure | undefined;
  #timers: NodeJS.Timeout[] = [];
  #firstTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly provider: string,
    private readonly t: AttemptTimeouts,
    outer: AbortSignal,
  ) {
    this.signal = this.#ctl.signal;
    if (outer.aborted) this.#ctl.abort();
    else outer.addEventListener('abort', () => this.#ctl.abort(), { once: true });
    this.#arm('total-timeout', t.totalTimeoutMs);
  }

  #arm(why: UpstreamFailure, ms: number): NodeJS.Timeout {
    const timer = setTimeout(() => {
      this.#why ??= why;
      this.#ctl.abort();
    }, ms);
    this.#timers.push(timer);
    return timer;
  }

  /** The upstream produced its first token (or its whole body): the first-token timer stops. */
  firstToken(): void {
    clearTimeout(this.#firstTimer);
  }

  end(): void {
    for (const t of this.#timers) clearTimeout(t);
  }

  /** Rewrites an abort or network failure into the UpstreamError it stands for. */
  failure(e: unknown): UpstreamError {
    if (e instanceof UpstreamError) return e;
    const why = this.#why ?? 'connect';
    return new UpstreamError(
      this.provider,
      why,
      `${this.provider}: ${why}${this.#why ? '' : `: ${(e as Error).message}`}`,
    );
  }

  /** POSTs JSON; resolves with the response once its head arrives, or throws UpstreamError (status, Retry-After). */
  async post(url: string, headers: Record<string, string>, body: unknown): Promise<UpstreamResponse> {
    const connect = this.#arm('connect', this.t.connectTimeoutMs);
    this.#firstTimer = this.#arm('first-token-timeout', this.t.firstTokenTimeoutMs);
    let res: UpstreamResponse;
    try {
      res = await postUpstream(
        url,
        // `traceparent` of the attempt's span (resilience.ts) when tracing is on: the upstream joins the trace.
        { 'content-type': 'application/json', ...headers, ...traceHeaders() },
        JSON.stringify(body),
        this.signal,
        this.t.caFile,
      );
    } catch (e) {
      throw this.failure(e);
    } finally {
      clearTimeout(connect);
    }
    if (!res.ok) {
      // The body is read (to free the connection) but never passed on: it may quote the key or the prompt.
      await res.text().catch(() => '');
      throw new UpstreamError(
        this.provider,
        'http',
        `${this.provider}: upstream answered ${res.status}`,
        res.status,
        parseRetryAfter(res.headers.get('retry-after')),
      );
    }
    return res;
  }

  /** The whole JSON body (non-streamed answers). */
  async json(res: UpstreamResponse): Promise<unknown> {
    let text: string;
    try {
      text = await res.text();
    } catch (e) {
      throw this.failure(e);
    }
    this.firstToken();
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new UpstreamError(this.provider, 'malformed', `${this.provider}: the response body is not JSON`);
    }
  }

  /** Feeds each SSE event to `onEvent`; resolves at the end of the body. */
  async events(res: UpstreamResponse, onEvent: (ev: EventSourceMessage) => void): Promise<void> {
    if (!res.body) throw new UpstreamError(this.provider, 'malformed', `${this.provider}: a stream without a body`);
    let failed: unknown;
    const parser = createParser({
      onEvent: (ev) => {
        if (failed) return;
        try {
          onEvent(ev);
        } catch (e) {
          failed = e;
        }
      },
    });
    const decoder = new TextDecoder();
    try {
      for await (const bytes of res.body) {
        parser.feed(decoder.decode(bytes, { stream: true }));
        if (failed) break;
      }
    } catch (e) {
      throw this.failure(e);
    }
    if (failed) {
      await res.body.cancel().catch(() => undefined);
      throw this.failure(failed);
    }
  }
}

/** JSON.parse of one SSE data field; a chunk that is not JSON is a protocol error, not a crash. */
export function parseChunk(provider: string, data: string): Record<string, unknown> {
  try {
    const v = JSON.parse(data) as unknown;
    if (v && typeof v === 'object') return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new UpstreamError(provider, 'malformed', `${provider}: a stream chunk that is not a JSON object`);
}

export const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0);
