import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { createStore, migrationNames, parseStoreUrl, StoreConfigError, type Store } from '../../store/index.js';
import {
  forEachDialect,
  openTestStore,
  withAdminClient,
  DIALECTS,
  TEST_DATABASE_URL,
  uniqueSchemaName,
} from '@ferry/test-kit';

test('parseStoreUrl picks the dialect from the URL', () => {
  const cwd = '/srv/app';
  assert.deepEqual(parseStoreUrl(undefined, { cwd }), { dialect: 'sqlite', path: '/srv/app/.ferry/ferry.db' });
  assert.deepEqual(parseStoreUrl('', { cwd }), { dialect: 'sqlite', path: '/srv/app/.ferry/ferry.db' });
  assert.deepEqual(parseStoreUrl('  ', { cwd, defaultSqlitePath: 'data/x.db' }), {
    dialect: 'sqlite',
    path: '/srv/app/data/x.db',
  });
  assert.deepEqual(parseStoreUrl('postgres://u:p@db:5432/ferry', { cwd }), {
    dialect: 'postgres',
    url: 'postgres://u:p@db:5432/ferry',
  });
  assert.deepEqual(parseStoreUrl('postgresql://db/ferry', { cwd }), {
    dialect: 'postgres',
    url: 'postgresql://db/ferry',
  });
  assert.deepEqual(parseStoreUrl('sqlite:data/f.db', { cwd }), { dialect: 'sqlite', path: '/srv/app/data/f.db' });
  assert.deepEqual(parseStoreUrl('sqlite://data/f.db', { cwd }), { dialect: 'sqlite', path: '/srv/app/data/f.db' });
  assert.deepEqual(parseStoreUrl('sqlite:///var/f.db', { cwd }), { dialect: 'sqlite', path: '/var/f.db' });
  assert.deepEqual(parseStoreUrl('file:./f.db', { cwd }), { dialect: 'sqlite', path: '/srv/app/f.db' });
  assert.deepEqual(parseStoreUrl('/var/lib/ferry.db', { cwd }), { dialect: 'sqlite', path: '/var/lib/ferry.db' });
  assert.deepEqual(parseStoreUrl('sqlite::memory:', { cwd }), { dialect: 'sqlite', path: ':memory:' });
  assert.throws(
    () => parseStoreUrl('mysql://u:secret@db/ferry'),
    (e: unknown) =>
      e instanceof StoreConfigError && /unsupported store URL/.test(e.message) && !e.message.includes('secret'),
  );
  assert.throws(() => parseStoreUrl('sqlite:'), StoreConfigError);
});

test('createStore refuses a PostgreSQL schema name that would need quoting', () => {
  assert.throws(() => createStore({ url: TEST_DATABASE_URL, schema: 'Bad-Name' }), /invalid PostgreSQL schema name/);
  assert.throws(() => createStore({ url: TEST_DATABASE_URL, schema: 'x; drop table y' }), StoreConfigError);
});

test('the embedded default is a SQLite file in WAL mode under .ferry/', async () => {
  const cwd = mkdtempSync(join(tmpdir(), 'ferry-default-'));
  const store = createStore({ cwd, busyTimeoutMs: 1234 });
  try {
    assert.equal(store.dialect, 'sqlite');
    assert.ok(existsSync(join(cwd, '.ferry', 'ferry.db')));
    const mode = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(store.db);
    assert.equal(mode.rows[0]!.journal_mode, 'wal');
    const busy = await sql<{ timeout: number }>`pragma busy_timeout`.execute(store.db);
    assert.equal(busy.rows[0]!.timeout, 1234);
    await store.migrate();
    assert.equal(await store.health(), true);
  } finally {
    await store.close();
    await store.close();
    assert.equal(await store.health(), false, 'a closed store is not healthy');
    rmSync(cwd, { recursive: true, force: true });
  }
});

async function indexNames(store: Store): Promise<string[]> {
  if (store.dialect === 'sqlite') {
    const r = await sql<{
      name: string;
    }>`select name from sqlite_master where type = 'index' and tbl_name = 'prediction_log' and sql is not null`.execute(
      store.db,
    );
    return r.rows.map((x) => x.name).sort();
  }
  const r = await sql<{
    name: string;
  }>`select indexname as name from pg_indexes where schemaname = ${store.schema} and tablename = 'prediction_log' and indexname not like '%_pkey'`.execute(
    store.db,
  );
  return r.rows.map((x) => x.name).sort();
}

