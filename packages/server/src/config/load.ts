// Loading the configuration: merge the sources in order, validate once, freeze.
import { existsSync, readFileSync } from 'node:fs';
import { webhookUrlProblems } from './redact.js';
import { resolve } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import type { TObject, TSchema } from '@sinclair/typebox';
import { parse as parseYaml } from 'yaml';
import { ConfigSchema, type FerryConfig } from './schema.js';
import { ApiKeyError, parseApiKeysEnv } from './api-keys.js';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Json = Record<string, unknown>;

export interface ConfigSources {
  /** Path of ferry.config.yaml; when absent, `./ferry.config.yaml` is used if it exists. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Dotted-path overrides, e.g. from CLI flags: `{ 'server.port': 9000 }`. */
  overrides?: Record<string, unknown>;
  cwd?: string;
}

/** `maxTensorElements` → `MAX_TENSOR_ELEMENTS`. */
const snake = (s: string): string => s.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();

interface Leaf {
  path: string[];
  schema: TSchema;
  env: string;
}

/** Every leaf setting with its environment variable name (FERRY_SERVER_PORT → server.port). */
export function configLeaves(schema: TObject = ConfigSchema, prefix: string[] = []): Leaf[] {
  const out: Leaf[] = [];
  for (const [key, sub] of Object.entries(schema.properties)) {
    const path = [...prefix, key];
    if ((sub as TSchema).type === 'object' && (sub as TObject).properties)
      out.push(...configLeaves(sub as TObject, path));
    else out.push({ path, schema: sub as TSchema, env: `FERRY_${path.map(snake).join('_')}` });
  }
  return out;
}

function setPath(target: Json, path: string[], value: unknown): void {
  let cur = target;
  for (const k of path.slice(0, -1)) {
    if (typeof cur[k] !== 'object' || cur[k] === null) cur[k] = {};
    cur = cur[k] as Json;
  }
  cur[path[path.length - 1]!] = value;
}

function deepMerge(a: Json, b: Json): Json {
  const out: Json = { ...a };
  for (const [k, v] of Object.entries(b)) {
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && out[k] && typeof out[k] === 'object'
        ? deepMerge(out[k] as Json, v as Json)
        : v;
  }
  return out;
}

/** Parses a string from the environment or a flag into the leaf's type. */
function parseScalar(raw: string, schema: TSchema, where: string): unknown {
  const type = schema.type ?? (schema.anyOf ? 'string' : undefined);
  if (type === 'integer' || type === 'number') {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n)) throw new ConfigError(`${where}: "${raw}" is not a number`);
    return n;
  }
  if (type === 'boolean') {
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    throw new ConfigError(`${where}: "${raw}" is not a boolean`);
  }
  if (type === 'array')
    return raw
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  return raw;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

export function loadConfig(sources: ConfigSources = {}): FerryConfig {
  const cwd = sources.cwd ?? process.cwd();
  const env = sources.env ?? process.env;
  let merged: Json = {};

  const file =
    sources.file ??
    env.FERRY_CONFIG ??
    (existsSync(resolve(cwd, 'ferry.config.yaml')) ? 'ferry.config.yaml' : undefined);
  if (file) {
    const path = resolve(cwd, file);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw new ConfigError(`cannot read config file ${path}: ${(e as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = parseYaml(text) ?? {};
    } catch (e) {
      throw new ConfigError(`${path}: invalid YAML: ${(e as Error).message}`);
    }
    if (typeof parsed !== 'object' || Array.isArray(parsed))
      throw new ConfigError(`${path}: the top level must be a mapping`);
    merged = deepMerge(merged, parsed as Json);
  }

  const leaves = configLeaves();
  for (const leaf of leaves) {
    const raw = env[leaf.env];
    if (raw !== undefined) setPath(merged, leaf.path, parseScalar(raw, leaf.schema, leaf.env));
  }
  // The conventional names of the scale-out services, below their FERRY_* forms.
  // An empty one counts as unset (a template that expanded to nothing must not swap the config file's
  // PostgreSQL or Redis for the embedded defaults); FERRY_STORE_URL= / FERRY_REDIS_URL= do that on purpose.
  if (env.REDIS_URL && env.FERRY_REDIS_URL === undefined) setPath(merged, ['redis', 'url'], env.REDIS_URL);
  if (env.DATABASE_URL && env.FERRY_STORE_URL === undefined) setPath(merged, ['store', 'url'], env.DATABASE_URL);
  // Keys from the environment are hashed here: the clear text never reaches the config object.
  if (env.FERRY_API_KEYS) {
    let keys;
    try {
      keys = parseApiKeysEnv(env.FERRY_API_KEYS);
    } catch (e) {
      if (e instanceof ApiKeyError) throw new ConfigError(e.message);
      throw e;
    }
    const auth = (merged.auth ?? {}) as Json;
    setPath(merged, ['auth', 'keys'], [...(Array.isArray(auth.keys) ? auth.keys : []), ...keys]);
  }
  for (const [dotted, value] of Object.entries(sources.overrides ?? {})) {
    if (value === undefined) continue;
    const leaf = leaves.find((l) => l.path.join('.') === dotted);
    if (!leaf) throw new ConfigError(`unknown setting "${dotted}"`);
    setPath(merged, leaf.path, typeof value === 'string' ? parseScalar(value, leaf.schema, `--${dotted}`) : value);
  }

  const withDefaults = Value.Default(ConfigSchema, Value.Clone(merged)) as Json;
  const errors = [...Value.Errors(ConfigSchema, withDefaults)];
  if (errors.length) {
    const lines = errors.slice(0, 10).map((e) => `  ${e.path || '/'}: ${e.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const cfg = withDefaults as FerryConfig;
  const webhookProblems = webhookUrlProblems(cfg);
  if (webhookProblems.length) throw new ConfigError(`invalid configuration:\n  ${webhookProblems.join('\n  ')}`);
  cfg.models.dir = resolve(cwd, cfg.models.dir);
  cfg.store.sqlitePath = resolve(cwd, cfg.store.sqlitePath);
  return deepFreeze(cfg);
}
