// The inference service: loads and warms every model version into the worker pool, and answers
// predictions (validate → encode → run in a worker → decode). HTTP routes and the CLI call this;
// nothing else touches ONNX Runtime.
import { decodeGate } from './predict/decode-gate.js';
import { performance } from 'node:perf_hooks';
import { createReadStream, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import {
  compileDecoder,
  compileEncoder,
  InputError,
  isBatchable,
  paddleOcrLabels,
  type Encoder,
  type Instance,
  type Manifest,
  type RequestLimits,
  type TensorValue,
} from '@ferry/core';
import type { Logger } from 'pino';
import type { FerryConfig } from '../config/index.js';
import { FerryError, invalidInput } from '../errors.js';
import type { Metrics } from '../metrics/metrics.js';
import { encoderResources, ManifestError } from './repository/manifest.js';
import { modelBytes, type Repository, type ModelVersion } from './repository/index.js';
import type { PipelineSpec, RawImage } from './runtime/protocol.js';
import { WorkerPool } from './runtime/pool.js';
import { InlineSessions } from './runtime/inline.js';
import {
  inconclusive,
  inlineRefusal,
  workerFilter,
  INLINE_MAX_MODEL_BYTES,
  REPROBE_AFTER_MS,
  INLINE_PROBE_RUNS,
  LOADED_PROBE_RUNS,
  placeFromRuns,
  timesBatches,
  variableCost,
  ownRunUs,
  type SizeRuns,
  type PlacementInForce,
} from './runtime/placement.js';
import { sessionOptionsFor, type OrtSessionOptions } from './runtime/session-options.js';
import { compileRequestValidator } from './predict/validation.js';
import { tensorBodyReader, type TensorBodyReader } from './predict/tensor-body.js';
import {
  capForInline,
  DynamicBatcher,
  MAX_PROBE_ROWS,
  probeBatching,
  UNMEASURED_MAX_BATCH_SIZE,
} from './batching/index.js';
import { CircuitBreaker, type BreakerState } from './predict/breaker.js';
import { PredictionCache } from './cache/index.js';
import { AnswerMemo, type MemoAnswer } from './cache/answer-memo.js';
import { instancesFromBody } from './predict/request-body.js';
import { labelChildren } from '../metrics/label-children.js';
import type { PredictionSink } from './predict/prediction-sink.js';
import type { BatchingInForce, LoadedVersion, VersionState } from './loaded-version.js';
import { Predictor, type PredictOptions, type PredictResult } from './predict/predictor.js';
import { compilePredictionCheck } from './predict/handler-call.js';
import type { HandlerSpec } from './runtime/protocol.js';
import {
  cloneFeeds,
  type ClientIdentity,
  type CompletedRun,
  type ModelRef,
  type PredictRouter,
  type Routed,
  type ShadowSource,
} from './predict/routing.js';

/** Options of one predict call on the serving path. */
export interface ServeOptions extends PredictOptions {
  /** Where a sampled shadow copy is counted (default: predict / infer); false: this call is not copied. */
  shadow?: ShadowSource | false;
  /** The shadow sampling already decided for this request (by `recall`); absent: decided here. */
  shadowSampled?: boolean;
}

/**
 * What `recall` found: the whole answer, or nothing (then predict, with the shadow decision made, and
 * hand this to `remember`: `memoKey` is the body's key, set when the version's answers are kept).
 */
export type Recalled = { answer: MemoAnswer } | { answer?: undefined; shadowSampled: boolean; memoKey?: string };

export type { BatchingInForce, LoadedVersion, VersionState } from './loaded-version.js';
export type { PredictOptions, PredictResult } from './predict/predictor.js';

/** 320×96 white with a dark 200×24 bar: enough for a text detector to find a box. */
function warmupImage(): RawImage {
  const width = 320,
    height = 96;
  const data = new Uint8Array(width * height * 3).fill(255);
  for (let y = 36; y < 60; y++)
    for (let x = 60; x < 260; x++) data.fill(20, (y * width + x) * 3, (y * width + x) * 3 + 3);
  return { width, height, channels: 3, data };
}

/** A representative instance built from the contract, for warm-up when the manifest gives none. */
export function syntheticInstance(m: Manifest): Instance {
  const inst: Instance = {};
  const batchable = isBatchable(m);
  for (const f of m.inputs) {
    switch (f.type) {
      case 'number':
        inst[f.name] =
          f.default ?? (f.min !== undefined && f.max !== undefined ? (f.min + f.max) / 2 : (f.min ?? f.max ?? 0));
        break;
      case 'integer':
        inst[f.name] =
          f.default ??
          (f.min !== undefined && f.max !== undefined ? Math.floor((f.min + f.max) / 2) : (f.min ?? f.max ?? 0));
        break;
      case 'boolean':
        inst[f.name] = f.default ?? false;
        break;
      case 'category':
        inst[f.name] = f.default ?? f.values[0];
        break;
      case 'string':
        inst[f.name] = f.default ?? 'warm up'.padEnd(f.minLength ?? 0, ' ');
        break;
      case 'tensor': {
        const row = (batchable ? f.shape.slice(1) : f.shape).map((d) => (d === -1 ? 1 : d));
        const zero = f.dtype === 'bool' ? false : f.dtype === 'string' ? '' : 0;
        const build = (depth: number): unknown =>
          depth === row.length ? zero : Array.from({ length: row[depth]! }, () => build(depth + 1));
        inst[f.name] = build(0);
        break;
      }
    }
  }
  return inst;
}

/** SHA-256 (first 16 hex digits) over files, streamed so a large model does not block the event loop. */
async function digestFiles(paths: readonly string[]): Promise<string> {
  const h = createHash('sha256');
  for (const p of paths) {
    for await (const chunk of createReadStream(p)) h.update(chunk as Buffer);
    h.update('\0');
  }
  return h.digest('hex').slice(0, 16);
}

const ORT_TO_FERRY: Record<string, string> = { float: 'float32', double: 'float64' };

/**
 * The body reader of a version whose bodies can be read straight into its tensor (predict/tensor-body.ts):
 * not when its answers are cached (the cache keys instances), and only when its own encoder, given one
 * row, makes the very tensor the reader fills: one float32 feed of the same name and shape.
 */
function bodyReaderFor(
  m: Manifest,
  encoder: Encoder,
  limits: RequestLimits,
): { bodyReader: TensorBodyReader } | Record<string, never> {
  if (m.cache?.enabled === true || m.fallback?.policy === 'stale-cache') return {};
  const reader = tensorBodyReader(m, limits);
  if (!reader) return {};
  const { width } = reader;
  const feeds = encoder.encode([{ [reader.input]: new Array<number>(width).fill(0) }]);
  const names = Object.keys(feeds);
  const t = feeds[reader.input];
  if (names.length !== 1 || t?.dtype !== 'float32' || t.dims.length !== 2 || t.dims[0] !== 1 || t.dims[1] !== width)
    return {};
  return { bodyReader: reader };
}

export class ModelService {
  private readonly versions = new Map<string, LoadedVersion>();
  readonly pool: WorkerPool;
  readonly limits: RequestLimits;
  private readonly predictor: Predictor;
  private readonly inline = new InlineSessions();

  constructor(
    private readonly cfg: FerryConfig,
    readonly repository: Repository,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    workers: number,
    private readonly cache?: PredictionCache,
    private readonly predictionLog?: PredictionSink,
    /**
     * CPUs the process plans for (`runtime.cores`, by default its CPU affinity): on one, an `auto`
     * model's loaded batches also run on the main thread (runtime/placement.ts).
     */
    private readonly cores = availableParallelism(),
  ) {
    this.pool = new WorkerPool(workers, log.child({ component: 'pool' }));
    this.memo = new AnswerMemo(cfg.cache.answerMemoMaxBytes);
    this.limits = { ...cfg.limits };
    decodeGate.configure({
      maxConcurrent: cfg.limits.maxConcurrentImageDecodes,
      maxPixels: cfg.limits.maxDecodedPixelsInFlight,
    });
    for (const v of repository.allVersions()) {
      this.versions.set(v.key, this.prepare(v));
      this.metrics.modelReady.set({ model: v.name, version: v.version }, 0);
      this.metrics.breakerState.set({ model: v.name, version: v.version }, 0);
    }
    // Queue depth is read when Prometheus scrapes, not written on every request.
    metrics.queueDepthSource = () =>
      [...this.versions.values()].map(
        (lv) => [{ model: lv.version.name, version: lv.version.version }, lv.batcher.depth] as const,
      );
    this.predictor = new Predictor(cfg, repository, metrics, (v) => this.usable(v), cache, this.pool, predictionLog);
    // A handler's ctx.predict(model, instances): the full predict path of the other model, never copied to a shadow.
    this.pool.handlerCalls = async (model, instances) => {
      const at = model.indexOf('@');
      const version = this.repository.resolve(
        at < 0 ? model : model.slice(0, at),
        at < 0 ? undefined : model.slice(at + 1),
      );
      // At start a handler's warm-up may call a model still loading: wait for it (bounded) rather than fail.
      const until = performance.now() + this.cfg.inference.defaultTimeoutMs;
      while (this.versions.get(version.key)?.state === 'loading' && performance.now() < until && !this.disposed)
        await new Promise((r) => setTimeout(r, 20));
      return (await this.predict(version, instances, '/instances', { shadow: false })).predictions;
    };
  }

  private generation = 0;
  /** The batching probe in progress (tuneBatching): one version at a time. */
  private probing: Promise<void> = Promise.resolve();

  /** Builds the serving state of a version (batcher, breaker, validators); its sessions load later. */
  private prepare(v: ModelVersion): LoadedVersion {
    const sessionKey = `${v.key}#${++this.generation}`;
    const m = v.manifest;
    const labels = { model: v.name, version: v.version };
    // A pipeline does its own preprocessing in the worker; its encoder feeds nothing.
    const encoder =
      m.pipeline || m.generation
        ? compileEncoder({ ...m, inputs: [], preprocess: undefined } as Manifest)
        : compileEncoder(m, encoderResources(v.dir, m));
    const b = m.batching ?? {};
    const batchOn = encoder.batchable && b.enabled !== false;
    // The version's metric children, resolved once rather than per batch and per request.
    const batchSize = this.metrics.histogramTallies.of(this.metrics.batchSize, labels);
    const queueDuration = this.metrics.histogramTallies.of(this.metrics.queueDuration, labels);
    const inferenceDuration = this.metrics.histogramTallies.of(this.metrics.inferenceDuration, labels);
    const inlineBatches = this.metrics.tallies.of(
      this.metrics.batchPlacement.labels({ ...labels, placement: 'inline' }),
    );
    const workerBatches = this.metrics.tallies.of(
      this.metrics.batchPlacement.labels({ ...labels, placement: 'worker' }),
    );
    // Filled in at warm-up for `auto` (placeInline); until then every batch goes to the workers.
    const placement: PlacementInForce = { mode: m.runtime?.placement ?? 'auto', inlineMaxRows: 0 };
    const batcher = new DynamicBatcher(
      {
        batchable: batchOn,
        // An unset size is measured at warm-up (`tuneBatching`); until then one row a batch.
        maxBatchSize: batchOn ? (b.maxBatchSize ?? 1) : 1,
        maxQueueDelayUs: b.maxQueueDelayUs ?? 0,
        preferredBatchSizes: b.preferredBatchSizes ?? [],
        maxQueueDepth: b.maxQueueDepth ?? this.cfg.inference.defaultMaxQueueDepth,
        ...(b.maxQueueTimeMs !== undefined && { maxQueueTimeMs: b.maxQueueTimeMs }),
        // Ragged inputs: padded per batch; outputs with a dynamic axis 1 share the inputs' sequence axis.
        padValues: encoder.padValues,
        sequenceOutputs: m.outputs
          .filter((o) => o.shape && o.shape.length >= 2 && o.shape[1] === -1)
          .map((o) => o.name),
        ...(b.padding?.maxTokensPerBatch !== undefined && { maxTokensPerBatch: b.padding.maxTokensPerBatch }),
        ...(b.padding?.lengthAware !== undefined && { lengthAware: b.padding.lengthAware }),
        ...(b.padding?.maxPaddingRatio !== undefined && { maxPaddingRatio: b.padding.maxPaddingRatio }),
        // One batch per worker holding the model; inline runs hold the main thread, so one at a time.
        concurrency: placement.mode === 'inline' ? 1 : this.instancesOf(m),
      },
      // `auto`: an idle model's small batch runs on the main thread (no hop), and on one core any batch
      // within the bound (a worker there only shares the core); see runtime/placement.ts.
      (feeds, rows, alone) => {
        const loaded = placement.loadedMaxRows ?? 0;
        if (placement.mode === 'inline' || rows <= (alone ? Math.max(placement.inlineMaxRows, loaded) : loaded)) {
          inlineBatches.inc();
          return this.inline.run(sessionKey, feeds);
        }
        workerBatches.inc();
        return this.pool.run(sessionKey, feeds);
      },
      (stats) => {
        batchSize.observe(stats.rows);
        if (stats.tokens) {
          this.metrics.batchTokens.inc({ ...labels, kind: 'padded' }, stats.tokens.paddedTokens);
          this.metrics.batchTokens.inc({ ...labels, kind: 'real' }, stats.tokens.realTokens);
        }
        for (const q of stats.queueMs) queueDuration.observe(q / 1000);
        inferenceDuration.observe(stats.inferMs / 1000);
      },
    );
    const breakerCfg = m.fallback?.breaker ?? {};
    const breaker = new CircuitBreaker(
      breakerCfg.failures ?? this.cfg.inference.breakerFailures,
      breakerCfg.coolDownMs ?? this.cfg.inference.breakerCoolDownMs,
      (state: BreakerState) => {
        this.metrics.breakerState.set(labels, state === 'closed' ? 0 : state === 'half-open' ? 1 : 2);
        this.log.warn({ model: v.key, breaker: state }, 'circuit breaker changed state');
      },
    );
    return {
      version: v,
      encoder,
      decoder: compileDecoder(m),
      validator: compileRequestValidator(m, this.limits),
      state: 'loading',
      inputs: [],
      outputs: [],
      batcher,
      breaker,
      placement,
      sessionKey,
      users: 0,
      contentKey: v.key,
      ...(m.handler && { checkPredictions: compilePredictionCheck(m) }),
      ...bodyReaderFor(m, encoder, this.limits),
    };
  }

  private readonly delegates: {
    handles: (m: Manifest) => boolean;
    load: (v: ModelVersion) => Promise<{ loadMs: number; warmupMs: number }>;
  }[] = [];

  /** Hands the loading of some versions (e.g. generative models) to another service; call before loadAll(). */
  delegateLoading(
    handles: (m: Manifest) => boolean,
    load: (v: ModelVersion) => Promise<{ loadMs: number; warmupMs: number }>,
  ): void {
    this.delegates.push({ handles, load });
  }

  /**
   * Loads and warms every version. One version's failure never stops the others: it is left `failed`
   * with its reason (see `states()`), its half-loaded sessions freed. Resolves once every version has
   * settled; with `models.onLoadFailure: exit`, rejects then if any failed.
   */
  async loadAll(): Promise<void> {
    const all = [...this.versions.values()];
    const results = await Promise.allSettled(all.map((lv) => this.loadVersion(lv)));
    const failed: string[] = [];
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') return;
      const lv = all[i]!;
      failed.push(`${lv.version.key}: ${lv.error ?? (r.reason as Error).message}`);
      this.log.error({ model: lv.version.key, err: r.reason }, 'model version failed to load; the others serve');
      // Free whatever the failed load holds (a session that loaded but failed its warm-up).
      void this.disposeLoad(lv).catch(() => undefined);
    });
    if (failed.length && this.cfg.models.onLoadFailure === 'exit')
      throw new FerryError('load-failed', { detail: failed.join('; ') });
  }

  private async loadVersion(lv: LoadedVersion): Promise<void> {
    const v = lv.version;
    const m = v.manifest;
    try {
      // The handler's and the tokenizer's files are part of what answers: a change must not be served
      // cached answers.
      lv.contentKey = `${v.key}~${await digestFiles([
        v.modelPath,
        join(v.dir, 'ferry.yaml'),
        ...(m.handler ? [join(v.dir, m.handler)] : []),
        ...(m.tokenizer ? [join(v.dir, m.tokenizer.file ?? 'tokenizer.json')] : []),
      ])}`;
      const delegate = this.delegates.find((d) => d.handles(m));
      if (delegate) {
        const r = await delegate.load(v);
        lv.loadMs = r.loadMs;
        this.markReady(lv, r.warmupMs);
        return;
      }
      if (m.pipeline) {
        await this.loadPipeline(lv);
        return;
      }
      const inline = lv.placement.mode === 'inline';
      const options = sessionOptionsFor(this.cfg, m);
      if (m.handler && inline)
        throw new ManifestError(
          `${v.dir}/ferry.yaml`,
          '/runtime/placement',
          'a version with a handler runs in the worker threads; remove placement: inline',
        );
      const handler: HandlerSpec | undefined = m.handler
        ? { path: join(v.dir, m.handler), model: { name: v.name, version: v.version }, manifest: m }
        : undefined;
      const loaded = inline
        ? await this.inline.load(lv.sessionKey, v.modelPath, options)
        : await this.pool.load(lv.sessionKey, v.modelPath, options, this.instancesOf(m), undefined, handler);
      lv.inputs = loaded.inputs;
      lv.outputs = loaded.outputs;
      lv.loadMs = loaded.loadMs;
      if (loaded.handler) lv.handler = loaded.handler;
      this.checkAgainstModel(lv);
      const t0 = performance.now();
      const warm = m.warmup?.instances ?? [syntheticInstance(m)];
      const warmInstances = lv.validator.check(warm, '/warmup/instances');
      const runs = m.warmup?.runs ?? this.cfg.runtime.warmupRuns;
      if (lv.handler) {
        lv.placement.reason = 'a handler runs in the worker threads';
        // The warm-up goes through the handler (and its answer through the contract), as a request would.
        for (let r = 0; r < Math.max(1, runs); r++) {
          const out = await this.pool.handle(lv.sessionKey, warmInstances);
          lv.checkPredictions!(out.predictions, warmInstances.length, `${v.key} warm-up`);
        }
        this.markReady(lv, performance.now() - t0);
        return;
      }
      let workerRunsMs: number[] = [];
      let crowded = this.othersLoading(lv);
      for (let r = 0; r < runs; r++) {
        const times = inline
          ? [(await this.inline.run(lv.sessionKey, lv.encoder.encode(warmInstances))).inferMs]
          : await this.pool.runOnEach(lv.sessionKey, () => lv.encoder.encode(warmInstances));
        if (r === 0) this.log.debug({ model: v.key, firstRunMs: times }, 'first warm-up inference');
        workerRunsMs = times;
      }
      crowded ||= this.othersLoading(lv);
      if (lv.placement.mode === 'auto') await this.placeInline(lv, warmInstances, workerRunsMs, options, crowded);
      await this.tuneBatching(lv, warmInstances, runs > 0);
      this.markReady(lv, performance.now() - t0);
    } catch (e) {
      const err =
        e instanceof FerryError && e.code === 'invalid-input'
          ? new ManifestError(`${v.dir}/ferry.yaml`, '/warmup', `warm-up input rejected: ${e.detail}`)
          : e;
      lv.state = 'failed';
      lv.error = err instanceof FerryError && err.detail ? err.detail : ((err as Error)?.message ?? String(err));
      throw err;
    }
  }

  /**
   * `placement: auto`: measures one row's run on a main-thread copy of the session and keeps that copy
   * when the run is within `runtime.inlineMaxRunUs` (the rule is in runtime/placement.ts).
   */
  private async placeInline(
    lv: LoadedVersion,
    warm: readonly unknown[],
    workerRunsMs: readonly number[],
    options: OrtSessionOptions,
    /** Other versions were loading or warming up while the worker runs were timed. */
    crowded: boolean,
  ): Promise<void> {
    const v = lv.version;
    const limitUs = this.cfg.runtime.inlineMaxRunUs;
    const refused =
      variableCost(v.manifest.inputs, Object.keys(lv.encoder.padValues)) ??
      inlineRefusal(limitUs, workerRunsMs, warm.length, modelBytes(v.modelPath, INLINE_MAX_MODEL_BYTES));
    if (refused !== undefined) {
      Object.assign(lv.placement, { inlineMaxRows: 0, reason: refused });
      // Refused by the workers' figure alone while other versions loaded: that figure proves nothing yet.
      if (crowded && refused === workerFilter(limitUs, workerRunsMs, warm.length))
        this.retimeInWorkers(lv, warm, options, 0);
      return;
    }
    await this.timeInline(lv, warm, options, 0);
  }

  /**
   * Times the warm-up rows in the workers again later, for a version the coarse filter kept off the main
   * thread on a figure taken while other versions loaded; passing the filter now, it goes on to the
   * main-thread timing. At most as many times as a main-thread probe is re-timed (REPROBE_AFTER_MS).
   */
  private retimeInWorkers(
    lv: LoadedVersion,
    warm: readonly unknown[],
    options: OrtSessionOptions,
    attempt: number,
  ): void {
    const after = REPROBE_AFTER_MS[attempt];
    if (after === undefined) return;
    const limitUs = this.cfg.runtime.inlineMaxRunUs;
    lv.placement.reason += `; the worker threads had other work while it was timed: timed again in ${after / 1000} s`;
    const again = async () => {
      if (lv.batcher.isClosed || this.disposed) return;
      const crowded = this.workersBusy(lv);
      const feeds = () => lv.encoder.encode(warm as never, '/warmup/instances');
      // Two rounds: the fastest run counts, as at warm-up.
      const runs = [
        ...(await this.pool.runOnEach(lv.sessionKey, feeds)),
        ...(await this.pool.runOnEach(lv.sessionKey, feeds)),
      ];
      if (lv.batcher.isClosed || this.disposed) return;
      const still = workerFilter(limitUs, runs, warm.length);
      if (still === undefined) return this.timeInline(lv, warm, options, attempt + 1);
      lv.placement.reason = still;
      if (crowded || this.workersBusy(lv)) this.retimeInWorkers(lv, warm, options, attempt + 1);
    };
    setTimeout(() => {
      again().catch((err: unknown) =>
        this.log.debug(
          { err, model: lv.version.key },
          'placement: timing again failed; the version stays in its workers',
        ),
      );
    }, after).unref();
  }

  /**
   * Times one row on a main-thread copy of the session (one version at a time) and keeps the copy when
   * the run is within the bound. An inconclusive probe (runtime/placement.ts) is timed again later, from
   * a timer, while the version serves from its workers; the copy stays loaded until then (loading it
   * again would hold the HTTP thread), and a load retired meanwhile releases it with the load.
   */
  private async timeInline(
    lv: LoadedVersion,
    warm: readonly unknown[],
    options: OrtSessionOptions,
    attempt: number,
  ): Promise<void> {
    const v = lv.version;
    const limitUs = this.cfg.runtime.inlineMaxRunUs;
    if (!this.inline.has(lv.sessionKey)) await this.inline.load(lv.sessionKey, v.modelPath, options);
    const measure = async () => {
      const runsUs: number[] = [];
      // A bare turn of the event loop before each row: a row's time spans a turn, and while other versions
      // load, their work runs inside it; slow turns say the rows' times are the loop's, not the model's.
      const turnsUs: number[] = [];
      // Other work in the worker threads meanwhile (loads, warm-ups, batches) on the same cores: see `inconclusive`.
      let crowded = false;
      for (let r = 0; r <= INLINE_PROBE_RUNS; r++) {
        // A re-timing that meets a shutdown or a retired load stops (the copy goes with them).
        if (this.disposed || lv.batcher.isClosed) throw new FerryError('model-not-ready', { detail: 'retired' });
        crowded ||= this.workersBusy(lv);
        const feeds = lv.encoder.encode(warm.slice(0, 1) as never, '/warmup/instances');
        const t = performance.now();
        await new Promise((resolve) => setImmediate(resolve));
        const turnUs = (performance.now() - t) * 1000;
        const ran = await this.inline.run(lv.sessionKey, feeds);
        if (r > 0) {
          runsUs.push(ran.inferMs * 1000);
          turnsUs.push(turnUs);
        }
      }
      // One core: batches too, 2, 4, 8, … rows, until one runs over the bound (a model without a batch
      // axis runs one request at a time: its one-row figure is all there is).
      let sizes: SizeRuns[] | undefined;
      if (timesBatches(this.cores === 1, limitUs, runsUs)) {
        sizes = [];
        const most = lv.encoder.batchable ? this.probeRows(lv, warm) : 1;
        try {
          for (let rows = 2; rows <= most; rows *= 2) {
            if (this.disposed || lv.batcher.isClosed) throw new FerryError('model-not-ready', { detail: 'retired' });
            crowded ||= this.workersBusy(lv);
            const instances = Array.from({ length: rows }, (_, i) => warm[i % warm.length]);
            const feeds = lv.encoder.encode(instances as never, '/warmup/instances');
            const sizeRunsUs: number[] = [];
            // The first run of a new shape is not timed (the session sizes its buffers).
            for (let r = 0; r <= LOADED_PROBE_RUNS; r++) {
              const ran = await this.inline.run(lv.sessionKey, feeds);
              if (r > 0) sizeRunsUs.push(ran.inferMs * 1000);
            }
            sizes.push({ rows, runsUs: sizeRunsUs });
            if (!((ownRunUs(sizeRunsUs) ?? Infinity) <= limitUs)) break;
          }
        } catch (err) {
          if (this.disposed || lv.batcher.isClosed) throw err;
          // A size the model refuses ends the sizes; the rows timed so far stand.
          this.log.debug({ err, model: v.key }, 'placement: a batch size failed on the main thread');
        }
      }
      return { runsUs, turnsUs, sizes, crowded: crowded || this.workersBusy(lv) };
    };
    // Timed one version at a time, like the batching probe: versions warming side by side time each other.
    const measured = this.probing.then(measure);
    this.probing = measured.then(
      () => undefined,
      () => undefined,
    );
    let timed: Awaited<typeof measured> | undefined;
    try {
      timed = await measured;
    } finally {
      // A failed timing, or a load retired while it ran: the copy goes.
      if (timed === undefined || lv.batcher.isClosed) await this.inline.unload(lv.sessionKey);
    }
    if (lv.batcher.isClosed) return;
    const placed = placeFromRuns(limitUs, timed.runsUs, timed.sizes);
    delete lv.placement.reason;
    delete lv.placement.loadedMaxRows;
    delete lv.placement.loadedRunUs;
    Object.assign(lv.placement, placed);
    this.capForInline(lv);
    const after = REPROBE_AFTER_MS[attempt];
    const why =
      after === undefined ? undefined : inconclusive(limitUs, timed.runsUs, timed.turnsUs, placed, timed.crowded);
    if (why !== undefined)
      lv.placement.reason = `${placed.reason ?? `a row ran ${placed.inlineRunUs} µs on the main thread`}; ${why}: timed again in ${after / 1000} s`;
    else if (placed.inlineMaxRows === 0) await this.inline.unload(lv.sessionKey);
    this.log.debug({ model: v.key, placement: lv.placement, attempt }, 'placement chosen from the model');
    if (why !== undefined)
      setTimeout(() => {
        if (lv.batcher.isClosed || this.disposed) return;
        this.timeInline(lv, warm, options, attempt + 1).catch((err: unknown) =>
          this.log.debug({ err, model: v.key }, 'placement: timing again failed; the version stays in its workers'),
        );
      }, after).unref();
  }

  /** Whether the worker threads have work besides `lv`'s probe: a version loading or warming up, or a batch. */
  private workersBusy(lv: LoadedVersion): boolean {
    return this.pool.inFlight() > 0 || this.othersLoading(lv);
  }

  /** Whether another version is loading or warming up. */
  private othersLoading(lv: LoadedVersion): boolean {
    for (const other of this.versions.values()) if (other !== lv && other.state === 'loading') return true;
    return false;
  }

  private async loadPipeline(lv: LoadedVersion): Promise<void> {
    const v = lv.version;
    const m = v.manifest;
    const p = m.pipeline!;
    const file = `${v.dir}/ferry.yaml`;
    const labels = paddleOcrLabels(readFileSync(join(v.dir, p.charset.file), 'utf8'), {
      spaceChar: p.charset.spaceChar ?? true,
    });
    const spec: PipelineSpec = {
      kind: p.kind,
      detector: { path: join(v.dir, p.detector.model), input: p.detector.input, output: p.detector.output },
      recognizer: { path: join(v.dir, p.recognizer.model), input: p.recognizer.input, output: p.recognizer.output },
      labels,
      params: { ...(p.params ?? {}), ...(p.charset.blankIndex !== undefined && { blankIndex: p.charset.blankIndex }) },
    };
    const loaded = await this.pool.load(
      lv.sessionKey,
      spec.detector.path,
      sessionOptionsFor(this.cfg, m),
      m.batching?.instances ?? 1,
      spec,
    );
    if (!loaded.inputs.some((i) => i.name === spec.detector.input))
      throw new ManifestError(
        file,
        '/pipeline/detector/input',
        `the detector has inputs ${loaded.inputs.map((i) => i.name).join(', ')}`,
      );
    if (!loaded.outputs.some((o) => o.name === spec.recognizer.output))
      throw new ManifestError(
        file,
        '/pipeline/recognizer/output',
        `the recogniser has outputs ${loaded.outputs.map((o) => o.name).join(', ')}`,
      );
    lv.inputs = loaded.inputs;
    lv.outputs = loaded.outputs;
    lv.loadMs = loaded.loadMs;
    lv.pipeline = spec;
    // Warm both networks: a white strip with a dark bar is found by the detector and read by the recogniser.
    const t0 = performance.now();
    const runs = m.warmup?.runs ?? this.cfg.runtime.warmupRuns;
    for (let r = 0; r < Math.max(1, runs); r++) await this.pool.runPipeline(lv.sessionKey, warmupImage());
    this.markReady(lv, performance.now() - t0);
  }

  /**
   * Workers that hold a model (and so batches of it that run at once): `batching.instances`, by
   * default every worker of the pool, so a saturated model uses all the inference threads there are.
   */
  private instancesOf(m: Manifest): number {
    return Math.min(m.batching?.instances ?? this.pool.size, this.pool.size);
  }

  /**
   * Batching on by default: a batchable model whose contract leaves `batching.maxBatchSize` unset
   * gets one measured now on its warm session (`probeBatching`: the rule is in batching/defaults.ts).
   * What is in force, measured or written, is recorded on the load for /v1/models and the log.
   */
  private async tuneBatching(lv: LoadedVersion, warm: readonly unknown[], measure: boolean): Promise<void> {
    const m = lv.version.manifest;
    const b = m.batching ?? {};
    const opts = lv.batcher.options;
    if (!opts.batchable || b.maxBatchSize !== undefined || warm.length === 0) {
      lv.batching = { ...this.batchingSummary(lv), source: 'contract' };
      return;
    }
    if (!measure) {
      // Warm-up turned off (runtime.warmupRuns: 0): nothing is run before traffic, so no timing.
      lv.batcher.tune({ maxBatchSize: UNMEASURED_MAX_BATCH_SIZE });
      lv.batching = { ...this.batchingSummary(lv), source: 'default' };
      return;
    }
    const inline = lv.placement.mode === 'inline';
    const maxRows = this.probeRows(lv, warm);
    // One version probes at a time: versions warming up together would otherwise time each other.
    const probed = this.probing.then(() =>
      probeBatching(async (rows) => {
        const instances = Array.from({ length: rows }, (_, i) => warm[i % warm.length]);
        const feeds = lv.encoder.encode(instances as never, '/warmup/instances');
        // The session's own run time, measured in the thread that ran it.
        return (inline ? await this.inline.run(lv.sessionKey, feeds) : await this.pool.run(lv.sessionKey, feeds))
          .inferMs;
      }, maxRows),
    );
    this.probing = probed.then(
      () => undefined,
      () => undefined,
    );
    const choice = await probed;
    lv.batchingProbe = choice;
    lv.batcher.tune({
      maxBatchSize: choice.maxBatchSize,
      maxQueueDelayUs: b.maxQueueDelayUs ?? choice.maxQueueDelayUs,
    });
    lv.batching = { ...this.batchingSummary(lv), source: 'measured' };
    this.log.info(
      {
        model: lv.version.key,
        ...lv.batching,
        timings: choice.timings.map((t) => `${t.rows}:${t.ms.toFixed(3)}ms`).join(' '),
      },
      'batching chosen from the model',
    );
    this.capForInline(lv);
  }

  /**
   * The rows a probe may put in one batch: the contract's `maxBatchSize` or MAX_PROBE_ROWS, and never a
   * tensor the request limits would refuse.
   */
  private probeRows(lv: LoadedVersion, warm: readonly unknown[]): number {
    const rowElements = Math.max(
      1,
      ...Object.values(lv.encoder.encode(warm.slice(0, 1) as never, '/warmup/instances')).map((t) => t.data.length),
    );
    const most = lv.version.manifest.batching?.maxBatchSize ?? MAX_PROBE_ROWS;
    return Math.max(1, Math.min(most, Math.floor(this.limits.maxTensorElements / rowElements)));
  }

  /**
   * On one core, cuts a measured batch size to the batch that runs on the main thread when that batch's
   * rows are about as cheap (batching/defaults.ts, `capForInline`); back to the measured size when a
   * later timing no longer allows it. A contract's own size is left as written.
   */
  private capForInline(lv: LoadedVersion): void {
    const probe = lv.batchingProbe;
    if (!probe || lv.batching?.source !== 'measured') return;
    const { loadedMaxRows, loadedRunUs } = lv.placement;
    const cap =
      loadedMaxRows === undefined ? undefined : capForInline(probe.maxBatchSize, probe.timings, loadedMaxRows);
    lv.batcher.tune({ maxBatchSize: cap ?? probe.maxBatchSize });
    lv.batching = {
      ...this.batchingSummary(lv),
      source: 'measured',
      ...(cap !== undefined && { measuredMaxBatchSize: probe.maxBatchSize }),
    };
    if (cap !== undefined)
      this.log.info(
        { model: lv.version.key, maxBatchSize: cap, measured: probe.maxBatchSize, loadedRunUs },
        'one core: batches cut to the size that runs on the main thread',
      );
  }

  private batchingSummary(lv: LoadedVersion): Omit<BatchingInForce, 'source'> {
    const o = lv.batcher.options;
    return {
      enabled: o.batchable,
      maxBatchSize: o.maxBatchSize,
      maxQueueDelayUs: o.maxQueueDelayUs,
      concurrency: o.concurrency,
    };
  }

  /** A loaded and warmed version starts answering; its load and warm-up times are reported. */
  private markReady(lv: LoadedVersion, warmupMs: number): void {
    const v = lv.version;
    const labels = { model: v.name, version: v.version };
    lv.warmupMs = warmupMs;
    lv.state = 'ready';
    this.metrics.modelReady.set(labels, 1);
    this.metrics.modelLoad.set({ ...labels, phase: 'load' }, (lv.loadMs ?? 0) / 1000);
    this.metrics.modelLoad.set({ ...labels, phase: 'warmup' }, warmupMs / 1000);
    this.log.info({ model: v.key, loadMs: Math.round(lv.loadMs ?? 0), warmupMs: Math.round(warmupMs) }, 'model ready');
  }

  /** Refuses a manifest whose tensors do not match the ONNX model's own inputs and outputs. */
  private checkAgainstModel(lv: LoadedVersion): void {
    const file = `${lv.version.dir}/ferry.yaml`;
    const modelInputs = new Map(lv.inputs.map((i) => [i.name, i]));
    // A handler that builds the tensors itself (preprocess or predict) answers for the inputs; its
    // predict may not run this model at all, so neither are the outputs the contract's to check.
    const customInputs = lv.handler?.preprocess === true || lv.handler?.predict === true;
    if (customInputs) {
      if (!lv.handler?.predict) this.checkOutputs(lv, file);
      return;
    }
    for (const name of lv.encoder.inputNames) {
      if (!modelInputs.has(name)) {
        throw new ManifestError(
          file,
          '/preprocess',
          `the contract feeds input "${name}" but ${lv.version.modelPath} has inputs ${[...modelInputs.keys()].join(', ')}`,
        );
      }
    }
    for (const name of modelInputs.keys()) {
      if (!lv.encoder.inputNames.includes(name))
        throw new ManifestError(file, '/inputs', `model input "${name}" is not fed by the contract`);
    }
    this.checkOutputs(lv, file);
    for (const f of lv.version.manifest.inputs) {
      if (f.type !== 'tensor') continue;
      const mi = modelInputs.get(f.name)!;
      const dtype = ORT_TO_FERRY[mi.dtype] ?? mi.dtype;
      if (dtype !== f.dtype)
        throw new ManifestError(
          file,
          `/inputs/${lv.version.manifest.inputs.indexOf(f)}/dtype`,
          `declared ${f.dtype} but the model takes ${dtype}`,
        );
    }
  }

  /** Every output the contract names is a tensor output of the model. */
  private checkOutputs(lv: LoadedVersion, file: string): void {
    const modelOutputs = new Map(lv.outputs.map((o) => [o.name, o]));
    lv.version.manifest.outputs.forEach((o, i) => {
      const mo = modelOutputs.get(o.name);
      if (!mo)
        throw new ManifestError(
          file,
          `/outputs/${i}/name`,
          `the model has no output "${o.name}" (it has ${[...modelOutputs.keys()].join(', ')})`,
        );
      if (mo.dtype === 'non-tensor')
        throw new ManifestError(
          file,
          `/outputs/${i}/name`,
          `model output "${o.name}" is not a tensor (a scikit-learn ZipMap's sequence of maps?), which ONNX Runtime ` +
            'for Node cannot return; run `ferry init` on the exported file (it serves the probabilities from before ' +
            'the ZipMap) or export with zipmap=False',
        );
    });
  }

  /**
   * Readiness: every version ready; with `models.onLoadFailure: serve-others`, failed versions are left
   * out (but a server none of whose versions is ready is not ready).
   */
  ready(): boolean {
    const ignoreFailed = this.cfg.models.onLoadFailure === 'serve-others';
    let any = false;
    for (const lv of this.versions.values()) {
      if (lv.state === 'ready') any = true;
      else if (!(ignoreFailed && lv.state === 'failed')) return false;
    }
    return any || this.versions.size === 0;
  }

  states(): Array<{ key: string; state: VersionState; error?: string }> {
    return [...this.versions.values()].map((lv) => ({
      key: lv.version.key,
      state: lv.state,
      ...(lv.error && { error: lv.error }),
    }));
  }

  get(v: ModelVersion): LoadedVersion {
    const lv = this.versions.get(v.key);
    if (!lv) throw new FerryError('version-not-found', { detail: `${v.key} is not loaded` });
    return lv;
  }

  /**
   * The predict path's input checks without running the model: the rows of `instances` as the
   * contract validates them (every bad field named under `base`), and, with `encode`, also the
   * encoding a run would do, so a value the preprocessing refuses fails here too. Surfaces that check
   * before they commit to an answer (a job before it is queued, an SSE stream before it opens) call
   * this rather than reaching into a loaded version.
   */
  checkInstances(v: ModelVersion, instances: unknown, base: string, opts: { encode?: boolean } = {}): unknown[] {
    const lv = this.get(v);
    const rows = lv.validator.check(instances, base);
    // A handler that builds its own tensors is the judge of its inputs beyond the contract, in its worker.
    if (opts.encode && !lv.handler?.preprocess && !lv.handler?.predict) lv.encoder.encode(rows, base);
    return rows;
  }

  /** Ensures the version can answer now. */
  usable(v: ModelVersion): LoadedVersion {
    const lv = this.get(v);
    if (v.manifest.generation)
      throw new FerryError('invalid-request', {
        detail: `${v.key} is a generative model; call it at /openai/v1/chat/completions or /openai/v1/completions`,
      });
    if (lv.state === 'failed') {
      // Not coming back by itself: the reason is the model's, so it is shown (as in /readyz and /v1/models).
      throw new FerryError('model-not-ready', {
        detail: `${v.key} failed to load: ${lv.error ?? 'unknown error'}`,
        headers: { 'retry-after': '30' },
      });
    }
    if (lv.state !== 'ready') {
      throw new FerryError('model-not-ready', { detail: `${v.key} is ${lv.state}`, headers: { 'retry-after': '1' } });
    }
    return lv;
  }

  private router: PredictRouter | undefined;

  /**
   * Canary choice, deprecation and shadow copies come from this router (the rollout manager); without
   * one, requests resolve plainly and nothing is copied.
   */
  useRouter(router: PredictRouter): void {
    this.router = router;
  }

  /**
   * The version a request is served by: the first step of every surface's predict path (v1, v2, SSE,
   * jobs at submission, streams, chat). The transport turns the returned arm and deprecation into headers.
   */
  route(ref: ModelRef, client: ClientIdentity = {}): Routed {
    return this.router?.route(ref, client) ?? { version: this.repository.resolve(ref.model, ref.version) };
  }

  /**
   * Validated, cached, batched inference of instances in feature form, with timeouts and fallbacks.
   * A sampled answer is copied to the model's shadow (unless `opts.shadow` is false).
   */
  async predict(
    v: ModelVersion,
    instances: unknown,
    base = '/instances',
    opts: ServeOptions = {},
  ): Promise<PredictResult> {
    const t0 = performance.now();
    const r = await this.holding(v, () => this.predictor.predict(v, instances, base, opts));
    // noFallback: a fallback's or a shadow's own run, never copied again.
    const copied =
      this.router !== undefined &&
      opts.shadow !== false &&
      !opts.noFallback &&
      !r.fallback &&
      (opts.shadowSampled ?? this.router.sampleShadow(v));
    if (copied) {
      this.router!.shadow({
        kind: 'instances',
        source: opts.shadow || 'predict',
        served: r,
        instances,
        base,
        servedMs: performance.now() - t0,
      });
    }
    return r;
  }

  /**
   * `predict` for a JSON body whose rows the version reads straight into its tensor (`bodyReader`):
   * no parse, validation or encoding pass. Undefined when it does not apply (the version has no
   * reader or is not ready, the request is copied to a shadow, which takes instances, or the body is
   * not the plain form): the caller parses the body and calls `predict`, which answers the same.
   */
  predictBody(v: ModelVersion, body: Uint8Array, opts: ServeOptions): Promise<PredictResult> | undefined {
    if (opts.shadowSampled !== false) return undefined;
    const lv = this.versions.get(v.key);
    // A reader is only made for a contract without a handler or pipeline (tensorBodyRefusal).
    if (lv?.state !== 'ready' || !lv.bodyReader) return undefined;
    const read = lv.bodyReader.read(body);
    if (!read) return undefined;
    // `holding`, without its promise: counted on this load until the answer or the failure is known.
    lv.users++;
    return this.predictor.predictRead(lv, read, body, opts, () => lv.users--);
  }

  private readonly memo: AnswerMemo;
  private readonly memoHits = labelChildren((labels: { model: string; version: string }) =>
    this.metrics.answerMemoHits.labels(labels),
  );

  /**
   * A whole answer to a request body sent before (the answer memo, serving/cache/answer-memo.ts), for
   * a transport that serialises its answers itself. Counted as cache hits, and the prediction log
   * samples its rows as if they had been predicted (the body is parsed only for a sampled row). Not
   * found, or the version does not cache, is not ready, or this request is copied to a shadow: the
   * caller predicts, passing on `shadowSampled`.
   */
  recall(v: ModelVersion, body: Buffer, requestId?: string): Recalled {
    const shadowSampled = this.router?.sampleShadow(v) ?? false;
    if (!this.memo.enabled) return { shadowSampled };
    const lv = this.versions.get(v.key);
    if (lv?.state !== 'ready' || lv.version.manifest.cache?.enabled !== true) return { shadowSampled };
    const t0 = performance.now();
    // Hashed once, with the weights the request meets now: `remember` keeps the answer under this key,
    // so an answer computed across a hot reload is never filed under the new weights.
    const memoKey = this.memo.key(v.key, lv.contentKey, body);
    if (shadowSampled) return { shadowSampled, memoKey };
    const answer = this.memo.get(memoKey);
    if (!answer) return { shadowSampled, memoKey };
    const { name, version } = answer.version;
    const rows = answer.predictions.length;
    this.cache?.countHits(name, version, rows);
    this.memoHits(answer.version.key, () => ({ model: name, version })).inc();
    const log = this.predictionLog;
    if (log) {
      let instances: unknown[] | undefined;
      for (let i = 0; i < rows; i++) {
        if (!log.admit(name)) continue;
        // The same bytes were parsed and validated when the answer was made: they parse again.
        if (!instances) {
          const b = instancesFromBody(JSON.parse(body.toString('utf8')));
          instances = lv.validator.check(b.instances, b.base);
        }
        log.record(
          {
            model: name,
            version,
            input: instances[i],
            output: answer.predictions[i],
            latencyMs: performance.now() - t0,
            ts: Date.now(),
            cacheHit: true,
            fallbackReason: null,
            requestId: requestId ?? null,
          },
          true,
        );
      }
    }
    return { answer };
  }

  /**
   * Keeps the answer (its serialised `payload`) to the body `recall` keyed, while the cache keeps its
   * rows; `recalled` is what `recall` returned for the same request.
   */
  remember(v: ModelVersion, recalled: Recalled, r: PredictResult, payload: string): void {
    const key = recalled.answer ? undefined : recalled.memoKey;
    if (key === undefined || r.freshUntil === undefined || r.fallback || r.version.key !== v.key) return;
    this.memo.set(key, { version: r.version, payload, predictions: r.predictions }, r.freshUntil);
  }

  /**
   * Raw tensor inference (Open Inference Protocol): feeds are the model's own inputs. A sampled
   * request is copied to the model's shadow (unless `opts.shadow` is false, e.g. stateful streams).
   */
  async runTensors(
    v: ModelVersion,
    feeds: Record<string, TensorValue>,
    outputs?: string[],
    opts: ServeOptions = {},
  ): Promise<{ outputs: Record<string, TensorValue>; inferMs: number }> {
    const t0 = performance.now();
    // The run transfers the feeds to a worker thread (detached here): a sampled copy needs its own.
    const shadowFeeds =
      this.router && opts.shadow !== false && this.router.sampleShadow(v) ? cloneFeeds(feeds) : undefined;
    const r = await this.holding(v, () => this.predictor.runTensors(v, feeds, outputs, opts));
    if (shadowFeeds) {
      this.router!.shadow({
        kind: 'tensors',
        served: v,
        feeds: shadowFeeds,
        outputs: r.outputs,
        requested: outputs,
        servedMs: performance.now() - t0,
      });
    }
    return r;
  }

  /**
   * A completed job: copied to the shadow like a request (one sample per job), with only its first
   * `limits.maxInstances` instances, so a 100,000-row job costs the shadow one synchronous-sized batch.
   */
  shadowCompleted(run: CompletedRun): void {
    if (!this.router || run.fallback || !this.router.sampleShadow(run.version)) return;
    const n = Math.min(run.instances.length, this.limits.maxInstances);
    this.router.shadow({
      kind: 'instances',
      source: 'jobs',
      served: { version: run.version, predictions: run.predictions.slice(0, n) },
      instances: run.instances.slice(0, n),
      base: run.base,
      servedMs: run.runMs,
    });
  }

  /** Counts the request on the load it starts on, so a reload disposes that load only after it. */
  private async holding<T>(v: ModelVersion, run: () => Promise<T>): Promise<T> {
    const lv = this.versions.get(v.key);
    if (lv) lv.users++;
    try {
      return await run();
    } finally {
      if (lv) lv.users--;
    }
  }

  // ---- Hot load, reload and unload (the model manager in rollout/ drives these) ----

  /**
   * Loads and warms a version beside whatever serves now; nothing changes for traffic until
   * `activate`. A failure disposes the half-loaded sessions and is thrown as `load-failed`.
   */
  async prepareLoad(v: ModelVersion): Promise<LoadedVersion> {
    let lv: LoadedVersion;
    try {
      lv = this.prepare(v);
    } catch (e) {
      throw new FerryError('load-failed', { detail: `${v.key}: ${(e as Error).message}`, cause: e });
    }
    try {
      await this.loadVersion(lv);
      return lv;
    } catch (e) {
      await this.disposeLoad(lv);
      throw new FerryError('load-failed', { detail: `${v.key}: ${(e as Error).message}`, cause: e });
    }
  }

  /** Puts a warmed load into service (atomically for new requests); the load it replaces is retired. */
  activate(lv: LoadedVersion): Promise<void> {
    const old = this.versions.get(lv.version.key);
    this.versions.set(lv.version.key, lv);
    return old && old !== lv ? this.retire(old) : Promise.resolve();
  }

  /** Takes a version out of service; its sessions are disposed once its requests have finished. */
  deactivate(key: string): Promise<void> {
    const old = this.versions.get(key);
    if (!old) return Promise.resolve();
    this.versions.delete(key);
    this.metrics.modelReady.remove({ model: old.version.name, version: old.version.version });
    return this.retire(old);
  }

  /** Waits for the load's requests (held, queued, running) to finish, then frees its native sessions. */
  private async retire(lv: LoadedVersion, graceMs = this.cfg.inference.defaultTimeoutMs + 5_000): Promise<void> {
    const until = performance.now() + graceMs;
    while (
      (lv.users > 0 || lv.batcher.depth > 0 || lv.batcher.inFlight > 0) &&
      performance.now() < until &&
      !this.disposed
    ) {
      await new Promise((r) => setTimeout(r, 10));
    }
    await this.disposeLoad(lv);
  }

  private async disposeLoad(lv: LoadedVersion): Promise<void> {
    lv.batcher.close();
    if (this.disposed) return;
    // `inline` holds only a main-thread session, `auto` may hold one beside its workers' (a no-op when none).
    await this.inline.unload(lv.sessionKey);
    if (lv.placement.mode !== 'inline') await this.pool.unload(lv.sessionKey);
  }

  /** Frees a prepared load that will not be activated (its model's change was refused). */
  discard(lv: LoadedVersion): Promise<void> {
    return this.disposeLoad(lv);
  }

  /** The load serving a key now (undefined when none). */
  loaded(key: string): LoadedVersion | undefined {
    return this.versions.get(key);
  }

  /** Encodes feature-form instances into the model's input tensors (v2 requests named by feature). */
  encode(v: ModelVersion, instances: unknown, base: string): Record<string, TensorValue> {
    const lv = this.usable(v);
    const valid = lv.validator.check(instances, base);
    try {
      return lv.encoder.encode(valid, base);
    } catch (e) {
      if (e instanceof InputError) throw invalidInput(e.issues);
      throw e;
    }
  }

  /** Queue state per version, for /readyz. */
  queues(): Array<{ key: string; depth: number; inFlight: number; overloaded: boolean; breaker: BreakerState }> {
    return [...this.versions.values()].map((lv) => ({
      key: lv.version.key,
      depth: lv.batcher.depth,
      inFlight: lv.batcher.inFlight,
      overloaded: lv.batcher.overloaded,
      breaker: lv.breaker.state,
    }));
  }

  private disposed = false;

  async dispose(): Promise<void> {
    this.disposed = true;
    for (const lv of this.versions.values()) lv.batcher.close();
    await this.inline.dispose();
    await this.pool.dispose();
  }
}
