// The Ferry client: one `request` that owns timeouts, aborts, retries and error rebuilding, and typed
// calls for each v1 endpoint on top of it. No Node-only import: it runs in browsers, Node, Deno, workers.
import { AbortedError, ClientTimeoutError, FerryClientError, NetworkError, errorFromProblem } from './errors.js';
import { parseSse, type SseEvent } from './sse.js';
import type {
  AnyPrediction,
  FallbackInfo,
  InputOf,
  Job,
  ModelDescription,
  ModelName,
  ModelSummary,
  PredictionOf,
  PredictResult,
  Timeseries,
} from './types.js';
import { AudioSession, type AudioSessionOptions } from './audio.js';
import { openAiStream, type ChatRequest, type TokenChunk } from './openai.js';

export interface RetryOptions {
  /** Further attempts after the first, on 503 and 429 (and network errors for idempotent calls). Default 2. */
  retries?: number;
  /** Backoff when the server sends no Retry-After: base * 2^attempt with full jitter. Default 200 ms. */
  baseDelayMs?: number;
  /** No single wait is longer than this, whatever Retry-After says. Default 5,000 ms. */
  maxDelayMs?: number;
}

export interface ClientOptions {
  /** Where Ferry answers, e.g. `https://ml.example.com` or `''` for the page's own origin. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer`. A function is called per request (for rotating keys). */
  apiKey?: string | (() => string | undefined);
  /** Swap the transport (tests, SSR, instrumentation). Default: the global fetch. */
  fetch?: typeof fetch;
  /** Default per-call timeout, ms (0 = none). Default 30,000. */
  timeoutMs?: number;
  retry?: RetryOptions;
  /** Extra headers on every request (e.g. `Ferry-Client-Id` for sticky canaries). */
  headers?: Record<string, string>;
  /** WebSocket constructor for audio sessions where there is no global one (Node 20: the `ws` package). */
  WebSocket?: typeof WebSocket;
}

export interface CallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  retry?: RetryOptions | false;
  headers?: Record<string, string>;
}

export type Fallback<I, P> = P[] | ((error: FerryClientError, instances: I[]) => P[] | Promise<P[]>);

export interface PredictOptions<I = Record<string, unknown>, P = AnyPrediction> extends CallOptions {
  /** Exact version, major (`1`) or alias; default: the model's default version (or the `@ref` in the name). */
  version?: string;
  /** Answer with this when the server is unreachable, times out, or stays unavailable after retries. */
  fallback?: Fallback<I, P>;
  /** Ask the server to give up after this many ms (`Ferry-Timeout-Ms`); its fallback policy then applies. */
  serverTimeoutMs?: number;
}

interface RequestInit2 extends CallOptions {
  method?: string;
  body?: unknown;
  query?: Record<string, string | number | undefined>;
  /** Retry network errors too (safe for GET, and for POSTs with an Idempotency-Key). */
  idempotent?: boolean;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** `Retry-After`: seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\s*\d+(\.\d+)?\s*$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());
const enc = encodeURIComponent;

/** Splits `spam@1` into the name and the version reference. */
export function splitModelRef(ref: string): { name: string; version?: string } {
  const at = ref.indexOf('@');
  return at < 0 ? { name: ref } : { name: ref.slice(0, at), version: ref.slice(at + 1) };
}

export class FerryClient {
  readonly baseUrl: string;
  private readonly fetchImpl: typeof fetch;
  private readonly opts: ClientOptions;

  constructor(opts: ClientOptions) {
    this.opts = opts;
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    const f = opts.fetch ?? globalThis.fetch;
    if (!f) throw new TypeError('no fetch available: pass options.fetch');
    // Called unbound, a browser's fetch throws "Illegal invocation".
    this.fetchImpl = opts.fetch ?? f.bind(globalThis);
  }

  url(path: string, query?: Record<string, string | number | undefined>): string {
    const q = query
      ? Object.entries(query)
          .filter(([, v]) => v !== undefined)
          .map(([k, v]) => `${enc(k)}=${enc(String(v))}`)
          .join('&')
      : '';
    return `${this.baseUrl}${path}${q ? `?${q}` : ''}`;
  }

  headers(extra?: Record<string, string>): Record<string, string> {
    const key = typeof this.opts.apiKey === 'function' ? this.opts.apiKey() : this.opts.apiKey;
    return { ...this.opts.headers, ...(key && { authorization: `Bearer ${key}` }), ...extra };
  }

