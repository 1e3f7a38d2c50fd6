// Batch prediction pipelines: score a dataset on a schedule or on demand (`ferry batch run`), store
// the results, serve them as reads. See docs/pipelines.md.
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { FerryConfig } from '../config/index.js';
import type { Repository } from '../serving/repository/index.js';
import type { WorkerPool } from '../serving/index.js';
import type { Store } from '../store/index.js';
import { registerPipelineMetrics } from './metrics.js';
import { registerPipelineRoutes } from '../http/plugins/pipelines.js';
import { RunStore } from './run-store.js';
import { PipelineScheduler } from './scheduler.js';
import { enqueuePipelineShards } from './queue-shards.js';
import { newRunId } from './runner.js';
import type { JobsRuntime } from '../jobs/runtime.js';

export { PipelinesConfigSchema, PipelineSchema, pipelinesOf, pipelineWithDefaults, type PipelineConfig, type PipelineInput, type PipelinesConfig } from '../config/schemas/pipelines.js';
export { validatePipelines } from './validate.js';
export { runPipeline, newRunId, PipelineRunError, type RunOptions, type RunSummary, type RunProgress, type ShardSpec } from './runner.js';
export { PipelineScheduler, type TriggerResult } from './scheduler.js';
export { RunStore, type RunRecord, type RunSummaryRow } from './run-store.js';
export { registerPipelineRoutes } from '../http/plugins/pipelines.js';
export { registerBatchCommand } from '../cli/commands/batch.js';
export { compileRowMapper, encodeKey } from './mapping.js';

export interface AttachedPipelines {
  readonly scheduler: PipelineScheduler;
  close(): Promise<void>;
}

/**
 * The server side of pipelines: read routes, metrics on the server's registry, and the embedded
 * scheduler for pipelines with a `schedule`. Scheduled runs wait for `ready` (models warmed).
 */
export async function attachPipelines(app: FastifyInstance, deps: { config: FerryConfig; store: Store; pool: WorkerPool; repository: Repository; log: Logger; registry: Registry; ready: Promise<void>; jobs?: JobsRuntime }): Promise<AttachedPipelines> {
  const metrics = registerPipelineMetrics(deps.registry, Object.keys(deps.config.pipelines), new RunStore(deps.store));
  const { jobs, ...schedulerDeps } = deps;
  const scheduler = new PipelineScheduler({ ...schedulerDeps, metrics }).start();
  const queueRun = jobs && (async (name: string, model: string, runId: string | undefined, shards: number) => {
    const v = deps.repository.resolve(model);
    const queued = await enqueuePipelineShards(jobs.store, jobs.backend, { pipeline: name, runId: runId ?? newRunId(name), shards, model: v, attempts: deps.config.jobs.attempts });
    deps.log.info({ pipeline: name, runId: queued.runId, shards, created: queued.created }, 'pipeline run queued');
    return { ...queued, queue: jobs.backend.kind };
  });
  await registerPipelineRoutes(app, { config: deps.config, store: deps.store, isRunning: (n) => scheduler.isRunning(n), ...(queueRun && { queueRun }) });
  return { scheduler, close: () => scheduler.close() };
}
