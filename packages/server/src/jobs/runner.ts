// Runs one job: the model's predictions through the same ModelService as `/predict` (validation,
// batching with other requests, worker threads, timeouts), in chunks so that progress is reported
// and a cancellation is noticed between chunks. Decides the outcome — completed, retried with
// exponential backoff, failed (attempts exhausted, or an error that cannot succeed on retry),
// cancelled, or handed back at shutdown — and records it in the job document.
import { contextFromTraceparent, runInContext, tracingEnabled, withSpan } from '../telemetry/index.js';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { FerryError } from '../errors.js';
import type { ModelVersion, Repository } from '../serving/repository/index.js';
import type { Prediction } from '@ferry/core';
import type { ModelService } from '../serving/index.js';
import type { JobsConfig } from '../config/schemas/jobs.js';
import type { JobEventBus } from './events.js';
import type { JobListRow, JobRow, JobStatusRow, JobStore } from './job-store.js';
import type { JobMetrics } from './metrics.js';
import type { RunContext, RunOutcome } from './queue-backend.js';
import type { JobError, JobState } from './types.js';
import type { RunSummary, ShardSpec } from '../pipelines/runner.js';

/** What a job stores as its input: the instances as submitted (images as base64) and their pointer base. */
export interface JobInput {
  instances: unknown[];
  base: string;
  /** The submitting request's W3C trace context (tracing on): the run and the callback join that trace. */
  traceparent?: string;
}

/** The trace context a stored job input carries, if any. */
export function traceparentOf(input: unknown): string | undefined {
  const t = (input as { traceparent?: unknown } | null)?.traceparent;
  return typeof t === 'string' ? t : undefined;
}

/**
 * A completed job's version, input and predictions, for the rollout's shadow comparison. Called after
 * the result is stored and published; must return at once (the copy runs later, never awaited).
 */
export type JobCompletedHook = (
  v: ModelVersion,
  input: JobInput,
  predictions: Prediction[],
  fallback: boolean,
  runMs: number,
) => void;

/** The input of a job that is one shard of a batch pipeline run (`ferry batch run NAME --shards N --queue`). */
export interface PipelineShardInput {
  pipeline: string;
  runId: string;
  shard: ShardSpec;
}

export function isPipelineShard(input: unknown): input is PipelineShardInput {
  return (
    typeof input === 'object' &&
    input !== null &&
    typeof (input as PipelineShardInput).pipeline === 'string' &&
    typeof (input as PipelineShardInput).runId === 'string'
  );
}

export type ShardRunner = (input: PipelineShardInput, signal: AbortSignal) => Promise<RunSummary>;

/** The error a client sees in the job document; 5xx internals stay in the log. */
export function jobError(e: unknown): { error: JobError; retryable: boolean } {
  if (e instanceof FerryError) {
    return {
      error: { code: e.code, detail: e.detail, ...(e.extra.errors !== undefined && { errors: e.extra.errors }) },
      retryable: e.retryable,
    };
  }
  return {
    error: { code: 'internal', detail: 'an unexpected error occurred in the worker; see its log' },
    retryable: true,
  };
}

export class JobRunner {
  constructor(
    private readonly cfg: JobsConfig,
    private readonly store: JobStore,
    private readonly service: ModelService,
    private readonly repository: Repository,
    private readonly events: JobEventBus,
    private readonly metrics: JobMetrics,
    private readonly log: Logger,
    private readonly workerId: string,
    private readonly onFinished: (row: JobListRow) => void,
    private readonly onCompleted?: JobCompletedHook,
    private readonly runShard?: ShardRunner,
  ) {}

  private publish(row: JobStatusRow | undefined): void {
    if (row)
      this.events.publish({
        id: row.id,
        seq: Number(row.seq),
        state: row.state as JobState,
        progress: Number(row.progress),
      });
  }

  private finished(row: JobListRow | undefined, t0: number): void {
    if (!row) return;
    this.publish(row);
    this.metrics.finished(row.model, row.state, (performance.now() - t0) / 1000);
    this.onFinished(row);
  }

  /** Runs a job; with tracing on, as a span in the trace of the request that submitted it. */
  readonly run = (row: JobRow, ctx: RunContext): Promise<RunOutcome> => {
    if (!tracingEnabled()) return this.runJob(row, ctx);
    const parent = contextFromTraceparent(traceparentOf(this.store.input(row)));
    return runInContext(parent, () =>
      withSpan('ferry.job.run', () => this.runJob(row, ctx), { 'ferry.job.id': row.id }),
    );
  };

