// A job's input and result live apart from its row (migration 0012_job_payloads), so the runner's
// progress writes rewrite a small row and never the job's megabytes of input. On SQLite every UPDATE
// rewrites the whole record, overflow pages included: the WAL frames written by progress writes show
// it. On PostgreSQL an UPDATE writes a new tuple version: the payload row's xmin shows it was left alone.
// On the old layout (input and result in `jobs`) both checks fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { Migrator, sql, type Kysely } from 'kysely';
import { forEachDialect, type TestStore } from '@ferry/test-kit';
import { JobStore } from '../../jobs/job-store.js';
import { migrationProvider } from '../../store/migrations.js';

const WORKER = 'test-worker';

/** About 2 MB of input: 20,000 rows of text, the shape of a large spam job. */
function bigInput(): { instances: Array<{ text: string }>; base: string } {
  const instances = Array.from({ length: 20_000 }, (_, i) => ({ text: `message ${i} ${'lorem ipsum '.repeat(8)}` }));
  return { instances, base: '/instances' };
}

/** Bytes of WAL written since the last truncating checkpoint (SQLite). */
async function walBytesAfter(t: TestStore, writes: () => Promise<void>): Promise<number> {
  await sql`pragma wal_checkpoint(TRUNCATE)`.execute(t.store.db);
  assert.equal(statSync(`${t.where}-wal`).size, 0, 'the WAL starts empty');
  await writes();
  return statSync(`${t.where}-wal`).size;
}

forEachDialect('job payloads', ({ dialect, open }) => {
  test('progress writes do not rewrite the job input', async () => {
    const t = await open();
    const jobs = new JobStore(t.store);
    const input = bigInput();
    const inputBytes = JSON.stringify(input).length;
    assert.ok(inputBytes > 2_000_000, `input of ${inputBytes} bytes`);
    const id = '00000000-0000-4000-8000-000000000001';
    const now = Date.now();
    await jobs.insert({ id, model: 'spam', version: '1', input, maxAttempts: 1, now });
    const active = await jobs.markActive(id, WORKER, now, 60_000);
    assert.ok(active);
    assert.deepEqual(jobs.input(active), input, 'the worker reads the input back whole');

    const progressWrites = async () => {
      for (let i = 1; i <= 10; i++) {
        const row = await jobs.setProgress(id, WORKER, i / 20);
        assert.equal(Number(row?.progress), i / 20);
      }
    };
    if (dialect === 'sqlite') {
      const wal = await walBytesAfter(t, progressWrites);
      // Ten rewrites of the row on the old layout: over 20 MB of frames (at least one input's worth
      // before any auto-checkpoint reuses the file). Here: a few pages per write.
      assert.ok(wal < inputBytes / 20, `10 progress writes wrote ${wal} bytes of WAL (input: ${inputBytes} bytes)`);
    } else {
      const xmin = (table: 'jobs' | 'job_payloads', key: 'id' | 'job_id') =>
        sql<{ x: string }>`select xmin::text as x from ${sql.table(table)} where ${sql.ref(key)} = ${id}`
          .execute(t.store.db)
          .then((r) => r.rows[0]!.x);
      const [jobBefore, payloadBefore] = [await xmin('jobs', 'id'), await xmin('job_payloads', 'job_id')];
      await progressWrites();
      assert.notEqual(await xmin('jobs', 'id'), jobBefore, 'the job row was updated');
      assert.equal(await xmin('job_payloads', 'job_id'), payloadBefore, 'the payload row was not rewritten');
      const size = await sql<{ n: number }>`select pg_column_size(j.*) as n from jobs j where id = ${id}`.execute(
        t.store.db,
      );
      assert.ok(Number(size.rows[0]!.n) < 2048, `the job row holds ${size.rows[0]!.n} bytes`);
    }

    // The result is written with the completed state and read with the document.
    const done = await jobs.complete(id, { predictions: [{ label: 'ham' }] }, Date.now());
    assert.equal(done?.state, 'completed');
    const doc = await jobs.document(id);
    assert.ok(doc);
    assert.deepEqual(jobs.toDocument(doc).result, { predictions: [{ label: 'ham' }] });
    // An event stream's final document: the result only when the database finds it small enough.
    const small = await jobs.finalDocument(id, 1000);
    assert.equal(small?.resultOmitted, false);
    assert.deepEqual(jobs.toDocument(small!.row).result, { predictions: [{ label: 'ham' }] });
    const big = await jobs.finalDocument(id, 10);
    assert.equal(big?.resultOmitted, true);
    assert.equal(jobs.toDocument(big!.row).result, null, 'a result over the size is not read');
    assert.equal(await jobs.complete(id, { predictions: [] }, Date.now()), undefined, 'a result is recorded once');
    assert.deepEqual(jobs.toDocument((await jobs.document(id))!).result, { predictions: [{ label: 'ham' }] });

    // Retention removes the payload with its job.
    assert.equal(await jobs.deleteFinishedBefore(Date.now() + 1), 1);
    const left = await t.store.db.selectFrom('job_payloads').select('job_id').execute();
    assert.deepEqual(left, []);
  });

  test('migrating moves existing jobs input and result into job_payloads', async () => {
    const t = await open({ migrate: false });
    const db = t.store.db as unknown as Kysely<any>;
    if (t.store.schema !== undefined) await sql`create schema if not exists ${sql.id(t.store.schema)}`.execute(db);
    const migrator = new Migrator({
      db,
      provider: migrationProvider(dialect),
      ...(t.store.schema !== undefined && { migrationTableSchema: t.store.schema }),
    });
    const before = await migrator.migrateTo('0010_llm_gateway');
    assert.equal(before.error, undefined);
    const c = t.store.codec;
    const row = (id: string, state: string, result: unknown) => ({
      id,
      model: 'spam',
      version: '1',
      state,
      input: c.json({ instances: [{ text: `input of ${id}` }], base: '/instances' }),
      result: result === null ? null : c.json(result),
      max_attempts: 1,
      run_after: 1,
      created_at: 1,
      cancel_requested: c.bool(false),
    });
    const a = '00000000-0000-4000-8000-00000000000a';
    const b = '00000000-0000-4000-8000-00000000000b';
    await db
      .insertInto('jobs')
      .values([row(a, 'completed', { predictions: [{ label: 'spam' }] }), row(b, 'queued', null)])
      .execute();

    await t.store.migrate();
    const jobs = new JobStore(t.store);
    assert.deepEqual(jobs.toDocument((await jobs.document(a))!).result, { predictions: [{ label: 'spam' }] });
    assert.equal(jobs.toDocument((await jobs.document(b))!).result, null);
    assert.deepEqual(jobs.input((await jobs.get(b))!), { instances: [{ text: `input of ${b}` }], base: '/instances' });
    // The row itself no longer carries them.
    const cols = Object.keys((await db.selectFrom('jobs').selectAll().where('id', '=', a).executeTakeFirst()) ?? {});
    assert.ok(cols.includes('state') && !cols.includes('input') && !cols.includes('result'), cols.join(','));
  });
});
