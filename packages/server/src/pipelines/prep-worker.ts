// A worker thread that prepares chunks (map, validate, encode) so the main thread only reads and
// writes: with the inference workers, scoring uses every core. Its tensors are transferred back.
import { parentPort, workerData } from 'node:worker_threads';
import type { Manifest, RequestLimits } from '@ferry/core';
import type { PipelineConfig } from '../config/schemas/pipelines.js';
import type { SourceRow } from './mapping.js';
import { compilePreparer, type PreparedChunk } from './prep.js';

export interface PrepInit { pipeline: PipelineConfig; manifest: Manifest; limits: RequestLimits }
export type PrepRequest = { id: number; rows: SourceRow[]; firstRow: number };
export type PrepReply = { id: number; ok: true; chunk: PreparedChunk } | { id: number; ok: false; message: string };

const init = workerData as PrepInit;
const prepare = compilePreparer(init.pipeline, init.manifest, init.limits);

parentPort!.on('message', (msg: PrepRequest) => {
  try {
    const chunk = prepare(msg.rows, msg.firstRow);
    const transfer: ArrayBuffer[] = [];
    for (const b of chunk.batches) for (const t of Object.values(b.feeds)) if (!Array.isArray(t.data)) transfer.push(t.data.buffer as ArrayBuffer);
    parentPort!.postMessage({ id: msg.id, ok: true, chunk } satisfies PrepReply, transfer);
  } catch (e) {
    parentPort!.postMessage({ id: msg.id, ok: false, message: (e as Error).message } satisfies PrepReply);
  }
});
