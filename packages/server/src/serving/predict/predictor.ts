// The prediction path of one request: validate → cache lookup → coalesce identical in-flight
// instances → encode the rest → dynamic batcher → worker thread → decode → cache store. Around the
// inference: a deadline (Ferry-Timeout-Ms capped by the model's timeoutMs), the model's circuit
// breaker, and its fallback policy when the model times out, fails or is broken.
import { encodeWithinLimit } from './tensor-split.js';
import { instancesFromBody } from './request-body.js';
import type { ReadTensorBody } from './tensor-body.js';
import { withSpan } from '../../telemetry/index.js';
import {
  elementCount,
  InputError,
  type ImageFeature,
  type Instance,
  type Prediction,
  type RowInfo,
  type TensorValue,
} from '@ferry/core';
import { decodeImage } from './image-decode.js';
import type { WorkerPool } from '../runtime/pool.js';
import type { PredictionSink } from './prediction-sink.js';
import type { FerryConfig } from '../../config/index.js';
import { FerryError, invalidInput } from '../../errors.js';
import type { Metrics } from '../../metrics/metrics.js';
import type { ModelVersion, Repository } from '../repository/index.js';
import { SingleFlight, type PredictionCache, type Lookup } from '../cache/index.js';
import type { LoadedVersion } from '../loaded-version.js';
import type { Queued } from '../batching/index.js';
import { callHandler } from './handler-call.js';

export interface PredictOptions {
  /** Requested timeout (Ferry-Timeout-Ms); capped by the model's `timeoutMs`. */
  timeoutMs?: number;
  /** Set when answering as another version's fallback: no further fallback. */
  noFallback?: boolean;
  /** Carried into the prediction log. */
  requestId?: string;
}

export type FallbackReason = 'timeout' | 'error' | 'circuit-open';

export interface PredictResult {
  /** The version that produced the predictions (differs from the requested one after a `version` fallback). */
  version: ModelVersion;
  predictions: Prediction[];
  /** hit: every instance came from the cache; partial: some did; absent when the model does not cache. */
  cache?: 'hit' | 'miss' | 'partial';
  fallback?: { reason: FallbackReason; policy: string; version?: string };
  /**
   * Epoch ms until which the same instances would get this same answer from the cache: set when the
   * model caches and every row was a fresh hit or was computed now (never with a fallback).
   */
  freshUntil?: number;
  /**
   * The predictions as JSON text, `JSON.stringify(predictions)`, when the decoder wrote them straight
   * from the output tensors (a one-pass answer, `predictRead`); the objects are then made only if read.
   */
  json?: string;
}

/**
 * A one-pass answer: the predictions written as JSON by the decoder, their objects made from the
 * outputs only when something reads them (a row the prediction log samples in).
 */
class WrittenResult implements PredictResult {
  #predictions: Prediction[] | undefined;
  readonly #outputs: Record<string, TensorValue>;
  readonly #decoder: LoadedVersion['decoder'];
  constructor(
    readonly version: ModelVersion,
    readonly json: string,
    readonly rows: number,
    outputs: Record<string, TensorValue>,
    decoder: LoadedVersion['decoder'],
  ) {
    this.#outputs = outputs;
    this.#decoder = decoder;
  }
  get predictions(): Prediction[] {
    return (this.#predictions ??= this.#decoder.decode(this.#outputs, this.rows));
  }
}

const fallbackReason = (e: unknown): FallbackReason | undefined => {
  if (!(e instanceof FerryError)) return undefined;
  if (e.code === 'timeout') return 'timeout';
  if (e.code === 'circuit-open') return 'circuit-open';
  if (e.code === 'inference-failed') return 'error';
  return undefined;
};

export class Predictor {
  private readonly flights = new SingleFlight<Prediction>();

  constructor(
    private readonly cfg: FerryConfig,
    private readonly repository: Repository,
    private readonly metrics: Metrics,
    private readonly usable: (v: ModelVersion) => LoadedVersion,
    private readonly cache: PredictionCache | undefined,
    private readonly pool: WorkerPool,
    private readonly predictionLog?: PredictionSink,
  ) {}