forEachDialect('store', (h) => {
  test('migrations are idempotent: again, and concurrently, change nothing', async () => {
    const { store } = await h.open();
    await store.migrate();
    await Promise.all([store.migrate(), store.migrate()]);
    const applied = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(store.db);
    assert.deepEqual(
      applied.rows.map((r) => r.name),
      migrationNames(store.dialect),
    );
    assert.deepEqual(await indexNames(store), ['prediction_log_model_version_ts_idx', 'prediction_log_ts_idx']);
    const count = await store.db
      .selectFrom('prediction_log')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    assert.equal(store.codec.int(count.n), 0);
  });

  test('JSON, boolean and BIGINT columns round-trip the same way in both dialects', async () => {
    const { store } = await h.open();
    const c = store.codec;
    const ts = Date.UTC(2031, 0, 2, 3, 4, 5, 678); // past 2^31 seconds and well past 2^32 ms
    // An array input matters: pg would send a JS array as a PostgreSQL array literal, not JSON.
    const values = [
      {
        input: { month: 7, origin: 'ATL', nested: { a: [1, 2.5, null] } },
        output: { label: 'on_time', scores: { on_time: 0.607 } },
        hit: true,
      },
      { input: [1, 2, 3], output: ['x', { y: 'é — ✓ "quoted"' }], hit: false },
      { input: 'a plain string', output: 42, hit: false },
      { input: null, output: true, hit: true },
    ];
    await store.db
      .insertInto('prediction_log')
      .values(
        values.map((v, i) => ({
          ts: ts + i,
          model: 'm',
          version: '1.0.0',
          input: c.json(v.input),
          output: c.json(v.output),
          latency_ms: 1.25 + i,
          fallback_reason: i === 1 ? 'timeout' : null,
          cache_hit: c.bool(v.hit),
          request_id: `req-${i}`,
        })),
      )
      .execute();
    const rows = await store.db.selectFrom('prediction_log').selectAll().orderBy('ts').execute();
    assert.equal(rows.length, values.length);
    rows.forEach((r, i) => {
      assert.equal(typeof r.id, 'number');
      assert.equal(r.ts, ts + i, 'ts comes back as the same number');
      assert.deepEqual(c.parseJson(r.input), values[i]!.input);
      assert.deepEqual(c.parseJson(r.output), values[i]!.output);
      assert.equal(c.parseBool(r.cache_hit), values[i]!.hit);
      assert.equal(r.latency_ms, 1.25 + i);
      assert.equal(r.fallback_reason, i === 1 ? 'timeout' : null);
      assert.equal(r.request_id, `req-${i}`);
    });
    // Aggregates over BIGINT are numbers too.
    const agg = await store.db
      .selectFrom('prediction_log')
      .select((eb) => [eb.fn.max('ts').as('maxTs'), eb.fn.countAll().as('n')])
      .executeTakeFirstOrThrow();
    assert.equal(c.int(agg.maxTs), ts + values.length - 1);
    assert.equal(c.int(agg.n), values.length);
  });

  test('health follows the database: false during an outage, true after', async () => {
    const t = await h.open({ healthTimeoutMs: 3000 });
    assert.equal(await t.store.health(), true);
    const restore = await t.outage();
    try {
      if (t.dialect === 'sqlite') {
        // SQLite reads still work under another connection's write lock; writes do not.
        await assert.rejects(
          t.store.db
            .insertInto('prediction_log')
            .values({
              ts: 1,
              model: 'm',
              version: 'v',
              input: '{}',
              output: '{}',
              latency_ms: 1,
              fallback_reason: null,
              cache_hit: 0,
              request_id: null,
            })
            .execute(),
          /locked|busy/i,
        );
      } else {
        assert.equal(await t.store.health(), false);
      }
    } finally {
      await restore();
    }
    assert.equal(await t.store.health(), true);
  });
});

