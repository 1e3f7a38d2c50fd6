// What a queue backend does: dispatch job ids to workers. The job documents live in the store
// (job-store.ts) for both backends; a backend only decides who runs what, when, and what happens to
// a job whose worker died. Two implementations with the same behaviour: the SQL queue (sql-queue.ts,
// embedded default) and BullMQ on Redis (bullmq-queue.ts, when `redis.url` is set).
import type { JobRow } from './job-store.js';

/** How a run ended, as the runner reports it to the backend (the job document is already updated). */
export type RunOutcome =
  | { kind: 'done' }
  | { kind: 'retry'; delayMs: number; reason: string }
  | { kind: 'failed'; reason: string }
  /** Shutdown: the job went back to the queue untouched, to run elsewhere. */
  | { kind: 'handed-back' };

export interface RunContext {
  /** Aborted when the worker stops and its grace is over: hand the job back at the next chunk. */
  readonly shutdown: AbortSignal;
}

export type JobHandler = (row: JobRow, ctx: RunContext) => Promise<RunOutcome>;

export interface Consumer {
  /**
   * Takes no new jobs; waits up to `graceMs` for active ones, then has them handed back (each at its
   * next chunk, without using an attempt) and waits up to `handBackMs` more for that.
   */
  stop(graceMs: number, handBackMs?: number): Promise<void>;
}

export interface QueueLengths {
  waiting: number;
  active: number;
  delayed: number;
}

export interface QueueBackend {
  readonly kind: 'sql' | 'bullmq';
  /** Makes a job whose document was just inserted (state queued) runnable. */
  enqueue(id: string): Promise<void>;
  /** A queued job was cancelled: drop it from dispatch if the backend holds it. */
  discard(id: string): Promise<void>;
  consume(workerId: string, concurrency: number, handler: JobHandler): Consumer;
  lengths(): Promise<QueueLengths>;
  close(): Promise<void>;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
