// The prediction log against the real store, once per dialect (SQLite file, PostgreSQL schema).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { sql } from 'kysely';
import { forEachDialect, withAdminClient, DIALECTS, openTestStore } from '@ferry/test-kit';
import type { Store } from '../../../store/index.js';
import {
  PredictionLog,
  parseSampleRates,
  seededRandom,
  type DropReason,
  type PredictionLogOptions,
  type PredictionLogStats,
  type SampleOutReason,
} from '../../../monitoring/prediction-log/index.js';

/** A real pino logger whose lines land in an array. */
function capturedLogger() {
  const lines: Array<{ level: number; msg: string }> = [];
  const log = pino(
    { level: 'debug' },
    {
      write: (s: string) => {
        lines.push(JSON.parse(s) as { level: number; msg: string });
      },
    },
  );
  return { log, lines, warnings: () => lines.filter((l) => l.level === 40).map((l) => l.msg) };
}

/** Totals the hooks reported, to hold against stats(). */
function hookTotals() {
  const t = { written: 0, dropped: {} as Record<string, number>, sampledOut: {} as Record<string, number> };
  const hooks: Pick<PredictionLogOptions, 'onWritten' | 'onDropped' | 'onSampledOut'> = {
    onWritten: (n) => {
      t.written += n;
    },
    onDropped: (n, r: DropReason) => {
      t.dropped[r] = (t.dropped[r] ?? 0) + n;
    },
    onSampledOut: (n, r: SampleOutReason) => {
      t.sampledOut[r] = (t.sampledOut[r] ?? 0) + n;
    },
  };
  return { t, hooks };
}

const sum = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);

/** Every recorded entry is somewhere: written, dropped, sampled out, buffered or being written. */
function assertAccounted(s: PredictionLogStats): void {
  assert.equal(
    s.written + sum(s.dropped) + sum(s.sampledOut) + s.buffered + s.inFlight,
    s.recorded,
    `accounting: ${JSON.stringify(s)}`,
  );
}

async function countRows(store: Store, model?: string): Promise<number> {
  let q = store.db.selectFrom('prediction_log').select((eb) => eb.fn.countAll().as('n'));
  if (model !== undefined) q = q.where('model', '=', model);
  return store.codec.int((await q.executeTakeFirstOrThrow()).n);
}

async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

// Long intervals: the tests drive flushing with flush() unless they test the timer itself.
const manual = {
  flushIntervalMs: 3_600_000,
  retentionIntervalMs: 3_600_000,
  maxEntriesPerSecond: 0,
} satisfies PredictionLogOptions;

test('parseSampleRates reads model=rate items and refuses bad ones', () => {
  assert.deepEqual(parseSampleRates(['flight-delay=0.1', 'spam=1', 'a=b=0']), {
    'flight-delay': 0.1,
    spam: 1,
    'a=b': 0,
  });
  assert.throws(() => parseSampleRates(['x=1.5']), RangeError);
  assert.throws(() => parseSampleRates(['=0.5']), RangeError);
  assert.throws(() => parseSampleRates(['x=']), RangeError);
});

