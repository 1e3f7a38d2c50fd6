// Batch pipelines end to end on real parts: the tiny classifier in the worker pool, every source kind,
// the store's table sink on SQLite and PostgreSQL, Parquet/CSV file sinks, rejects and shards.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { parse as parseCsv } from 'csv-parse/sync';
import {
  forEachDialect,
  TEST_DATABASE_URL,
  uniqueSchemaName,
  withAdminClient,
  expectedYes,
  fixtureRows,
  silentLog,
  workspace,
  writeArrow,
  writeCsv,
  writeJsonl,
  writeParquet,
  writeSqlite,
  type Workspace,
} from '@ferry/test-kit';
import { WorkerPool } from '../../serving/index.js';
import { runPipeline, PipelineRunError } from '../../pipelines/runner.js';
import { pipelineWithDefaults, type PipelineInput } from '../../config/schemas/pipelines.js';
import { RunStore } from '../../pipelines/run-store.js';

let ws: Workspace;
let pool: WorkerPool;
const ROWS = fixtureRows(23);

before(async () => {
  ws = await workspace();
  pool = new WorkerPool(2);
  writeCsv(join(ws.dir, 'rows.csv'), ROWS as unknown as Array<Record<string, unknown>>);
  writeJsonl(join(ws.dir, 'rows.jsonl'), ROWS);
  writeParquet(join(ws.dir, 'rows.parquet'), ROWS);
  writeParquet(join(ws.dir, 'part-1.parquet'), ROWS.slice(0, 10));
  writeParquet(join(ws.dir, 'part-2.parquet'), ROWS.slice(10));
  writeArrow(join(ws.dir, 'rows.arrow'), ROWS);
  writeSqlite(join(ws.dir, 'source.db'), ROWS);
});
after(async () => {
  await pool.dispose(1000);
  ws.remove();
});

const base = (source: PipelineInput['source'], extra: Partial<PipelineInput> = {}) =>
  pipelineWithDefaults({ source, model: 'cls@1', key: 'id', chunkRows: 5, ...extra });

function checkPrediction(key: string, output: unknown): void {
  const row = ROWS[Number(key.slice(1))]!;
  const p = output as { label: string; scores: { no: number; yes: number } };
  const want = expectedYes(row);
  assert.ok(Math.abs(p.scores.yes - want) < 1e-5, `${key}: P(yes) ${p.scores.yes} vs reference ${want}`);
  assert.equal(p.label, want > 0.5 ? 'yes' : 'no');
}

