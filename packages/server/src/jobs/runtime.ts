// The jobs runtime of one process: submission (validated like /predict, so a bad job is a 4xx now
// and not a failed job later), reads, cancellation, and — unless this is an API-only node — the
// workers that run jobs through the process's ModelService. One backend is chosen here: BullMQ when
// `redis.url` is set, the SQL queue on the store otherwise.
import { traceHeaders } from '../telemetry/index.js';
import { createHash, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { ImageFeature } from '@ferry/core';
import type { Logger } from 'pino';
import type { FerryConfig } from '../config/index.js';
import { FerryError, invalidInput, type ErrorCode } from '../errors.js';
import type { Metrics } from '../monitoring/index.js';
import type { ModelVersion, Repository } from '../serving/repository/index.js';
import type { ModelService } from '../serving/index.js';
import { verifyImage } from '../serving/predict/image-decode.js';
import type { Store } from '../store/index.js';
import { BullQueue } from './bullmq-queue.js';
import { JobEventBus } from './events.js';
import { JobStore, type JobDocRow } from './job-store.js';
import { isStoreOutage, storeUnavailable } from '../store/outage.js';
import { JobMetrics } from './metrics.js';
import type { Consumer, QueueBackend } from './queue-backend.js';
import { JobRunner, type JobInput, type JobCompletedHook } from './runner.js';
import { SqlQueue } from './sql-queue.js';
import { JobWatchHub } from './job-watch.js';
import { checkJobRows } from './submit-check.js';
import type { SubmitCheckReply, SubmitCheckRequest } from './submit-worker.js';
import { RpcWorker } from '../serving/runtime/rpc.js';

const SUBMIT_WORKER_URL = new URL('./submit-worker.js', import.meta.url);
import { checkCallbackUrl, WebhookSender } from './webhooks.js';
import type { JobsConfig } from '../config/schemas/jobs.js';
import type { JobState } from './types.js';
import type { Lifecycle } from '../lifecycle/lifecycle.js';
import { runPipeline } from '../pipelines/runner.js';
import { pipelineWithDefaults } from '../config/schemas/pipelines.js';
import type { PipelineShardInput } from './runner.js';

export interface JobsDeps {
  config: FerryConfig;
  store: Store;
  service: ModelService;
  repository: Repository;
  metrics: Metrics;
  log: Logger;
  /** Called when a job completes, off its critical path: the rollout's shadow copy (docs/rollout.md). */
  onCompleted?: JobCompletedHook;
}

export interface SubmitOptions {
  callbackUrl?: unknown;
  timeoutMs?: number;
  idempotencyKey?: string;
  /**
   * The model reference as the client sent it (`m`, `m@1`, `m/versions/1.0.0`), for the Idempotency-Key
   * check: a retry of an unpinned submission whose canary arm moved since (the weight changed) is the
   * same request and replays the job, instead of being refused as another one. Default: the version.
   */
  requested?: string;
  requestId?: string;
  /**
   * The instances as JSON text, already made (an upload's worker thread made it, files in base64, while
   * `instances` holds the files' bytes for the check): stored as is.
   */
  instancesJson?: string;
}

export interface JobsRuntime {
  readonly backend: QueueBackend;
  readonly store: JobStore;
  readonly events: JobEventBus;
  /** Event-stream watchers: one store poller per watched job, streams bounded (jobs.events). */
  readonly watch: JobWatchHub;
  readonly config: JobsConfig;
  /** This process's worker identity (`host:pid:id`), recorded in the result of every job it completes. */
  readonly workerId: string;
  /** Validates and queues a job. `created: false`: the Idempotency-Key had been used for this same request. */
  submit(
    v: ModelVersion,
    instances: unknown,
    base: string,
    opts: SubmitOptions,
  ): Promise<{ row: JobDocRow; created: boolean }>;
  /** Cancels a queued job, or asks an active one to stop. Throws job-not-found / job-not-cancellable. */
  cancel(id: string): Promise<{ row: JobDocRow; immediate: boolean }>;
  /** Starts this process's job workers (idempotent; does nothing once stopWorkers or close was called). */
  startWorkers(): void;
  /**
   * Stops this process's workers only (submissions still work): no new claims; active jobs get up to
   * `graceMs`, then are handed back to the queue without using an attempt, for up to `handBackMs`.
   * Idempotent: later calls return the first stop.
   */
  stopWorkers(graceMs?: number, handBackMs?: number): Promise<void>;
  /**
   * Ties the workers to the process lifecycle: when draining begins (SIGTERM) they stop claiming at
   * once, and active jobs get `jobs.shutdownGraceMs` — capped so that finishing or handing them back
   * ends before the lifecycle deadline — then go back to the queue. The drain waits for that.
   */
  drainWith(lifecycle: Lifecycle): void;
  /** Stops taking jobs, waits up to `graceMs` for active ones, hands the rest back to the queue, closes. */
  close(graceMs?: number): Promise<void>;
}

/** Base64 for Buffers (multipart or raw image uploads), so the input is plain JSON in the store. */
function storable(instances: unknown[]): unknown[] {
  // JSON submissions hold no Buffers: kept as they are (no copy of 100,000 objects).
  const hasBuffer = (inst: unknown) =>
    inst !== null && typeof inst === 'object' && Object.values(inst).some((v) => Buffer.isBuffer(v));
  if (!instances.some(hasBuffer)) return instances;
  return instances.map((inst) =>
    inst !== null && typeof inst === 'object' && !Array.isArray(inst)
      ? Object.fromEntries(Object.entries(inst).map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString('base64') : v]))
      : inst,
  );
}