forEachDialect('prediction log', (h) => {
  test('record → flush → query round-trips every field, JSON intact', async () => {
    const { store } = await h.open();
    const plog = new PredictionLog(store, manual);
    try {
      const t0 = Date.UTC(2030, 5, 1);
      const inputs = [
        { month: 7, dayOfWeek: 5, hour: 18.5, origin: 'ATL', note: 'naïve “quotes” ✓' },
        [0.1, -2, 3e-8],
        'raw text',
        { nested: { deep: [null, true, { x: 1 }] } },
      ];
      inputs.forEach((input, i) =>
        plog.record({
          model: 'flight-delay',
          version: i < 3 ? '1.0.0' : '1.1.0',
          input,
          output: { label: i % 2 ? 'delayed' : 'on_time', scores: { on_time: 0.25 * i } },
          latencyMs: 1.5 * i,
          ts: t0 + i * 1000,
          cacheHit: i === 1,
          ...(i === 2 && { fallbackReason: 'timeout' }),
          requestId: `r${i}`,
        }),
      );
      plog.record({
        model: 'spam',
        version: '1.0.0',
        input: { text: 'hi' },
        output: { label: 'ham' },
        latencyMs: 1,
        ts: t0,
      });
      assert.equal(await countRows(store), 0, 'nothing is written before a flush');
      await plog.flush();
      assert.equal(await countRows(store), 5);

      const all = await plog.query({ model: 'flight-delay', since: t0, order: 'asc' });
      assert.equal(all.length, 4);
      all.forEach((r, i) => {
        assert.equal(r.ts, t0 + i * 1000);
        assert.equal(r.model, 'flight-delay');
        assert.deepEqual(r.input, inputs[i]);
        assert.deepEqual(r.output, { label: i % 2 ? 'delayed' : 'on_time', scores: { on_time: 0.25 * i } });
        assert.equal(r.latencyMs, 1.5 * i);
        assert.equal(r.cacheHit, i === 1);
        assert.equal(r.fallbackReason, i === 2 ? 'timeout' : null);
        assert.equal(r.requestId, `r${i}`);
        assert.equal(typeof r.id, 'number');
      });
      // Filters: version, window [since, until), limit with newest first by default.
      assert.deepEqual(
        (await plog.query({ model: 'flight-delay', version: '1.0.0', since: 0 })).map((r) => r.ts),
        [t0 + 2000, t0 + 1000, t0],
      );
      assert.deepEqual(
        (await plog.query({ model: 'flight-delay', since: t0 + 1000, until: t0 + 3000, order: 'asc' })).map(
          (r) => r.ts,
        ),
        [t0 + 1000, t0 + 2000],
      );
      assert.deepEqual(
        (await plog.query({ model: 'flight-delay', since: 0, limit: 2 })).map((r) => r.ts),
        [t0 + 3000, t0 + 2000],
      );
      assert.equal((await plog.query({ model: 'spam', since: 0 })).length, 1);
      assert.equal((await plog.query({ model: 'nope', since: 0 })).length, 0);
      assertAccounted(plog.stats());
    } finally {
      await plog.close();
    }
  });

  test('the timer flushes by itself, and a full batch goes out before the interval', async () => {
    const { store } = await h.open();
    const { t, hooks } = hookTotals();
    const timed = new PredictionLog(store, { ...manual, flushIntervalMs: 30, ...hooks });
    const batched = new PredictionLog(store, { ...manual, flushBatchSize: 10, ...hooks });
    try {
      timed.record({ model: 'timed', version: '1', input: 1, output: 2, latencyMs: 1 });
      await until(async () => (await countRows(store, 'timed')) === 1, 'the interval flush');
      for (let i = 0; i < 25; i++)
        batched.record({ model: 'batched', version: '1', input: i, output: i, latencyMs: 1 });
      // A full batch (10) triggers a write without flush() or the (hour-long) interval; that drain
      // takes everything waiting by then, the partial last batch too.
      await until(async () => (await countRows(store, 'batched')) === 25, 'the full-batch flush');
      assert.equal(batched.stats().buffered, 0);
      await until(() => t.written === 26, 'hooks to report the writes');
    } finally {
      await timed.close();
      await batched.close();
    }
    for (const l of [timed, batched]) assertAccounted(l.stats());
  });

  test('per-model sample rates are respected (seeded sampler)', async () => {
    const { store } = await h.open();
    const { t, hooks } = hookTotals();
    const plog = new PredictionLog(store, {
      ...manual,
      flushBatchSize: 2000,
      maxBufferEntries: 20_000,
      sampleRate: 1,
      modelSampleRates: { a: 0.25, none: 0 },
      random: seededRandom(42),
      ...hooks,
    });
    try {
      const n = 8000;
      for (let i = 0; i < n; i++) {
        plog.record({ model: 'a', version: '1', input: { i }, output: {}, latencyMs: 0 });
        if (i < 1000) plog.record({ model: 'b', version: '1', input: { i }, output: {}, latencyMs: 0 });
        if (i < 500) plog.record({ model: 'none', version: '1', input: { i }, output: {}, latencyMs: 0 });
      }
      plog.setSampleRate('b', 0.5);
      for (let i = 0; i < 1000; i++) plog.record({ model: 'b', version: '2', input: { i }, output: {}, latencyMs: 0 });
      await plog.flush();
      const a = await countRows(store, 'a');
      // Binomial(8000, 0.25): mean 2000, sd ≈ 38.7; four sd either side.
      assert.ok(Math.abs(a - 2000) < 155, `model a kept ${a} of ${n} at rate 0.25`);
      const bV1 = (await plog.query({ model: 'b', version: '1', since: 0, limit: 100_000 })).length;
      const bV2 = (await plog.query({ model: 'b', version: '2', since: 0, limit: 100_000 })).length;
      assert.equal(bV1, 1000, 'default rate 1 keeps everything');
      assert.ok(Math.abs(bV2 - 500) < 64, `setSampleRate(b, 0.5) kept ${bV2} of 1000`);
      assert.equal(await countRows(store, 'none'), 0, 'rate 0 keeps nothing');
      const s = plog.stats();
      assert.equal(s.sampledOut['sample-rate'], n - a + 500 + (1000 - bV2));
      assert.equal(s.written, a + bV1 + bV2);
      assertAccounted(s);
      // The same seed makes the same choices.
      const kept = (seed: number) => {
        const l = new PredictionLog(store, { ...manual, modelSampleRates: { a: 0.3 }, random: seededRandom(seed) });
        for (let i = 0; i < 1000; i++) l.record({ model: 'a', version: 'x', input: i, output: 0, latencyMs: 0 });
        const k = l.stats().buffered;
        void l.close();
        return k;
      };
      assert.equal(kept(7), kept(7));
      assert.equal(t.sampledOut['sample-rate'], s.sampledOut['sample-rate']);
    } finally {
      await plog.close();
    }
  });

  test('the global rate cap keeps at most maxEntriesPerSecond (burst of one second) and counts the rest', async () => {
    const { store } = await h.open();
    let now = 1_000_000;
    const { t, hooks } = hookTotals();
    const plog = new PredictionLog(store, {
      ...manual,
      maxEntriesPerSecond: 100,
      maxBufferEntries: 10_000,
      flushBatchSize: 2000,
      now: () => now,
      ...hooks,
    });
    try {
      const burst = (k: number) => {
        for (let i = 0; i < k; i++) plog.record({ model: 'm', version: '1', input: i, output: i, latencyMs: 0 });
      };
      burst(1000);
      assert.equal(plog.stats().buffered, 100, 'a full bucket: one second of entries');
      now += 500;
      burst(1000);
      assert.equal(plog.stats().buffered, 150, 'half a second refills half');
      now += 60_000;
      burst(1000);
      assert.equal(plog.stats().buffered, 250, 'a long pause refills one second, not sixty');
      now -= 10_000; // a clock stepping back refills nothing …
      burst(10);
      assert.equal(plog.stats().buffered, 250);
      now += 10_000; // … nor does catching up to where it was (the bucket is empty)
      burst(10);
      assert.equal(plog.stats().buffered, 250);
      // Spread evenly at the cap, everything passes.
      for (let i = 0; i < 300; i++) {
        now += 10;
        burst(1);
      }
      assert.equal(plog.stats().buffered, 550);
      await plog.flush();
      assert.equal(await countRows(store), 550);
      const s = plog.stats();
      assert.equal(s.sampledOut['rate-cap'], 3020 - 250);
      assertAccounted(s);
      await plog.close();
      assert.equal(t.sampledOut['rate-cap'], s.sampledOut['rate-cap']);
      assert.equal(t.written, 550);
    } finally {
      await plog.close();
    }
  });

  test('admit decides once: an admitted entry is kept without sampling again, and counts as one', async () => {
    const ts = await h.open();
    const { store } = ts;
    let now = 1_000_000;
    const plog = new PredictionLog(store, { ...manual, maxEntriesPerSecond: 10, flushBatchSize: 2000, now: () => now });
    try {
      let admitted = 0;
      for (let i = 0; i < 25; i++) {
        if (!plog.admit('m')) continue;
        admitted++;
        plog.record({ model: 'm', version: '1', input: i, output: i, latencyMs: 0 }, true);
      }
      assert.equal(admitted, 10, 'the cap applies to admit');
      assert.equal(plog.stats().buffered, 10, 'record(entry, true) takes no second token');
      // A plain record after the bucket is empty is still refused by its own decision.
      plog.record({ model: 'm', version: '1', input: 'x', output: 'x', latencyMs: 0 });
      assert.equal(plog.stats().buffered, 10);
      const s = plog.stats();
      assert.equal(s.recorded, 26);
      assert.equal(s.sampledOut['rate-cap'], 16);
      assertAccounted(s);
      now += 1000;
      await plog.flush();
      assert.equal(await countRows(store), 10);
    } finally {
      await plog.close();
    }
  });

  test('store down: record stays O(1) and bounded, drops are counted, the outage is logged once, writing resumes after', async () => {
    const ts = await h.open();
    const { store } = ts;
    const cap = capturedLogger();
    const { t, hooks } = hookTotals();
    const maxBufferEntries = 1000;
    const plog = new PredictionLog(store, {
      ...manual,
      maxBufferEntries,
      flushBatchSize: 100,
      flushIntervalMs: 20,
      maxRetryDelayMs: 40,
      log: cap.log,
      ...hooks,
    });
    try {
      plog.record({ model: 'm', version: '1', input: 'before', output: 0, latencyMs: 0 });
      await plog.flush();
      assert.equal(await countRows(store), 1);

      const restore = await ts.outage();
      let restored = false;
      try {
        // 100k entries in one synchronous run: nothing can be written meanwhile, so everything past
        // the bound is dropped at once; the buffer never holds more than the bound.
        let maxHeld = 0;
        for (let i = 0; i < 100_000; i++) {
          plog.record({ model: 'm', version: '1', input: { i, pad: 'x'.repeat(64) }, output: { i }, latencyMs: 0.1 });
          const s = plog.stats();
          maxHeld = Math.max(maxHeld, s.buffered + s.inFlight);
        }
        assert.equal(maxHeld, maxBufferEntries);
        assert.equal(plog.stats().dropped['buffer-full'], 100_000 - maxBufferEntries);

        // Now let the flusher run against the dead store for a while, recording in between.
        await until(() => plog.stats().dropped['write-failed'] >= 300, 'failed writes', 20_000);
        for (let round = 0; round < 20; round++) {
          for (let i = 0; i < 500; i++)
            plog.record({ model: 'm', version: '1', input: { round, i }, output: {}, latencyMs: 0 });
          const s = plog.stats();
          assert.ok(
            s.buffered + s.inFlight <= maxBufferEntries,
            `bounded during the outage: ${s.buffered} + ${s.inFlight}`,
          );
          await sleep(5);
        }
        const down = plog.stats();
        assert.equal(down.storeAvailable, false);
        assertAccounted(down);
        assert.equal(
          cap.warnings().filter((m) => /store unavailable/.test(m)).length,
          1,
          `logged once: ${JSON.stringify(cap.warnings())}`,
        );
        assert.equal(
          await countRows(store).catch(() => 'unreadable'),
          ts.dialect === 'sqlite' ? 1 : 'unreadable',
          'nothing was written during the outage',
        );

        await restore();
        restored = true;
      } finally {
        if (!restored) await restore();
      }
      // The flusher retries later batches by itself (no flush() call) and writes what it still holds.
      await until(() => plog.stats().storeAvailable && plog.stats().buffered === 0, 'the flusher to recover', 20_000);
      plog.record({ model: 'm', version: '1', input: 'after', output: 0, latencyMs: 0 });
      await plog.flush();
      const rows = await plog.query({ model: 'm', since: 0, limit: 100_000 });
      assert.ok(
        rows.some((r) => r.input === 'after'),
        'entries recorded after the outage are written',
      );
      assert.ok(rows.some((r) => r.input === 'before'));
      const s = plog.stats();
      assert.equal(rows.length, s.written, 'every counted write is in the table');
      assertAccounted(s);
      assert.ok(
        cap.lines.some((l) => /store is back/.test(l.msg)),
        'the recovery is logged',
      );
      await plog.close();
      assert.equal(t.written, s.written);
      assert.deepEqual(t.dropped, Object.fromEntries(Object.entries(plog.stats().dropped).filter(([, n]) => n > 0)));
    } finally {
      await plog.close();
    }
  });

  test('retention deletes rows older than retentionDays and nothing newer, in chunks', async () => {
    const { store } = await h.open();
    const day = 86_400_000;
    const now = Date.UTC(2030, 0, 31);
    const plog = new PredictionLog(store, { ...manual, retentionDays: 7, retentionChunkRows: 3, now: () => now });
    try {
      const cutoff = now - 7 * day;
      const ages = [
        cutoff - 30 * day,
        cutoff - day,
        cutoff - 1,
        cutoff - 1,
        cutoff - 1,
        cutoff - 1,
        cutoff - 1,
        cutoff,
        cutoff + 1,
        now - 1000,
        now,
      ];
      ages.forEach((ts, i) =>
        plog.record({ model: i % 2 ? 'a' : 'b', version: '1', input: i, output: i, latencyMs: 0, ts }),
      );
      await plog.flush();
      assert.equal(await countRows(store), ages.length);
      assert.equal(await plog.prune(), 7, 'the seven rows before the cutoff, over three chunks');
      const left = await store.db.selectFrom('prediction_log').select('ts').orderBy('ts').execute();
      assert.deepEqual(
        left.map((r) => store.codec.int(r.ts)),
        [cutoff, cutoff + 1, now - 1000, now],
      );
      assert.equal(await plog.prune(), 0);
      const keepAll = new PredictionLog(store, { ...manual, retentionDays: 0, now: () => now + 365 * day });
      assert.equal(await keepAll.prune(), 0, 'retentionDays 0 keeps everything');
      await keepAll.close();
      assert.equal(await countRows(store), 4);
    } finally {
      await plog.close();
    }
  });

  test('record never throws: junk entries, JSON that cannot be stored and oversized entries are dropped and counted', async () => {
    const { store } = await h.open();
    const { t, hooks } = hookTotals();
    const plog = new PredictionLog(store, {
      ...manual,
      maxEntryBytes: 1000,
      ...hooks,
      onWritten: () => {
        throw new Error('a broken hook');
      },
    });
    try {
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      const junk: unknown[] = [
        null,
        undefined,
        42,
        'str',
        {},
        { model: 'm' },
        { model: 'm', version: '1', input: 1, output: 1, latencyMs: Number.NaN },
        { model: 'm', version: '1', input: cyclic, output: 1, latencyMs: 1 },
        { model: 'm', version: '1', input: 10n, output: 1, latencyMs: 1 },
        { model: 'm', version: '1', input: 'x'.repeat(2000), output: 1, latencyMs: 1 },
      ];
      for (const j of junk) assert.doesNotThrow(() => plog.record(j as never));
      plog.record({ model: 'm', version: '1', input: { ok: true }, output: 1, latencyMs: 1 });
      await plog.flush();
      const rows = await plog.query({ model: 'm', since: 0 });
      assert.deepEqual(
        rows.map((r) => r.input),
        [{ ok: true }],
        'the good entry in the same batch is written',
      );
      const s = plog.stats();
      assert.equal(s.dropped['too-large'], 1);
      assert.equal(s.dropped.invalid, junk.length - 1);
      assertAccounted(s);
      assert.equal(t.dropped.invalid, junk.length - 1, 'a throwing hook does not stop the others');
    } finally {
      await plog.close();
    }
  });

  test('close() writes what is buffered within its deadline; later records are dropped, not thrown', async () => {
    const ts = await h.open();
    const plog = new PredictionLog(ts.store, { ...manual, flushBatchSize: 50, closeTimeoutMs: 5000 });
    for (let i = 0; i < 120; i++) plog.record({ model: 'm', version: '1', input: i, output: i, latencyMs: 0 });
    await plog.close();
    assert.equal(await countRows(ts.store), 120);
    assert.doesNotThrow(() => plog.record({ model: 'm', version: '1', input: 0, output: 0, latencyMs: 0 }));
    assert.equal(plog.stats().dropped.closed, 1);
    await plog.close();

    // With the store down, close() gives up within the deadline and counts what it could not write.
    const down = new PredictionLog(ts.store, { ...manual, flushBatchSize: 50, closeTimeoutMs: 1500 });
    for (let i = 0; i < 120; i++) down.record({ model: 'down', version: '1', input: i, output: i, latencyMs: 0 });
    const restore = await ts.outage();
    try {
      const t0 = Date.now();
      await down.close();
      assert.ok(Date.now() - t0 < 5000, 'close() is bounded by its deadline');
      const s = down.stats();
      assert.equal(s.buffered, 0);
      assert.equal(s.written, 0);
      assert.equal(s.dropped['write-failed'] + s.dropped.closed, 120);
      assertAccounted(s);
    } finally {
      await restore();
    }
  });
});

