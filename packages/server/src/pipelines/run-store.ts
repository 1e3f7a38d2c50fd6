// Run bookkeeping in the store (tables of migration 0003_pipeline_results): runs, their shards, the
// chunks each committed, predictions upserted by (pipeline, run, key) and rejects. A chunk's results
// and its checkpoint row are written in one transaction, so after a crash a chunk is either wholly
// committed (and skipped by --resume) or not at all (and scored again).
import { sql } from 'kysely';
import type { Store } from '../store/index.js';

export type RunStatus = 'running' | 'completed' | 'failed';

export interface RunRecord {
  runId: string;
  pipeline: string;
  model: string;
  version: string;
  status: RunStatus;
  shards: number;
  chunkRows: number;
  trigger: string;
  startedAt: number;
  finishedAt: number | null;
  error: string | null;
}

export interface RunSummaryRow extends RunRecord {
  rowsScored: number;
  rowsRejected: number;
  chunks: number;
  shardsCompleted: number;
}

export interface PredictionRow {
  key: string;
  output: string;
  scoredAt: number;
}
export interface RejectRow {
  rowNumber: number;
  key: string | null;
  reason: string;
  row: string;
}

// Rows per INSERT: below SQLite's 32,766 and PostgreSQL's 65,535 bound parameters with room to spare.
const ROWS_PER_INSERT = 5000;

export class RunStore {
  constructor(readonly store: Store) {}

  private toRun(r: Record<string, unknown>): RunRecord {
    const c = this.store.codec;
    return {
      runId: r.run_id as string,
      pipeline: r.pipeline as string,
      model: r.model as string,
      version: r.version as string,
      status: r.status as RunStatus,
      shards: c.int(r.shards),
      chunkRows: c.int(r.chunk_rows),
      trigger: r.trigger as string,
      startedAt: c.int(r.started_at),
      finishedAt: r.finished_at == null ? null : c.int(r.finished_at),
      error: (r.error as string | null) ?? null,
    };
  }

  async getRun(runId: string): Promise<RunRecord | undefined> {
    const r = await this.store.db
      .selectFrom('pipeline_runs')
      .selectAll()
      .where('run_id', '=', runId)
      .executeTakeFirst();
    return r ? this.toRun(r as unknown as Record<string, unknown>) : undefined;
  }

  /** Creates the run, or returns the existing one with that id (shards of one run started together). */
  async createOrGetRun(r: Omit<RunRecord, 'finishedAt' | 'error' | 'status'>): Promise<RunRecord> {
    await this.store.db
      .insertInto('pipeline_runs')
      .values({
        run_id: r.runId,
        pipeline: r.pipeline,
        model: r.model,
        version: r.version,
        status: 'running',
        shards: r.shards,
        chunk_rows: r.chunkRows,
        trigger: r.trigger,
        started_at: r.startedAt,
        finished_at: null,
        error: null,
      })
      .onConflict((oc) => oc.column('run_id').doNothing())
      .execute();
    return (await this.getRun(r.runId))!;
  }

  async markRunning(runId: string, shard: number): Promise<void> {
    const now = Date.now();
    await this.store.db.transaction().execute(async (tx) => {
      await tx
        .updateTable('pipeline_runs')
        .set({ status: 'running', error: null, finished_at: null })
        .where('run_id', '=', runId)
        .where('status', '!=', 'completed')
        .execute();
      await tx
        .insertInto('pipeline_run_shards')
        .values({ run_id: runId, shard, status: 'running', total_chunks: null, updated_at: now })
        .onConflict((oc) => oc.columns(['run_id', 'shard']).doUpdateSet({ status: 'running', updated_at: now }))
        .execute();
    });
  }

  async committedChunks(runId: string, shard: number): Promise<Set<number>> {
    const rows = await this.store.db
      .selectFrom('pipeline_chunks')
      .select('chunk')
      .where('run_id', '=', runId)
      .where('shard', '=', shard)
      .execute();
    return new Set(rows.map((r) => this.store.codec.int(r.chunk)));
  }