/** The queue backend the config names: BullMQ when `redis.url` is set, the SQL queue on the store otherwise. */
export function createQueueBackend(config: FerryConfig, store: JobStore, log: Logger): QueueBackend {
  const cfg = config.jobs;
  const redisUrl = config.redis.url;
  return redisUrl
    ? new BullQueue(
        store,
        {
          url: redisUrl,
          queueName: cfg.queueName,
          prefix: cfg.prefix,
          attempts: cfg.attempts,
          backoffBaseMs: cfg.backoffBaseMs,
          lockDurationMs: cfg.lockDurationMs,
          stalledIntervalMs: cfg.stalledIntervalMs,
          maxStalls: cfg.maxStalls,
          retentionSeconds: cfg.retentionSeconds,
        },
        log,
      )
    : new SqlQueue(
        store,
        {
          lockDurationMs: cfg.lockDurationMs,
          stalledIntervalMs: cfg.stalledIntervalMs,
          pollIntervalMs: cfg.pollIntervalMs,
        },
        log,
      );
}

export function createJobsRuntime(deps: JobsDeps): JobsRuntime {
  const cfg = deps.config.jobs;
  const log = deps.log;
  const store = new JobStore(deps.store);
  const redisUrl = deps.config.redis.url;
  const backend = createQueueBackend(deps.config, store, log);
  const events = new JobEventBus(
    redisUrl ? { url: redisUrl, channel: `${cfg.prefix}:${cfg.queueName}:ferry-events` } : undefined,
    log,
  );
  const watch = new JobWatchHub(store, events, cfg.events);
  const metrics = new JobMetrics(deps.metrics.registry, () => backend.lengths());
  const webhooks = new WebhookSender(store, cfg.webhooks, log, { onResult: (r) => metrics.count('', `callback_${r}`) });
  const workerId = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  let consumer: Consumer | undefined;
  let checker: RpcWorker<SubmitCheckRequest, SubmitCheckReply> | undefined;
  let stopped: Promise<void> | undefined;
  let closed = false;

  // Retention, and (BullMQ) re-dispatch of queued jobs that Redis lost.
  const housekeeping = setInterval(
    () => {
      const now = Date.now();
      store
        .deleteFinishedBefore(now - cfg.retentionSeconds * 1000)
        .then((n) => {
          if (n > 0) log.debug({ jobs: n }, 'jobs: removed finished jobs past retention');
        })
        .catch((err: unknown) => log.warn({ err }, 'jobs: retention sweep failed'));
      if (backend instanceof BullQueue) {
        store
          .queuedDueBefore(now - cfg.lockDurationMs, 200)
          .then((ids) => backend.redispatch(ids))
          .then((n) => {
            if (n > 0) log.warn({ jobs: n }, 'jobs: re-dispatched queued jobs missing from Redis');
          })
          .catch((err: unknown) => log.debug({ err }, 'jobs: re-dispatch check failed'));
      }
    },
    Math.min(60_000, cfg.stalledIntervalMs * 2),
  );
  housekeeping.unref();

  /** The same checks /predict makes before running anything, in chunks so a job may exceed the sync row limit. */
  /** The instances as JSON text, when the check already made it (large submissions): stored as is. */
  const checkedJson = new WeakMap<unknown[], string>();
  async function validate(v: ModelVersion, instances: unknown, base: string): Promise<unknown[]> {
    if (!Array.isArray(instances) || instances.length === 0)
      throw invalidInput([{ pointer: base, reason: 'expected a non-empty array of instances' }]);
    if (instances.length > cfg.maxInstances) {
      throw new FerryError('too-many-instances', {
        detail: `${instances.length} instances in one job; the limit (jobs.maxInstances) is ${cfg.maxInstances}`,
        extra: { limit: cfg.maxInstances },
      });
    }
    deps.service.get(v); // a version that is not loaded is refused before its rows are checked
    const m = v.manifest;
    if (m.pipeline) {
      const feature = m.inputs[0] as ImageFeature;
      for (let i = 0; i < instances.length; i++) {
        const inst = instances[i] as Record<string, unknown>;
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
        await verifyImage(inst[feature.name], feature, `${base}/${i}/${feature.name}`);
      }
      return instances;
    }
    const lv = deps.service.get(v);
    const checkLimits = {
      step: deps.service.limits.maxInstances,
      maxTensorElements: deps.service.limits.maxTensorElements,
      encodeBudget: cfg.submitEncodeBudget,
    };
    if (instances.length < cfg.offThreadRows) {
      checkJobRows(lv.validator, lv.encoder, instances, base, checkLimits);
      return instances;
    }
    // Large: checked in the submission worker thread while this thread keeps serving.
    checker ??= new RpcWorker<SubmitCheckRequest, SubmitCheckReply>(SUBMIT_WORKER_URL, {
      name: 'ferry-job-submit-check',
      toError: (reply) => new Error(`checking the submission failed: ${reply.message}`),
      exitError: (code) => new Error(`job submission worker exited (code ${code})`),
      failOnError: true,
      onExit: () => {
        checker = undefined;
      },
    });
    const json = JSON.stringify(instances);
    checkedJson.set(instances, json);
    const reply = await checker.request({
      type: 'check',
      id: 0,
      key: `${lv.version.key}:${lv.contentKey}`,
      manifest: lv.version.manifest,
      limits: { ...deps.service.limits, ...checkLimits },
      json,
      base,
    });
    if (reply.type === 'checked' && reply.problem) {
      const { code, detail, extra } = reply.problem;
      throw new FerryError(code as ErrorCode, { detail, extra });
    }
    return instances;
  }

  const runtime: JobsRuntime = {
    backend,
    store,
    events,
    watch,
    config: cfg,
    workerId,

    async submit(v, instances, base, opts) {
      if (closed)
        throw new FerryError('shutting-down', {
          detail: 'the server is shutting down; submit the job again',
          headers: { 'retry-after': '1' },
        });
      const callbackUrl =
        opts.callbackUrl === undefined ? undefined : checkCallbackUrl(opts.callbackUrl, cfg.webhooks.allow);
      const valid = await validate(v, instances, base);
      // An upload's worker thread already made the stored text (its files in base64): not redone here.
      const uploaded = opts.instancesJson;
      const stored = uploaded !== undefined ? valid : storable(valid);
      const { traceparent } = traceHeaders();
      const input: JobInput = { instances: stored, base, ...(traceparent && { traceparent }) };
      const json = uploaded ?? (stored === valid ? checkedJson.get(valid) : undefined);
      // The text made for the check is the stored input: one serialisation of a large job, not two.
      const inputJson =
        json === undefined
          ? undefined
          : `{"instances":${json},"base":${JSON.stringify(base)}${traceparent ? `,"traceparent":${JSON.stringify(traceparent)}` : ''}}`;
      const requestHash =
        opts.idempotencyKey === undefined
          ? undefined
          : createHash('sha256')
              .update(
                JSON.stringify([
                  opts.requested ?? v.key,
                  uploaded === undefined ? input : { ...input, instances: uploaded },
                  callbackUrl ?? null,
                  opts.timeoutMs ?? null,
                ]),
              )
              .digest('hex');
      const { row, created } = await store
        .insert({
          id: randomUUID(),
          model: v.name,
          version: v.version,
          input,
          ...(inputJson !== undefined && { inputJson }),
          maxAttempts: cfg.attempts,
          now: Date.now(),
          ...(opts.timeoutMs !== undefined && { timeoutMs: opts.timeoutMs }),
          ...(opts.idempotencyKey !== undefined && { idempotencyKey: opts.idempotencyKey, requestHash }),
          ...(callbackUrl !== undefined && { callbackUrl }),
          ...(opts.requestId !== undefined && { requestId: opts.requestId }),
        })
        .catch((err: unknown) => {
          // The database is down, locked or full: nothing was accepted, the client may retry.
          throw isStoreOutage(err) ? storeUnavailable(err) : err;
        });
      if (!created) {
        if (row.request_hash !== requestHash) {
          throw new FerryError('idempotency-key-reused', {
            detail: `Idempotency-Key was already used for a different request (job ${row.id})`,
            extra: { errors: [{ pointer: '/headers/idempotency-key', reason: 'already used with another body' }] },
          });
        }
        return { row, created };
      }
      try {
        await backend.enqueue(row.id);
      } catch (err) {
        // Not dispatched: take the job back so that the client's retry starts clean.
        await store.remove(row.id).catch(() => undefined);
        log.error({ err }, 'jobs: cannot enqueue');
        throw new FerryError('queue-unavailable', {
          detail: 'the job queue cannot be reached; retry later',
          headers: { 'retry-after': '5' },
          cause: err,
        });
      }
      metrics.count(v.name, 'submitted');
      events.publish({ id: row.id, seq: Number(row.seq), state: 'queued', progress: 0 });
      return { row, created };
    },

    async cancel(id) {
      const r = await store.cancel(id, Date.now());
      if (!r) {
        const row = await store.status(id);
        if (!row) throw new FerryError('job-not-found', { detail: `no job ${id.slice(0, 100)}` });
        throw new FerryError('job-not-cancellable', {
          detail: `job ${row.id} is already ${row.state}`,
          extra: { state: row.state },
        });
      }
      events.publish({ id, seq: Number(r.row.seq), state: r.row.state as JobState, progress: Number(r.row.progress) });
      if (r.immediate) {
        await backend.discard(id).catch(() => undefined);
        metrics.count(r.row.model, 'cancelled');
        webhooks.kick();
      }
      return r;
    },

    startWorkers() {
      if (consumer || stopped || closed) return;
      // A pipeline shard queued by `ferry batch run NAME --shards N --queue` runs here like a CLI shard.
      const shardRunner = (input: PipelineShardInput, signal: AbortSignal) => {
        const p = deps.config.pipelines[input.pipeline];
        if (!p)
          throw new FerryError('invalid-input', { detail: `no pipeline "${input.pipeline}" in this worker's config` });
        return runPipeline({
          name: input.pipeline,
          pipeline: pipelineWithDefaults(p),
          config: deps.config,
          store: deps.store,
          pool: deps.service.pool,
          repository: deps.repository,
          log: log.child({ component: 'pipeline', runId: input.runId }),
          shard: input.shard,
          runId: input.runId,
          trigger: 'queue',
          signal,
        });
      };
      const runner = new JobRunner(
        cfg,
        store,
        deps.service,
        deps.repository,
        events,
        metrics,
        log,
        workerId,
        () => webhooks.kick(),
        deps.onCompleted,
        shardRunner,
      );
      consumer = backend.consume(workerId, cfg.concurrency, runner.run);
      log.info(
        { backend: backend.kind, queue: cfg.queueName, concurrency: cfg.concurrency, worker: workerId },
        'jobs: workers started',
      );
    },

    stopWorkers(graceMs = cfg.shutdownGraceMs, handBackMs?: number) {
      stopped ??= (async () => {
        if (!consumer) return;
        const t0 = Date.now();
        log.info(
          { worker: workerId, graceMs, handBackMs },
          'jobs: workers stopping: no new claims; active jobs get their grace, then go back to the queue',
        );
        await consumer.stop(graceMs, handBackMs);
        log.info({ worker: workerId, ms: Date.now() - t0 }, 'jobs: workers stopped');
      })();
      return stopped;
    },

    drainWith(lifecycle) {
      lifecycle.on('draining', () => {
        const { deadlineMs } = lifecycle.options;
        // Of the time to the deadline, keep a quarter (at least 3 s): half of it for the hand-back (the
        // current chunk finishes first), half for closing connections, the model pool and the store.
        const reserve = Math.max(3000, Math.floor(deadlineMs / 4));
        const grace = Math.max(0, Math.min(cfg.shutdownGraceMs, deadlineMs - reserve));
        const handBack = Math.max(250, Math.min(Math.floor(reserve / 2), deadlineMs - grace - Math.floor(reserve / 2)));
        void runtime.stopWorkers(grace, handBack);
      });
      lifecycle.onDrain('jobs', () => stopped);
    },

    async close(graceMs = cfg.shutdownGraceMs) {
      if (closed) return;
      closed = true;
      clearInterval(housekeeping);
      await runtime.stopWorkers(graceMs);
      webhooks.close();
      watch.close();
      events.close();
      await checker?.terminate();
      await backend.close();
    },
  };
  return runtime;
}
