// What every provider gets around its calls: a concurrency limit (requests beyond it wait in FIFO order,
// up to queueTimeoutMs), retries with exponential backoff and full jitter that honour Retry-After, and a
// circuit breaker (consecutive failed requests open it; after the cool-down one trial request decides).
// Written here rather than taken from a library: the three interact (a retry holds its concurrency slot
// only while in flight; a breaker counts requests, not attempts; a text already streamed is never
// retried), and the whole is ~100 lines that the tests exercise against a real emulator.
import type { LlmProviderConfig } from '../config/schemas/llm.js';
import { endClientSpan, runInContext, startClientSpan, tracingEnabled } from '../telemetry/index.js';
import { attemptSpanAttributes, attemptSpanOutcome } from './tracing.js';
import { UpstreamError } from './upstream-error.js';
import type { ChatAnswer, ChatProvider, ChatRequest, DeltaSink } from './types.js';

export interface ResilienceEvents {
  /** An attempt failed (each attempt, retried or not). */
  onAttemptFailed?(provider: string, err: UpstreamError): void;
  onRetry?(provider: string, delayMs: number): void;
  onBreaker?(provider: string, state: 'open' | 'closed'): void;
}

class Semaphore {
  #active = 0;
  readonly #waiting: { resolve: () => void; timer: NodeJS.Timeout | undefined }[] = [];
  constructor(private readonly max: number) {}

  async acquire(timeoutMs: number, provider: string): Promise<void> {
    if (this.#active < this.max) {
      this.#active++;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const entry = {
        resolve,
        timer: setTimeout(() => {
          const i = this.#waiting.indexOf(entry);
          if (i >= 0) this.#waiting.splice(i, 1);
          reject(new UpstreamError(provider, 'queue-timeout', `${provider}: maxConcurrent requests in flight`));
        }, timeoutMs),
      };
      this.#waiting.push(entry);
    });
  }

  release(): void {
    const next = this.#waiting.shift();
    if (next) {
      clearTimeout(next.timer);
      next.resolve(); // the slot passes straight to the next waiter
    } else this.#active--;
  }
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });

export class ResilientProvider implements ChatProvider {
  readonly #slots: Semaphore;
  #failures = 0;
  #openUntil = 0;
  #trial = false;

  constructor(
    private readonly inner: ChatProvider,
    private readonly cfg: LlmProviderConfig,
    private readonly events: ResilienceEvents = {},
    private readonly random: () => number = Math.random,
  ) {
    this.#slots = new Semaphore(cfg.maxConcurrent);
  }

  get name(): string {
    return this.inner.name;
  }
  get kind(): ChatProvider['kind'] {
    return this.inner.kind;
  }
  /** Whether the breaker lets a request through now (the router skips open providers). */
  get available(): boolean {
    return Date.now() >= this.#openUntil && !this.#trial;
  }

  #admit(): void {
    if (Date.now() < this.#openUntil || this.#trial)
      throw new UpstreamError(this.name, 'breaker-open', `${this.name}: circuit breaker open`);
    if (this.#openUntil > 0) this.#trial = true; // half-open: this request is the trial
  }

  #settle(ok: boolean): void {
    const wasTrial = this.#trial;
    this.#trial = false;
    if (ok) {
      if (this.#openUntil > 0) this.events.onBreaker?.(this.name, 'closed');
      this.#failures = 0;
      this.#openUntil = 0;
      return;
    }
    this.#failures++;
    if (wasTrial || this.#failures >= this.cfg.breakerFailures) {
      this.#openUntil = Date.now() + this.cfg.breakerCoolDownMs;
      this.events.onBreaker?.(this.name, 'open');
    }
  }

  async chat(model: string, req: ChatRequest, signal: AbortSignal, onDelta?: DeltaSink): Promise<ChatAnswer> {
    this.#admit();
    let delivered = false;
    const sink: DeltaSink | undefined = onDelta
      ? (d) => {
          delivered = true;
          onDelta(d);
        }
      : undefined;
    for (let attempt = 0; ; attempt++) {
      await this.#slots.acquire(this.cfg.queueTimeoutMs, this.name).catch((e: unknown) => {
        this.#trial = false;
        throw e;
      });
      // One CLIENT span per upstream attempt (tracing on only); the provider's request, made in its
      // context, carries it as `traceparent`.
      const span = tracingEnabled()
        ? startClientSpan(`chat ${model}`, attemptSpanAttributes(this.inner, this.cfg, model, req, attempt))
        : undefined;
      try {
        const answer = await runInContext(span?.context, () => this.inner.chat(model, req, signal, sink));
        endClientSpan(span?.span, attemptSpanOutcome(answer));
        this.#slots.release();
        this.#settle(true);
        return answer;
      } catch (e) {
        if (e instanceof UpstreamError) e.delivered ||= delivered;
        endClientSpan(span?.span, attemptSpanOutcome(undefined, e), e);
        this.#slots.release();
        if (!(e instanceof UpstreamError)) {
          this.#settle(true); // a refusal of the request itself (bad model name...) says nothing about health
          throw e;
        }
        this.events.onAttemptFailed?.(this.name, e);
        if (!e.retryable || attempt >= this.cfg.maxRetries || signal.aborted) {
          // A 4xx other than 429/408 is the request's fault, not the upstream's.
          this.#settle(e.failure === 'http' && (e.status ?? 500) < 500 && e.status !== 429 && e.status !== 408);
          throw e;
        }
        const backoff = this.random() * Math.min(this.cfg.retryMaxDelayMs, this.cfg.retryBaseDelayMs * 2 ** attempt);
        const delay = Math.min(this.cfg.retryMaxDelayMs, e.retryAfterMs ?? backoff);
        this.events.onRetry?.(this.name, delay);
        await sleep(delay, signal);
      }
    }
  }
}