  /**
   * One HTTP exchange with timeout, abort and retries; returns the Response of a 2xx/3xx, throws a
   * typed error otherwise. Low level: most code calls the typed methods.
   */
  async fetch(path: string, init: RequestInit2 = {}): Promise<Response> {
    const retry = init.retry === false ? { retries: 0 } : { ...this.opts.retry, ...init.retry };
    const retries = retry.retries ?? 2;
    const baseDelayMs = retry.baseDelayMs ?? 200;
    const maxDelayMs = retry.maxDelayMs ?? 5000;
    const timeoutMs = init.timeoutMs ?? this.opts.timeoutMs ?? 30_000;
    // One deadline for the whole call, retries included: a caller's timeout is a promise about latency.
    const ctl = new AbortController();
    const timer =
      timeoutMs > 0
        ? setTimeout(
            () => ctl.abort(new ClientTimeoutError(`no answer within ${timeoutMs} ms`, { code: 'client-timeout' })),
            timeoutMs,
          )
        : undefined;
    const onAbort = () =>
      ctl.abort(new AbortedError('aborted by the caller', { code: 'aborted', cause: init.signal?.reason }));
    if (init.signal?.aborted) onAbort();
    init.signal?.addEventListener('abort', onAbort, { once: true });
    const isJson =
      init.body !== undefined &&
      !(init.body instanceof Blob) &&
      !(init.body instanceof ArrayBuffer) &&
      !ArrayBuffer.isView(init.body) &&
      !(typeof FormData !== 'undefined' && init.body instanceof FormData);
    const body = init.body === undefined ? undefined : isJson ? JSON.stringify(init.body) : (init.body as BodyInit);
    const headers = this.headers({
      accept: 'application/json',
      ...(isJson && { 'content-type': 'application/json' }),
      ...init.headers,
    });
    try {
      for (let attempt = 0; ; attempt++) {
        let res: Response;
        try {
          res = await this.fetchImpl(this.url(path, init.query), {
            method: init.method ?? 'GET',
            headers,
            body: body ?? null,
            signal: ctl.signal,
          });
        } catch (e) {
          if (ctl.signal.aborted)
            throw ctl.signal.reason instanceof FerryClientError
              ? ctl.signal.reason
              : new AbortedError('aborted', { code: 'aborted', cause: e });
          const err = new NetworkError(`cannot reach ${this.baseUrl || 'the server'}: ${(e as Error).message}`, {
            code: 'network',
            retryable: true,
            cause: e,
          });
          if (!(init.idempotent ?? (init.method ?? 'GET') === 'GET') || attempt >= retries) throw err;
          await sleep(Math.random() * Math.min(maxDelayMs, baseDelayMs * 2 ** attempt), ctl.signal).catch(() => {
            throw ctl.signal.reason;
          });
          continue;
        }
        if (res.ok || (res.status >= 300 && res.status < 400)) return res;
        const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
        const text = await res.text().catch(() => '');
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          /* not JSON: a proxy's page */
        }
        const err = errorFromProblem(res.status, parsed, {
          ...(res.headers.get('x-request-id') && { requestId: res.headers.get('x-request-id')! }),
          ...(retryAfterMs !== undefined && { retryAfterMs }),
        });
        const again = (res.status === 503 || res.status === 429) && attempt < retries;
        if (!again) throw err;
        const wait = Math.min(maxDelayMs, retryAfterMs ?? Math.random() * baseDelayMs * 2 ** attempt);
        await sleep(wait, ctl.signal).catch(() => {
          throw ctl.signal.reason;
        });
      }
    } finally {
      if (timer) clearTimeout(timer);
      init.signal?.removeEventListener('abort', onAbort);
    }
  }

  async json<T>(path: string, init: RequestInit2 = {}): Promise<T> {
    const res = await this.fetch(path, init);
    if (res.status === 204) return undefined as T;
    return (await res.json()) as T;
  }

  // ---- models ------------------------------------------------------------------------------------

  readonly models = {
    list: async (o: CallOptions = {}): Promise<ModelSummary[]> =>
      (await this.json<{ models: ModelSummary[] }>('/v1/models', o)).models,
    get: (model: string, o: CallOptions & { version?: string } = {}): Promise<ModelDescription> =>
      this.json(o.version ? `/v1/models/${enc(model)}/versions/${enc(o.version)}` : `/v1/models/${enc(model)}`, o),
    drift: (
      model: string,
      o: CallOptions & { version?: string; window?: string } = {},
    ): Promise<Record<string, unknown>> =>
      this.json(
        o.version ? `/v1/models/${enc(model)}/versions/${enc(o.version)}/drift` : `/v1/models/${enc(model)}/drift`,
        { ...o, query: { window: o.window } },
      ),
    rollout: (model: string, o: CallOptions = {}): Promise<Record<string, unknown>> =>
      this.json(`/v1/models/${enc(model)}/rollout`, o),
    /** The contract and artifact digest of an exact version (a floating ref is redirected to one). */
    artifactContract: (
      model: string,
      version: string,
      o: CallOptions = {},
    ): Promise<{
      name: string;
      version: string;
      artifact: { bytes: number; etag: string; url: string };
      contract: Record<string, unknown>;
      /** Files the contract's preprocessing reads, parsed (the tokenizer's tokenizer.json). */
      resources?: { tokenizer?: unknown };
    }> => this.json(`/v1/models/${enc(model)}/versions/${enc(version)}/artifact/contract`, o),
    artifact: async (model: string, version: string, o: CallOptions = {}): Promise<ArrayBuffer> =>
      (
        await this.fetch(`/v1/models/${enc(model)}/versions/${enc(version)}/artifact`, {
          ...o,
          headers: { accept: 'application/octet-stream', ...o.headers },
        })
      ).arrayBuffer(),
  };

  // ---- predictions -------------------------------------------------------------------------------

  /** Predicts for one or more instances. With `fallback`, an unreachable or slow server yields the fallback, flagged.
   */
  async predict<M extends ModelName>(
    model: M,
    instances: Array<InputOf<M>>,
    o: PredictOptions<InputOf<M>, PredictionOf<M>> = {},
  ): Promise<PredictResult<PredictionOf<M>>> {
    const { name, version } = splitModelRef(model);
    const ref = o.version ?? version;
    const path = ref ? `/v1/models/${enc(name)}/versions/${enc(ref)}/predict` : `/v1/models/${enc(name)}/predict`;
    const started = now();
    try {
      const res = await this.fetch(path, {
        ...o,
        method: 'POST',
        body: { instances },
        headers: {
          ...o.headers,
          ...(o.serverTimeoutMs !== undefined && { 'ferry-timeout-ms': String(o.serverTimeoutMs) }),
        },
      });
      const body = (await res.json()) as {
        model: string;
        version: string;
        predictions: Array<PredictionOf<M>>;
        fallback?: { reason: string; policy?: string };
      };
      const cache = res.headers.get('ferry-cache');
      return {
        model: body.model,
        version: body.version,
        predictions: body.predictions,
        latencyMs: now() - started,
        ...(body.fallback && {
          fallback: {
            source: 'server',
            reason: body.fallback.reason,
            ...(body.fallback.policy && { policy: body.fallback.policy }),
          } satisfies FallbackInfo,
        }),
        ...(cache && { cache }),
      };
    } catch (e) {
      if (!o.fallback || !(e instanceof FerryClientError) || !useFallbackFor(e)) throw e;
      const predictions = typeof o.fallback === 'function' ? await o.fallback(e, instances) : o.fallback;
      return {
        model: name,
        version: ref ?? '',
        predictions,
        latencyMs: now() - started,
        fallback: { source: 'client', reason: e.code },
      };
    }
  }

  /** A handle on one model, typed by the generated registry: `client.model('flight-delay').predict({...})`. */
  model<M extends ModelName>(model: M, defaults: PredictOptions<InputOf<M>, PredictionOf<M>> = {}): ModelHandle<M> {
    return new ModelHandle(this, model, defaults);
  }

  // ---- jobs --------------------------------------------------------------------------------------

  readonly jobs = {
    submit: async <R = unknown>(
      model: string,
      instances: unknown[],
      o: CallOptions & { idempotencyKey?: string; callbackUrl?: string; version?: string } = {},
    ): Promise<Job<R>> => {
      const { name, version } = splitModelRef(model);
      const ref = o.version ?? version;
      const path = ref ? `/v1/models/${enc(name)}/versions/${enc(ref)}/jobs` : `/v1/models/${enc(name)}/jobs`;
      return this.json(path, {
        ...o,
        method: 'POST',
        body: { instances, ...(o.callbackUrl && { callbackUrl: o.callbackUrl }) },
        idempotent: o.idempotencyKey !== undefined,
        headers: { ...o.headers, ...(o.idempotencyKey && { 'idempotency-key': o.idempotencyKey }) },
      });
    },
    /** Uploads a file (an image for OCR) as a multipart job. */
    upload: async <R = unknown>(
      model: string,
      field: string,
      file: Blob,
      o: CallOptions & { filename?: string } = {},
    ): Promise<Job<R>> => {
      const form = new FormData();
      form.append(field, file, o.filename ?? 'upload');
      return this.json(`/v1/models/${enc(model)}/jobs`, { ...o, method: 'POST', body: form });
    },
    get: <R = unknown>(id: string, o: CallOptions = {}): Promise<Job<R>> => this.json(`/v1/jobs/${enc(id)}`, o),
    list: (
      q: { model?: string; state?: string; limit?: number; cursor?: string } = {},
      o: CallOptions = {},
    ): Promise<{ jobs: Job[]; nextCursor?: string | null }> => this.json('/v1/jobs', { ...o, query: q }),
    cancel: (id: string, o: CallOptions = {}): Promise<Job> =>
      this.json(`/v1/jobs/${enc(id)}`, { ...o, method: 'DELETE' }),
    /** The job's state and progress changes as they happen (Server-Sent Events). */
    events: (id: string, o: CallOptions = {}): AsyncGenerator<{ event: string; data: Job }> =>
      this.sseJson<Job>(`/v1/jobs/${enc(id)}/events`, o),
    /** Resolves with the finished job (completed, failed or cancelled), reporting progress on the way. */
    wait: async <R = unknown>(
      id: string,
      o: CallOptions & { onProgress?: (job: Job<R>) => void } = {},
    ): Promise<Job<R>> => {
      const done = (j: Job) => j.state === 'completed' || j.state === 'failed' || j.state === 'cancelled';
      const first = await this.jobs.get<R>(id, o);
      o.onProgress?.(first);
      if (done(first)) return first;
      for await (const e of this.sseJson<Job<R>>(`/v1/jobs/${enc(id)}/events`, { ...o, timeoutMs: o.timeoutMs ?? 0 })) {
        const j = e.data && typeof e.data === 'object' && 'state' in e.data ? e.data : undefined;
        if (j) {
          o.onProgress?.(j);
          if (done(j)) break;
        }
      }
      // The stream's last event may be partial (progress only): the job document is the truth.
      return this.jobs.get<R>(id, o);
    },
  };

  // ---- pipelines ---------------------------------------------------------------------------------

  readonly pipelines = {
    list: (o: CallOptions = {}): Promise<{ pipelines: Array<Record<string, unknown>> }> =>
      this.json('/v1/pipelines', o),
    runs: (name: string, o: CallOptions = {}): Promise<{ runs: Array<Record<string, unknown>> }> =>
      this.json(`/v1/pipelines/${enc(name)}/runs`, o),
    prediction: <P = AnyPrediction>(
      name: string,
      key: string,
      o: CallOptions = {},
    ): Promise<{ key: string; prediction: P; runId?: string; version?: string; [k: string]: unknown }> =>
      this.json(`/v1/pipelines/${enc(name)}/predictions/${enc(key)}`, o),
    batchGet: (name: string, keys: string[], o: CallOptions = {}): Promise<Record<string, unknown>> =>
      this.json(`/v1/pipelines/${enc(name)}/predictions:batchGet`, {
        ...o,
        method: 'POST',
        body: { keys },
        idempotent: true,
      }),
  };

  // ---- streaming ---------------------------------------------------------------------------------

  /** Opens an audio session (`/v1/models/{model}/stream`, WebSocket): send PCM, receive speech events. */
  audio(model: string, o: AudioSessionOptions = {}): AudioSession {
    const ws =
      this.baseUrl.replace(/^http/, 'ws') ||
      (typeof location !== 'undefined' ? location.origin.replace(/^http/, 'ws') : '');
    const key = typeof this.opts.apiKey === 'function' ? this.opts.apiKey() : this.opts.apiKey;
    const WS = o.WebSocket ?? this.opts.WebSocket ?? globalThis.WebSocket;
    const path = `/v1/models/${enc(model)}/stream`;
    // A refused handshake carries no readable body; the same GET without the upgrade gets the problem document.
    const probe = (query: Record<string, string>) =>
      this.fetch(path, { query, retry: false, timeoutMs: 10_000 }).then((r) => r.body?.cancel());
    return new AudioSession(`${ws}${path}`, { probe, ...o, WebSocket: WS, ...(key && { apiKey: key }) });
  }

  /** OpenAI-compatible chat completion, streamed token by token (`/openai/v1/chat/completions`). */
  chatStream(req: ChatRequest, o: CallOptions = {}): AsyncGenerator<TokenChunk> {
    return openAiStream(this, '/openai/v1/chat/completions', req, o);
  }

  /** The same for plain completions (`/openai/v1/completions`). */
  completionStream(
    req: Omit<ChatRequest, 'messages'> & { prompt: string },
    o: CallOptions = {},
  ): AsyncGenerator<TokenChunk> {
    return openAiStream(this, '/openai/v1/completions', req, o);
  }

  /** Raw SSE from any endpoint (job events, `Accept: text/event-stream` predictions). */
  async *sse(path: string, init: RequestInit2 = {}): AsyncGenerator<SseEvent> {
    const ctl = new AbortController();
    const onAbort = () => ctl.abort(init.signal?.reason);
    init.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const res = await this.fetch(path, {
        ...init,
        signal: ctl.signal,
        timeoutMs: init.timeoutMs ?? 0,
        headers: { accept: 'text/event-stream', ...init.headers },
      });
      if (!res.body) return;
      yield* parseSse(res.body, ctl.signal);
      // An abort after the response began ends the body like a finished stream would: say which it was.
      if (init.signal?.aborted)
        throw new AbortedError('aborted by the caller', { code: 'aborted', cause: init.signal.reason });
    } finally {
      // Leaving the loop early closes the connection, so the server stops work for a reader gone away.
      ctl.abort();
      init.signal?.removeEventListener('abort', onAbort);
    }
  }

  private async *sseJson<T>(path: string, init: RequestInit2): AsyncGenerator<{ event: string; data: T }> {
    for await (const e of this.sse(path, init)) {
      let data: unknown = e.data;
      try {
        data = JSON.parse(e.data);
      } catch {
        /* plain text event */
      }
      yield { event: e.event, data: data as T };
    }
  }

  // ---- monitoring --------------------------------------------------------------------------------

  readonly monitoring = {
    timeseries: (model?: string, o: CallOptions = {}): Promise<Timeseries> =>
      this.json('/v1/metrics/timeseries', { ...o, query: { model } }),
    ready: async (o: CallOptions = {}): Promise<{ ready: boolean; models: unknown[] }> => {
      const res = await this.fetchImpl(this.url('/readyz'), {
        headers: this.headers(),
        ...(o.signal && { signal: o.signal }),
      });
      return (await res.json()) as { ready: boolean; models: unknown[] };
    },
  };
}