  /**
   * Logs each answered instance (sampled, buffered, written in the background; never slows the answer).
   * `instances` may be a function that makes them, called only once a row is sampled in.
   */
  private logged(
    r: PredictResult,
    instances: readonly Instance[] | (() => readonly Instance[]),
    t0: number,
    opts: PredictOptions,
    hits?: ReadonlyArray<unknown>,
    /** The rows answered (a WrittenResult's objects are made only for a row the log takes). */
    rows = r.predictions.length,
  ): PredictResult {
    const log = this.predictionLog;
    if (!log || opts.noFallback) return r;
    const latencyMs = performance.now() - t0;
    const ts = Date.now();
    const model = r.version.name;
    let list = typeof instances === 'function' ? undefined : instances;
    for (let i = 0; i < rows; i++) {
      if (!log.admit(model)) continue;
      if (list === undefined) {
        // The log never fails the answer it logs: instances it cannot make are not logged.
        try {
          list = (instances as () => readonly Instance[])();
        } catch {
          return r;
        }
      }
      log.record(
        {
          model,
          version: r.version.version,
          input: list[i],
          output: r.predictions[i],
          latencyMs,
          ts,
          cacheHit: hits?.[i] !== undefined,
          fallbackReason: r.fallback?.reason ?? null,
          requestId: opts.requestId ?? null,
        },
        true,
      );
    }
    return r;
  }

  private timeoutFor(lv: LoadedVersion, requested: number | undefined): number {
    const cap = lv.version.manifest.timeoutMs ?? this.cfg.inference.defaultTimeoutMs;
    return requested === undefined ? cap : Math.min(requested, cap);
  }

  private checkTensorLimits(feeds: Record<string, TensorValue>): void {
    const limit = this.cfg.limits.maxTensorElements;
    for (const [name, t] of Object.entries(feeds)) {
      const n = elementCount(t.dims);
      if (n > limit) {
        throw new FerryError('tensor-too-large', {
          detail: `input "${name}" has ${n} elements; the limit (limits.maxTensorElements) is ${limit}`,
          extra: { limit },
        });
      }
    }
  }

  /** Encodes the rows to run, split into groups whose tensors fit limits.maxTensorElements. */
  private encodeGroups(
    lv: LoadedVersion,
    instances: readonly Instance[],
    toRun: readonly number[],
    base: string,
  ): Array<{ rows: readonly number[]; feeds: Record<string, TensorValue>; rowInfo?: RowInfo[] }> {
    // Each encode's per-row lengths (ragged inputs), kept beside its feeds for un-padding the outputs.
    const rowInfos = new WeakMap<Record<string, TensorValue>, RowInfo[]>();
    const encode = (rows: readonly number[]) => {
      try {
        const encoded = lv.encoder.encodeBatch(
          rows.map((i) => instances[i]!),
          base,
        );
        if (encoded.rows) rowInfos.set(encoded.feeds, encoded.rows);
        return encoded.feeds;
      } catch (e) {
        if (e instanceof InputError) {
          // Pointers name the request's own instance positions, not the positions among the misses.
          throw invalidInput(
            e.issues.map((iss) => ({
              ...iss,
              pointer: iss.pointer.replace(
                new RegExp(`^${base}/(\\d+)`),
                (_, k: string) => `${base}/${rows[Number(k)]}`,
              ),
            })),
          );
        }
        throw e;
      }
    };
    const groups = lv.encoder.batchable
      ? encodeWithinLimit(toRun, encode, this.cfg.limits.maxTensorElements)
      : [{ rows: toRun, feeds: encode(toRun) }];
    for (const g of groups) this.checkTensorLimits(g.feeds);
    return groups.map((g) => {
      const rowInfo = rowInfos.get(g.feeds);
      return rowInfo ? { ...g, rowInfo } : g;
    });
  }

  /**
   * Runs feeds through the version's batcher, guarded by its breaker and a deadline. On timeout the
   * request leaves the queue if it is still there; an inference already running finishes in its
   * worker and its result is dropped.
   */
  private guardedRun(
    lv: LoadedVersion,
    feeds: Record<string, TensorValue>,
    rows: number,
    timeoutMs: number,
    realTokens?: number,
  ): Promise<Record<string, TensorValue>> {
    return new Promise((resolve, reject) => {
      this.runOne(lv, feeds, rows, timeoutMs, realTokens, resolve, reject);
    });
  }

