// The prediction log's writer thread, once per dialect: rows posted by the main thread are inserted
// by the worker's own connection and read back by the main one; a refused batch is counted as
// write-failed; after the thread is gone, batches are written on the main thread.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { forEachDialect, TEST_DATABASE_URL } from '@ferry/test-kit';
import {
  PredictionLog,
  storeRowWriter,
  ThreadRowWriter,
  type ThreadStoreOptions,
} from '../../../monitoring/prediction-log/index.js';

const manual = { flushIntervalMs: 3_600_000, retentionDays: 0, maxEntriesPerSecond: 0 };

forEachDialect('prediction log writer thread', (h) => {
  const threadOptions = (where: string): ThreadStoreOptions =>
    h.dialect === 'sqlite' ? { url: `sqlite:${where}` } : { url: TEST_DATABASE_URL, schema: where };

  test('rows are inserted by the worker and read back on the main connection', async () => {
    const t = await h.open();
    const writer = new ThreadRowWriter(threadOptions(t.where), storeRowWriter(t.store));
    const plog = new PredictionLog(t.store, { ...manual, writer });
    try {
      for (let i = 0; i < 25; i++)
        plog.record({
          model: 'm',
          version: '1.0.0',
          input: { x: [i, i / 2], note: `naïve ✓ ${i}` },
          output: { label: i % 2 ? 'yes' : 'no' },
          latencyMs: i,
          requestId: `r${i}`,
          ts: 1_900_000_000_000 + i,
        });
      await plog.flush();
      const s = plog.stats();
      assert.equal(s.written, 25, JSON.stringify(s));
      const rows = await plog.query({ model: 'm', since: 0, order: 'asc' });
      assert.equal(rows.length, 25);
      assert.deepEqual(rows[7]!.input, { x: [7, 3.5], note: 'naïve ✓ 7' });
      assert.deepEqual(rows[7]!.output, { label: 'yes' });
      assert.equal(rows[7]!.requestId, 'r7');
    } finally {
      await plog.close();
    }
  });

  test('entries are encoded in the thread: too-large and invalid ones are counted, bytes print as a Buffer', async () => {
    const t = await h.open();
    const writer = new ThreadRowWriter(threadOptions(t.where), storeRowWriter(t.store));
    try {
      const entry = (model: string, input: unknown) => ({
        entry: { model, version: '1', input, output: { y: 1 }, latencyMs: 1 },
        ts: 1_900_000_000_000,
      });
      const outcome = await writer.insert(
        [
          entry('ok', { x: [1, 2] }),
          entry('big', { x: 'x'.repeat(400) }),
          entry('', { x: 1 }),
          entry('bigint', { x: 1n }),
          entry('bytes', { image: Buffer.from([1, 2, 3]) }),
        ],
        256,
      );
      assert.deepEqual(outcome, { written: 2, invalid: 2, tooLarge: 1 });
      const rows = await t.store.db.selectFrom('prediction_log').select(['model', 'input']).orderBy('model').execute();
      assert.deepEqual(
        rows.map((r) => [r.model, t.store.codec.parseJson(r.input)]),
        [
          ['bytes', { image: { type: 'Buffer', data: [1, 2, 3] } }],
          ['ok', { x: [1, 2] }],
        ],
      );
      // An entry the structured clone refuses (a function) is built and written on this thread.
      const fn = await writer.insert([entry('fn', { x: 1, f: () => 1 })], 1024);
      assert.deepEqual(fn, { written: 1, invalid: 0, tooLarge: 0 });
    } finally {
      await writer.close();
    }
  });

  test('a batch the store refuses is counted write-failed; a dead thread falls back to the main one', async () => {
    const t = await h.open();
    const writer = new ThreadRowWriter(threadOptions(t.where), storeRowWriter(t.store));
    const plog = new PredictionLog(t.store, { ...manual, writer, maxRetryDelayMs: 0 });
    const one = (model: string) => [{ entry: { model, version: '1', input: 1, output: 2, latencyMs: 1 }, ts: 2 }];
    try {
      // With its table renamed away, the store refuses the worker's insert.
      await t.store.db.schema.alterTable('prediction_log').renameTo('prediction_log_away').execute();
      await assert.rejects(writer.insert(one('refused'), 1024));
      plog.record({ model: 'm', version: '1', input: 1, output: 2, latencyMs: 1 });
      await plog.flush();
      assert.equal(plog.stats().dropped['write-failed'], 1);
      await t.store.db.schema.alterTable('prediction_log_away').renameTo('prediction_log').execute();
      plog.record({ model: 'm', version: '1', input: 1, output: 2, latencyMs: 1 });
      await plog.flush();
      assert.equal(plog.stats().written, 1);
      // Once the thread is gone, a batch is written through the main connection.
      await writer.close();
      assert.equal((await writer.insert(one('after'), 1024)).written, 1);
      assert.equal((await plog.query({ model: 'after', since: 0 })).length, 1);
    } finally {
      await plog.close();
    }
  });
});
