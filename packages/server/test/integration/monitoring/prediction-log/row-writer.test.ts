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

  test('a batch the store refuses is counted write-failed; a dead thread falls back to the main one', async () => {
    const t = await h.open();
    const writer = new ThreadRowWriter(threadOptions(t.where), storeRowWriter(t.store));
    const plog = new PredictionLog(t.store, { ...manual, writer, maxRetryDelayMs: 0 });
    try {
      // A row the table refuses (model NULL violates NOT NULL) reaches the worker and fails there.
      await assert.rejects(
        writer.insert([
          {
            model: null as unknown as string,
            version: 'v',
            ts: 1,
            input: '1',
            output: '1',
            latency_ms: 1,
            cache_hit: t.store.codec.bool(false),
          },
        ]),
      );
      plog.record({ model: 'm', version: '1', input: 1, output: 2, latencyMs: 1 });
      await plog.flush();
      assert.equal(plog.stats().written, 1);
      // Once the thread is gone, a batch is written through the main connection.
      await writer.close();
      await writer.insert([
        {
          model: 'after',
          version: '1',
          ts: 2,
          input: '1',
          output: '2',
          latency_ms: 1,
          cache_hit: t.store.codec.bool(false),
        },
      ]);
      assert.equal((await plog.query({ model: 'after', since: 0 })).length, 1);
    } finally {
      await plog.close();
    }
  });
});