  /** Writes a chunk's predictions and rejects (if the sink is the table) and its checkpoint, atomically. */
  async commitChunk(c: {
    pipeline: string;
    runId: string;
    shard: number;
    chunk: number;
    predictions: PredictionRow[];
    rejects: RejectRow[];
    scored: number;
    rejected: number;
  }): Promise<void> {
    await this.store.db.transaction().execute(async (tx) => {
      for (let i = 0; i < c.predictions.length; i += ROWS_PER_INSERT) {
        const values = c.predictions
          .slice(i, i + ROWS_PER_INSERT)
          .map((p) => ({ pipeline: c.pipeline, run_id: c.runId, key: p.key, output: p.output, scored_at: p.scoredAt }));
        // A key seen twice in one run (a duplicate in the source) keeps its last row: an upsert, never a second row.
        await tx
          .insertInto('pipeline_predictions')
          .values(values)
          .onConflict((oc) =>
            oc.columns(['pipeline', 'run_id', 'key']).doUpdateSet({
              output: (eb) => eb.ref('excluded.output'),
              scored_at: (eb) => eb.ref('excluded.scored_at'),
            }),
          )
          .execute();
      }
      for (let i = 0; i < c.rejects.length; i += ROWS_PER_INSERT) {
        const values = c.rejects.slice(i, i + ROWS_PER_INSERT).map((r) => ({
          run_id: c.runId,
          row_number: r.rowNumber,
          pipeline: c.pipeline,
          key: r.key,
          reason: r.reason,
          row: r.row,
        }));
        await tx
          .insertInto('pipeline_rejects')
          .values(values)
          .onConflict((oc) => oc.columns(['run_id', 'row_number']).doNothing())
          .execute();
      }
      await tx
        .insertInto('pipeline_chunks')
        .values({
          run_id: c.runId,
          chunk: c.chunk,
          shard: c.shard,
          rows_scored: c.scored,
          rows_rejected: c.rejected,
          committed_at: Date.now(),
        })
        .execute();
    });
  }

  /** Marks the shard done; completes the run when every shard is. Returns the run's status afterwards. */
  async finishShard(runId: string, shard: number, totalChunks: number): Promise<RunStatus> {
    const now = Date.now();
    return this.store.db.transaction().execute(async (tx) => {
      await tx
        .updateTable('pipeline_run_shards')
        .set({ status: 'completed', total_chunks: totalChunks, updated_at: now })
        .where('run_id', '=', runId)
        .where('shard', '=', shard)
        .execute();
      const run = await tx
        .selectFrom('pipeline_runs')
        .select(['shards', 'status'])
        .where('run_id', '=', runId)
        .executeTakeFirstOrThrow();
      const done = await tx
        .selectFrom('pipeline_run_shards')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('run_id', '=', runId)
        .where('status', '=', 'completed')
        .executeTakeFirstOrThrow();
      if (this.store.codec.int(done.n) >= this.store.codec.int(run.shards)) {
        await tx
          .updateTable('pipeline_runs')
          .set({ status: 'completed', finished_at: now, error: null })
          .where('run_id', '=', runId)
          .execute();
        return 'completed';
      }
      return run.status as RunStatus;
    });
  }

  async failShard(runId: string, shard: number, error: string): Promise<void> {
    const now = Date.now();
    await this.store.db
      .updateTable('pipeline_run_shards')
      .set({ status: 'failed', updated_at: now })
      .where('run_id', '=', runId)
      .where('shard', '=', shard)
      .execute();
    await this.store.db
      .updateTable('pipeline_runs')
      .set({ status: 'failed', error: error.slice(0, 2000), finished_at: now })
      .where('run_id', '=', runId)
      .where('status', '!=', 'completed')
      .execute();
  }

