// Scores chunks with the server's runtime on every core. Prep worker threads map, validate and encode
// a chunk (the contract's own validator and encoder); inference runs in the server's WorkerPool, with
// the model loaded into every worker under the pipeline's own key and a chunk's batches dispatched
// together; the contract's decoder turns outputs into predictions. The main thread only reads and writes.
import { Worker } from 'node:worker_threads';
import { compileDecoder, isBatchable, type Prediction } from '@ferry/core';
import type { FerryConfig } from '../config/index.js';
import type { ModelVersion } from '../serving/repository/index.js';
import { sessionOptionsFor, type WorkerPool } from '../serving/index.js';
import type { PipelineConfig } from '../config/schemas/pipelines.js';
import type { SourceRow } from './mapping.js';
import type { PreparedChunk } from './prep.js';
import type { PrepInit, PrepReply, PrepRequest } from './prep-worker.js';
import type { RejectRow } from './run-store.js';

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

interface PrepThread { worker: Worker; busy: number; pending: Map<number, { resolve(c: PreparedChunk): void; reject(e: Error): void }> }

export async function createScorer(cfg: FerryConfig, pool: WorkerPool, version: ModelVersion, p: PipelineConfig): Promise<Scorer> {
  const m = version.manifest;
  if (m.pipeline) throw new Error(`${version.key} is a multi-model pipeline (${m.pipeline.kind}); batch pipelines score feature-form models`);
  if (!isBatchable(m)) throw new Error(`${version.key} has no batch dimension; batch pipelines need a batchable model`);
  const decoder = compileDecoder(m);
  // Its own key: the server's copy of this version stays on its own worker(s) with its own batcher.
  const key = `pipeline#${nextKey++}:${version.key}`;
  await pool.load(key, version.modelPath, sessionOptionsFor(cfg, m), pool.size);

  let nextId = 1;
  const init: PrepInit = { pipeline: p, manifest: m, limits: { ...cfg.limits } };
  const threads: PrepThread[] = Array.from({ length: Math.max(1, pool.size) }, (_, i) => {
    const t: PrepThread = { worker: new Worker(PREP_WORKER_URL, { workerData: init, name: `ferry-pipeline-prep-${i}`, resourceLimits: PREP_LIMITS }), busy: 0, pending: new Map() };
    t.worker.on('message', (msg: PrepReply) => {
      const w = t.pending.get(msg.id);
      if (!w) return;
      t.pending.delete(msg.id);
      t.busy--;
      if (msg.ok) w.resolve(msg.chunk);
      else w.reject(new Error(`preparing rows failed: ${msg.message}`));
    });
    const failAll = (e: Error) => {
      for (const w of t.pending.values()) w.reject(e);
      t.pending.clear();
    };
    t.worker.on('error', (e) => failAll(e));
    t.worker.on('exit', (code) => failAll(new Error(`pipeline prep worker exited (code ${code})`)));
    return t;
  });

  const prepare = (rows: SourceRow[], firstRow: number) => new Promise<PreparedChunk>((resolve, reject) => {
    const t = threads.reduce((a, b) => (b.busy < a.busy ? b : a));
    const id = nextId++;
    t.busy++;
    t.pending.set(id, { resolve, reject });
    t.worker.postMessage({ id, rows, firstRow } satisfies PrepRequest);
  });

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
        decoder.decode(r.outputs, b.keys.length).forEach((prediction, j) => scored.push({ key: b.keys[j]!, rowNumber: b.rowNumbers[j]!, prediction }));
      });
      return { scored, rejects: chunk.rejects, inferMs };
    },
    async dispose() {
      await Promise.allSettled(threads.map((t) => t.worker.terminate()));
      await pool.unload(key).catch(() => undefined);
    },
  };
}
