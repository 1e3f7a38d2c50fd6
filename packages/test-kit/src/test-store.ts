// Test helper: run the same tests against every dialect the store supports, on real databases —
// a temporary SQLite file, and the PostgreSQL server (FERRY_TEST_DATABASE_URL, default
// postgres://postgres@127.0.0.1:5432/test) in a fresh schema per store, dropped afterwards.
// Modelled on Kysely's own suite, which loops one set of tests over its dialects.
//
// Every test store can have an outage: SQLite is locked by another connection (writes fail with
// SQLITE_BUSY after a short busy timeout); PostgreSQL is reached through a loopback proxy that
// stops (port closed, connections cut) and restarts. Both are real failures of real databases.
//
// FERRY_TEST_DIALECTS=sqlite (or postgres) narrows the loop for a machine without PostgreSQL;
// by default both run, and a PostgreSQL that does not answer fails the tests.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { after, describe } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { createStore, type Store, type StoreOptions } from '../../server/dist/store/create-store.js';
import type { StoreDialect } from '../../server/dist/store/store-url.js';
import { TcpProxy } from './tcp-proxy.js';

export const TEST_DATABASE_URL = process.env.FERRY_TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';

export const DIALECTS: readonly StoreDialect[] = (() => {
  const only = (process.env.FERRY_TEST_DIALECTS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const all: StoreDialect[] = ['sqlite', 'postgres'];
  return only.length ? all.filter((d) => only.includes(d)) : all;
})();

export interface TestStore {
  readonly store: Store;
  readonly dialect: StoreDialect;
  /** The SQLite file, or the PostgreSQL schema. */
  readonly where: string;
  /** Makes the database fail for this store until the returned function is awaited. */
  outage(): Promise<() => Promise<void>>;
  /** Closes the store and removes its file or schema. Idempotent. */
  dispose(): Promise<void>;
}

export interface OpenTestStoreOptions extends Omit<StoreOptions, 'url' | 'schema'> {
  /** Run migrations before returning (default true). */
  migrate?: boolean;
}

/** A unique, valid schema name for one test store. */
export function uniqueSchemaName(prefix = 'ferry_t'): string {
  return `${prefix}_${process.pid}_${randomBytes(5).toString('hex')}`;
}

/** Runs SQL on the test PostgreSQL server directly (not through a test store's proxy). */
export async function withAdminClient<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function openTestStore(dialect: StoreDialect, opts: OpenTestStoreOptions = {}): Promise<TestStore> {
  const { migrate = true, ...storeOpts } = opts;
  const t = dialect === 'sqlite' ? openSqlite(storeOpts) : await openPostgres(storeOpts);
  if (migrate) {
    try {
      await t.store.migrate();
    } catch (e) {
      await t.dispose();
      throw e;
    }
  }
  return t;
}

function openSqlite(opts: Omit<StoreOptions, 'url' | 'schema'>): TestStore {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-store-'));
  const path = join(dir, 'ferry.db');
  // A short busy timeout: during an outage each write fails fast instead of stalling the test.
  const store = createStore({ busyTimeoutMs: 50, ...opts, url: `sqlite:${path}` });
  let disposed = false;
  return {
    store,
    dialect: 'sqlite',
    where: path,
    async outage() {
      const locker = new BetterSqlite3(path);
      locker.pragma('busy_timeout = 5000');
      locker.exec('BEGIN EXCLUSIVE');
      return async () => {
        locker.exec('ROLLBACK');
        locker.close();
      };
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function openPostgres(opts: Omit<StoreOptions, 'url' | 'schema'>): Promise<TestStore> {
  const target = new URL(TEST_DATABASE_URL);
  const proxy = new TcpProxy(target.hostname.replace(/^\[|\]$/g, ''), Number(target.port || 5432));
  await proxy.start();
  const proxied = new URL(TEST_DATABASE_URL);
  proxied.hostname = '127.0.0.1';
  proxied.port = String(proxy.port);
  const schema = uniqueSchemaName();
  const store = createStore({
    connectTimeoutMs: 2000,
    queryTimeoutMs: 10_000,
    ...opts,
    url: proxied.toString(),
    schema,
  });
  let disposed = false;
  return {
    store,
    dialect: 'postgres',
    where: schema,
    async outage() {
      await proxy.stop();
      return () => proxy.start();
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      try {
        await store.close();
      } finally {
        await proxy.stop();
        await withAdminClient((c) => c.query(`drop schema if exists "${schema}" cascade`));
      }
    },
  };
}

export interface DialectHarness {
  readonly dialect: StoreDialect;
  /** A fresh store for one test (its own file or schema), disposed when the suite ends. */
  open(opts?: OpenTestStoreOptions): Promise<TestStore>;
}

/**
 * Declares the suite once per dialect: `forEachDialect('prediction log', (h) => { test('…', async () => { const t =
 * await h.open(); … }) })`.
 * Stores opened through `h.open` are disposed (file deleted, schema dropped) after the suite.
 */
export function forEachDialect(name: string, fn: (h: DialectHarness) => void): void {
  for (const dialect of DIALECTS) {
    describe(`${name} [${dialect}]`, () => {
      const opened: TestStore[] = [];
      after(async () => {
        const results = await Promise.allSettled(opened.splice(0).map((t) => t.dispose()));
        const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
      });
      fn({
        dialect,
        async open(opts) {
          const t = await openTestStore(dialect, opts);
          opened.push(t);
          return t;
        },
      });
    });
  }
}
