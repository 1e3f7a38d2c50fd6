// Readers for pipeline sources, each yielding fixed-size chunks of rows in a deterministic order:
// chunk c holds rows [c·chunkRows, (c+1)·chunkRows). Only the chunks the caller wants are built (a
// shard's own, not yet committed), so memory is bounded by a chunk (or, for Parquet, a row group),
// never by the source. Columnar files are read by maintained engines: hyparquet (Parquet),
// apache-arrow (Arrow IPC), csv-parse (CSV), better-sqlite3 / pg-cursor (SQL).
import { createReadStream, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { parse as parseCsv } from 'csv-parse';
import { RecordBatchReader } from 'apache-arrow';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import Cursor from 'pg-cursor';
import { parseStoreUrl } from '../store/index.js';
import type { PipelineSource } from '../config/schemas/pipelines.js';
import { UNREADABLE, type SourceRow } from './mapping.js';

export interface SourceChunk {
  index: number;
  /** Source row number of rows[0]. */
  firstRow: number;
  rows: SourceRow[];
}

export interface ChunkPlan {
  chunkRows: number;
  /** Whether chunk c should be built (a shard's chunk that is not committed yet). */
  wanted(c: number): boolean;
  /** Read at most this many rows from the start of the source. */
  limitRows?: number;
}

export interface SourceReader {
  readonly description: string;
  /** Rows in the source when the format says so without reading it (Parquet), else undefined. */
  totalRows(): Promise<number | undefined>;
  chunks(plan: ChunkPlan): AsyncIterable<SourceChunk>;
}

export interface SourceContext {
  cwd: string;
  /** The store's URL and schema, for `sql` sources with an empty url. */
  storeUrl?: string;
  storeSchema?: string;
}

export class SourceError extends Error {}

/** Files named by a path whose last segment may hold `*` / `?` wildcards, in sorted order. */
export function expandGlob(pattern: string, cwd: string): string[] {
  const abs = resolve(cwd, pattern);
  const name = basename(abs);
  if (!/[*?]/.test(name)) {
    try {
      if (statSync(abs).isFile()) return [abs];
    } catch {
      /* reported below */
    }
    throw new SourceError(`source file ${abs} does not exist`);
  }
  if (/[*?]/.test(dirname(abs)))
    throw new SourceError(`source path ${pattern}: wildcards are allowed in the file name only`);
  const re = new RegExp(
    `^${name
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
  let names: string[];
  try {
    names = readdirSync(dirname(abs));
  } catch {
    throw new SourceError(`source folder ${dirname(abs)} does not exist`);
  }
  const files = names
    .filter((n) => re.test(n))
    .sort()
    .map((n) => join(dirname(abs), n))
    .filter((f) => statSync(f).isFile());
  if (files.length === 0) throw new SourceError(`source glob ${pattern} matches no file`);
  return files;
}

export function openSource(src: PipelineSource, ctx: SourceContext, columns: readonly string[]): SourceReader {
  switch (src.kind) {
    case 'parquet':
      return parquetSource(expandGlob(src.path, ctx.cwd), columns);
    case 'csv': {
      const delimiter = src.delimiter ?? ',';
      return rowStreamSource(`csv ${src.path}`, expandGlob(src.path, ctx.cwd), (f) => csvRows(f, delimiter));
    }
    case 'jsonl':
      return rowStreamSource(`jsonl ${src.path}`, expandGlob(src.path, ctx.cwd), jsonlRows);
    case 'arrow':
      return rowStreamSource(`arrow ${src.path}`, expandGlob(src.path, ctx.cwd), (f) => arrowRows(f, columns));
    case 'sql':
      return sqlSource(src, ctx);
  }
}

/** Groups a stream of rows into the wanted chunks; rows of unwanted chunks are read and dropped. */
async function* rechunk(
  rows: AsyncIterable<SourceRow> | Iterable<SourceRow>,
  plan: ChunkPlan,
): AsyncGenerator<SourceChunk> {
  const limit = plan.limitRows ?? Infinity;
  let n = 0;
  let current: SourceChunk | undefined;
  let skipping = -1;
  for await (const row of rows) {
    if (n >= limit) break;
    const c = Math.floor(n / plan.chunkRows);
    if (!current && skipping !== c) {
      if (plan.wanted(c)) current = { index: c, firstRow: n, rows: [] };
      else skipping = c;
    }
    if (current) {
      current.rows.push(row);
      if (current.rows.length === plan.chunkRows) {
        yield current;
        current = undefined;
      }
    }
    n++;
  }
  if (current && current.rows.length) yield current;
}

function rowStreamSource(
  description: string,
  files: string[],
  read: (file: string) => AsyncIterable<SourceRow>,
): SourceReader {
  return {
    description,
    totalRows: async () => undefined,
    chunks: (plan) =>
      rechunk(
        (async function* () {
          for (const f of files) yield* read(f);
        })(),
        plan,
      ),
  };
}

async function* csvRows(file: string, delimiter: string): AsyncGenerator<SourceRow> {
  // relax_column_count: a record with the wrong number of fields becomes a reject, not a failed run.
  const parser = createReadStream(file).pipe(
    parseCsv({ columns: true, delimiter, relax_column_count: true, skip_empty_lines: true, bom: true, info: true }),
  );
  let header: number | undefined;
  for await (const rec of parser as AsyncIterable<{
    record: SourceRow;
    info: { columns: unknown[] | false; invalid_field_length: number; lines: number };
  }>) {
    header ??= Array.isArray(rec.info.columns) ? rec.info.columns.length : undefined;
    const fields = Object.keys(rec.record).length;
    if (header !== undefined && fields !== header) {
      yield {
        [UNREADABLE]: `CSV line ${rec.info.lines}: ${fields} fields, the header has ${header}`,
        raw: JSON.stringify(rec.record),
      } as unknown as SourceRow;
    } else yield rec.record;
  }
}

async function* jsonlRows(file: string): AsyncGenerator<SourceRow> {
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  let lineNo = 0;
  for await (const line of lines) {
    lineNo++;
    if (line.trim() === '') continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      yield {
        [UNREADABLE]: `line ${lineNo}: not JSON (${(e as Error).message})`,
        raw: line.slice(0, 1000),
      } as unknown as SourceRow;
      continue;
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      yield {
        [UNREADABLE]: `line ${lineNo}: expected a JSON object`,
        raw: line.slice(0, 1000),
      } as unknown as SourceRow;
      continue;
    }
    yield v as SourceRow;
  }
}

async function* arrowRows(file: string, columns: readonly string[]): AsyncGenerator<SourceRow> {
  const reader = await RecordBatchReader.from(createReadStream(file));
  for await (const batch of reader) {
    const vectors = columns.map((c) => [c, batch.getChild(c)] as const);
    for (let i = 0; i < batch.numRows; i++) {
      const row: SourceRow = {};
      for (const [c, v] of vectors) row[c] = v ? v.get(i) : undefined;
      yield row;
    }
  }
}

/** Reads only the row groups that overlap wanted chunks, and only the needed columns. */
function parquetSource(files: string[], columns: readonly string[]): SourceReader {
  const open = async () =>
    Promise.all(
      files.map(async (f) => {
        const file = await asyncBufferFromFile(f);
        return { file, metadata: await parquetMetadataAsync(file) };
      }),
    );
  return {
    description: `parquet ${files.length === 1 ? files[0] : `${files.length} files`}`,
    async totalRows() {
      return (await open()).reduce((s, f) => s + Number(f.metadata.num_rows), 0);
    },
    chunks(plan) {
      return (async function* () {
        const limit = plan.limitRows ?? Infinity;
        let base = 0;
        let pending: SourceChunk | undefined;
        for (const { file, metadata } of await open()) {
          const have = new Set(metadata.schema.map((s) => s.name));
          const missing = columns.filter((c) => !have.has(c));
          if (missing.length)
            throw new SourceError(`parquet source has no column ${missing.map((c) => `"${c}"`).join(', ')}`);
          let groupStart = base;
          for (const rg of metadata.row_groups) {
            const groupEnd = groupStart + Number(rg.num_rows);
            const end = Math.min(groupEnd, limit);
            // The wanted rows of this group: from the first wanted chunk's start to the last one's end.
            let from = -1;
            let to = -1;
            for (let c = Math.floor(groupStart / plan.chunkRows); c * plan.chunkRows < end; c++) {
              if (!plan.wanted(c)) continue;
              if (from < 0) from = Math.max(groupStart, c * plan.chunkRows);
              to = Math.min(end, (c + 1) * plan.chunkRows);
            }
            if (from >= 0) {
              const rows = (await parquetReadObjects({
                file,
                metadata,
                columns: [...columns],
                rowStart: from - base,
                rowEnd: to - base,
                compressors,
              })) as SourceRow[];
              for (let i = 0; i < rows.length; i++) {
                const n = from + i;
                const c = Math.floor(n / plan.chunkRows);
                if (!plan.wanted(c)) continue;
                if (pending && pending.index !== c) {
                  yield pending;
                  pending = undefined;
                }
                pending ??= { index: c, firstRow: n, rows: [] };
                pending.rows.push(rows[i]!);
                if (pending.rows.length === plan.chunkRows) {
                  yield pending;
                  pending = undefined;
                }
              }
            }
            groupStart = groupEnd;
            if (groupStart >= limit) break;
          }
          base = groupStart;
          if (base >= limit) break;
        }
        if (pending) yield pending;
      })();
    },
  };
}

function sqlSource(src: Extract<PipelineSource, { kind: 'sql' }>, ctx: SourceContext): SourceReader {
  const url = src.url || ctx.storeUrl || '';
  const target = parseStoreUrl(url, { cwd: ctx.cwd });
  const order = src.orderBy ?? [];
  // The query is the user's own SQL from the config (trusted like the config file); wrapping it keeps
  // the read order deterministic, which checkpoints and shards depend on.
  const ordered = (quote: (s: string) => string) =>
    order.length ? `select * from (${src.query}) as ferry_src order by ${order.map(quote).join(', ')}` : src.query;
  if (target.dialect === 'sqlite') {
    return {
      description: `sql sqlite:${target.path}`,
      totalRows: async () => undefined,
      chunks(plan) {
        return (async function* () {
          const db = new BetterSqlite3(target.path, { readonly: true, fileMustExist: true });
          try {
            yield* rechunk(
              db.prepare(ordered((s) => `"${s.replace(/"/g, '""')}"`)).iterate() as Iterable<SourceRow>,
              plan,
            );
          } finally {
            db.close();
          }
        })();
      },
    };
  }
  return {
    description: `sql postgres (${src.url ? 'source url' : 'the store'})`,
    totalRows: async () => undefined,
    chunks(plan) {
      return (async function* () {
        const client = new pg.Client({ connectionString: target.url });
        await client.connect();
        try {
          if (!src.url && ctx.storeSchema)
            await client.query(`set search_path to "${ctx.storeSchema.replace(/"/g, '""')}"`);
          const cursor = client.query(new Cursor(ordered((s) => `"${s.replace(/"/g, '""')}"`)));
          const rows = (async function* () {
            for (;;) {
              const batch = (await cursor.read(Math.min(plan.chunkRows, 10_000))) as SourceRow[];
              if (batch.length === 0) break;
              yield* batch;
            }
          })();
          try {
            yield* rechunk(rows, plan);
          } finally {
            await cursor.close();
          }
        } finally {
          await client.end();
        }
      })();
    },
  };
}
