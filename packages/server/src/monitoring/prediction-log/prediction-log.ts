// The sampled prediction log: what went into each model version and what came out, kept for
// drift detection. `record()` sits on the prediction hot path, so it only samples, checks two
// bounds and pushes onto an in-memory buffer — O(1), no I/O, no await, no throw. A background
// flusher writes the buffer to the store in multi-row inserts, in a worker thread when the server
// gives it one (row-writer.ts), so even SQLite's synchronous inserts stay off the HTTP thread.
// The store being slow or down never slows or fails a prediction: the buffer is bounded, what
// does not fit is dropped and counted, a failed batch is dropped and counted, the flusher backs
// off and keeps trying later batches, and the outage is logged once (and its end once). A
// retention timer deletes rows older than `retentionDays`.
//
// Counts reach metrics through hooks (`onWritten`, `onDropped`, `onSampledOut`), which are called
// from the background flusher only — never from `record()` — with the counts since the last call.
import { performance } from 'node:perf_hooks';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Store } from '../../store/index.js';
import { TokenBucket } from './token-bucket.js';
import { storeRowWriter, type RowWriter } from './row-writer.js';
import type { PendingEntry } from './row-builder.js';
import {
  PREDICTION_LOG_DEFAULTS,
  parseSampleRates,
  type PredictionLogConfig,
} from '../../config/schemas/prediction-log.js';

/** One prediction as the caller knows it: one instance in, one prediction out. */
export interface PredictionLogEntry {
  model: string;
  /** The version that answered (after a `version` fallback, the fallback's version). */
  version: string;
  /** The validated instance (features); kept by reference until flushed — do not mutate it afterwards. */
  input: unknown;
  /** The prediction returned for it. */
  output: unknown;
  /** Time the request spent in the predictor, in ms. */
  latencyMs: number;
  /** `timeout`, `error` or `circuit-open` when a fallback answered. */
  fallbackReason?: string | null;
  cacheHit?: boolean;
  requestId?: string | null;
  /** Epoch ms of the prediction; default: when `record` is called. */
  ts?: number;
}

/** A logged prediction read back, JSON parsed. */
export interface PredictionLogRow {
  id: number;
  ts: number;
  model: string;
  version: string;
  input: unknown;
  output: unknown;
  latencyMs: number;
  fallbackReason: string | null;
  cacheHit: boolean;
  requestId: string | null;
}

export interface PredictionLogQuery {
  model: string;
  /** Every version of the model when absent. */
  version?: string;
  /** Epoch ms, inclusive. */
  since: number;
  /** Epoch ms, exclusive; default no upper bound. */
  until?: number;
  /** Rows at most; default 1000, at most 100,000. */
  limit?: number;
  /** `desc` (default): the newest `limit` rows, newest first; `asc`: the oldest, oldest first. */
  order?: 'asc' | 'desc';
}

/**
 * Why an entry that passed sampling was not written:
 * - `buffer-full`: the buffer held `maxBufferEntries` (store slow or down, or traffic beyond its write rate);
 * - `write-failed`: its batch failed to insert (store down);
 * - `invalid`: not an entry (missing model or version, non-finite latency or ts, input/output JSON cannot hold);
 * - `too-large`: its input and output serialise to more than `maxEntryBytes`;
 * - `closed`: recorded after `close()`, or still buffered when the close deadline passed.
 */
export type DropReason = 'buffer-full' | 'write-failed' | 'invalid' | 'too-large' | 'closed';

/** Why an entry was not kept at all: its model's `sampleRate`, or the global `maxEntriesPerSecond` cap. */
export type SampleOutReason = 'sample-rate' | 'rate-cap';

export interface PredictionLogHooks {
  /** Entries inserted into the store. */
  onWritten?(n: number): void;
  onDropped?(n: number, reason: DropReason): void;
  onSampledOut?(n: number, reason: SampleOutReason): void;
}

