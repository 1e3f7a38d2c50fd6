// Scores chunks with the server's runtime on every core. Prep worker threads map, validate and encode
// a chunk (the contract's own validator and encoder); inference runs in the server's WorkerPool, with
// the model loaded into every worker under the pipeline's own key and a chunk's batches dispatched
// together; the contract's decoder turns outputs into predictions. The main thread only reads and writes.
import { compileDecoder, isBatchable, type Prediction } from '@ferry/core';
import type { FerryConfig } from '../config/index.js';
import type { ModelVersion } from '../serving/repository/index.js';
import { sessionOptionsFor, type WorkerPool } from '../serving/index.js';
import type { PipelineConfig } from '../config/schemas/pipelines.js';
import type { SourceRow } from './mapping.js';
import type { PreparedChunk } from './prep.js';
import type { PrepInit, PrepReply, PrepRequest } from './prep-worker.js';
import type { RejectRow } from './run-store.js';
import { RpcWorker } from '../serving/runtime/rpc.js';

export interface ScoredChunk {
  scored: Array<{ key: string; rowNumber: number; prediction: Prediction }>;
  rejects: RejectRow[];
  /** Summed inference time of the chunk's batches in the workers. */
  inferMs: number;
}

export interface Scorer {
  readonly version: ModelVersion;
  score(rows: SourceRow[], firstRow: number): Promise<ScoredChunk>;
  dispose(): Promise<void>;
}

const PREP_WORKER_URL = new URL('./prep-worker.js', import.meta.url);
// A prep worker holds about one chunk at a time. A small young generation and a capped old one make
// V8 collect as it goes instead of growing its heap with the length of the run (peak RSS must not
// grow with the data); a chunk of 50,000 rows needs well under this.
const PREP_LIMITS = { maxYoungGenerationSizeMb: 16, maxOldGenerationSizeMb: 384 };
let nextKey = 1;

export async function createScorer(
  cfg: FerryConfig,
  pool: WorkerPool,
  version: ModelVersion,
  p: PipelineConfig,
): Promise<Scorer> {
  const m = version.manifest;
  if (m.pipeline)
    throw new Error(
      `${version.key} is a multi-model pipeline (${m.pipeline.kind}); batch pipelines score feature-form models`,
    );
  if (!isBatchable(m)) throw new Error(`${version.key} has no batch dimension; batch pipelines need a batchable model`);
  const decoder = compileDecoder(m);
  // Its own key: the server's copy of this version stays on its own worker(s) with its own batcher.
  const key = `pipeline#${nextKey++}:${version.key}`;
  await pool.load(key, version.modelPath, sessionOptionsFor(cfg, m), pool.size);

  const init: PrepInit = { pipeline: p, manifest: m, limits: { ...cfg.limits } };
  const threads = Array.from(
    { length: Math.max(1, pool.size) },
    (_, i) =>
      new RpcWorker<PrepRequest, PrepReply>(PREP_WORKER_URL, {
        name: `ferry-pipeline-prep-${i}`,
        workerData: init,
        resourceLimits: PREP_LIMITS,
        toError: (reply) => new Error(`preparing rows failed: ${reply.message}`),
        exitError: (code) => new Error(`pipeline prep worker exited (code ${code})`),
        failOnError: true,
      }),
  );

  const prepare = async (rows: SourceRow[], firstRow: number): Promise<PreparedChunk> => {
    const t = threads.reduce((a, b) => (b.pending < a.pending ? b : a));
    const reply = await t.request({ type: 'prepare', id: 0, rows, firstRow });
    return (reply as Extract<PrepReply, { type: 'prepared' }>).chunk;
  };

  return {
    version,
    async score(rows, firstRow) {
      const chunk = await prepare(rows, firstRow);
      const runs = await Promise.all(chunk.batches.map((b) => pool.run(key, b.feeds)));
      const scored: ScoredChunk['scored'] = [];
      let inferMs = 0;
      runs.forEach((r, i) => {
        const b = chunk.batches[i]!;
        inferMs += r.inferMs;
        decoder
          .decode(r.outputs, b.keys.length)
          .forEach((prediction, j) => scored.push({ key: b.keys[j]!, rowNumber: b.rowNumbers[j]!, prediction }));
      });
      return { scored, rejects: chunk.rejects, inferMs };
    },
    async dispose() {
      await Promise.allSettled(threads.map((t) => t.terminate()));
      await pool.unload(key).catch(() => undefined);
    },
  };
}