  private readonly runJob = async (row: JobRow, ctx: RunContext): Promise<RunOutcome> => {
    const t0 = performance.now();
    const now = () => Date.now();
    this.publish(row);
    const lost = Number(row.attempts) - 1 - Number(row.failures);
    if (lost > this.cfg.maxStalls) {
      // The job's worker died `lost` times: it may be what kills them. Stop feeding it to workers.
      const detail = `the job's worker was lost ${lost} times (jobs.maxStalls is ${this.cfg.maxStalls})`;
      this.finished(await this.store.fail(row.id, this.workerId, { code: 'job-stalled', detail }, now(), false), t0);
      return { kind: 'failed', reason: detail };
    }
    const stored = this.store.input(row);
    if (isPipelineShard(stored)) return this.shard(row, stored, ctx, t0);
    const input = stored as JobInput;
    const predictions: Prediction[] = [];
    let fallback: unknown;
    let v: ModelVersion | undefined;
    try {
      v = this.repository.resolve(row.model, row.version);
      // A pipeline (OCR) instance is a whole document: one per chunk, so progress moves per image.
      const size = v.manifest.pipeline ? 1 : this.cfg.chunkSize;
      const total = input.instances.length;
      for (let i = 0; i < total; i += size) {
        if (ctx.shutdown.aborted) {
          // Undo this run's attempt: the job did not fail, its worker is leaving.
          this.publish(await this.store.requeue(row.id, this.workerId, now(), null, false));
          this.metrics.count(row.model, 'handed_back');
          return { kind: 'handed-back' };
        }
        if (await this.store.isCancelRequested(row.id)) {
          this.finished(await this.store.cancelActive(row.id, this.workerId, now()), t0);
          return { kind: 'done' };
        }
        const chunk = input.instances.slice(i, i + size);
        const r = await this.service.predict(v, chunk, input.base, {
          requestId: `job:${row.id}`,
          // The job is copied to the shadow once, whole, when it completes (onCompleted), not per chunk.
          shadow: false,
          ...(row.timeout_ms !== null && { timeoutMs: Number(row.timeout_ms) }),
        });
        predictions.push(...r.predictions);
        if (r.fallback) fallback = r.fallback;
        if (i + size < total)
          this.publish(await this.store.setProgress(row.id, this.workerId, Math.min(i + size, total) / total));
      }
    } catch (e) {
      const { error, retryable } = jobError(e);
      if (!(e instanceof FerryError) || e.status >= 500)
        this.log.warn({ err: e, job: row.id, attempt: row.attempts }, 'jobs: run failed');
      const failures = Number(row.failures) + 1;
      if (retryable && failures < Number(row.max_attempts)) {
        const delayMs = this.cfg.backoffBaseMs * 2 ** (failures - 1);
        const requeued = await this.store.requeue(row.id, this.workerId, now() + delayMs, error, true);
        this.publish(requeued);
        this.metrics.count(row.model, 'retried');
        return { kind: 'retry', delayMs, reason: error.detail };
      }
      this.finished(await this.store.fail(row.id, this.workerId, error, now(), true), t0);
      return { kind: 'failed', reason: error.detail };
    }
    const done = await this.store.complete(
      row.id,
      { predictions, ...(fallback !== undefined && { fallback }), worker: this.workerId },
      now(),
    );
    // Undefined: another run of this job (a worker wrongly presumed dead) recorded its result first.
    if (!done) this.metrics.count(row.model, 'duplicate_run');
    this.finished(done, t0);
    if (done && v) {
      try {
        this.onCompleted?.(v, input, predictions, fallback !== undefined, performance.now() - t0);
      } catch (err) {
        this.log.warn({ err, job: row.id }, 'jobs: completion hook failed');
      }
    }
    return { kind: 'done' };
  };

  /**
   * One shard of a pipeline run. The run's chunk checkpoints make it resumable: a run of this job
   * after a lost worker skips the chunks already committed. At shutdown the shard stops after the
   * chunk being written and the job is handed back.
   */
  private async shard(row: JobRow, input: PipelineShardInput, ctx: RunContext, t0: number): Promise<RunOutcome> {
    const now = () => Date.now();
    try {
      if (!this.runShard) throw new FerryError('invalid-input', { detail: 'this process cannot run pipeline shards' });
      const s = await this.runShard(input, ctx.shutdown);
      if (s.status === 'interrupted') {
        this.publish(await this.store.requeue(row.id, this.workerId, now(), null, false));
        this.metrics.count(row.model, 'handed_back');
        return { kind: 'handed-back' };
      }
      const done = await this.store.complete(row.id, { predictions: [], pipeline: s, worker: this.workerId }, now());
      if (!done) this.metrics.count(row.model, 'duplicate_run');
      this.finished(done, t0);
      return { kind: 'done' };
    } catch (e) {
      const { error, retryable } = jobError(e);
      this.log.warn({ err: e, job: row.id, runId: input.runId, shard: input.shard }, 'jobs: pipeline shard failed');
      const failures = Number(row.failures) + 1;
      if (retryable && failures < Number(row.max_attempts)) {
        const delayMs = this.cfg.backoffBaseMs * 2 ** (failures - 1);
        this.publish(await this.store.requeue(row.id, this.workerId, now() + delayMs, error, true));
        return { kind: 'retry', delayMs, reason: error.detail };
      }
      this.finished(await this.store.fail(row.id, this.workerId, error, now(), true), t0);
      return { kind: 'failed', reason: error.detail };
    }
  }
}