export interface PredictionLogOptions extends PredictionLogHooks {
  /** Fraction of predictions logged, 0..1, for models without their own rate. Default 1. */
  sampleRate?: number;
  /** Per-model fractions, by model name (all versions). */
  modelSampleRates?: Readonly<Record<string, number>>;
  /** Global cap on entries kept per second (after sampling), burst of one second. 0 = no cap. Default 1000. */
  maxEntriesPerSecond?: number;
  /** Entries held in memory awaiting a write (including the batch being written). Default 10,000. */
  maxBufferEntries?: number;
  /** How often the flusher writes. Default 500 ms. */
  flushIntervalMs?: number;
  /** Rows per insert; a full batch is written without waiting for the interval. Default 500, at most 2000. */
  flushBatchSize?: number;
  /** After a failed write, wait at most this long before the next try (backoff doubles from `flushIntervalMs`). Default
   * 5000 ms.
   */
  maxRetryDelayMs?: number;
  /** Larger entries (input + output JSON, in UTF-16 code units) are dropped as `too-large`. Default 256 KiB. */
  maxEntryBytes?: number;
  /** Rows older than this are deleted. 0 = keep forever. Default 7. */
  retentionDays?: number;
  /** How often retention runs (first run after min(this, 1 min)). Default 1 h. */
  retentionIntervalMs?: number;
  /** Rows per retention DELETE, so one run never holds a long lock. Default 10,000. */
  retentionChunkRows?: number;
  /** How long `close()` may spend flushing. Default 5000 ms. */
  closeTimeoutMs?: number;
  log?: Logger;
  /**
   * Where batches are inserted. Default: `store` on this thread. The server passes a
   * `ThreadRowWriter`, so inserts run in a worker thread; the log closes its writer on `close()`.
   */
  writer?: RowWriter;
  /** Uniform [0, 1) source for sampling; inject a seeded one for reproducible runs. Default Math.random. */
  random?: () => number;
  /** Epoch-ms clock for entry timestamps, the rate cap and the retention cutoff. Default Date.now. */
  now?: () => number;
}

/** Nine bound parameters a row; both SQLite (32766) and PostgreSQL (65535) take 2000 rows a statement. */
const MAX_BATCH_ROWS = 2000;
const DAY_MS = 86_400_000;

export interface PredictionLogStats {
  /** Calls to `record`. */
  recorded: number;
  written: number;
  sampledOut: Record<SampleOutReason, number>;
  dropped: Record<DropReason, number>;
  /** Waiting in memory. */
  buffered: number;
  /** Being written now. */
  inFlight: number;
  /** False from a failed write until the next successful one. */
  storeAvailable: boolean;
}

type Counts = { written: number; sampledOut: Record<SampleOutReason, number>; dropped: Record<DropReason, number> };
const zeroCounts = (): Counts => ({
  written: 0,
  sampledOut: { 'sample-rate': 0, 'rate-cap': 0 },
  dropped: { 'buffer-full': 0, 'write-failed': 0, invalid: 0, 'too-large': 0, closed: 0 },
});

function checkRate(rate: number, what: string): number {
  if (typeof rate !== 'number' || !(rate >= 0 && rate <= 1))
    throw new RangeError(`${what} must be a number from 0 to 1, got ${String(rate)}`);
  return rate;
}

function checkCount(n: number, what: string, min: number): number {
  if (!Number.isFinite(n) || n < min)
    throw new RangeError(`${what} must be a finite number >= ${min}, got ${String(n)}`);
  return n;
}

/**
 * @example
 * const log = new PredictionLog(store, { sampleRate: 0.1, onWritten: (n) => counter.inc({ result: 'written' }, n) });
 * log.record({ model: 'flight-delay', version: '1.0.0', input: instance, output: prediction, latencyMs: 3.2 });
 * const rows = await log.query({ model: 'flight-delay', since: Date.now() - 3_600_000 });
 * await log.close();
 */
