// The store: embedded SQLite by default, PostgreSQL when DATABASE_URL says so, one Kysely code path,
// migrations in code. See docs/store.md.
export { createStore, STORE_DEFAULTS, type Store, type StoreOptions } from './create-store.js';
export {
  parseStoreUrl,
  redactUrl,
  checkSchemaName,
  StoreConfigError,
  DEFAULT_SQLITE_PATH,
  type StoreDialect,
  type StoreTarget,
} from './store-url.js';
export { columnCodec, type ColumnCodec } from './columns.js';
export { migrationNames } from './migrations.js';
export type {
  Database,
  JobsTable,
  PredictionLogTable,
  PredictionLogRecord,
  NewPredictionLogRecord,
  JsonColumn,
  BoolColumn,
  EpochMsColumn,
} from './database.js';
export { StoreConfigSchema, storeOptionsFromConfig, type StoreConfig } from '../config/schemas/store.js';
export { isStoreOutage, storeUnavailable } from './outage.js';
