// Which database a store URL names. One setting (`DATABASE_URL`) picks the dialect:
//   postgres://… or postgresql://…      PostgreSQL
//   sqlite:PATH, sqlite://PATH, file:PATH, a plain path, or :memory:   SQLite
//   empty                               SQLite at the default path (.ferry/ferry.db)
// `sqlite:///abs/file.db` is the absolute path /abs/file.db; relative paths resolve against `cwd`.
import { isAbsolute, resolve } from 'node:path';

export type StoreDialect = 'sqlite' | 'postgres';

export type StoreTarget =
  { readonly dialect: 'sqlite'; readonly path: string } | { readonly dialect: 'postgres'; readonly url: string };

export const DEFAULT_SQLITE_PATH = '.ferry/ferry.db';

export class StoreConfigError extends Error {
  readonly code = 'store-config';
  constructor(message: string) {
    super(message);
    this.name = 'StoreConfigError';
  }
}

/** Strips the user's password from a URL for logs and errors. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)[^@]*@/i, '$1[redacted]@');
}

export function parseStoreUrl(
  url: string | undefined,
  opts: { cwd?: string; defaultSqlitePath?: string } = {},
): StoreTarget {
  const cwd = opts.cwd ?? process.cwd();
  const raw = (url ?? '').trim();
  const sqlite = (path: string): StoreTarget => {
    if (path === '') throw new StoreConfigError(`store URL "${raw}" names no SQLite file`);
    return { dialect: 'sqlite', path: path === ':memory:' || isAbsolute(path) ? path : resolve(cwd, path) };
  };
  if (raw === '') return sqlite(opts.defaultSqlitePath ?? DEFAULT_SQLITE_PATH);
  if (/^postgres(ql)?:\/\//i.test(raw)) return { dialect: 'postgres', url: raw };
  const m = /^(sqlite|file):(.*)$/i.exec(raw);
  if (m) {
    const rest = m[2]!;
    // sqlite://rel/file.db → rel/file.db; sqlite:///abs/file.db → /abs/file.db
    return sqlite(rest.startsWith('//') ? rest.slice(2) : rest);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) {
    throw new StoreConfigError(
      `unsupported store URL "${redactUrl(raw)}": use postgres://… for PostgreSQL, or sqlite:PATH (or a file path) for SQLite`,
    );
  }
  return sqlite(raw);
}

/** PostgreSQL schema names the store accepts: plain lower-case identifiers, so they need no quoting anywhere. */
export const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export function checkSchemaName(schema: string): string {
  if (!SCHEMA_NAME.test(schema)) {
    throw new StoreConfigError(
      `invalid PostgreSQL schema name "${schema}": use lower-case letters, digits and _ (at most 63), not starting with a digit`,
    );
  }
  return schema;
}
