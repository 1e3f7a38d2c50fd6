// Queues a pipeline run's shards as jobs for `ferry worker` processes: one job per shard, keyed by
// run and shard so that queueing the same run twice finds the jobs already there. Shared by
// `ferry batch run NAME --shards N --queue` and `POST /v1/pipelines/{name}/runs`.
import { randomUUID } from 'node:crypto';
import type { JobStore } from '../jobs/job-store.js';
import type { QueueBackend } from '../jobs/queue-backend.js';
import type { PipelineShardInput } from '../jobs/runner.js';
import type { ModelVersion } from '../serving/repository/index.js';

/** Run ids given by a caller: what the CLI and the store accept, and nothing that needs escaping. */
export const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
export const MAX_SHARDS = 1000;

export interface QueuedRun {
  runId: string;
  shards: number;
  jobs: string[];
  created: number;
}

export async function enqueuePipelineShards(
  jobs: JobStore,
  backend: QueueBackend,
  o: { pipeline: string; runId: string; shards: number; model: ModelVersion; attempts: number },
): Promise<QueuedRun> {
  const ids: string[] = [];
  let created = 0;
  for (let i = 0; i < o.shards; i++) {
    const input: PipelineShardInput = { pipeline: o.pipeline, runId: o.runId, shard: { index: i, count: o.shards } };
    const r = await jobs.insert({
      id: randomUUID(),
      model: o.model.name,
      version: o.model.version,
      input,
      maxAttempts: o.attempts,
      now: Date.now(),
      idempotencyKey: `pipeline:${o.runId}:${i}/${o.shards}`,
    });
    if (r.created) {
      await backend.enqueue(r.row.id);
      created++;
    }
    ids.push(r.row.id);
  }
  return { runId: o.runId, shards: o.shards, jobs: ids, created };
}
