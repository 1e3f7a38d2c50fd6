// The store: one Kysely code path over the embedded SQLite file (default, no setup) or PostgreSQL
// (when DATABASE_URL says so). Everything persistent in Ferry — the prediction log now; the job
// queue, batch pipeline results and drift reports later — goes through `Store.db`.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { CompiledQuery, Kysely, Migrator, SqliteDialect, sql } from 'kysely';
import type { Logger } from 'pino';
import { columnCodec, type ColumnCodec } from './columns.js';
import type { Database } from './database.js';
import { migrationProvider } from './migrations.js';
import { SchemaScopedPostgresDialect } from './scoped-dialect.js';
import { checkSchemaName, parseStoreUrl, redactUrl, type StoreDialect } from './store-url.js';

export interface StoreOptions {
  /** DATABASE_URL: `postgres://` / `postgresql://` → PostgreSQL; `sqlite:PATH`, a file path or empty → SQLite. */
  url?: string;
  /** PostgreSQL schema for every table (created if missing by `migrate()`). Default `public`. Ignored by SQLite. */
  schema?: string;
  log?: Logger;
  /** Where relative SQLite paths resolve. Default: the process's working directory. */
  cwd?: string;
  /** SQLite file used when `url` is empty. Default `.ferry/ferry.db`. */
  defaultSqlitePath?: string;
  /** SQLite: how long a write waits for another connection's lock before failing (SQLITE_BUSY). Default 5000 ms. */
  busyTimeoutMs?: number;
  /** PostgreSQL: connections in the pool. Default 10. */
  poolMax?: number;
  /** PostgreSQL: how long to wait for a connection before the query fails. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** PostgreSQL: client-side cap on one query, so a hung server cannot hold a caller forever. Default 30000 ms. */
  queryTimeoutMs?: number;
  /** `health()` answers false when `select 1` takes longer. Default 2000 ms. */
  healthTimeoutMs?: number;
}

export const STORE_DEFAULTS = Object.freeze({
  schema: 'public',
  busyTimeoutMs: 5000,
  poolMax: 10,
  connectTimeoutMs: 5000,
  queryTimeoutMs: 30_000,
  healthTimeoutMs: 2000,
} satisfies Partial<StoreOptions>);

export interface Store {
  readonly db: Kysely<Database>;
  readonly dialect: StoreDialect;
  /** Converts values whose column representation differs by dialect (JSON, booleans, BIGINT). */
  readonly codec: ColumnCodec;
  /** The PostgreSQL schema holding the tables; undefined for SQLite. */
  readonly schema: string | undefined;
  /** For logs: the SQLite file, or the PostgreSQL URL without its password, and the schema. */
  readonly location: string;
  /** Creates the schema (PostgreSQL) and runs pending migrations. Idempotent; call at start. */
  migrate(): Promise<void>;
  /** True when a trivial query answers within `healthTimeoutMs`. Never throws. */
  health(): Promise<boolean>;
  /** Closes the database handle or pool. Idempotent. */
  close(): Promise<void>;
}

const INT8_OID = 20;

/**
 * Opens the store named by `url`. SQLite is opened at once (a bad path fails here) in WAL mode;
 * PostgreSQL connects lazily, so a database that is down fails the first query, not this call.
 *
 * @example
 * const store = createStore({ url: process.env.DATABASE_URL, log });
 * await store.migrate();
 * // … store.db.selectFrom('prediction_log') …
 * await store.close();
 */