  /**
   * `guardedRun` with callbacks: exactly one of `done` or `failed` is called, `failed` at once when the
   * breaker is open or the queue is full, else from the batch's callback or the deadline's timer. No
   * promise of its own, so a caller that settles its own promise in `done` pays for one promise a
   * request (the predict lane's one-pass path, `predictRead`).
   */
  private runOne(
    lv: LoadedVersion,
    feeds: Record<string, TensorValue>,
    rows: number,
    timeoutMs: number,
    realTokens: number | undefined,
    done: (outputs: Record<string, TensorValue>) => void,
    failed: (e: unknown) => void,
  ): void {
    if (!lv.breaker.allow()) {
      failed(
        new FerryError('circuit-open', {
          detail: `${lv.version.key} failed repeatedly; its circuit breaker is open`,
          headers: { 'retry-after': '1' },
        }),
      );
      return;
    }
    const refused = (e: unknown): void => {
      lv.breaker.release();
      if (e instanceof FerryError && e.code === 'server-overloaded')
        this.metrics.shed.inc({ model: lv.version.name, version: lv.version.version });
      failed(e);
    };
    // The batch's answer or the deadline, whichever comes first: a cancelled request is never answered.
    let queued: Queued | undefined;
    const timer = setTimeout(() => {
      lv.batcher.cancel(queued!);
      lv.breaker.failure();
      failed(
        new FerryError('timeout', {
          detail: `${lv.version.key} did not answer within ${timeoutMs} ms`,
          headers: { 'retry-after': '1' },
        }),
      );
    }, timeoutMs);
    try {
      queued = lv.batcher.enqueue(
        feeds,
        rows,
        realTokens,
        (a) => {
          clearTimeout(timer);
          lv.breaker.success();
          done(a.outputs);
        },
        (e) => {
          clearTimeout(timer);
          if (e instanceof FerryError && e.code === 'inference-failed') {
            lv.breaker.failure();
            failed(e);
          } else refused(e);
        },
      );
    } catch (e) {
      clearTimeout(timer);
      refused(e);
    }
  }

  /** Runs encoded groups (usually one) through the batcher and decodes their rows, in request order. */
  private async runGroups(
    lv: LoadedVersion,
    groups: ReturnType<Predictor['encodeGroups']>,
    timeoutMs: number,
  ): Promise<Prediction[]> {
    const one = async (g: (typeof groups)[number]): Promise<Prediction[]> => {
      const realTokens = g.rowInfo?.reduce((n, r) => n + r.length, 0);
      const outputs = await this.guardedRun(lv, g.feeds, g.rows.length, timeoutMs, realTokens);
      return withSpan('ferry.postprocess', () => lv.decoder.decode(outputs, g.rows.length, g.rowInfo));
    };
    if (groups.length === 1) return one(groups[0]!);
    return (await Promise.all(groups.map(one))).flat();
  }

