// The store's settings as a TypeBox object, for the server's one config schema
// (`store: StoreConfigSchema` in config/schema.ts), and the mapping to createStore's options.
import { Type, type Static } from '@sinclair/typebox';
import type { Logger } from 'pino';
import { STORE_DEFAULTS, type StoreOptions } from '../../store/create-store.js';
import { DEFAULT_SQLITE_PATH } from '../../store/store-url.js';

export const StoreConfigSchema = Type.Object(
  {
    /** postgres://… (PostgreSQL) or sqlite:PATH / a file path (SQLite); empty = SQLite at `sqlitePath`. Also read from DATABASE_URL. */
    url: Type.String({ default: '' }),
    /** The embedded SQLite file when `url` is empty, relative to the working directory. */
    sqlitePath: Type.String({ default: DEFAULT_SQLITE_PATH }),
    /** PostgreSQL schema holding Ferry's tables; created if missing. */
    schema: Type.String({ default: STORE_DEFAULTS.schema, pattern: '^[a-z_][a-z0-9_]{0,62}$' }),
    /** SQLite: how long a write waits for a lock held by another process. */
    busyTimeoutMs: Type.Integer({ minimum: 0, default: STORE_DEFAULTS.busyTimeoutMs }),
    /** PostgreSQL: pool size. */
    poolMax: Type.Integer({ minimum: 1, maximum: 1000, default: STORE_DEFAULTS.poolMax }),
    /** PostgreSQL: wait for a connection at most this long. */
    connectTimeoutMs: Type.Integer({ minimum: 1, default: STORE_DEFAULTS.connectTimeoutMs }),
    /** PostgreSQL: client-side cap on one query. */
    queryTimeoutMs: Type.Integer({ minimum: 1, default: STORE_DEFAULTS.queryTimeoutMs }),
  },
  { additionalProperties: false, default: {} },
);

export type StoreConfig = Static<typeof StoreConfigSchema>;

export function storeOptionsFromConfig(cfg: StoreConfig, extra: { log?: Logger; cwd?: string } = {}): StoreOptions {
  return {
    url: cfg.url,
    defaultSqlitePath: cfg.sqlitePath,
    schema: cfg.schema,
    busyTimeoutMs: cfg.busyTimeoutMs,
    poolMax: cfg.poolMax,
    connectTimeoutMs: cfg.connectTimeoutMs,
    queryTimeoutMs: cfg.queryTimeoutMs,
    ...extra,
  };
}