export class PredictionLog {
  private readonly opts: Required<
    Omit<PredictionLogOptions, keyof PredictionLogHooks | 'log' | 'modelSampleRates' | 'writer'>
  >;
  private readonly writer: RowWriter;
  private readonly hooks: PredictionLogHooks;
  private readonly log: Logger | undefined;
  private readonly modelRates = new Map<string, number>();
  private readonly bucket: TokenBucket;
  private buffer: PendingEntry[] = [];
  private inFlight = 0;
  private recorded = 0;
  private readonly totals = zeroCounts();
  private reported = zeroCounts();
  private draining: Promise<void> | undefined;
  private kickPending = false;
  private retryAt = 0;
  private retryDelayMs = 0;
  private storeAvailable = true;
  private droppedInOutage = 0;
  private bufferFullLogged = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly flushTimer: NodeJS.Timeout;
  private retentionTimer: NodeJS.Timeout | undefined;
  private pruning: Promise<number> | undefined;

  constructor(
    private readonly store: Store,
    options: PredictionLogOptions = {},
  ) {
    const given = Object.fromEntries(
      Object.entries(options).filter(([, v]) => v !== undefined),
    ) as PredictionLogOptions;
    const o = { ...PREDICTION_LOG_DEFAULTS, random: Math.random, now: Date.now, ...given };
    checkRate(o.sampleRate, 'sampleRate');
    for (const [model, rate] of Object.entries(o.modelSampleRates ?? {}))
      this.modelRates.set(model, checkRate(rate, `sample rate of model "${model}"`));
    checkCount(o.maxEntriesPerSecond, 'maxEntriesPerSecond', 0);
    checkCount(o.maxBufferEntries, 'maxBufferEntries', 1);
    checkCount(o.flushIntervalMs, 'flushIntervalMs', 1);
    checkCount(o.flushBatchSize, 'flushBatchSize', 1);
    checkCount(o.maxRetryDelayMs, 'maxRetryDelayMs', 0);
    checkCount(o.maxEntryBytes, 'maxEntryBytes', 1);
    checkCount(o.retentionDays, 'retentionDays', 0);
    checkCount(o.retentionIntervalMs, 'retentionIntervalMs', 1);
    checkCount(o.retentionChunkRows, 'retentionChunkRows', 1);
    checkCount(o.closeTimeoutMs, 'closeTimeoutMs', 0);
    this.opts = Object.freeze({
      sampleRate: o.sampleRate,
      maxEntriesPerSecond: o.maxEntriesPerSecond,
      maxBufferEntries: Math.floor(o.maxBufferEntries),
      flushIntervalMs: o.flushIntervalMs,
      flushBatchSize: Math.min(MAX_BATCH_ROWS, Math.floor(o.flushBatchSize)),
      maxRetryDelayMs: o.maxRetryDelayMs,
      maxEntryBytes: o.maxEntryBytes,
      retentionDays: o.retentionDays,
      retentionIntervalMs: o.retentionIntervalMs,
      retentionChunkRows: Math.floor(o.retentionChunkRows),
      closeTimeoutMs: o.closeTimeoutMs,
      random: o.random,
      now: o.now,
    });
    this.hooks = {
      ...(o.onWritten && { onWritten: o.onWritten }),
      ...(o.onDropped && { onDropped: o.onDropped }),
      ...(o.onSampledOut && { onSampledOut: o.onSampledOut }),
    };
    this.log = o.log;
    this.writer = o.writer ?? storeRowWriter(store);
    this.bucket = new TokenBucket(this.opts.maxEntriesPerSecond, this.opts.now);

    this.flushTimer = setInterval(() => {
      void this.drain(false);
    }, this.opts.flushIntervalMs);
    this.flushTimer.unref();
    if (this.opts.retentionDays > 0) {
      const first = setTimeout(
        () => {
          this.retentionTimer = setInterval(() => {
            void this.runRetention();
          }, this.opts.retentionIntervalMs);
          this.retentionTimer.unref();
          void this.runRetention();
        },
        Math.min(this.opts.retentionIntervalMs, 60_000),
      );
      first.unref();
      this.retentionTimer = first;
    }
  }