forEachDialect('pipeline sources into the table sink', (h) => {
  const sources: Array<[string, PipelineInput['source']]> = [
    ['csv', { kind: 'csv', path: 'rows.csv' }],
    ['jsonl', { kind: 'jsonl', path: 'rows.jsonl' }],
    ['parquet', { kind: 'parquet', path: 'rows.parquet' }],
    ['parquet glob', { kind: 'parquet', path: 'part-*.parquet' }],
    ['arrow', { kind: 'arrow', path: 'rows.arrow' }],
    ['sql on sqlite', { kind: 'sql', url: 'sqlite:source.db', query: 'select * from accounts', orderBy: [] }],
  ];
  for (const [label, source] of sources) {
    test(`${label}: every row scored with the model's numbers, keyed, run completed`, async () => {
      const t = await h.open();
      const s = await runPipeline({
        name: 'accounts',
        pipeline: base(source),
        config: ws.config(),
        store: t.store,
        pool,
        repository: ws.repository,
        log: silentLog,
        cwd: ws.dir,
      });
      assert.equal(s.status, 'completed');
      assert.equal(s.rowsScored, 23);
      assert.equal(s.rowsRejected, 0);
      assert.equal(s.chunksCommitted, 5);
      const rows = await t.store.db
        .selectFrom('pipeline_predictions')
        .selectAll()
        .where('run_id', '=', s.runId)
        .execute();
      assert.deepEqual(rows.map((r) => r.key).sort(), ROWS.map((r) => r.id).sort());
      for (const r of rows) checkPrediction(r.key, t.store.codec.parseJson(r.output));
      const runs = await new RunStore(t.store).runs('accounts');
      assert.equal(runs[0]!.status, 'completed');
      assert.equal(runs[0]!.rowsScored, 23);
    });
  }

  test('a missing source file fails the run before any run is recorded', async () => {
    const t = await h.open();
    await assert.rejects(
      runPipeline({
        name: 'accounts',
        pipeline: base({ kind: 'parquet', path: 'nope-*.parquet' }),
        config: ws.config(),
        store: t.store,
        pool,
        repository: ws.repository,
        log: silentLog,
        cwd: ws.dir,
      }),
      /matches no file/,
    );
    await assert.rejects(
      runPipeline({
        name: 'accounts',
        pipeline: base({ kind: 'csv', path: 'missing.csv' }),
        config: ws.config(),
        store: t.store,
        pool,
        repository: ws.repository,
        log: silentLog,
        cwd: ws.dir,
      }),
      /does not exist/,
    );
    assert.equal((await t.store.db.selectFrom('pipeline_runs').selectAll().execute()).length, 0);
  });

  test('--limit reads only the first rows', async () => {
    const t = await h.open();
    const s = await runPipeline({
      name: 'accounts',
      pipeline: base({ kind: 'parquet', path: 'rows.parquet' }),
      config: ws.config(),
      store: t.store,
      pool,
      repository: ws.repository,
      log: silentLog,
      cwd: ws.dir,
      limit: 12,
    });
    assert.equal(s.rowsScored, 12);
    const keys = (await t.store.db.selectFrom('pipeline_predictions').select('key').execute()).map((r) => r.key).sort();
    assert.deepEqual(
      keys,
      ROWS.slice(0, 12)
        .map((r) => r.id)
        .sort(),
    );
  });

  test('bad rows are counted and written to the rejects table with their reason; good rows still score', async () => {
    const t = await h.open();
    const lines: unknown[] = [
      ROWS[0], // good
      { id: 'bad-range', amount: -5, items: 1, member: true, color: 'red' },
      { id: 'bad-category', amount: 5, items: 1, member: true, color: 'mauve' },
      { id: 'bad-missing', amount: 5, items: 1, member: true },
      { amount: 5, items: 1, member: true, color: 'red' }, // no key
      '{"id": "broken", ', // not JSON
      '[1, 2, 3]', // not an object
      { id: 'bad-type', amount: 'lots', items: 1, member: true, color: 'red' },
      { id: 'bad-int', amount: 5, items: 1.5, member: true, color: 'red' },
      { id: '__proto__', amount: 5, items: 1, member: 'maybe', color: 'red' },
      ROWS[1], // good
    ];
    writeJsonl(join(ws.dir, `bad-${h.dialect}.jsonl`), lines);
    const s = await runPipeline({
      name: 'accounts',
      pipeline: base({ kind: 'jsonl', path: `bad-${h.dialect}.jsonl` }, { chunkRows: 4 }),
      config: ws.config(),
      store: t.store,
      pool,
      repository: ws.repository,
      log: silentLog,
      cwd: ws.dir,
    });
    assert.equal(s.status, 'completed');
    assert.equal(s.rowsScored, 2);
    assert.equal(s.rowsRejected, 9);
    const rejects = await new RunStore(t.store).rejects(s.runId);
    assert.deepEqual(
      rejects.map((r) => r.rowNumber),
      [1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    const reason = (n: number) => rejects.find((r) => r.rowNumber === n)!.reason;
    assert.match(reason(1), /amount/);
    assert.match(reason(2), /color/);
    assert.match(reason(3), /color: missing/);
    assert.match(reason(4), /missing key column "id"/);
    assert.match(reason(5), /line 6: not JSON/);
    assert.match(reason(6), /expected a JSON object/);
    assert.match(reason(7), /amount: cannot read "lots"/);
    assert.match(reason(8), /items/);
    assert.match(reason(9), /member/);
    assert.equal(rejects[0]!.key, 'bad-range');
    assert.deepEqual(JSON.parse(rejects[1]!.row), lines[2]);
    const keys = (await t.store.db.selectFrom('pipeline_predictions').select('key').execute()).map((r) => r.key).sort();
    assert.deepEqual(keys, ['r0', 'r1']);
  });

  test('two shards score one run together; the run completes when both have', async () => {
    const t = await h.open();
    const cfg = ws.config();
    const p = base({ kind: 'csv', path: 'rows.csv' }, { chunkRows: 3 });
    const common = {
      name: 'accounts',
      pipeline: p,
      config: cfg,
      store: t.store,
      pool,
      repository: ws.repository,
      log: silentLog,
      cwd: ws.dir,
      runId: `shared-${h.dialect}`,
    };
    const first = await runPipeline({ ...common, shard: { index: 1, count: 2 } });
    assert.equal(first.status, 'running', 'one shard alone does not complete the run');
    assert.equal(first.chunksCommitted, 4); // chunks 1, 3, 5, 7 of 0..7
    assert.equal(await new RunStore(t.store).latestCompleted('accounts'), undefined);
    const second = await runPipeline({ ...common, shard: { index: 0, count: 2 } });
    assert.equal(second.status, 'completed');
    assert.equal(second.chunksCommitted, 4); // chunks 0, 2, 4, 6
    assert.equal(first.rowsScored + second.rowsScored, 23);
    const keys = (
      await t.store.db
        .selectFrom('pipeline_predictions')
        .select('key')
        .where('run_id', '=', `shared-${h.dialect}`)
        .execute()
    ).map((r) => r.key);
    assert.equal(new Set(keys).size, keys.length);
    assert.deepEqual(keys.sort(), ROWS.map((r) => r.id).sort());
    const chunks = await t.store.db
      .selectFrom('pipeline_chunks')
      .select(['chunk', 'shard'])
      .where('run_id', '=', `shared-${h.dialect}`)
      .execute();
    for (const c of chunks) assert.equal(t.store.codec.int(c.chunk) % 2, t.store.codec.int(c.shard));
    // A shard of a completed run cannot start again, and a run cannot be joined with another shard count.
    await assert.rejects(runPipeline({ ...common, shard: { index: 0, count: 2 } }), PipelineRunError);
    await assert.rejects(runPipeline({ ...common, runId: 'other', shard: { index: 2, count: 2 } }), /0 ≤ i < n/);
  });

  test('only the newest keepRuns completed runs keep their predictions', async () => {
    const t = await h.open();
    const p = base({ kind: 'csv', path: 'rows.csv' }, { keepRuns: 1, chunkRows: 50 });
    const o = {
      name: 'accounts',
      pipeline: p,
      config: ws.config(),
      store: t.store,
      pool,
      repository: ws.repository,
      log: silentLog,
      cwd: ws.dir,
    };
    const a = await runPipeline({ ...o, runId: 'a' });
    await new Promise((r) => setTimeout(r, 5));
    const b = await runPipeline({ ...o, runId: 'b' });
    const byRun = await t.store.db.selectFrom('pipeline_predictions').select('run_id').distinct().execute();
    assert.deepEqual(
      byRun.map((r) => r.run_id),
      [b.runId],
    );
    assert.notEqual(a.runId, b.runId);
    assert.equal((await new RunStore(t.store).latestCompleted('accounts'))!.runId, 'b');
  });
});

forEachDialect('pipeline sql source on PostgreSQL', (h) => {
  test('a query against PostgreSQL is read through a cursor in key order', async () => {
    const t = await h.open();
    const schema = uniqueSchemaName('ferry_src');
    await withAdminClient(async (c) => {
      await c.query(`create schema "${schema}"`);
      await c.query(
        `create table "${schema}".accounts (id text primary key, amount double precision, items bigint, member boolean, color text)`,
      );
      for (const r of [...ROWS].reverse())
        await c.query(`insert into "${schema}".accounts values ($1, $2, $3, $4, $5)`, [
          r.id,
          r.amount,
          r.items,
          r.member,
          r.color,
        ]);
    });
    try {
      const s = await runPipeline({
        name: 'accounts',
        pipeline: base(
          { kind: 'sql', url: TEST_DATABASE_URL, query: `select * from "${schema}".accounts`, orderBy: [] },
          { chunkRows: 4 },
        ),
        config: ws.config(),
        store: t.store,
        pool,
        repository: ws.repository,
        log: silentLog,
        cwd: ws.dir,
      });
      assert.equal(s.rowsScored, 23);
      // Ordered by the key (text order), chunk 0 holds r0, r1, r10, r11.
      const first = await t.store.db.selectFrom('pipeline_rejects').select('row_number').execute();
      assert.equal(first.length, 0);
      const rows = await t.store.db.selectFrom('pipeline_predictions').selectAll().execute();
      assert.equal(rows.length, 23);
      for (const r of rows) checkPrediction(r.key, t.store.codec.parseJson(r.output));
    } finally {
      await withAdminClient((c) => c.query(`drop schema "${schema}" cascade`));
    }
  });
});

forEachDialect('pipeline file sinks', (h) => {
  for (const kind of ['parquet', 'csv'] as const) {
    test(`${kind} sink: one part file per chunk, flattened scores, rejects beside them`, async () => {
      const t = await h.open();
      const rows: unknown[] = [...ROWS.slice(0, 7), { id: 'bad', amount: 5, items: 500, member: true, color: 'red' }];
      writeJsonl(join(ws.dir, `sink-${kind}-${h.dialect}.jsonl`), rows);
      const s = await runPipeline({
        name: 'accounts',
        pipeline: base(
          { kind: 'jsonl', path: `sink-${kind}-${h.dialect}.jsonl` },
          { chunkRows: 3, sink: { kind, dir: `out-${h.dialect}` } },
        ),
        config: ws.config(),
        store: t.store,
        pool,
        repository: ws.repository,
        log: silentLog,
        cwd: ws.dir,
      });
      assert.equal(s.rowsScored, 7);
      assert.equal(s.rowsRejected, 1);
      const dir = join(ws.dir, `out-${h.dialect}`, 'accounts', s.runId);
      const files = readdirSync(dir).sort();
      assert.deepEqual(files, [
        `part-000000.${kind}`,
        `part-000001.${kind}`,
        `part-000002.${kind}`,
        `rejects-000002.${kind}`,
      ]);
      const read = async (f: string): Promise<Array<Record<string, unknown>>> =>
        kind === 'csv'
          ? (parseCsv(readFileSync(join(dir, f)), { columns: true, cast: true }) as Array<Record<string, unknown>>)
          : ((await parquetReadObjects({ file: await asyncBufferFromFile(join(dir, f)) })) as Array<
              Record<string, unknown>
            >);
      const parts = (await Promise.all(files.filter((f) => f.startsWith('part-')).map(read))).flat();
      assert.deepEqual(
        parts.map((p) => p.key),
        ROWS.slice(0, 7).map((r) => r.id),
      );
      for (const p of parts)
        checkPrediction(String(p.key), {
          label: p.label,
          scores: { no: Number(p.score_no), yes: Number(p.score_yes) },
        });
      const rejects = await read(`rejects-000002.${kind}`);
      assert.equal(rejects.length, 1);
      assert.equal(rejects[0]!.key, 'bad');
      assert.match(String(rejects[0]!.reason), /items/);
      assert.equal(
        (await t.store.db.selectFrom('pipeline_predictions').selectAll().execute()).length,
        0,
        'a file sink writes no rows to the table',
      );
    });
  }
});
