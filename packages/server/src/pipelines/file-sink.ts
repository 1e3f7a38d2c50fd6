// Parquet/CSV sinks: one part file per chunk, `<dir>/<pipeline>/<run>/part-<chunk>.<ext>` (and
// `rejects-<chunk>.<ext>`), written to a temporary name and renamed into place before the chunk's
// checkpoint is committed. A crash between the rename and the checkpoint makes --resume score the
// chunk again and replace the same file, so no row is ever written twice.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parquetWriteBuffer, type ColumnSource } from 'hyparquet-writer';
import { stringify } from 'csv-stringify/sync';
import type { Prediction } from '@ferry/core';
import type { RejectRow } from './run-store.js';

export interface FileSinkRow {
  key: string;
  prediction: Prediction;
  scoredAt: number;
}

/** Flattens a prediction into columns: scalars as they are, `scores` as `score_<label>`, the rest as JSON text. */
export function flatten(p: Prediction): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(p)) {
    if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') out[k] = v;
    else if (k === 'scores' && v && typeof v === 'object')
      for (const [label, s] of Object.entries(v as Record<string, number>)) out[`score_${label}`] = s;
    else out[k] = JSON.stringify(v);
  }
  return out;
}

export class FileSink {
  readonly dir: string;
  private readonly ext: 'parquet' | 'csv';

  constructor(format: 'parquet' | 'csv', dir: string, cwd: string, pipeline: string, runId: string) {
    this.ext = format;
    this.dir = join(resolve(cwd, dir), pipeline, runId);
    mkdirSync(this.dir, { recursive: true });
  }

  partPath(chunk: number, kind: 'part' | 'rejects' = 'part'): string {
    return join(this.dir, `${kind}-${String(chunk).padStart(6, '0')}.${this.ext}`);
  }

  writeChunk(chunk: number, rows: FileSinkRow[], rejects: RejectRow[]): void {
    if (rows.length) {
      const flat = rows.map((r) => flatten(r.prediction));
      const names = [...new Set(flat.flatMap((f) => Object.keys(f)))];
      const table: Record<string, unknown[]> = { key: rows.map((r) => r.key), scored_at: rows.map((r) => r.scoredAt) };
      for (const n of names) table[n] = flat.map((f) => f[n] ?? null);
      this.atomicWrite(this.partPath(chunk), table, { scored_at: 'INT64' });
    }
    if (rejects.length) {
      this.atomicWrite(
        this.partPath(chunk, 'rejects'),
        {
          row_number: rejects.map((r) => r.rowNumber),
          key: rejects.map((r) => r.key),
          reason: rejects.map((r) => r.reason),
          row: rejects.map((r) => r.row),
        },
        { row_number: 'INT64' },
      );
    }
  }

  private atomicWrite(path: string, table: Record<string, unknown[]>, types: Record<string, 'INT64'>): void {
    const tmp = `${path}.tmp-${process.pid}`;
    if (this.ext === 'csv') {
      const names = Object.keys(table);
      const n = table[names[0]!]!.length;
      const records = Array.from({ length: n }, (_, i) => names.map((c) => table[c]![i]));
      writeFileSync(
        tmp,
        stringify(records, { header: true, columns: names, cast: { boolean: (b: boolean) => String(b) } }),
      );
    } else {
      const columnData: ColumnSource[] = Object.entries(table).map(([name, data]) => {
        const t = types[name] ?? columnType(data);
        return {
          name,
          data: t === 'INT64' ? data.map((v) => (v === null ? null : BigInt(v as number))) : data,
          type: t,
          nullable: true,
        } as ColumnSource;
      });
      writeFileSync(tmp, new Uint8Array(parquetWriteBuffer({ columnData })));
    }
    renameSync(tmp, path);
  }
}

function columnType(data: unknown[]): 'DOUBLE' | 'BOOLEAN' | 'STRING' {
  const v = data.find((x) => x !== null && x !== undefined);
  if (typeof v === 'number') return 'DOUBLE';
  if (typeof v === 'boolean') return 'BOOLEAN';
  return 'STRING';
}