  /**
   * Logs one prediction, maybe. O(1): samples, applies the rate cap and the buffer bound, buffers.
   * Never waits for the store and never throws.
   */
  /**
   * The sampling decision for one prediction of `model` (its sample rate, then the global cap), made
   * before its entry is built; `record(entry, true)` then keeps the entry without deciding again.
   */
  admit(model: string): boolean {
    this.recorded++;
    if (this.closed) {
      this.totals.dropped.closed++;
      return false;
    }
    const rate = this.modelRates.get(model) ?? this.opts.sampleRate;
    if (rate < 1 && !(this.opts.random() < rate)) {
      this.totals.sampledOut['sample-rate']++;
      return false;
    }
    if (!this.bucket.take()) {
      this.totals.sampledOut['rate-cap']++;
      return false;
    }
    return true;
  }

  record(entry: PredictionLogEntry, admitted = false): void {
    if (!admitted) {
      let model: string;
      try {
        model = entry.model;
      } catch {
        // A malformed entry (e.g. null) is counted like any other, then dropped as invalid.
        this.recorded++;
        this.totals.dropped.invalid++;
        return;
      }
      if (!this.admit(model)) return;
    }
    try {
      if (this.closed) {
        this.totals.dropped.closed++;
        return;
      }
      if (this.buffer.length + this.inFlight >= this.opts.maxBufferEntries) {
        this.totals.dropped['buffer-full']++;
        return;
      }
      this.buffer.push({ entry, ts: entry.ts ?? this.opts.now() });
      if (this.buffer.length >= this.opts.flushBatchSize) this.kick();
    } catch {
      // A malformed entry (e.g. null) must not fail the prediction that logged it.
      this.totals.dropped.invalid++;
    }
  }

  /** Sets (or, with undefined, clears) the sample rate of one model, e.g. from its manifest. */
  setSampleRate(model: string, rate: number | undefined): void {
    if (rate === undefined) this.modelRates.delete(model);
    else this.modelRates.set(model, checkRate(rate, `sample rate of model "${model}"`));
  }

  /** Counts since construction, and the buffer's state now. */
  stats(): PredictionLogStats {
    return {
      recorded: this.recorded,
      written: this.totals.written,
      sampledOut: { ...this.totals.sampledOut },
      dropped: { ...this.totals.dropped },
      buffered: this.buffer.length,
      inFlight: this.inFlight,
      storeAvailable: this.storeAvailable,
    };
  }

  /**
   * Writes what is buffered now, ignoring the retry backoff. Resolves when the buffer is empty or a
   * write failed (that batch is dropped and counted; the rest stays buffered). Never rejects.
   */
  async flush(): Promise<void> {
    await this.drain(true);
    while (this.buffer.length > 0 && this.storeAvailable) await this.drain(true);
  }

  /** Rows of one model (version) in a time window, inputs and outputs parsed. Rejects if the store fails. */
  async query(q: PredictionLogQuery): Promise<PredictionLogRow[]> {
    const limit = Math.max(1, Math.min(100_000, Math.floor(q.limit ?? 1000)));
    const order = q.order ?? 'desc';
    let sel = this.store.db
      .selectFrom('prediction_log')
      .selectAll()
      .where('model', '=', q.model)
      .where('ts', '>=', q.since);
    if (q.version !== undefined) sel = sel.where('version', '=', q.version);
    if (q.until !== undefined) sel = sel.where('ts', '<', q.until);
    const rows = await sel.orderBy('ts', order).orderBy('id', order).limit(limit).execute();
    const c = this.store.codec;
    return rows.map((r) => ({
      id: c.int(r.id),
      ts: c.int(r.ts),
      model: r.model,
      version: r.version,
      input: c.parseJson(r.input),
      output: c.parseJson(r.output),
      latencyMs: r.latency_ms,
      fallbackReason: r.fallback_reason,
      cacheHit: c.parseBool(r.cache_hit),
      requestId: r.request_id,
    }));
  }

