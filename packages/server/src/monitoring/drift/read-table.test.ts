// Reading dataset files: CSV cells typed as pandas would type them, JSON Lines and JSON arrays, and
// Parquet files written here with hyparquet-writer (Snappy, and GZIP compressed by node:zlib so the
// reader's decompressor is checked against an independent compressor).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { DriftError } from './errors.js';
import { csvCell, readTable } from './read-table.js';
import type { Column } from './types.js';

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-drift-read-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const file = async (name: string, content: string | Uint8Array): Promise<string> => {
  const p = join(dir, name);
  await writeFile(p, content);
  return p;
};
const asObject = (cols: Column[]): Record<string, unknown[]> =>
  Object.fromEntries(cols.map((c) => [c.name, [...c.values]]));
const unreadable = (e: unknown): boolean => e instanceof DriftError && e.code === 'drift-unreadable-table';

test('CSV: numbers, booleans, empty cells as missing, quoted fields, BOM', async () => {
  const p = await file('t.csv', '\uFEFFhour,origin,late,note\n8.5,ATL,true,"a, b"\n,SFO,FALSE,\n-1e3,"",false,x\n');
  assert.deepEqual(asObject(await readTable(p)), {
    hour: [8.5, null, -1000],
    origin: ['ATL', 'SFO', null],
    late: [true, false, false],
    note: ['a, b', null, 'x'],
  });
  assert.deepEqual([csvCell('NaN'), csvCell('-inf'), csvCell('007'), csvCell(' 7')], [Number.NaN, -Infinity, 7, ' 7']);
});

test('TSV, and CSV errors: ragged rows and duplicate header names', async () => {
  assert.deepEqual(asObject(await readTable(await file('t.tsv', 'a\tb\n1\tx\n'))), { a: [1], b: ['x'] });
  await assert.rejects(readTable(await file('ragged.csv', 'a,b\n1,2,3\n')), unreadable);
  await assert.rejects(readTable(await file('dup.csv', 'a,a\n1,2\n')), unreadable);
});

test('JSON Lines: blank lines skipped, absent fields missing, nested values as JSON; bad lines named', async () => {
  const p = await file('t.jsonl', '{"a":1,"b":"x"}\n\n{"b":"y","c":[1,2]}\r\n');
  assert.deepEqual(asObject(await readTable(p)), { a: [1, null], b: ['x', 'y'], c: [null, '[1,2]'] });
  await assert.rejects(
    readTable(await file('bad.jsonl', '{"a":1}\n{oops\n')),
    (e) => unreadable(e) && /line 2/.test((e as Error).message),
  );
  await assert.rejects(
    readTable(await file('arr.jsonl', '[1,2]\n')),
    (e) => unreadable(e) && /line 1: expected a JSON object/.test((e as Error).message),
  );
});

test('JSON: an array of records, or JSON Lines under a .json name', async () => {
  assert.deepEqual(asObject(await readTable(await file('t.json', '[{"a":1},{"a":2.5}]'))), { a: [1, 2.5] });
  assert.deepEqual(asObject(await readTable(await file('lines.json', '{"a":1}\n{"a":2}\n'))), { a: [1, 2] });
});

test('Parquet: strings, doubles, INT64 (bigint → number), booleans and nulls; Snappy and GZIP', async () => {
  const columnData = [
    { name: 'origin', data: ['ATL', null, 'SFO'], type: 'STRING' as const, nullable: true },
    { name: 'hour', data: [8.5, 9.25, null], type: 'DOUBLE' as const, nullable: true },
    { name: 'distance', data: [364n, 1200n, 95n], type: 'INT64' as const },
    { name: 'late', data: [true, false, true], type: 'BOOLEAN' as const },
  ];
  const expected = {
    origin: ['ATL', null, 'SFO'],
    hour: [8.5, 9.25, null],
    distance: [364, 1200, 95],
    late: [true, false, true],
  };
  const snappy = await file('t.parquet', new Uint8Array(parquetWriteBuffer({ columnData })));
  assert.deepEqual(asObject(await readTable(snappy)), expected);
  const gzip = await file(
    'gz.parquet',
    new Uint8Array(
      parquetWriteBuffer({ columnData, codec: 'GZIP', compressors: { GZIP: (b: Uint8Array) => gzipSync(b) } }),
    ),
  );
  assert.deepEqual(asObject(await readTable(gzip)), expected);
  await assert.rejects(readTable(await file('junk.parquet', 'not parquet')), unreadable);
});

test('unknown extensions and missing files are DriftError("drift-unreadable-table")', async () => {
  await assert.rejects(
    readTable(await file('t.xlsx', '')),
    (e) => unreadable(e) && /unknown file type/.test((e as Error).message),
  );
  await assert.rejects(readTable(join(dir, 'absent.csv')), unreadable);
  // An explicit format beats the extension.
  assert.deepEqual(asObject(await readTable(await file('data.txt', 'a\n1\n'), 'csv')), { a: [1] });
});
