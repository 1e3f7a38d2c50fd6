// The process lifecycle: one `draining` flag that readiness reads, and a registry of drain handlers
// that features holding long-lived work (streams, queue workers) register with, so a SIGTERM hands
// that work back instead of cutting it.
import type { Logger } from 'pino';
import type { LifecycleConfig } from '../config/schemas/lifecycle.js';

/** What a drain handler is told: why, how long streams may keep going, and when everything must be over. */
export interface DrainContext {
  readonly reason: string;
  /** Open streams should end (with `reason`) after this many milliseconds from drain start. */
  readonly streamGraceMs: number;
  /** Epoch milliseconds by which the process exits, finished or not. */
  readonly deadline: number;
  /** Aborted when the deadline is near: stop waiting and hand work back now. */
  readonly signal: AbortSignal;
}

export type DrainHandler = (ctx: DrainContext) => Promise<void> | void;

export interface DrainResult {
  name: string;
  ok: boolean;
  ms: number;
  error?: string;
}

export interface LifecycleEvents {
  draining: (reason: string) => void;
}

export interface LifecycleOptions extends LifecycleConfig {
  /** Overall deadline from drain start (server.shutdownGraceMs). */
  deadlineMs: number;
  log?: Logger;
}

/**
 * @example
 *   server.lifecycle.onDrain('jobs', async (ctx) => { await worker.close(); });
 *   server.lifecycle.onDrain('streams', async (ctx) => { await sleep(ctx.streamGraceMs); closeAll(ctx.reason); });
 */
export class Lifecycle {
  readonly options: Readonly<LifecycleOptions>;
  #draining = false;
  #reason = '';
  #startedAt = 0;
  readonly #handlers = new Map<string, DrainHandler>();
  readonly #listeners: Array<LifecycleEvents['draining']> = [];
  readonly #abort = new AbortController();
  #ran: Promise<DrainResult[]> | undefined;
  readonly #streams = new Set<(reason: string) => void>();

  constructor(options: LifecycleOptions) {
    this.options = Object.freeze({ ...options });
    // Open streams get streamGraceMs to finish on their own, then are closed with the reason.
    this.onDrain('streams', async (ctx) => {
      if (this.#streams.size === 0) return;
      await waitUntil(() => this.#streams.size === 0, ctx.streamGraceMs, ctx.signal);
      for (const close of [...this.#streams]) {
        this.#streams.delete(close);
        try {
          close(`server shutting down (${ctx.reason})`);
        } catch (e) {
          this.options.log?.warn({ err: e }, 'closing a stream failed');
        }
      }
    });
  }

  /**
   * Tracks an open stream (SSE response, WebSocket) so a drain can close it with a reason once
   * `streamGraceMs` has passed. Call the returned function when the stream ends by itself.
   * A stream opened while draining is closed at once.
   * @example
   *   const untrack = lifecycle.trackStream((reason) => socket.close(1001, reason));
   *   socket.on('close', untrack);
   */
  trackStream(close: (reason: string) => void): () => void {
    if (this.#ran) {
      close(`server shutting down (${this.#reason})`);
      return () => undefined;
    }
    this.#streams.add(close);
    return () => {
      this.#streams.delete(close);
    };
  }

  get openStreams(): number {
    return this.#streams.size;
  }

  get draining(): boolean {
    return this.#draining;
  }
  get reason(): string {
    return this.#reason;
  }
  /** Milliseconds since drain began (0 before). */
  get drainingForMs(): number {
    return this.#draining ? Date.now() - this.#startedAt : 0;
  }

  /** Registers work to finish or hand back on shutdown; returns an unregister function. Names are unique. */
  onDrain(name: string, fn: DrainHandler): () => void {
    if (this.#handlers.has(name)) throw new Error(`a drain handler named "${name}" is already registered`);
    this.#handlers.set(name, fn);
    return () => {
      if (this.#handlers.get(name) === fn) this.#handlers.delete(name);
    };
  }

  handlerNames(): string[] {
    return [...this.#handlers.keys()];
  }

  on<K extends keyof LifecycleEvents>(_event: K, fn: LifecycleEvents[K]): void {
    this.#listeners.push(fn);
  }

  /** Readiness goes false now; idempotent. */
  beginDrain(reason: string): void {
    if (this.#draining) return;
    this.#draining = true;
    this.#reason = reason;
    this.#startedAt = Date.now();
    this.options.log?.info(
      { reason, drainDelayMs: this.options.drainDelayMs, deadlineMs: this.options.deadlineMs },
      'draining: readiness is false',
    );
    // Handlers get the signal a little before the deadline, so they can still hand work back in time.
    const left = Math.max(0, this.options.deadlineMs - 500);
    setTimeout(() => this.#abort.abort(new Error('shutdown deadline')), left).unref();
    for (const l of this.#listeners) l(reason);
  }

  /** Runs every drain handler once, concurrently; later calls return the same results. */
  runHandlers(): Promise<DrainResult[]> {
    if (!this.#draining) this.beginDrain('close');
    this.#ran ??= (async () => {
      const ctx: DrainContext = {
        reason: this.#reason,
        streamGraceMs: this.options.streamGraceMs,
        deadline: this.#startedAt + this.options.deadlineMs,
        signal: this.#abort.signal,
      };
      return Promise.all(
        [...this.#handlers].map(async ([name, fn]) => {
          const t0 = Date.now();
          try {
            await fn(ctx);
            return { name, ok: true, ms: Date.now() - t0 };
          } catch (e) {
            this.options.log?.warn({ err: e, handler: name }, 'drain handler failed');
            return { name, ok: false, ms: Date.now() - t0, error: (e as Error)?.message ?? String(e) };
          }
        }),
      );
    })();
    return this.#ran;
  }
}

/** Resolves when `done()` holds or after `ms`, whichever is first (polling: streams end on their own schedule). */
async function waitUntil(done: () => boolean, ms: number, signal: AbortSignal): Promise<void> {
  const end = Date.now() + ms;
  while (!done() && Date.now() < end && !signal.aborted)
    await new Promise((r) => setTimeout(r, Math.min(50, Math.max(1, end - Date.now()))));
}

export function createLifecycle(cfg: LifecycleConfig, deadlineMs: number, log?: Logger): Lifecycle {
  return new Lifecycle({ ...cfg, deadlineMs, ...(log && { log }) });
}
