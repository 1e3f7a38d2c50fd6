// Dynamic batching for one model version. Requests (already validated and encoded, each with one
// or more rows) wait in a bounded queue; a batch is cut when `maxBatchSize` rows are waiting, when
// the first request has waited `maxQueueDelayUs`, or at once when an inference slot is free and
// nothing more is likely to come; requests that arrive after a batch left in the same turn of the
// event loop wait for the end of that turn and leave together (no delay when idle, few messages
// to the workers when the HTTP thread is busy). At most `concurrency` batches run at a time (one per worker
// holding the model), so under load requests pile up and batches fill by themselves.
// Rows are concatenated along the batch dimension, run once, and split back per request; if a
// batch fails, its requests are retried one by one so a failure stays with the request that caused it.
// Ragged inputs (a padded sequence axis, as transformers take) are padded to the longest request of the
// batch, requests of similar length are grouped under a token budget, and sequence outputs are cut back
// to each request's own length.
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
  /** Inputs with a padded sequence axis (axis 1) and the value they are padded with; absent = no padding. */
  padValues?: Readonly<Record<string, number>>;
  /** Outputs with the inputs' sequence axis (axis 1), cut back to each request's padded length. */
  sequenceOutputs?: readonly string[];
  /** Most tokens (rows × padded length) in one batch. */
  maxTokensPerBatch?: number;
  /** Pick the requests closest in length to the oldest one (default true when padding). */
  lengthAware?: boolean;
  /** Length-aware: a request joins only while padded ÷ real tokens of the batch stays at or under this. */
  maxPaddingRatio?: number;
}

/** One request's share of a batch's run. */
export interface BatchAnswer {
  outputs: Feeds;
  inferMs: number;
  queueMs: number;
  batchRows: number;
}

/** A request in the queue, as `enqueue` returns it for `cancel`. */
export interface Queued {
  readonly rows: number;
}

/** Padded and real token counts of the batches run, for the padding-overhead figure. */
export interface PaddingStats {
  paddedTokens: number;
  realTokens: number;
}

export interface BatchStats {
  /** Padded tokens (rows × padded length) and real tokens of a ragged batch. */
  tokens?: PaddingStats;
  rows: number;
  requests: number;
  queueMs: number[];
  inferMs: number;
}

/**
 * Runs one batch. `rows` is its batch size; `alone` is true when the model is idle: nothing else of this
 * batcher is running or waiting, and every request of the batch arrived while nothing was running (none
 * of them waited behind an earlier batch, which is what load looks like). Then a run on the calling
 * thread delays no one of its own.
 */
export type RunBatch = (feeds: Feeds, rows: number, alone: boolean) => Promise<{ outputs: Feeds; inferMs: number }>;

interface Pending {
  feeds: Feeds;
  rows: number;
  /** Shape signature (signatureOf), made when a batch first compares it with another request's. */
  signature: string | undefined;
  /** Padded length of this request's ragged inputs (0 when none). */
  seqLen: number;
  /** Real tokens of this request (sum of its rows' lengths), for the padding statistics. */
  realTokens: number;
  enqueuedAt: number;
  resolve: (o: BatchAnswer) => void;
  reject: (e: unknown) => void;
  /** Set when the caller gave up (timeout): skipped if still queued, and never answered. */
  cancelled: boolean;
  /** With tracing on: the request's span (the batch links to it) and its queue-wait span. */
  trace?: { parent: SpanContext | undefined; queueWait: Span | undefined };
}

/**
 * Shape of a request's tensors apart from the batch dimension (and the sequence axis of ragged inputs):
 * only equal signatures concatenate.
 */
function signatureOf(feeds: Feeds, pad: Readonly<Record<string, number>>): string {
  let s = '';
  for (const name of Object.keys(feeds).sort()) {
    const dims = feeds[name]!.dims.slice(1);
    if (name in pad) dims[0] = -1;
    s += `${name}:${feeds[name]!.dtype}:${dims.join('x')};`;
  }
  return s;
}