if (DIALECTS.includes('postgres')) {
  test('PostgreSQL: each store lives in its own schema, created on migrate, nothing in public', async () => {
    const a = await openTestStore('postgres', { migrate: false });
    const b = await openTestStore('postgres');
    try {
      const before = await withAdminClient((c) =>
        c.query('select 1 from information_schema.schemata where schema_name = $1', [a.where]),
      );
      assert.equal(before.rowCount, 0, 'the schema is not created before migrate()');
      await a.store.migrate();
      await a.store.db
        .insertInto('prediction_log')
        .values({
          ts: 1,
          model: 'only-in-a',
          version: '1',
          input: '{}',
          output: '{}',
          latency_ms: 1,
          fallback_reason: null,
          cache_hit: false,
          request_id: null,
        })
        .execute();
      assert.equal(
        (await b.store.db.selectFrom('prediction_log').selectAll().execute()).length,
        0,
        "b does not see a's rows",
      );
      const tables = await withAdminClient((c) =>
        c.query<{ table_schema: string; table_name: string }>(
          'select table_schema, table_name from information_schema.tables where table_schema = any($1) order by 1, 2',
          [[a.where, b.where]],
        ),
      );
      // Every migration's tables, the same in both schemas (the list grows as features add migrations).
      const inA = tables.rows.filter((r) => r.table_schema === a.where).map((r) => r.table_name);
      const inB = tables.rows.filter((r) => r.table_schema === b.where).map((r) => r.table_name);
      assert.deepEqual(inA, inB);
      for (const t of ['kysely_migration', 'kysely_migration_lock', 'prediction_log'])
        assert.ok(inA.includes(t), `${t} in ${inA.join(', ')}`);
      const ts = await withAdminClient((c) =>
        c.query<{ data_type: string; column_name: string }>(
          `select column_name, data_type from information_schema.columns where table_schema = $1 and table_name = 'prediction_log' and column_name in ('ts', 'input', 'cache_hit') order by 1`,
          [a.where],
        ),
      );
      assert.deepEqual(
        ts.rows.map((r) => [r.column_name, r.data_type]),
        [
          ['cache_hit', 'boolean'],
          ['input', 'jsonb'],
          ['ts', 'bigint'],
        ],
      );
    } finally {
      await a.dispose();
      await b.dispose();
    }
    const after = await withAdminClient((c) =>
      c.query('select 1 from information_schema.schemata where schema_name = any($1)', [[a.where, b.where]]),
    );
    assert.equal(after.rowCount, 0, 'dispose drops the schemas');
  });

  test('PostgreSQL: migrate() is not disturbed by other schemas being dropped at the same time', async () => {
    // Another deployment (or test process) on the same database drops its schema while this store
    // migrates. Kysely's stock introspector read every schema and failed with 3F000 for the dropped
    // one; the store's introspector reads its own schema only.
    const t = await openTestStore('postgres');
    let churning = true;
    let dropped = 0;
    const churn = withAdminClient(async (c) => {
      while (churning) {
        const names = Array.from({ length: 8 }, () => uniqueSchemaName('ferry_churn'));
        for (const n of names)
          await c.query(`create schema "${n}"; create table "${n}".t (id serial primary key, v text)`);
        await Promise.all(names.map((n) => c.query(`drop schema "${n}" cascade`)));
        dropped += names.length;
      }
    });
    try {
      for (let i = 0; i < 40 || dropped < 200; i++) await t.store.migrate();
    } finally {
      churning = false;
      await churn;
      await t.dispose();
    }
    assert.ok(dropped >= 200, `schemas dropped meanwhile: ${dropped}`);
  });

  test("PostgreSQL: introspection lists this store's tables with their columns, and no other schema", async () => {
    const a = await openTestStore('postgres');
    const b = await openTestStore('postgres');
    try {
      await b.store.db.schema
        .createTable('only_in_b')
        .addColumn('id', 'serial', (c) => c.primaryKey())
        .execute();
      const tables = await a.store.db.introspection.getTables();
      assert.ok(tables.length > 0);
      assert.ok(
        tables.every((t) => t.schema === a.where),
        "every table is in this store's schema",
      );
      const names = tables.map((t) => t.name);
      assert.ok(names.includes('prediction_log'));
      assert.ok(!names.includes('only_in_b'));
      assert.ok(!names.includes('kysely_migration'), "Kysely's own tables only when asked");
      const internal = await a.store.db.introspection.getTables({ withInternalKyselyTables: true });
      assert.ok(internal.some((t) => t.name === 'kysely_migration'));
      const log = tables.find((t) => t.name === 'prediction_log');
      const ts = log?.columns.find((c) => c.name === 'ts');
      assert.deepEqual(ts && { dataType: ts.dataType, isNullable: ts.isNullable }, {
        dataType: 'int8',
        isNullable: false,
      });
      const bTables = await b.store.db.introspection.getTables();
      const id = bTables.find((t) => t.name === 'only_in_b')?.columns.find((c) => c.name === 'id');
      assert.equal(id?.isAutoIncrementing, true, 'a serial column is auto-incrementing');
      assert.equal(id?.hasDefaultValue, true);
    } finally {
      await a.dispose();
      await b.dispose();
    }
  });

  test('PostgreSQL: a connection cut in the middle of a query fails that query and nothing else', async () => {
    const t = await openTestStore('postgres');
    try {
      const slow = sql`select pg_sleep(5)`.execute(t.store.db);
      await new Promise((r) => setTimeout(r, 200));
      const restore = await t.outage();
      // Before the store listened on every client, pg raised this as an uncaught exception (process crash).
      await assert.rejects(slow, /terminated|ECONNRESET|closed/i);
      await restore();
      assert.equal(await t.store.health(), true);
    } finally {
      await t.dispose();
    }
  });

  test('PostgreSQL: a store whose server is unreachable fails queries, not construction, and health is false', async () => {
    const store = createStore({
      url: 'postgres://postgres@127.0.0.1:1/test',
      schema: uniqueSchemaName(),
      connectTimeoutMs: 500,
      healthTimeoutMs: 1000,
    });
    try {
      assert.equal(await store.health(), false);
      await assert.rejects(store.migrate());
    } finally {
      await store.close();
    }
  });
}