/** Which failures the app's own fallback covers: the server is gone, too slow, or overloaded past retries. */
function useFallbackFor(e: FerryClientError): boolean {
  if (e.code === 'aborted') return false;
  if (e.code === 'network' || e.code === 'client-timeout') return true;
  return e.status === 503 || e.status === 504 || e.status === 429 || e.status === 502 || e.status >= 500;
}

export class ModelHandle<M extends ModelName> {
  constructor(
    private readonly client: FerryClient,
    readonly name: M,
    private readonly defaults: PredictOptions<InputOf<M>, PredictionOf<M>>,
  ) {}

  /** One instance → its prediction (with the result's metadata). */
  async predict(
    instance: InputOf<M>,
    o: PredictOptions<InputOf<M>, PredictionOf<M>> = {},
  ): Promise<PredictionOf<M> & { readonly $meta: Omit<PredictResult<PredictionOf<M>>, 'predictions'> }> {
    const r = await this.client.predict(this.name, [instance], { ...this.defaults, ...o });
    const { predictions, ...meta } = r;
    return Object.defineProperty({ ...predictions[0]! }, '$meta', {
      value: meta,
      enumerable: false,
    }) as PredictionOf<M> & { readonly $meta: typeof meta };
  }

  predictMany(
    instances: Array<InputOf<M>>,
    o: PredictOptions<InputOf<M>, PredictionOf<M>> = {},
  ): Promise<PredictResult<PredictionOf<M>>> {
    return this.client.predict(this.name, instances, { ...this.defaults, ...o });
  }

  describe(o: CallOptions = {}): Promise<ModelDescription> {
    const { name, version } = splitModelRef(this.name);
    return this.client.models.get(name, { ...o, ...(version && { version }) });
  }
}

/**
 * @example
 * const ferry = createClient({ baseUrl: 'http://localhost:8080' });
 * const p = await ferry.model('spam').predict({ text: 'WIN a FREE iPhone' });
 */
export function createClient(opts: ClientOptions): FerryClient {
  return new FerryClient(opts);
}