export function createStore(options: StoreOptions = {}): Store {
  const opts = { ...STORE_DEFAULTS, ...stripUndefined(options) };
  const target = parseStoreUrl(opts.url, {
    ...(opts.cwd !== undefined && { cwd: opts.cwd }),
    ...(opts.defaultSqlitePath !== undefined && { defaultSqlitePath: opts.defaultSqlitePath }),
  });
  const log = opts.log;

  let db: Kysely<Database>;
  let schema: string | undefined;
  let location: string;
  if (target.dialect === 'sqlite') {
    if (target.path !== ':memory:') mkdirSync(dirname(target.path), { recursive: true });
    const handle = new BetterSqlite3(target.path);
    try {
      // WAL: readers never block the writer; NORMAL sync is durable across process crashes in WAL mode.
      handle.pragma('journal_mode = WAL');
      handle.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs))}`);
      handle.pragma('synchronous = NORMAL');
      handle.pragma('foreign_keys = ON');
    } catch (e) {
      handle.close();
      throw e;
    }
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database: handle }) });
    location = `sqlite:${target.path}`;
  } else {
    schema = checkSchemaName(opts.schema);
    const pool = new pg.Pool({
      connectionString: target.url,
      max: opts.poolMax,
      connectionTimeoutMillis: opts.connectTimeoutMs,
      query_timeout: opts.queryTimeoutMs,
      application_name: 'ferry',
      // Epoch-ms timestamps and ids are BIGINT; pg returns int8 as a string unless told otherwise.
      // Per pool, not pg's global type table, so nothing else in the process changes.
      types: {
        getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
          oid === INT8_OID && format !== 'binary'
            ? (v: string) => Number(v)
            : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
      },
    });
    // A client that loses its server emits 'error'. The pool listens only while a client is idle, and
    // Kysely adds no listener to a checked-out one, so a connection cut mid-query would otherwise be an
    // uncaught exception that kills the server. The query itself still fails (and its caller sees it).
    pool.on('error', (err) => log?.warn({ err }, 'store: an idle PostgreSQL connection failed'));
    pool.on('connect', (client) => {
      client.on('error', (err) => log?.debug({ err }, 'store: a PostgreSQL connection failed'));
    });
    // Unqualified table names resolve in this schema only, so every query (raw `sql` too) stays inside
    // it. Set per connection with SET rather than a startup `options` parameter, which PgBouncer refuses.
    const setSearchPath = CompiledQuery.raw(`set search_path to "${schema}"`);
    db = new Kysely<Database>({
      dialect: new SchemaScopedPostgresDialect(
        {
          pool,
          onCreateConnection: async (conn) => {
            await conn.executeQuery(setSearchPath);
          },
        },
        schema,
      ),
    });
    location = `${redactUrl(target.url)} (schema ${schema})`;
  }

  const dialect = target.dialect;
  let closed = false;
  return Object.freeze({
    db,
    dialect,
    codec: columnCodec(dialect),
    schema,
    location,
    async migrate() {
      if (schema !== undefined) await ensureSchema(db, schema);
      const migrator = new Migrator({
        db,
        provider: migrationProvider(dialect),
        ...(schema !== undefined && { migrationTableSchema: schema }),
      });
      const { error, results } = await migrator.migrateToLatest();
      for (const r of results ?? []) {
        if (r.status === 'Success')
          log?.info({ migration: r.migrationName, store: location }, 'store: migration applied');
        else if (r.status === 'Error')
          log?.error({ migration: r.migrationName, store: location }, 'store: migration failed');
      }
      if (error) throw error instanceof Error ? error : new Error(String(error));
    },
    async health() {
      if (closed) return false;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<boolean>((res) => {
        timer = setTimeout(() => res(false), opts.healthTimeoutMs);
      });
      try {
        return await Promise.race([
          sql`select 1`.execute(db).then(
            () => true,
            () => false,
          ),
          timeout,
        ]);
      } finally {
        clearTimeout(timer);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await db.destroy();
    },
  } satisfies Store);
}

async function ensureSchema(db: Kysely<Database>, schema: string): Promise<void> {
  try {
    await sql`create schema if not exists ${sql.id(schema)}`.execute(db);
  } catch (e) {
    // Two processes creating the same schema at once: one loses with a unique violation, which is fine.
    if ((e as { code?: string }).code !== '23505' && (e as { code?: string }).code !== '42P06') throw e;
  }
}

function stripUndefined<T extends object>(o: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]: Exclude<T[K], undefined>;
  };
}
