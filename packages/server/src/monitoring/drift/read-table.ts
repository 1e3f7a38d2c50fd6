// Reads a dataset file into columns for drift detection: CSV (or TSV), JSON Lines, a JSON array of
// records, or Parquet. CSV cells are typed the way pandas would read them — numbers as numbers,
// true/false as booleans, empty cells as missing — so type inference treats a CSV like the same data
// in JSON Lines.
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { DriftError } from './errors.js';
import { columnsFromRecords } from './records.js';
import type { CellValue, Column } from './types.js';

export type TableFormat = 'csv' | 'tsv' | 'jsonl' | 'json' | 'parquet';

const BY_EXTENSION: Record<string, TableFormat> = {
  '.csv': 'csv',
  '.tsv': 'tsv',
  '.jsonl': 'jsonl',
  '.ndjson': 'jsonl',
  '.json': 'json',
  '.parquet': 'parquet',
  '.pq': 'parquet',
};

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** One CSV cell as pandas' reader would type it. */
export function csvCell(text: string): CellValue {
  if (text === '') return null;
  if (NUMBER.test(text)) return Number(text);
  if (/^[+-]?(inf|infinity)$/i.test(text)) return text.startsWith('-') ? -Infinity : Infinity;
  if (/^nan$/i.test(text)) return Number.NaN;
  if (/^true$/i.test(text)) return true;
  if (/^false$/i.test(text)) return false;
  return text;
}

function unreadable(path: string, detail: string, cause?: unknown): DriftError {
  return new DriftError('drift-unreadable-table', `${path}: ${detail}`, { cause });
}

function fromDelimited(path: string, text: string, delimiter: string): Column[] {
  let rows: string[][];
  try {
    rows = parseCsv(text, { bom: true, delimiter, skip_empty_lines: true }) as string[][];
  } catch (e) {
    throw unreadable(path, `not valid ${delimiter === ',' ? 'CSV' : 'TSV'}: ${(e as Error).message}`, e);
  }
  const [header, ...body] = rows;
  if (!header) return [];
  const seen = new Set<string>();
  for (const h of header) {
    if (seen.has(h)) throw unreadable(path, `the header names column "${h}" twice`);
    seen.add(h);
  }
  return header.map((name, i) => ({ name, values: body.map((r) => csvCell(r[i] ?? '')) }));
}

function fromRecords(path: string, records: unknown[], where: (i: number) => string): Column[] {
  records.forEach((r, i) => {
    if (r === null || typeof r !== 'object' || Array.isArray(r))
      throw unreadable(path, `${where(i)}: expected a JSON object (one record)`);
  });
  const rows = records as Record<string, unknown>[];
  const fields = new Set<string>();
  for (const r of rows) for (const k of Object.keys(r)) fields.add(k);
  return columnsFromRecords(rows, [...fields]);
}

function fromJsonLines(path: string, text: string): Column[] {
  const records: unknown[] = [];
  const lineNumbers: number[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      records.push(JSON.parse(line));
    } catch (e) {
      throw unreadable(path, `line ${i + 1}: not valid JSON (${(e as Error).message})`, e);
    }
    lineNumbers.push(i + 1);
  });
  return fromRecords(path, records, (k) => `line ${lineNumbers[k]}`);
}

async function fromParquet(path: string): Promise<Column[]> {
  try {
    const file = await asyncBufferFromFile(path);
    const metadata = await parquetMetadataAsync(file);
    const names = parquetSchema(metadata).children.map((c) => c.element.name);
    const rows = await parquetReadObjects({ file, metadata, compressors });
    return columnsFromRecords(rows, names);
  } catch (e) {
    throw unreadable(path, `not a readable Parquet file: ${(e as Error).message}`, e);
  }
}

/**
 * Columns of a CSV, TSV, JSON Lines (.jsonl, .ndjson), JSON (an array of records, or JSON Lines) or
 * Parquet file, chosen by extension unless `format` is given. Column types are left to inference.
 * @example const columns = await readTable('models/flight-delay/1.0.0/reference.jsonl');
 */
export async function readTable(path: string, format?: TableFormat): Promise<Column[]> {
  const f = format ?? BY_EXTENSION[extname(path).toLowerCase()];
  if (!f)
    throw unreadable(
      path,
      `unknown file type "${extname(path)}" (expected .csv, .tsv, .jsonl, .ndjson, .json or .parquet)`,
    );
  if (f === 'parquet') return fromParquet(path);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw unreadable(path, (e as Error).message, e);
  }
  if (f === 'csv' || f === 'tsv') return fromDelimited(path, text, f === 'csv' ? ',' : '\t');
  if (f === 'json' && text.trimStart().startsWith('[')) {
    let records: unknown;
    try {
      records = JSON.parse(text);
    } catch (e) {
      throw unreadable(path, `not valid JSON: ${(e as Error).message}`, e);
    }
    return fromRecords(path, records as unknown[], (i) => `record ${i}`);
  }
  return fromJsonLines(path, text);
}
