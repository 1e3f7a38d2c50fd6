// Test fixtures for pipelines: a model repository holding the tiny classifier (a real ONNX model
// with a plain-JS reference), and the same rows written as CSV, JSON Lines, Parquet, Arrow and SQLite.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { stringify } from 'csv-stringify/sync';
import { pino } from 'pino';
import { loadConfig, Repository, type FerryConfig } from '@ferry/server';
import { tinyClassifier, writeModelVersion, type ClassifierInstance } from './fixture-models.js';

export const COLORS = ['red', 'green', 'blue'] as const;

export interface FixtureRow {
  id: string;
  amount: number;
  items: number;
  member: boolean;
  color: string;
}

/** Deterministic valid rows: id `r<i>`. */
export function fixtureRows(n: number): FixtureRow[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `r${i}`,
    amount: ((i * 37) % 900) + 0.5,
    items: i % 4,
    member: i % 3 === 0,
    color: COLORS[i % 3]!,
  }));
}

/** P(yes) for a valid row, from the fixture's float64 reference. */
export function expectedYes(r: FixtureRow): number {
  const inst: ClassifierInstance = { amount: r.amount, items: r.items, member: r.member, color: r.color };
  return tinyClassifier().reference(inst)[1]!;
}

export interface Workspace {
  dir: string;
  repoDir: string;
  repository: Repository;
  config(overrides?: Record<string, unknown>): FerryConfig;
  remove(): void;
}

export async function workspace(): Promise<Workspace> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-pipelines-'));
  const repoDir = join(dir, 'models');
  const m = tinyClassifier();
  await writeModelVersion(repoDir, 'cls', '1.0.0', { onnx: m.onnx, manifest: m.manifest });
  return {
    dir,
    repoDir,
    repository: Repository.load(repoDir),
    config: (overrides = {}) =>
      loadConfig({
        env: {},
        cwd: dir,
        overrides: { 'models.dir': repoDir, 'runtime.workers': 2, 'log.level': 'silent', ...overrides },
      }),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export const silentLog = pino({ level: 'silent' });

export function writeCsv(path: string, rows: Array<Record<string, unknown>>): void {
  writeFileSync(
    path,
    stringify(rows, { header: true, columns: Object.keys(rows[0]!), cast: { boolean: (b: boolean) => String(b) } }),
  );
}

export function writeJsonl(path: string, rows: unknown[]): void {
  writeFileSync(path, rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n') + '\n');
}

export function writeParquet(path: string, rows: FixtureRow[]): void {
  writeFileSync(
    path,
    new Uint8Array(
      parquetWriteBuffer({
        columnData: [
          { name: 'id', data: rows.map((r) => r.id), type: 'STRING' },
          { name: 'amount', data: rows.map((r) => r.amount), type: 'DOUBLE' },
          { name: 'items', data: rows.map((r) => r.items), type: 'INT32' },
          { name: 'member', data: rows.map((r) => r.member), type: 'BOOLEAN' },
          { name: 'color', data: rows.map((r) => r.color), type: 'STRING' },
        ],
        rowGroupSize: 7,
      }),
    ),
  );
}

export function writeArrow(path: string, rows: FixtureRow[]): void {
  const table = tableFromArrays({
    id: rows.map((r) => r.id),
    amount: Float64Array.from(rows.map((r) => r.amount)),
    items: Int32Array.from(rows.map((r) => r.items)),
    member: rows.map((r) => r.member),
    color: rows.map((r) => r.color),
  });
  writeFileSync(path, tableToIPC(table, 'stream'));
}

export function writeSqlite(path: string, rows: FixtureRow[]): void {
  const db = new BetterSqlite3(path);
  db.exec('create table accounts (id text primary key, amount real, items integer, member integer, color text)');
  const ins = db.prepare('insert into accounts values (?, ?, ?, ?, ?)');
  db.transaction(() => {
    for (const r of rows) ins.run(r.id, r.amount, r.items, r.member ? 1 : 0, r.color);
  })();
  db.close();
}
