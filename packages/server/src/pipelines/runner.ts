// One run (or one shard of a run) of a batch pipeline: read the source in chunks, map rows to
// features, score them in the worker pool, and commit each chunk's results with its checkpoint.
// The next chunk is scored while the previous one is being written, so inference and I/O overlap.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Prediction } from '@ferry/core';
import type { FerryConfig } from '../config/index.js';
import type { Repository, ModelVersion } from '../serving/repository/index.js';
import type { WorkerPool } from '../serving/index.js';
import type { Store } from '../store/index.js';
import type { PipelineConfig } from '../config/schemas/pipelines.js';
import { compileRowMapper, ROW_NUMBER_KEY } from './mapping.js';
import { rowJson } from './prep.js';
import { openSource, type SourceChunk } from './sources.js';
import { createScorer, type Scorer } from './scorer.js';
import { RunStore, type PredictionRow, type RejectRow, type RunStatus } from './run-store.js';
import { FileSink, type FileSinkRow } from './file-sink.js';

export interface ShardSpec {
  index: number;
  count: number;
}

export interface RunProgress {
  runId: string;
  /** Rows read and handled by this process (scored + rejected). */
  rowsDone: number;
  rowsScored: number;
  rowsRejected: number;
  /** This shard's rows when the source knows its size (Parquet), minus those committed before a resume. */
  rowsTotal: number | undefined;
  elapsedMs: number;
}

export interface RunOptions {
  name: string;
  pipeline: PipelineConfig;
  config: FerryConfig;
  store: Store;
  pool: WorkerPool;
  repository: Repository;
  log: Logger;
  shard?: ShardSpec;
  /** Continue this run: committed chunks are skipped. */
  resume?: string;
  /** Start, or join, the run with this id (every shard of one run passes the same id). */
  runId?: string;
  /** Read at most this many source rows. */
  limit?: number;
  trigger?: 'cli' | 'schedule' | 'api' | 'queue';
  cwd?: string;
  /** Benchmark baseline: write the mapped features as the output, with no model (the I/O limit). */
  copyOnly?: boolean;
  onProgress?: (p: RunProgress) => void;
  /** Stops after the chunk being written; the run can be resumed. */
  signal?: AbortSignal;
  /** Called after each committed chunk (metrics). */
  onChunk?: (c: { scored: number; rejected: number }) => void;
}

export interface RunSummary {
  runId: string;
  pipeline: string;
  model: string;
  version: string;
  shard: ShardSpec;
  /** The run's status after this process: `completed` only when every shard is. */
  status: RunStatus | 'interrupted';
  rowsScored: number;
  rowsRejected: number;
  chunksCommitted: number;
  /** Chunks committed by an earlier attempt and skipped (resume). */
  chunksSkipped: number;
  durationMs: number;
  rowsPerSecond: number;
  /** Summed inference time in the workers (they run in parallel, so this can exceed durationMs). */
  inferMs: number;
}

export class PipelineRunError extends Error {}

