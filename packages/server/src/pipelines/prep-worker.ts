// A worker thread that prepares chunks (map, validate, encode) so the main thread only reads and
// writes: with the inference workers, scoring uses every core. Its tensors are transferred back.
import { parentPort, workerData } from 'node:worker_threads';
import type { Manifest, RequestLimits } from '@ferry/core';
import type { PipelineConfig } from '../config/schemas/pipelines.js';
import type { SourceRow } from './mapping.js';
import { compilePreparer, type PreparedChunk } from './prep.js';
import { answerRequests, transferList, type RpcErrorReply } from '../serving/runtime/rpc.js';

export interface PrepInit {
  pipeline: PipelineConfig;
  manifest: Manifest;
  limits: RequestLimits;
}
export type PrepRequest = { type: 'prepare'; id: number; rows: SourceRow[]; firstRow: number };
export type PrepReply = { type: 'prepared'; id: number; chunk: PreparedChunk } | RpcErrorReply;

const init = workerData as PrepInit;
const prepare = compilePreparer(init.pipeline, init.manifest, init.limits);

answerRequests<PrepRequest>(parentPort!, (msg) => {
  const chunk = prepare(msg.rows, msg.firstRow);
  const transfer = transferList(chunk.batches.flatMap((b) => Object.values(b.feeds)));
  parentPort!.postMessage({ type: 'prepared', id: msg.id, chunk } satisfies PrepReply, transfer);
});