test('the config fragments plug into the server config: defaults, env names, options', async () => {
  const { Type } = await import('@sinclair/typebox');
  const { Value } = await import('@sinclair/typebox/value');
  const { configLeaves } = await import('../../config/index.js');
  const { StoreConfigSchema, storeOptionsFromConfig } = await import('../../store/index.js');
  const { PredictionLogConfigSchema, predictionLogOptionsFromConfig } =
    await import('../../monitoring/prediction-log/index.js');
  const schema = Type.Object(
    { store: StoreConfigSchema, predictionLog: PredictionLogConfigSchema },
    { additionalProperties: false },
  );
  const cfg = Value.Default(schema, {}) as {
    store: import('../../store/index.js').StoreConfig;
    predictionLog: import('../../monitoring/prediction-log/index.js').PredictionLogConfig;
  };
  assert.ok(Value.Check(schema, cfg), JSON.stringify([...Value.Errors(schema, cfg)]));
  assert.equal(cfg.store.url, '');
  assert.equal(cfg.store.sqlitePath, '.ferry/ferry.db');
  assert.equal(cfg.predictionLog.sampleRate, 1);
  assert.equal(cfg.predictionLog.maxEntriesPerSecond, 100);
  assert.equal(cfg.predictionLog.retentionDays, 7);
  const envs = configLeaves(schema).map((l) => l.env);
  for (const name of [
    'FERRY_STORE_URL',
    'FERRY_STORE_SCHEMA',
    'FERRY_PREDICTION_LOG_SAMPLE_RATE',
    'FERRY_PREDICTION_LOG_SAMPLE_RATES',
    'FERRY_PREDICTION_LOG_RETENTION_DAYS',
  ]) {
    assert.ok(envs.includes(name), name);
  }
  assert.equal(Value.Check(schema, { ...cfg, store: { ...cfg.store, schema: 'Bad' } }), false);
  assert.equal(
    Value.Check(schema, { ...cfg, predictionLog: { ...cfg.predictionLog, sampleRates: ['m=0.5', 'x'] } }),
    false,
  );
  const cwd = mkdtempSync(join(tmpdir(), 'ferry-cfg-'));
  const store = createStore(storeOptionsFromConfig(cfg.store, { cwd }));
  try {
    assert.equal(store.location, `sqlite:${join(cwd, '.ferry', 'ferry.db')}`);
  } finally {
    await store.close();
    rmSync(cwd, { recursive: true, force: true });
  }
  const opts = predictionLogOptionsFromConfig({ ...cfg.predictionLog, sampleRates: ['flight-delay=0.1'] });
  assert.deepEqual(opts.modelSampleRates, { 'flight-delay': 0.1 });
  assert.equal(opts.flushBatchSize, 500);
});