  /**
   * Runs instances through the version's handler in a worker, guarded by the breaker and the deadline like
   * a batch; the predictions are checked against the contract before they are returned.
   */
  private async guardedHandle(
    lv: LoadedVersion,
    instances: Instance[],
    positions: readonly number[],
    base: string,
    timeoutMs: number,
  ): Promise<Prediction[]> {
    const labels = { model: lv.version.name, version: lv.version.version };
    if (!lv.breaker.allow()) {
      throw new FerryError('circuit-open', {
        detail: `${lv.version.key} failed repeatedly; its circuit breaker is open`,
        headers: { 'retry-after': '1' },
      });
    }
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new FerryError('timeout', {
              detail: `${lv.version.key} did not answer within ${timeoutMs} ms`,
              headers: { 'retry-after': '1' },
            }),
          ),
        timeoutMs,
      );
    });
    try {
      const r = await Promise.race([callHandler(this.pool, lv.sessionKey, instances, positions, base), deadline]);
      this.metrics.inferenceDuration.observe(labels, r.inferMs / 1000);
      this.metrics.batchSize.observe(labels, instances.length);
      const predictions = lv.checkPredictions!(r.predictions, instances.length, lv.version.key);
      lv.breaker.success();
      return predictions;
    } catch (e) {
      if (e instanceof FerryError && (e.code === 'timeout' || e.code === 'inference-failed')) lv.breaker.failure();
      else lv.breaker.release();
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /** A pipeline version (e.g. OCR): each instance's image is decoded here and run whole in a worker. */
  private async predictPipeline(
    lv: LoadedVersion,
    raw: unknown,
    base: string,
    opts: PredictOptions,
  ): Promise<PredictResult> {
    const v = lv.version;
    const feature = v.manifest.inputs[0] as ImageFeature;
    const output = v.manifest.outputs[0]!.name;
    if (!Array.isArray(raw) || raw.length === 0)
      throw invalidInput([{ pointer: base, reason: 'expected a non-empty array of instances' }]);
    if (raw.length > this.cfg.limits.maxInstances) {
      throw new FerryError('too-many-instances', {
        detail: `${raw.length} instances sent; the limit (limits.maxInstances) is ${this.cfg.limits.maxInstances}`,
        extra: { limit: this.cfg.limits.maxInstances },
      });
    }
    raw.forEach((inst, i) => {
      if (inst === null || typeof inst !== 'object' || Array.isArray(inst))
        throw invalidInput([{ pointer: `${base}/${i}`, reason: `expected an object with "${feature.name}"` }]);
      const extra = Object.keys(inst).find((k) => k !== feature.name);
      if (extra !== undefined)
        throw invalidInput([
          {
            pointer: `${base}/${i}/${extra}`,
            reason: `unknown feature "${extra.slice(0, 100)}"; the model takes "${feature.name}"`,
          },
        ]);
      if (!(feature.name in inst))
        throw invalidInput([
          { pointer: `${base}/${i}/${feature.name}`, reason: `missing required feature "${feature.name}"` },
        ]);
    });
    const images = await Promise.all(
      (raw as Array<Record<string, unknown>>).map((inst, i) =>
        decodeImage(inst[feature.name], feature, `${base}/${i}/${feature.name}`),
      ),
    );
    const timeoutMs = this.timeoutFor(lv, opts.timeoutMs);
    const predictions: Prediction[] = [];
    const deadline = performance.now() + timeoutMs;
    for (const image of images) {
      let timer: NodeJS.Timeout | undefined;
      const left = Math.max(1, deadline - performance.now());
      const r = await Promise.race([
        this.pool.runPipeline(lv.sessionKey, image),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new FerryError('timeout', { detail: `${v.key} did not answer within ${timeoutMs} ms` })),
            left,
          );
        }),
      ]).finally(() => clearTimeout(timer));
      this.metrics.inferenceDuration.observe({ model: v.name, version: v.version }, r.inferMs / 1000);
      predictions.push({ [output]: r.result });
    }
    return { version: v, predictions };
  }

  async predict(requested: ModelVersion, raw: unknown, base: string, opts: PredictOptions): Promise<PredictResult> {
    const t0 = performance.now();
    const lv = this.usable(requested);
    // After a hot reload the loaded version carries the new manifest; answer with that one.
    const v = lv.version;
    if (lv.pipeline) return this.predictPipeline(lv, raw, base, opts);
    const instances = withSpan('ferry.validate', () => lv.validator.check(raw, base), { 'ferry.model': v.name });
    const m = v.manifest;
    const caching = m.cache?.enabled === true;
    const keepForFallback = m.fallback?.policy === 'stale-cache';
    const cache = caching || keepForFallback ? this.cache : undefined;
    // The common case, with nothing cached or coalesced: every row is encoded and run as it came.
    if (!cache && lv.handler === undefined) return this.predictEveryRow(lv, instances, base, opts, t0);
    const ttlMs = (m.cache?.ttlSeconds ?? 300) * 1000;
    const keys = cache ? cache.keysFor(lv.contentKey, m.inputs, instances) : undefined;
    let lookup: Lookup | undefined;
    if (cache && caching)
      lookup = await withSpan('ferry.cache_lookup', () => cache.lookup(v.name, v.version, keys!, ttlMs), {
        'ferry.instances': instances.length,
      });
    const predictions: Array<Prediction | undefined> = lookup
      ? [...lookup.fresh]
      : new Array(instances.length).fill(undefined);
    const hits = predictions.filter((p) => p !== undefined).length;
    const cacheState = caching ? (hits === instances.length ? 'hit' : hits === 0 ? 'miss' : 'partial') : undefined;
    // The earliest expiry among the rows the cache answered (rows computed below keep a full TTL).
    let freshUntil = Date.now() + ttlMs;
    if (lookup)
      for (let i = 0; i < instances.length; i++) {
        const found = lookup.fresh[i] !== undefined ? lookup.any[i] : undefined;
        if (found) freshUntil = Math.min(freshUntil, found.storedAt + ttlMs);
      }
    const memo = caching ? { freshUntil } : {};
    if (hits === instances.length)
      return this.logged(
        { version: v, predictions: predictions as Prediction[], ...(cacheState && { cache: cacheState }), ...memo },
        instances,
        t0,
        opts,
        lookup?.fresh,
      );

    // Instances another request is already computing wait for that result (single flight).
    const waits: Array<Promise<void>> = [];
    const toRun: number[] = [];
    instances.forEach((_, i) => {
      if (predictions[i] !== undefined) return;
      const pending = keys && caching ? this.flights.get(keys[i]!) : undefined;
      if (pending)
        waits.push(
          pending.then((p) => {
            predictions[i] = p;
          }),
        );
      else toRun.push(i);
    });

    // A version with a handler encodes, runs and decodes in its worker.
    const viaHandler = lv.handler !== undefined;
    // Rows to run, in groups that each fit limits.maxTensorElements (usually one group).
    const groups = toRun.length && !viaHandler ? this.encodeGroups(lv, instances, toRun, base) : [];

    const timeoutMs = this.timeoutFor(lv, opts.timeoutMs);
    try {
      if (toRun.length) {
        const run = viaHandler
          ? this.guardedHandle(
              lv,
              toRun.map((i) => instances[i]!),
              toRun,
              base,
              timeoutMs,
            )
          : this.runGroups(lv, groups, timeoutMs);
        if (keys && caching) {
          // Register each key so identical concurrent requests coalesce onto this inference.
          toRun.forEach((i, k) =>
            this.flights.track(
              keys[i]!,
              run.then((preds) => preds[k]!),
            ),
          );
        }
        const preds = await run;
        toRun.forEach((i, k) => {
          predictions[i] = preds[k];
        });
        if (cache)
          void cache.save(
            v.name,
            v.version,
            toRun.map((i, k) => [keys![i]!, preds[k]!] as const),
            ttlMs,
          );
      }
      await Promise.all(waits);
      return this.logged(
        { version: v, predictions: predictions as Prediction[], ...(cacheState && { cache: cacheState }), ...memo },
        instances,
        t0,
        opts,
        lookup?.fresh,
      );
    } catch (e) {
      return this.recover(e, lv, instances, keys, lookup, base, opts, t0);
    }
  }

  /** `predict` for a version that neither caches nor has a handler: no lookups, no single flight. */
  private async predictEveryRow(
    lv: LoadedVersion,
    instances: Instance[],
    base: string,
    opts: PredictOptions,
    t0: number,
  ): Promise<PredictResult> {
    const rows: number[] = new Array<number>(instances.length);
    for (let i = 0; i < rows.length; i++) rows[i] = i;
    const groups = this.encodeGroups(lv, instances, rows, base);
    try {
      const predictions = await this.runGroups(lv, groups, this.timeoutFor(lv, opts.timeoutMs));
      return this.logged({ version: lv.version, predictions }, instances, t0, opts);
    } catch (e) {
      return this.recover(e, lv, instances, undefined, undefined, base, opts, t0);
    }
  }

  /**
   * `predict` for rows read straight from the request's body (tensor-body.ts), so already validated and
   * encoded. The instances are parsed from the body only when something needs them: a row the
   * prediction log samples in, or the model's fallback policy. One promise a request, settled from the
   * batch's callback (`runOne`); `settled` is called once the answer or the failure is known, before the
   * promise settles (ModelService counts the request on its load until then).
   */
  predictRead(
    lv: LoadedVersion,
    read: ReadTensorBody,
    body: Uint8Array,
    opts: PredictOptions,
    settled: () => void = () => undefined,
  ): Promise<PredictResult> {
    const t0 = performance.now();
    let parsed: Instance[] | undefined;
    const instances = (): Instance[] => {
      if (parsed) return parsed;
      const b = instancesFromBody(JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString()));
      return (parsed = lv.validator.check(b.instances, b.base));
    };
    // The callbacks below run inside the batch's loop over its requests, so they never throw.
    return new Promise<PredictResult>((resolve, reject) => {
      const failed = (e: unknown): void => {
        let list: Instance[];
        try {
          if (!fallbackReason(e) || opts.noFallback) throw e;
          list = instances();
        } catch (thrown) {
          settled();
          reject(thrown);
          return;
        }
        const recovered = this.recover(e, lv, list, undefined, undefined, '/instances', opts, t0);
        recovered.then(settled, settled);
        resolve(recovered);
      };
      this.runOne(
        lv,
        read.feeds,
        read.rows,
        this.timeoutFor(lv, opts.timeoutMs),
        undefined,
        (outputs) => {
          let r: PredictResult;
          try {
            const decoder = lv.decoder;
            if (decoder.json) {
              // The answer's text straight from the scores: no prediction objects unless the log takes a row.
              const json = withSpan('ferry.postprocess', () => decoder.json!(outputs, read.rows));
              const written = new WrittenResult(lv.version, json, read.rows, outputs, decoder);
              r = this.logged(written, instances, t0, opts, undefined, read.rows);
            } else {
              const predictions = withSpan('ferry.postprocess', () => decoder.decode(outputs, read.rows));
              r = this.logged({ version: lv.version, predictions }, instances, t0, opts);
            }
          } catch (e) {
            failed(e);
            return;
          }
          settled();
          resolve(r);
        },
        failed,
      );
    });
  }

  /** A failed run answered by the model's fallback policy (logged), or the failure rethrown. */
  private async recover(
    e: unknown,
    lv: LoadedVersion,
    instances: Instance[],
    keys: string[] | undefined,
    lookup: Lookup | undefined,
    base: string,
    opts: PredictOptions,
    t0: number,
  ): Promise<PredictResult> {
    const reason = fallbackReason(e);
    if (!reason || opts.noFallback) throw e;
    const r = await this.fallback(lv, reason, e as FerryError, instances, keys, lookup, base, opts);
    return this.logged(r, instances, t0, opts);
  }

  private async fallback(
    lv: LoadedVersion,
    reason: FallbackReason,
    err: FerryError,
    instances: Instance[],
    keys: string[] | undefined,
    lookup: Lookup | undefined,
    base: string,
    opts: PredictOptions,
  ): Promise<PredictResult> {
    const v = lv.version;
    const policy = v.manifest.fallback?.policy ?? 'none';
    const answered = (r: Omit<PredictResult, 'fallback'>, version?: string): PredictResult => {
      this.metrics.fallbacks.inc({ model: v.name, version: v.version, reason, policy });
      return { ...r, fallback: { reason, policy, ...(version && { version }) } };
    };
    switch (policy) {
      case 'static':
        return answered({ version: v, predictions: instances.map(() => v.manifest.fallback!.value as Prediction) });
      case 'version': {
        const target = this.repository.resolve(v.name, v.manifest.fallback?.version);
        if (target.key === v.key) throw err;
        const r = await this.predict(target, instances, base, { ...opts, noFallback: true }).catch(() => {
          throw err;
        });
        return answered({ version: target, predictions: r.predictions }, target.version);
      }
      case 'stale-cache': {
        if (!this.cache || !keys) throw err;
        const found = lookup?.any ?? (await this.cache.lookup(v.name, v.version, keys, 0)).any;
        if (found.some((f) => f === undefined)) throw err;
        return answered({ version: v, predictions: found.map((f) => f!.prediction) });
      }
      default:
        throw err;
    }
  }

  async runTensors(
    v: ModelVersion,
    feeds: Record<string, TensorValue>,
    outputs: string[] | undefined,
    opts: PredictOptions,
  ): Promise<{ outputs: Record<string, TensorValue>; inferMs: number }> {
    const lv = this.usable(v);
    this.checkTensorLimits(feeds);
    const first = Object.values(feeds)[0];
    const rows = lv.encoder.batchable && first && first.dims.length > 0 ? first.dims[0]! : 1;
    const sameRows = Object.values(feeds).every((t) => t.dims[0] === rows);
    if (lv.encoder.batchable && !sameRows) {
      throw invalidInput([{ pointer: '/inputs', reason: 'every input must have the same first (batch) dimension' }]);
    }
    const t0 = performance.now();
    const all = await this.guardedRun(lv, feeds, rows, this.timeoutFor(lv, opts.timeoutMs));
    const picked = outputs ? Object.fromEntries(outputs.map((n) => [n, all[n]!])) : all;
    return { outputs: picked, inferMs: performance.now() - t0 };
  }
}
