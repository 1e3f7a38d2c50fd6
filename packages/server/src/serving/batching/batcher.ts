// Dynamic batching for one model version. Requests (already validated and encoded, each with one
// or more rows) wait in a bounded queue; a batch is cut when `maxBatchSize` rows are waiting, when
// the first request has waited `maxQueueDelayUs`, or at once when an inference slot is free and
// nothing more is likely to come. At most `concurrency` batches run at a time (one per worker
// holding the model), so under load requests pile up and batches fill by themselves.
// Rows are concatenated along the batch dimension, run once, and split back per request; if a
// batch fails, its requests are retried one by one so a failure stays with the request that caused it.
import type { Span, SpanContext } from '@opentelemetry/api';
import { activeSpanContext, startSpan, tracingEnabled, withLinkedRootSpan, withSpan } from '../../telemetry/index.js';
import { allocate, elementCount, type TensorValue } from '@ferry/core';
import { FerryError } from '../../errors.js';
import { BatchQueue } from './batch-queue.js';

export type Feeds = Record<string, TensorValue>;

export interface BatcherOptions {
  maxBatchSize: number;
  maxQueueDelayUs: number;
  preferredBatchSizes: readonly number[];
  /** Largest number of queued requests; past it `submit` fails at once with 503. */
  maxQueueDepth: number;
  /** A request that waited longer than this is failed with 503 instead of run late. */
  maxQueueTimeMs?: number;
  /** Batches run at the same time. */
  concurrency: number;
  /** When false every request runs alone (models without a batch dimension). */
  batchable: boolean;
}

export interface BatchStats {
  rows: number;
  requests: number;
  queueMs: number[];
  inferMs: number;
}

export type RunBatch = (feeds: Feeds) => Promise<{ outputs: Feeds; inferMs: number }>;

interface Pending {
  feeds: Feeds;
  rows: number;
  signature: string;
  enqueuedAt: number;
  resolve: (o: { outputs: Feeds; inferMs: number; queueMs: number; batchRows: number }) => void;
  reject: (e: unknown) => void;
  /** Set when the caller gave up (timeout); the request is skipped if still queued. */
  cancelled: boolean;
  /** With tracing on: the request's span (the batch links to it) and its queue-wait span. */
  trace?: { parent: SpanContext | undefined; queueWait: Span | undefined };
}

/** Shape of a request's tensors apart from the batch dimension: only equal signatures concatenate. */
function signatureOf(feeds: Feeds): string {
  let s = '';
  for (const name of Object.keys(feeds).sort())
    s += `${name}:${feeds[name]!.dtype}:${feeds[name]!.dims.slice(1).join('x')};`;
  return s;
}

function concat(parts: Feeds[]): Feeds {
  if (parts.length === 1) return parts[0]!;
  const out: Feeds = {};
  for (const name of Object.keys(parts[0]!)) {
    const first = parts[0]![name]!;
    const rows = parts.reduce((n, p) => n + p[name]!.dims[0]!, 0);
    const dims = [rows, ...first.dims.slice(1)];
    const data = allocate(first.dtype, elementCount(dims));
    let offset = 0;
    for (const p of parts) {
      const d = p[name]!.data;
      if (Array.isArray(data)) for (let i = 0; i < d.length; i++) data[offset + i] = (d as string[])[i]!;
      else (data as Float32Array).set(d as Float32Array, offset);
      offset += d.length;
    }
    out[name] = { dtype: first.dtype, dims, data };
  }
  return out;
}

/** Takes rows [start, start + rows) of every output whose first dimension is the batch. */
function slice(outputs: Feeds, batchRows: number, start: number, rows: number): Feeds {
  const out: Feeds = {};
  for (const [name, t] of Object.entries(outputs)) {
    if (t.dims[0] !== batchRows) {
      out[name] = t;
      continue;
    }
    const per = t.dims[0] === 0 ? 0 : t.data.length / t.dims[0]!;
    const data = (t.data as Float32Array).slice(start * per, (start + rows) * per);
    out[name] = { dtype: t.dtype, dims: [rows, ...t.dims.slice(1)], data: data as TensorValue['data'] };
  }
  return out;
}

export class DynamicBatcher extends BatchQueue<Pending> {
  private running = 0;
  private delayElapsed = false;

  constructor(
    private readonly opts: BatcherOptions,
    private readonly run: RunBatch,
    private readonly onBatch: (s: BatchStats) => void = () => undefined,
  ) {
    super(opts.maxQueueDepth, 'immediate');
  }

  get inFlight(): number {
    return this.running;
  }