  /** Deletes predictions and rejects of completed runs older than the newest `keep`. */
  async prune(pipeline: string, keep: number): Promise<number> {
    const old = await this.store.db
      .selectFrom('pipeline_runs')
      .select('run_id')
      .where('pipeline', '=', pipeline)
      .where('status', '=', 'completed')
      .orderBy('finished_at', 'desc')
      .offset(keep)
      .limit(1000)
      .execute();
    if (old.length === 0) return 0;
    const ids = old.map((r) => r.run_id);
    const r = await this.store.db
      .deleteFrom('pipeline_predictions')
      .where('pipeline', '=', pipeline)
      .where('run_id', 'in', ids)
      .executeTakeFirst();
    await this.store.db.deleteFrom('pipeline_rejects').where('run_id', 'in', ids).execute();
    return Number(r.numDeletedRows);
  }

  async latestCompleted(pipeline: string): Promise<RunRecord | undefined> {
    const r = await this.store.db
      .selectFrom('pipeline_runs')
      .selectAll()
      .where('pipeline', '=', pipeline)
      .where('status', '=', 'completed')
      .orderBy('finished_at', 'desc')
      .orderBy('run_id', 'desc')
      .limit(1)
      .executeTakeFirst();
    return r ? this.toRun(r as unknown as Record<string, unknown>) : undefined;
  }

  async predictions(
    pipeline: string,
    runId: string,
    keys: string[],
  ): Promise<Map<string, { output: unknown; scoredAt: number }>> {
    const out = new Map<string, { output: unknown; scoredAt: number }>();
    for (let i = 0; i < keys.length; i += 1000) {
      const rows = await this.store.db
        .selectFrom('pipeline_predictions')
        .select(['key', 'output', 'scored_at'])
        .where('pipeline', '=', pipeline)
        .where('run_id', '=', runId)
        .where('key', 'in', keys.slice(i, i + 1000))
        .execute();
      for (const r of rows)
        out.set(r.key, { output: this.store.codec.parseJson(r.output), scoredAt: this.store.codec.int(r.scored_at) });
    }
    return out;
  }

  /** Runs with their row counts, newest first. */
  async runs(pipeline: string, limit = 20): Promise<RunSummaryRow[]> {
    const rows = await this.store.db
      .selectFrom('pipeline_runs')
      .selectAll()
      .where('pipeline', '=', pipeline)
      .orderBy('started_at', 'desc')
      .orderBy('run_id', 'desc')
      .limit(limit)
      .execute();
    if (rows.length === 0) return [];
    const ids = rows.map((r) => r.run_id);
    const counts = await this.store.db
      .selectFrom('pipeline_chunks')
      .select([
        'run_id',
        sql<number>`sum(rows_scored)`.as('scored'),
        sql<number>`sum(rows_rejected)`.as('rejected'),
        sql<number>`count(*)`.as('chunks'),
      ])
      .where('run_id', 'in', ids)
      .groupBy('run_id')
      .execute();
    const shards = await this.store.db
      .selectFrom('pipeline_run_shards')
      .select(['run_id', sql<number>`count(*)`.as('n')])
      .where('run_id', 'in', ids)
      .where('status', '=', 'completed')
      .groupBy('run_id')
      .execute();
    const c = this.store.codec;
    const byRun = new Map(counts.map((x) => [x.run_id, x]));
    const shardsByRun = new Map(shards.map((x) => [x.run_id, c.int(x.n)]));
    return rows.map((r) => {
      const k = byRun.get(r.run_id);
      return {
        ...this.toRun(r as unknown as Record<string, unknown>),
        rowsScored: k ? c.int(k.scored) : 0,
        rowsRejected: k ? c.int(k.rejected) : 0,
        chunks: k ? c.int(k.chunks) : 0,
        shardsCompleted: shardsByRun.get(r.run_id) ?? 0,
      };
    });
  }

  async rejects(runId: string, limit = 100): Promise<Array<RejectRow>> {
    const rows = await this.store.db
      .selectFrom('pipeline_rejects')
      .selectAll()
      .where('run_id', '=', runId)
      .orderBy('row_number')
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      rowNumber: this.store.codec.int(r.row_number),
      key: r.key,
      reason: r.reason,
      row: JSON.stringify(this.store.codec.parseJson(r.row)),
    }));
  }
}
