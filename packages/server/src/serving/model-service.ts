// The inference service: loads and warms every model version into the worker pool, and answers
// predictions (validate → encode → run in a worker → decode). HTTP routes and the CLI call this;
// nothing else touches ONNX Runtime.
import { decodeGate } from './predict/decode-gate.js';
import { performance } from 'node:perf_hooks';
import { createReadStream, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import {
  compileDecoder,
  compileEncoder,
  InputError,
  isBatchable,
  paddleOcrLabels,
  type Instance,
  type Manifest,
  type RequestLimits,
  type TensorValue,
} from '@ferry/core';
import type { Logger } from 'pino';
import type { FerryConfig } from '../config/index.js';
import { FerryError, invalidInput } from '../errors.js';
import type { Metrics } from '../metrics/metrics.js';
import { ManifestError } from './repository/manifest.js';
import type { Repository, ModelVersion } from './repository/index.js';
import type { PipelineSpec, RawImage } from './runtime/protocol.js';
import { WorkerPool } from './runtime/pool.js';
import { InlineSessions } from './runtime/inline.js';
import { sessionOptionsFor } from './runtime/session-options.js';
import { compileRequestValidator } from './predict/validation.js';
import { DynamicBatcher } from './batching/index.js';
import { CircuitBreaker, type BreakerState } from './predict/breaker.js';
import { PredictionCache } from './cache/index.js';
import type { PredictionSink } from './predict/prediction-sink.js';
import type { LoadedVersion, VersionState } from './loaded-version.js';
import { Predictor, type PredictOptions, type PredictResult } from './predict/predictor.js';
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
}

export type { LoadedVersion, VersionState } from './loaded-version.js';
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
    cache?: PredictionCache,
    predictionLog?: PredictionSink,
  ) {
    this.pool = new WorkerPool(workers, log.child({ component: 'pool' }));
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
  }

  private generation = 0;

  /** Builds the serving state of a version (batcher, breaker, validators); its sessions load later. */
  private prepare(v: ModelVersion): LoadedVersion {
    const workers = this.pool.size;
    const sessionKey = `${v.key}#${++this.generation}`;
    const m = v.manifest;
    const labels = { model: v.name, version: v.version };
    // A pipeline does its own preprocessing in the worker; its encoder feeds nothing.
    const encoder = compileEncoder(
      m.pipeline || m.generation ? ({ ...m, inputs: [], preprocess: undefined } as Manifest) : m,
    );
    const b = m.batching ?? {};
    const batchOn = encoder.batchable && b.enabled !== false;
    const batcher = new DynamicBatcher(
      {
        batchable: batchOn,
        maxBatchSize: batchOn ? (b.maxBatchSize ?? 1) : 1,
        maxQueueDelayUs: b.maxQueueDelayUs ?? 0,
        preferredBatchSizes: b.preferredBatchSizes ?? [],
        maxQueueDepth: b.maxQueueDepth ?? this.cfg.inference.defaultMaxQueueDepth,
        ...(b.maxQueueTimeMs !== undefined && { maxQueueTimeMs: b.maxQueueTimeMs }),
        // Inline runs hold the main thread, so one at a time.
        concurrency: m.runtime?.placement === 'inline' ? 1 : Math.min(b.instances ?? 1, workers),
      },
      (feeds) =>
        m.runtime?.placement === 'inline' ? this.inline.run(sessionKey, feeds) : this.pool.run(sessionKey, feeds),
      (stats) => {
        this.metrics.batchSize.observe(labels, stats.rows);
        for (const q of stats.queueMs) this.metrics.queueDuration.observe(labels, q / 1000);
        this.metrics.inferenceDuration.observe(labels, stats.inferMs / 1000);
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
      sessionKey,
      users: 0,
      contentKey: v.key,
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

  /** Loads and warms every version. Resolves when all are ready; rejects on the first failure. */
  async loadAll(): Promise<void> {
    await Promise.all([...this.versions.values()].map((lv) => this.loadVersion(lv)));
  }

  private async loadVersion(lv: LoadedVersion): Promise<void> {
    const v = lv.version;
    const m = v.manifest;
    try {
      lv.contentKey = `${v.key}~${await digestFiles([v.modelPath, join(v.dir, 'ferry.yaml')])}`;
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
      const inline = m.runtime?.placement === 'inline';
      const options = sessionOptionsFor(this.cfg, m);
      const loaded = inline
        ? await this.inline.load(lv.sessionKey, v.modelPath, options)
        : await this.pool.load(lv.sessionKey, v.modelPath, options, m.batching?.instances ?? 1);
      lv.inputs = loaded.inputs;
      lv.outputs = loaded.outputs;
      lv.loadMs = loaded.loadMs;
      this.checkAgainstModel(lv);
      const t0 = performance.now();
      const warm = m.warmup?.instances ?? [syntheticInstance(m)];
      const warmInstances = lv.validator.check(warm, '/warmup/instances');
      const runs = m.warmup?.runs ?? this.cfg.runtime.warmupRuns;
      for (let r = 0; r < runs; r++) {
        const times = inline
          ? [(await this.inline.run(lv.sessionKey, lv.encoder.encode(warmInstances))).inferMs]
          : await this.pool.runOnEach(lv.sessionKey, () => lv.encoder.encode(warmInstances));
        if (r === 0) this.log.debug({ model: v.key, firstRunMs: times }, 'first warm-up inference');
      }
      this.markReady(lv, performance.now() - t0);
    } catch (e) {
      lv.state = 'failed';
      lv.error = (e as Error).message;
      throw e instanceof FerryError && e.code === 'invalid-input'
        ? new ManifestError(`${v.dir}/ferry.yaml`, '/warmup', `warm-up input rejected: ${e.detail}`)
        : e;
    }
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
    const modelOutputs = new Set(lv.outputs.map((o) => o.name));
    lv.version.manifest.outputs.forEach((o, i) => {
      if (!modelOutputs.has(o.name))
        throw new ManifestError(
          file,
          `/outputs/${i}/name`,
          `the model has no output "${o.name}" (it has ${[...modelOutputs].join(', ')})`,
        );
    });
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

  ready(): boolean {
    for (const lv of this.versions.values()) if (lv.state !== 'ready') return false;
    return true;
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
    if (opts.encode) lv.encoder.encode(rows, base);
    return rows;
  }

  /** Ensures the version can answer now. */
  usable(v: ModelVersion): LoadedVersion {
    const lv = this.get(v);
    if (v.manifest.generation)
      throw new FerryError('invalid-request', {
        detail: `${v.key} is a generative model; call it at /openai/v1/chat/completions or /openai/v1/completions`,
      });
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
    if (this.router && opts.shadow !== false && !opts.noFallback && !r.fallback && this.router.sampleShadow(v)) {
      this.router.shadow({
        kind: 'instances',
        source: opts.shadow ?? 'predict',
        served: r,
        instances,
        base,
        servedMs: performance.now() - t0,
      });
    }
    return r;
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
    if (lv.version.manifest.runtime?.placement === 'inline') await this.inline.unload(lv.sessionKey);
    else await this.pool.unload(lv.sessionKey);
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