  /** Queues one request's feeds; resolves with its own slice of the outputs. */
  submit(
    feeds: Feeds,
    rows: number,
  ): { promise: Promise<{ outputs: Feeds; inferMs: number; queueMs: number; batchRows: number }>; cancel: () => void } {
    this.admit();
    let pending!: Pending;
    const promise = new Promise<{ outputs: Feeds; inferMs: number; queueMs: number; batchRows: number }>(
      (resolve, reject) => {
        pending = {
          feeds,
          rows,
          signature: this.opts.batchable ? signatureOf(feeds) : '',
          enqueuedAt: performance.now(),
          resolve,
          reject,
          cancelled: false,
          ...(tracingEnabled() && {
            trace: { parent: activeSpanContext(), queueWait: startSpan('ferry.queue_wait', { 'ferry.rows': rows }) },
          }),
        };
      },
    );
    this.queue.push(pending);
    this.schedule();
    return {
      promise,
      cancel: () => {
        pending.cancelled = true;
        const i = this.queue.indexOf(pending);
        if (i >= 0) this.queue.splice(i, 1);
      },
    };
  }

  private schedule(): void {
    while (this.running < this.opts.concurrency && this.queue.length > 0) {
      // An idle model answers at once: waiting for company only pays while other batches are running
      // (under load the queue fills while the worker is busy, and batches form by themselves).
      if (this.opts.batchable && this.opts.maxQueueDelayUs > 0 && !this.delayElapsed && this.running > 0) {
        const waitingRows = this.queue.reduce((n, p) => n + p.rows, 0);
        const waitedUs = (performance.now() - this.queue[0]!.enqueuedAt) * 1000;
        if (waitingRows < this.opts.maxBatchSize && waitedUs < this.opts.maxQueueDelayUs) {
          // Waits for more requests (a sub-millisecond wait is one turn of the event loop).
          this.arm(this.opts.maxQueueDelayUs - waitedUs, () => {
            this.delayElapsed = true;
            this.schedule();
          });
          return;
        }
      }
      this.delayElapsed = false;
      this.dispatch(this.take());
    }
  }

  /** Cuts the next batch: same-signature requests from the head, up to maxBatchSize rows (or a preferred size). */
  private take(): Pending[] {
    const now = performance.now();
    const head = this.queue[0]!;
    const batch: Pending[] = [];
    let rows = 0;
    const limit = this.opts.batchable ? this.opts.maxBatchSize : 1;
    for (let i = 0; i < this.queue.length && rows < limit;) {
      const p = this.queue[i]!;
      if (this.opts.maxQueueTimeMs !== undefined && now - p.enqueuedAt > this.opts.maxQueueTimeMs) {
        this.queue.splice(i, 1);
        p.reject(
          new FerryError('server-overloaded', {
            detail: `the request waited ${Math.round(now - p.enqueuedAt)} ms in the queue, past batching.maxQueueTimeMs (${this.opts.maxQueueTimeMs})`,
            headers: { 'retry-after': '1' },
          }),
        );
        continue;
      }
      if (p.signature !== head.signature || (batch.length > 0 && rows + p.rows > limit)) {
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      batch.push(p);
      rows += p.rows;
      if (!this.opts.batchable) break;
    }
    // Prefer a configured size when we overshoot one (some models run faster at fixed sizes).
    const preferred = [...this.opts.preferredBatchSizes].filter((s) => s <= rows).sort((a, b) => b - a)[0];
    if (preferred !== undefined && preferred < rows && this.queue.length === 0) {
      let keep = 0;
      let n = 0;
      while (keep < batch.length && n + batch[keep]!.rows <= preferred) n += batch[keep++]!.rows;
      if (keep > 0) this.queue.unshift(...batch.splice(keep));
    }
    return batch;
  }

  private dispatch(batch: Pending[]): void {
    if (batch.length === 0) return;
    this.running++;
    const start = performance.now();
    const rows = batch.reduce((n, p) => n + p.rows, 0);
    const finish = () => {
      this.running--;
      this.schedule();
    };
    const feeds = concat(batch.map((p) => p.feeds));
    for (const p of batch) p.trace?.queueWait?.end();
    // With tracing on, one span per batch, in no request's trace but linked from all it serves;
    // inference is its child.
    const ran = tracingEnabled()
      ? withLinkedRootSpan(
          'ferry.batch',
          batch.map((p) => p.trace?.parent),
          { 'ferry.batch.rows': rows, 'ferry.batch.requests': batch.length },
          () => withSpan('ferry.inference', () => this.run(feeds)),
        )
      : this.run(feeds);
    ran.then(
      ({ outputs, inferMs }) => {
        this.onBatch({ rows, requests: batch.length, queueMs: batch.map((p) => start - p.enqueuedAt), inferMs });
        let offset = 0;
        for (const p of batch) {
          p.resolve({
            outputs: batch.length === 1 ? outputs : slice(outputs, rows, offset, p.rows),
            inferMs,
            queueMs: start - p.enqueuedAt,
            batchRows: rows,
          });
          offset += p.rows;
        }
        finish();
      },
      async (err: unknown) => {
        if (batch.length === 1) {
          batch[0]!.reject(err);
          finish();
          return;
        }
        // Isolate the failure: run each request of the failed batch alone.
        for (const p of batch) {
          try {
            const r = await this.run(p.feeds);
            p.resolve({ ...r, queueMs: start - p.enqueuedAt, batchRows: p.rows });
          } catch (e) {
            p.reject(e);
          }
        }
        finish();
      },
    );
  }
}