  /**
   * Deletes rows older than `retentionDays` (relative to `now`), in chunks of `retentionChunkRows`.
   * Returns how many. Runs on its own timer; exposed for tests and for an operator command.
   */
  prune(): Promise<number> {
    if (this.pruning) return this.pruning;
    this.pruning = this.pruneChunks().finally(() => {
      this.pruning = undefined;
    });
    return this.pruning;
  }

  /**
   * Stops the timers and flushes what is buffered within `closeTimeoutMs`; what is left is dropped
   * (counted as `closed`). Later `record` calls are dropped too. Does not close the store.
   */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.closed = true;
    clearInterval(this.flushTimer);
    clearTimeout(this.retentionTimer);
    clearInterval(this.retentionTimer);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((res) => {
      timer = setTimeout(res, this.opts.closeTimeoutMs);
    });
    try {
      await Promise.race([this.flush(), deadline]);
    } finally {
      clearTimeout(timer);
    }
    // A batch still being written may yet land; it is counted when it does. Only what never left the buffer is lost.
    this.totals.dropped.closed += this.buffer.length;
    this.buffer = [];
    this.report();
    await this.writer.close().catch((err: unknown) => this.log?.debug({ err }, 'prediction log: closing the writer'));
  }

  /** Schedules a drain soon (once), when a full batch is waiting. */
  private kick(): void {
    if (this.kickPending || this.draining || (this.retryAt > 0 && performance.now() < this.retryAt)) return;
    this.kickPending = true;
    setImmediate(() => {
      this.kickPending = false;
      void this.drain(false);
    });
  }

  /** Writes batches until the buffer is empty or a write fails; one drain at a time. */
  private drain(force: boolean): Promise<void> {
    if (this.draining) return this.draining;
    if (this.buffer.length === 0 || (!force && performance.now() < this.retryAt)) {
      this.report();
      return Promise.resolve();
    }
    this.draining = this.drainBatches().finally(() => {
      this.draining = undefined;
      this.report();
    });
    return this.draining;
  }

  private async drainBatches(): Promise<void> {
    while (this.buffer.length > 0) {
      const batch = this.buffer.splice(0, this.opts.flushBatchSize);
      this.inFlight = batch.length;
      try {
        // Rows are built (JSON) where they are written: in the writer thread when there is one.
        const outcome = await this.writer.insert(batch, this.opts.maxEntryBytes);
        this.totals.written += outcome.written;
        this.totals.dropped.invalid += outcome.invalid;
        this.totals.dropped['too-large'] += outcome.tooLarge;
        this.succeeded();
        // SQLite writes complete synchronously: without a turn of the event loop between batches, a
        // long drain would hold the HTTP thread for all of them.
        if (this.buffer.length > 0) await yieldToLoop();
      } catch (err) {
        this.totals.dropped['write-failed'] += batch.length;
        this.failed(err, batch.length);
        return;
      } finally {
        this.inFlight = 0;
      }
    }
  }

  private succeeded(): void {
    this.retryDelayMs = 0;
    this.retryAt = 0;
    if (!this.storeAvailable) {
      this.storeAvailable = true;
      this.log?.info(
        { store: this.store.location, dropped: this.droppedInOutage },
        'prediction log: store is back; writing again',
      );
      this.droppedInOutage = 0;
    }
  }

  private failed(err: unknown, lost: number): void {
    this.retryDelayMs = Math.min(this.opts.maxRetryDelayMs, Math.max(this.opts.flushIntervalMs, this.retryDelayMs * 2));
    this.retryAt = performance.now() + this.retryDelayMs;
    this.droppedInOutage += lost;
    if (this.storeAvailable) {
      this.storeAvailable = false;
      this.log?.warn(
        { err, store: this.store.location },
        'prediction log: store unavailable; dropping entries until it recovers',
      );
    }
  }

  /** Calls the hooks with the counts since the last call. Background only. */
  private report(): void {
    const t = this.totals;
    const r = this.reported;
    const call = (fn: () => void): void => {
      try {
        fn();
      } catch (err) {
        this.log?.debug({ err }, 'prediction log: a counter hook threw');
      }
    };
    if (t.written > r.written) {
      const n = t.written - r.written;
      if (this.hooks.onWritten) call(() => this.hooks.onWritten!(n));
    }
    for (const reason of Object.keys(t.dropped) as DropReason[]) {
      const n = t.dropped[reason] - r.dropped[reason];
      if (n > 0 && this.hooks.onDropped) call(() => this.hooks.onDropped!(n, reason));
    }
    for (const reason of Object.keys(t.sampledOut) as SampleOutReason[]) {
      const n = t.sampledOut[reason] - r.sampledOut[reason];
      if (n > 0 && this.hooks.onSampledOut) call(() => this.hooks.onSampledOut!(n, reason));
    }
    const newlyFull = t.dropped['buffer-full'] - r.dropped['buffer-full'];
    if (newlyFull > 0) {
      this.droppedInOutage += this.storeAvailable ? 0 : newlyFull;
      // Log a full buffer once per episode when the store is up (a down store was logged already).
      if (this.storeAvailable && !this.bufferFullLogged) {
        this.bufferFullLogged = true;
        this.log?.warn(
          { maxBufferEntries: this.opts.maxBufferEntries },
          'prediction log: buffer full; dropping entries (writes are slower than traffic; lower sampleRate or maxEntriesPerSecond)',
        );
      }
    } else if (this.buffer.length < this.opts.maxBufferEntries / 2) {
      this.bufferFullLogged = false;
    }
    this.reported = { written: t.written, sampledOut: { ...t.sampledOut }, dropped: { ...t.dropped } };
  }

  private async runRetention(): Promise<void> {
    try {
      const n = await this.prune();
      if (n > 0) this.log?.debug({ deleted: n, retentionDays: this.opts.retentionDays }, 'prediction log: retention');
    } catch (err) {
      // The store is down: the flusher logs outages; try again next interval.
      this.log?.debug({ err }, 'prediction log: retention failed');
    }
  }

  private async pruneChunks(): Promise<number> {
    if (this.opts.retentionDays <= 0) return 0;
    const cutoff = Math.floor(this.opts.now() - this.opts.retentionDays * DAY_MS);
    const chunk = this.opts.retentionChunkRows;
    let total = 0;
    for (;;) {
      const r = await this.store.db
        .deleteFrom('prediction_log')
        .where('id', 'in', (eb) => eb.selectFrom('prediction_log').select('id').where('ts', '<', cutoff).limit(chunk))
        .executeTakeFirst();
      const n = Number(r.numDeletedRows);
      total += n;
      if (n < chunk || this.closed) return total;
      await yieldToLoop();
    }
  }
}

/** The log's options from its config slice, plus what only the server knows (logger, metric hooks). */
export function predictionLogOptionsFromConfig(
  cfg: PredictionLogConfig,
  extra: Omit<PredictionLogOptions, keyof PredictionLogConfig | 'modelSampleRates'> = {},
): PredictionLogOptions {
  return {
    sampleRate: cfg.sampleRate,
    modelSampleRates: parseSampleRates(cfg.sampleRates),
    maxEntriesPerSecond: cfg.maxEntriesPerSecond,
    maxBufferEntries: cfg.maxBufferEntries,
    flushIntervalMs: cfg.flushIntervalMs,
    flushBatchSize: cfg.flushBatchSize,
    maxEntryBytes: cfg.maxEntryBytes,
    retentionDays: cfg.retentionDays,
    retentionIntervalMs: cfg.retentionIntervalMs,
    closeTimeoutMs: cfg.closeTimeoutMs,
    ...extra,
  };
}