export function newRunId(name: string, now = new Date()): string {
  return `${name}-${now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
}

export async function runPipeline(o: RunOptions): Promise<RunSummary> {
  const t0 = performance.now();
  const shard = o.shard ?? { index: 0, count: 1 };
  if (
    !Number.isInteger(shard.count) ||
    shard.count < 1 ||
    !Number.isInteger(shard.index) ||
    shard.index < 0 ||
    shard.index >= shard.count
  ) {
    throw new PipelineRunError(`--shard ${shard.index}/${shard.count}: expected i/n with 0 ≤ i < n`);
  }
  const p = o.pipeline;
  const runs = new RunStore(o.store);
  const log = o.log.child({ pipeline: o.name });

  let version: ModelVersion;
  let runId: string;
  if (o.resume) {
    const run = await runs.getRun(o.resume);
    if (!run || run.pipeline !== o.name)
      throw new PipelineRunError(`--resume ${o.resume}: no run of pipeline "${o.name}" has that id`);
    if (run.shards !== shard.count)
      throw new PipelineRunError(`--resume ${o.resume}: the run has ${run.shards} shard(s), not ${shard.count}`);
    if (run.chunkRows !== p.chunkRows)
      throw new PipelineRunError(
        `--resume ${o.resume}: the run used chunkRows ${run.chunkRows}; the config now says ${p.chunkRows}`,
      );
    if (run.status === 'completed') throw new PipelineRunError(`--resume ${o.resume}: the run is already completed`);
    // The run keeps the exact model version it started with, even if the repository has a newer one.
    version = o.repository.resolve(run.model, run.version);
    runId = run.runId;
  } else {
    version = o.repository.resolve(p.model);
    runId = o.runId ?? newRunId(o.name);
  }

  const mapper = compileRowMapper(p, version.manifest);
  const keyColumns = mapper.keyColumns;
  const src =
    p.source.kind === 'sql' && (p.source.orderBy ?? []).length === 0
      ? { ...p.source, orderBy: keyColumns.filter((c) => c !== ROW_NUMBER_KEY) }
      : p.source;
  const reader = openSource(
    src,
    { cwd: o.cwd ?? process.cwd(), storeUrl: o.config.store.url, storeSchema: o.config.store.schema },
    mapper.columns,
  );
  // A missing or unreadable source fails here, before a run is recorded.
  const total = await reader.totalRows();
  if (!o.resume) {
    const run = await runs.createOrGetRun({
      runId,
      pipeline: o.name,
      model: version.name,
      version: version.version,
      shards: shard.count,
      chunkRows: p.chunkRows,
      trigger: o.trigger ?? 'cli',
      startedAt: Date.now(),
    });
    if (
      run.pipeline !== o.name ||
      run.shards !== shard.count ||
      run.chunkRows !== p.chunkRows ||
      run.version !== version.version
    ) {
      throw new PipelineRunError(
        `run ${runId} exists with pipeline ${run.pipeline}, ${run.shards} shard(s), chunkRows ${run.chunkRows}, ${run.model}@${run.version}; this shard disagrees`,
      );
    }
    if (run.status === 'completed') throw new PipelineRunError(`run ${runId} is already completed`);
  }
  const sink =
    p.sink && p.sink.kind !== 'table'
      ? new FileSink(p.sink.kind, p.sink.dir, o.cwd ?? process.cwd(), o.name, runId)
      : undefined;

  await runs.markRunning(runId, shard.index);
  const committed = await runs.committedChunks(runId, shard.index);
  const owned = (c: number) => c % shard.count === shard.index;
  const wanted = (c: number) => owned(c) && !committed.has(c);
  const limitRows = o.limit !== undefined ? Math.min(o.limit, total ?? Infinity) : total;
  let rowsTotal: number | undefined;
  if (limitRows !== undefined) {
    rowsTotal = 0;
    for (let c = 0; c * p.chunkRows < limitRows; c++)
      if (wanted(c)) rowsTotal += Math.min(p.chunkRows, limitRows - c * p.chunkRows);
  }
  log.info(
    {
      runId,
      shard: `${shard.index}/${shard.count}`,
      model: version.key,
      source: reader.description,
      resumedChunks: committed.size,
      rowsTotal,
    },
    'pipeline run starting',
  );

  let scorer: Scorer | undefined;
  const summary: RunSummary = {
    runId,
    pipeline: o.name,
    model: version.name,
    version: version.version,
    shard,
    status: 'running',
    rowsScored: 0,
    rowsRejected: 0,
    chunksCommitted: 0,
    chunksSkipped: committed.size,
    durationMs: 0,
    rowsPerSecond: 0,
    inferMs: 0,
  };
  try {
    if (!o.copyOnly) scorer = await createScorer(o.config, o.pool, version, p);

    interface Ready {
      chunk: SourceChunk;
      predictions: PredictionRow[];
      fileRows: FileSinkRow[];
      rejects: RejectRow[];
    }
    const prepare = async (chunk: SourceChunk): Promise<Ready> => {
      const now = Date.now();
      const predictions: PredictionRow[] = [];
      const fileRows: FileSinkRow[] = [];
      const add = (key: string, prediction: Prediction) => {
        if (sink) fileRows.push({ key, prediction, scoredAt: now });
        else predictions.push({ key, output: JSON.stringify(prediction), scoredAt: now });
      };
      if (scorer) {
        const s = await scorer.score(chunk.rows, chunk.firstRow);
        summary.inferMs += s.inferMs;
        for (const x of s.scored) add(x.key, x.prediction);
        return { chunk, predictions, fileRows, rejects: s.rejects };
      }
      // Copy-only (the benchmark's I/O baseline): the mapped features are the output, no model.
      const rejects: RejectRow[] = [];
      chunk.rows.forEach((row, i) => {
        const m = mapper.map(row, chunk.firstRow + i);
        if ('reject' in m)
          rejects.push({ rowNumber: chunk.firstRow + i, key: m.key, reason: m.reject, row: rowJson(row) });
        else add(m.key, m.instance);
      });
      return { chunk, predictions, fileRows, rejects };
    };

    const commit = async (r: Ready): Promise<void> => {
      const scored = r.predictions.length + r.fileRows.length;
      if (sink) sink.writeChunk(r.chunk.index, r.fileRows, r.rejects);
      await runs.commitChunk({
        pipeline: o.name,
        runId,
        shard: shard.index,
        chunk: r.chunk.index,
        predictions: r.predictions,
        rejects: sink ? [] : r.rejects,
        scored,
        rejected: r.rejects.length,
      });
      summary.rowsScored += scored;
      summary.rowsRejected += r.rejects.length;
      summary.chunksCommitted++;
      o.onChunk?.({ scored, rejected: r.rejects.length });
      o.onProgress?.({
        runId,
        rowsDone: summary.rowsScored + summary.rowsRejected,
        rowsScored: summary.rowsScored,
        rowsRejected: summary.rowsRejected,
        rowsTotal,
        elapsedMs: performance.now() - t0,
      });
    };

    let inFlight: Promise<Ready> | undefined;
    for await (const chunk of reader.chunks({
      chunkRows: p.chunkRows,
      wanted,
      ...(limitRows !== undefined && { limitRows }),
    })) {
      const next = prepare(chunk);
      // Observed at once so a failure while the previous chunk commits is not an unhandled rejection.
      next.catch(() => undefined);
      if (inFlight) await commit(await inFlight);
      inFlight = next;
      if (o.signal?.aborted) break;
    }
    if (inFlight) await commit(await inFlight);

    if (o.signal?.aborted) {
      summary.status = 'interrupted';
      await runs.failShard(runId, shard.index, 'interrupted; continue with --resume');
    } else {
      summary.status = await runs.finishShard(runId, shard.index, committed.size + summary.chunksCommitted);
      if (summary.status === 'completed' && !sink) {
        const pruned = await runs.prune(o.name, p.keepRuns);
        if (pruned) log.info({ pruned }, 'deleted predictions of older runs (keepRuns)');
      }
    }
  } catch (e) {
    await runs.failShard(runId, shard.index, (e as Error).message).catch(() => undefined);
    throw e;
  } finally {
    await scorer?.dispose();
    summary.durationMs = performance.now() - t0;
    summary.rowsPerSecond =
      summary.durationMs > 0 ? ((summary.rowsScored + summary.rowsRejected) * 1000) / summary.durationMs : 0;
  }
  log.info({ ...summary, shard: `${shard.index}/${shard.count}` }, 'pipeline run finished');
  return summary;
}