/** Pads a [rows, len, ...inner] tensor to [rows, target, ...inner] with `value`. */
function padTo(t: TensorValue, target: number, value: number): TensorValue {
  const [rows, len] = t.dims as [number, number];
  if (len === target) return t;
  const inner = elementCount(t.dims.slice(2));
  const dims = [rows, target, ...t.dims.slice(2)];
  const data = allocate(t.dtype, elementCount(dims)) as Float32Array;
  const fill = (typeof data[0] === 'bigint' ? BigInt(value) : value) as number;
  if (value !== 0) data.fill(fill);
  const src = t.data as Float32Array;
  for (let r = 0; r < rows; r++) data.set(src.subarray(r * len * inner, (r + 1) * len * inner), r * target * inner);
  return { dtype: t.dtype, dims, data: data as unknown as TensorValue['data'] };
}

function concat(parts: Feeds[], pad: Readonly<Record<string, number>>): Feeds {
  if (parts.length === 1) return parts[0]!;
  const longest: Record<string, number> = {};
  for (const name of Object.keys(pad)) longest[name] = Math.max(...parts.map((p) => p[name]?.dims[1] ?? 0));
  const out: Feeds = {};
  for (const name of Object.keys(parts[0]!)) {
    if (name in pad) parts = parts.map((p) => ({ ...p, [name]: padTo(p[name]!, longest[name]!, pad[name]!) }));
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

/**
 * Takes rows [start, start + rows) of every output whose first dimension is the batch; sequence outputs are
 * also cut to the request's own padded length `seqLen` along axis 1.
 */
function slice(
  outputs: Feeds,
  batchRows: number,
  start: number,
  rows: number,
  seqOutputs: ReadonlySet<string>,
  seqLen: number,
): Feeds {
  const out: Feeds = {};
  for (const [name, t] of Object.entries(outputs)) {
    if (t.dims[0] !== batchRows) {
      out[name] = t;
      continue;
    }
    const per = t.dims[0] === 0 ? 0 : t.data.length / t.dims[0]!;
    const batchLen = t.dims[1];
    if (seqOutputs.has(name) && batchLen !== undefined && seqLen > 0 && seqLen < batchLen) {
      const inner = batchLen === 0 ? 0 : per / batchLen;
      const dims = [rows, seqLen, ...t.dims.slice(2)];
      const data = allocate(t.dtype, elementCount(dims)) as Float32Array;
      const src = t.data as Float32Array;
      for (let r = 0; r < rows; r++) {
        const from = (start + r) * per;
        data.set(src.subarray(from, from + seqLen * inner), r * seqLen * inner);
      }
      out[name] = { dtype: t.dtype, dims, data: data as unknown as TensorValue['data'] };
      continue;
    }
    const data = (t.data as Float32Array).slice(start * per, (start + rows) * per);
    out[name] = { dtype: t.dtype, dims: [rows, ...t.dims.slice(1)], data: data as TensorValue['data'] };
  }
  return out;
}

export class DynamicBatcher extends BatchQueue<Pending> {
  private running = 0;
  /** When the last running batch finished (performance.now()); requests queued before it waited behind it. */
  private idleSince = -Infinity;
  private delayElapsed = false;
  /** A batch was dispatched in the current turn of the event loop. */
  private sentThisTurn = false;
  private readonly pad: Readonly<Record<string, number>>;
  private readonly seqOutputs: ReadonlySet<string>;
  /** Padded and real tokens of every ragged batch run so far. */
  readonly padding: PaddingStats = { paddedTokens: 0, realTokens: 0 };

  constructor(
    private opts: BatcherOptions,
    private readonly run: RunBatch,
    private readonly onBatch: (s: BatchStats) => void = () => undefined,
  ) {
    super(opts.maxQueueDepth, 'immediate');
    this.pad = opts.batchable ? (opts.padValues ?? {}) : {};
    this.seqOutputs = new Set(opts.sequenceOutputs ?? []);
  }

  private get ragged(): boolean {
    return Object.keys(this.pad).length > 0;
  }

  get inFlight(): number {
    return this.running;
  }

  /** The options in force (after `tune`). */
  get options(): Readonly<BatcherOptions> {
    return this.opts;
  }

  /**
   * Sets the batch size and queue delay chosen at warm-up for a contract that left them unset
   * (see `defaults.ts`); requests already queued are cut by the new values.
   */
  tune(choice: Partial<Pick<BatcherOptions, 'maxBatchSize' | 'maxQueueDelayUs'>>): void {
    this.opts = { ...this.opts, ...choice };
    this.schedule();
  }

  /** Queues one request's feeds; resolves with its own slice of the outputs. */
  submit(
    feeds: Feeds,
    rows: number,
    /** Real tokens of the request (sum of its rows' lengths), when its inputs are ragged. */
    realTokens?: number,
  ): { promise: Promise<BatchAnswer>; cancel: () => void } {
    let resolve!: (a: BatchAnswer) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<BatchAnswer>((ok, fail) => {
      resolve = ok;
      reject = fail;
    });
    // Outside the executor, so a full queue throws here rather than rejecting the promise.
    const queued = this.enqueue(feeds, rows, realTokens, resolve, reject);
    return { promise, cancel: () => this.cancel(queued) };
  }

  /**
   * `submit` with callbacks instead of a promise: `resolve` or `reject` is called once, from the
   * batch's own callback, so a caller that settles its own promise there pays for one promise a
   * request, not two (the predict lane's path; see Predictor.runOne). Throws at once (queue full,
   * batcher closed) like `submit`.
   */
  enqueue(
    feeds: Feeds,
    rows: number,
    realTokens: number | undefined,
    resolve: (a: BatchAnswer) => void,
    reject: (e: unknown) => void,
  ): Queued {
    this.admit();
    const seqLen = this.ragged ? Math.max(...Object.keys(this.pad).map((n) => feeds[n]?.dims[1] ?? 0)) : 0;
    const pending: Pending = {
      feeds,
      rows,
      seqLen,
      realTokens: realTokens ?? rows * seqLen,
      signature: this.opts.batchable ? undefined : '',
      enqueuedAt: performance.now(),
      resolve,
      reject,
      cancelled: false,
      ...(tracingEnabled() && {
        trace: { parent: activeSpanContext(), queueWait: startSpan('ferry.queue_wait', { 'ferry.rows': rows }) },
      }),
    };
    this.queue.push(pending);
    this.schedule();
    return pending;
  }

  /** The caller gave up on a request (its deadline): skipped if still queued; its answer, if any, unread. */
  cancel(queued: Queued): void {
    const p = queued as Pending;
    p.cancelled = true;
    const i = this.queue.indexOf(p);
    if (i >= 0) this.queue.splice(i, 1);
  }

  private schedule(): void {
    while (this.running < this.opts.concurrency && this.queue.length > 0) {
      // One batch leaves at once per turn of the event loop; what arrives later in the same turn (a
      // burst of requests read together) leaves as one batch at the end of that turn. An idle model
      // answers at once, a busy HTTP thread sends one message to a worker per turn, not per request.
      if (this.opts.batchable && this.sentThisTurn && this.opts.maxBatchSize > 1) {
        const waitingRows = this.queue.reduce((n, p) => n + p.rows, 0);
        if (waitingRows < this.opts.maxBatchSize) {
          this.arm(0, () => this.schedule());
          return;
        }
      }
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

  /**
   * Cuts the next batch: same-signature requests from the head, up to maxBatchSize rows (or a preferred size).
   * With ragged inputs the oldest request always goes first; the others are taken closest in length to it first
   * (length-aware), while the padded batch stays within maxTokensPerBatch.
   */
  private take(): Pending[] {
    const now = performance.now();
    const batch: Pending[] = [];
    let rows = 0;
    let longest = 0;
    const limit = this.opts.batchable ? this.opts.maxBatchSize : 1;
    const budget = this.opts.maxTokensPerBatch ?? Infinity;
    // Requests that waited past maxQueueTimeMs are failed, not run late.
    if (this.opts.maxQueueTimeMs !== undefined) {
      for (let i = 0; i < this.queue.length;) {
        const p = this.queue[i]!;
        if (now - p.enqueuedAt > this.opts.maxQueueTimeMs) {
          this.queue.splice(i, 1);
          p.reject(
            new FerryError('server-overloaded', {
              detail: `the request waited ${Math.round(now - p.enqueuedAt)} ms in the queue, past batching.maxQueueTimeMs (${this.opts.maxQueueTimeMs})`,
              headers: { 'retry-after': '1' },
            }),
          );
        } else i++;
      }
      if (this.queue.length === 0) return batch;
    }
    // One request waiting (an idle model's usual case): it is the batch, whatever its size.
    if (this.queue.length === 1) return [this.queue.pop()!];
    const head = this.queue[0]!;
    let order = this.queue.map((_, i) => i);
    if (this.ragged && this.opts.lengthAware !== false && this.opts.batchable) {
      order = order.slice(1).sort((a, b) => {
        const da = Math.abs(this.queue[a]!.seqLen - head.seqLen);
        const db = Math.abs(this.queue[b]!.seqLen - head.seqLen);
        return da - db || a - b;
      });
      order.unshift(0);
    }
    const picked = new Set<number>();
    const grouping = this.ragged && this.opts.lengthAware !== false;
    const maxRatio = grouping ? (this.opts.maxPaddingRatio ?? 1.25) : Infinity;
    let real = 0;
    for (const i of order) {
      if (rows >= limit) break;
      const p = this.queue[i]!;
      if ((p !== head && this.signature(p) !== this.signature(head)) || (batch.length > 0 && rows + p.rows > limit))
        continue;
      const padded = Math.max(longest, p.seqLen) * (rows + p.rows);
      if (batch.length > 0 && (padded > budget || padded > maxRatio * (real + p.realTokens))) continue;
      picked.add(i);
      batch.push(p);
      rows += p.rows;
      real += p.realTokens;
      longest = Math.max(longest, p.seqLen);
      if (!this.opts.batchable) break;
    }
    if (picked.size) {
      let w = 0;
      for (let i = 0; i < this.queue.length; i++) if (!picked.has(i)) this.queue[w++] = this.queue[i]!;
      this.queue.length = w;
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

  private signature(p: Pending): string {
    return (p.signature ??= signatureOf(p.feeds, this.pad));
  }

  private dispatch(batch: Pending[]): void {
    if (batch.length === 0) return;
    const alone = this.running === 0 && this.queue.length === 0 && batch.every((p) => p.enqueuedAt > this.idleSince);
    this.running++;
    if (!this.sentThisTurn) {
      this.sentThisTurn = true;
      // Queued before any wait armed in this turn, so it runs first and that wait finds the flag clear.
      setImmediate(() => {
        this.sentThisTurn = false;
      });
    }
    const start = performance.now();
    const rows = batch.reduce((n, p) => n + p.rows, 0);
    const finish = () => {
      this.running--;
      // Requests queued before this moment waited behind a batch: the model was busy for them.
      if (this.running === 0) this.idleSince = performance.now();
      this.schedule();
    };
    const feeds = concat(
      batch.map((p) => p.feeds),
      this.pad,
    );
    let tokens: PaddingStats | undefined;
    if (this.ragged) {
      const longest = Math.max(...batch.map((p) => p.seqLen));
      tokens = { paddedTokens: longest * rows, realTokens: batch.reduce((n, p) => n + p.realTokens, 0) };
      this.padding.paddedTokens += tokens.paddedTokens;
      this.padding.realTokens += tokens.realTokens;
    }
    for (const p of batch) p.trace?.queueWait?.end();
    // With tracing on, one span per batch, in no request's trace but linked from all it serves;
    // inference is its child.
    const ran = tracingEnabled()
      ? withLinkedRootSpan(
          'ferry.batch',
          batch.map((p) => p.trace?.parent),
          { 'ferry.batch.rows': rows, 'ferry.batch.requests': batch.length },
          () => withSpan('ferry.inference', () => this.run(feeds, rows, alone)),
        )
      : this.run(feeds, rows, alone);
    ran.then(
      ({ outputs, inferMs }) => {
        this.onBatch({
          rows,
          requests: batch.length,
          queueMs: batch.map((p) => start - p.enqueuedAt),
          inferMs,
          ...(tokens && { tokens }),
        });
        let offset = 0;
        for (const p of batch) {
          // A request whose caller gave up while its batch ran is not answered (its callbacks are spent).
          if (p.cancelled) {
            offset += p.rows;
            continue;
          }
          p.resolve({
            outputs: batch.length === 1 ? outputs : slice(outputs, rows, offset, p.rows, this.seqOutputs, p.seqLen),
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
          if (!batch[0]!.cancelled) batch[0]!.reject(err);
          finish();
          return;
        }
        // Isolate the failure: run each request of the failed batch alone.
        for (const p of batch) {
          if (p.cancelled) continue;
          try {
            const r = await this.run(p.feeds, p.rows, false);
            if (!p.cancelled) p.resolve({ ...r, queueMs: start - p.enqueuedAt, batchRows: p.rows });
          } catch (e) {
            if (!p.cancelled) p.reject(e);
          }
        }
        finish();
      },
    );
  }
}