if (DIALECTS.includes('postgres')) {
  test('PostgreSQL: the schema dropped mid-run — writes fail and are counted; migrate() brings the table back and writing resumes', async () => {
    const ts = await openTestStore('postgres');
    const cap = capturedLogger();
    const plog = new PredictionLog(ts.store, { ...manual, log: cap.log });
    try {
      plog.record({ model: 'm', version: '1', input: 1, output: 1, latencyMs: 1 });
      await plog.flush();
      await withAdminClient((c) => c.query(`drop schema "${ts.where}" cascade`));
      for (let i = 0; i < 10; i++) plog.record({ model: 'm', version: '1', input: i, output: i, latencyMs: 1 });
      await plog.flush();
      assert.equal(plog.stats().dropped['write-failed'], 10);
      assert.equal(plog.stats().storeAvailable, false);
      await ts.store.migrate();
      plog.record({ model: 'm', version: '1', input: 'back', output: 1, latencyMs: 1 });
      await plog.flush();
      assert.deepEqual(
        (await plog.query({ model: 'm', since: 0 })).map((r) => r.input),
        ['back'],
      );
      assert.equal(plog.stats().storeAvailable, true);
      assert.equal(cap.warnings().length, 1);
      const n = await sql<{ n: number }>`select count(*)::int as n from prediction_log`.execute(ts.store.db);
      assert.equal(n.rows[0]!.n, 1);
    } finally {
      await plog.close();
      await ts.dispose();
    }
  });
}
