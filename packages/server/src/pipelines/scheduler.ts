// The embedded scheduler: in `ferry serve`, each pipeline with a `schedule` runs on its cron, in
// process, through the server's own worker pool and store. One run at a time per pipeline: a trigger
// that fires while the previous run is still going is skipped and logged, never queued or overlapped.
import { Cron } from 'croner';
import type { Logger } from 'pino';
import type { FerryConfig } from '../config/index.js';
import type { Repository } from '../serving/repository/index.js';
import type { WorkerPool } from '../serving/index.js';
import type { Store } from '../store/index.js';
import type { PipelineMetrics } from './metrics.js';
import { runPipeline, type RunSummary } from './runner.js';
import { pipelinesOf, pipelineWithDefaults } from '../config/schemas/pipelines.js';

export type TriggerResult =
  { started: true; run: Promise<RunSummary> } | { started: false; reason: 'running' | 'closed' };

export interface SchedulerDeps {
  config: FerryConfig;
  store: Store;
  pool: WorkerPool;
  repository: Repository;
  log: Logger;
  metrics?: PipelineMetrics;
  /** Resolves when the server's models are loaded; scheduled runs wait for it. */
  ready?: Promise<void>;
}

export class PipelineScheduler {
  private readonly jobs: Cron[] = [];
  private readonly running = new Map<string, Promise<RunSummary>>();
  private readonly abort = new AbortController();
  private closed = false;
  /** Counts of skipped triggers by pipeline (an overlap), for tests and logs. */
  readonly skipped = new Map<string, number>();

  constructor(private readonly deps: SchedulerDeps) {}

  /** Starts the cron of every pipeline that has a schedule. */
  start(): this {
    for (const [name, p] of Object.entries(pipelinesOf(this.deps.config))) {
      if (!p.schedule) continue;
      if (!this.deps.repository.get(p.model.split('@')[0]!)) {
        this.deps.log.info(
          { pipeline: name, model: p.model },
          'pipeline not scheduled: its model is not loaded here (models.only)',
        );
        continue;
      }
      this.jobs.push(
        new Cron(p.schedule, { timezone: p.timezone, name: `pipeline:${name}` }, () => {
          const r = this.trigger(name, 'schedule');
          if (r.started) r.run.catch(() => undefined);
        }),
      );
      this.deps.log.info({ pipeline: name, schedule: p.schedule, timezone: p.timezone }, 'pipeline scheduled');
    }
    return this;
  }

  isRunning(name: string): boolean {
    return this.running.has(name);
  }

  /** Starts a run now unless one is going. The run's failure is logged and counted, and also rejects `run`. */
  trigger(name: string, trigger: 'schedule' | 'api' = 'api'): TriggerResult {
    const p = Object.hasOwn(this.deps.config.pipelines, name)
      ? pipelineWithDefaults(this.deps.config.pipelines[name]!)
      : undefined;
    if (!p) throw new Error(`no pipeline "${name}"`);
    if (this.closed) return { started: false, reason: 'closed' };
    if (this.running.has(name)) {
      this.skipped.set(name, (this.skipped.get(name) ?? 0) + 1);
      this.deps.log.warn({ pipeline: name, trigger }, 'pipeline trigger skipped: the previous run is still going');
      return { started: false, reason: 'running' };
    }
    const log = this.deps.log;
    const m = this.deps.metrics;
    const t0 = performance.now();
    const run = (async () => {
      await this.deps.ready;
      return runPipeline({
        name,
        pipeline: p,
        config: this.deps.config,
        store: this.deps.store,
        pool: this.deps.pool,
        repository: this.deps.repository,
        log,
        trigger,
        signal: this.abort.signal,
        onChunk: (c) => {
          m?.rows.inc({ pipeline: name, result: 'scored' }, c.scored);
          m?.rows.inc({ pipeline: name, result: 'rejected' }, c.rejected);
        },
      });
    })();
    const tracked = run
      .then(
        (s) => {
          m?.runDuration.observe({ pipeline: name, status: s.status }, (performance.now() - t0) / 1000);
          return s;
        },
        (err: unknown) => {
          m?.runDuration.observe({ pipeline: name, status: 'failed' }, (performance.now() - t0) / 1000);
          log.error({ err, pipeline: name }, 'pipeline run failed');
          throw err;
        },
      )
      .finally(() => this.running.delete(name));
    tracked.catch(() => undefined);
    this.running.set(name, tracked);
    return { started: true, run: tracked };
  }

  /** Stops the crons; a run in progress stops after its current chunk (resumable) and is awaited. */
  async close(): Promise<void> {
    this.closed = true;
    for (const j of this.jobs) j.stop();
    this.abort.abort();
    await Promise.allSettled([...this.running.values()]);
  }
}
