// Batch prediction pipelines: score a dataset on a schedule or on demand (`ferry batch run`), store
// the results, serve them as reads. See docs/pipelines.md.
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { FerryConfig } from '../config/index.js';
import type { Repository } from '../serving/repository/index.js';
import type { WorkerPool } from '../serving/index.js';
import type { Store } from '../store/index.js';
import { registerPipelineMetrics } from './metrics.js';
import { RunStore } from './run-store.js';
import { PipelineScheduler } from './scheduler.js';
import { enqueuePipelineShards, type QueuedRun } from './queue-shards.js';
import { newRunId } from './runner.js';
import type { JobsRuntime } from '../jobs/runtime.js';

export {
  PipelinesConfigSchema,
  PipelineSchema,
  pipelinesOf,
  pipelineWithDefaults,
  type PipelineConfig,
  type PipelineInput,
  type PipelinesConfig,
} from '../config/schemas/pipelines.js';
export { validatePipelines } from './validate.js';
export {
  runPipeline,
  newRunId,
  PipelineRunError,
  type RunOptions,
  type RunSummary,
  type RunProgress,
  type ShardSpec,
} from './runner.js';
export { PipelineScheduler, type TriggerResult } from './scheduler.js';
export { RunStore, type RunRecord, type RunSummaryRow } from './run-store.js';
export { compileRowMapper, encodeKey } from './mapping.js';

export interface AttachedPipelines {
  readonly scheduler: PipelineScheduler;
  /** Runs and their stored predictions (the read routes). */
  readonly runs: RunStore;
  /** Whether a pipeline has a run going in this process. */
  isRunning(name: string): boolean;
  /** Starts the schedules (once the HTTP app is built; runs still wait for `ready`). */
  start(): void;
  /** Queues a run's shards as jobs for the workers (absent without a job runtime). */
  readonly queueRun?: (
    name: string,
    model: string,
    runId: string | undefined,
    shards: number,
  ) => Promise<QueuedRun & { queue: string }>;
  close(): Promise<void>;
}

export interface PipelinesDeps {
  config: FerryConfig;
  store: Store;
  pool: WorkerPool;
  repository: Repository;
  log: Logger;
  registry: Registry;
  ready: Promise<void>;
  jobs?: JobsRuntime;
}

/**
 * The server side of pipelines: metrics on the server's registry, the embedded scheduler for
 * pipelines with a `schedule` (scheduled runs wait for `ready`, models warmed), and queued runs.
 * The HTTP routes over them are http/plugins/pipelines.ts.
 */
export function createPipelines(deps: PipelinesDeps): AttachedPipelines {
  const runs = new RunStore(deps.store);
  const metrics = registerPipelineMetrics(deps.registry, Object.keys(deps.config.pipelines), runs);
  const { jobs, ...schedulerDeps } = deps;
  const scheduler = new PipelineScheduler({ ...schedulerDeps, metrics });
  const queueRun =
    jobs &&
    (async (name: string, model: string, runId: string | undefined, shards: number) => {
      const v = deps.repository.resolve(model);
      const queued = await enqueuePipelineShards(jobs.store, jobs.backend, {
        pipeline: name,
        runId: runId ?? newRunId(name),
        shards,
        model: v,
        attempts: deps.config.jobs.attempts,
      });
      deps.log.info({ pipeline: name, runId: queued.runId, shards, created: queued.created }, 'pipeline run queued');
      return { ...queued, queue: jobs.backend.kind };
    });
  return {
    scheduler,
    runs,
    isRunning: (n) => scheduler.isRunning(n),
    ...(queueRun && { queueRun }),
    start: () => {
      scheduler.start();
    },
    close: () => scheduler.close(),
  };
}
