// THE access decision: one table from method + URL path to what a caller needs. It also lists the
// route families that other parts of Ferry add (jobs, pipelines, streaming, the OpenAI API, the
// artifact download), so a route is never open by accident. First matching row wins.
import type { Scope } from '../config/schemas/auth.js';

/**
 * - `public`: always open (probes, API docs, the dashboard's static files).
 * - `key`: open when no keys are configured; otherwise any valid key (listing, metadata, metrics).
 * - a scope: open when no keys are configured (except `admin`); otherwise a key holding the scope.
 * - `admin`: needs an admin key; with no keys configured the route does not exist (404).
 */
export type Access = 'public' | 'key' | Scope;

export interface AccessRule {
  /** Route family, for docs, logs and the scope matrix test. */
  readonly family: string;
  /** Methods this row covers; absent = all. */
  readonly methods?: readonly string[];
  readonly pattern: RegExp;
  readonly access: Access;
  /** Capture group holding the model name (`name` or `name@ref`), checked against a key's `models`. */
  readonly modelGroup?: number;
}

const M = '([^/]+)'; // a model segment; its name is checked by the route itself before any lookup
const V = '[^/]+';
const READ = ['GET', 'HEAD'];

export const ACCESS_TABLE: readonly AccessRule[] = [
  // Probes and docs: orchestrators and browsers reach them without credentials.
  { family: 'health', pattern: /^\/(healthz|readyz)$/, access: 'public' },
  { family: 'health', pattern: /^\/v2\/health\/(live|ready)$/, access: 'public' },
  { family: 'docs', methods: READ, pattern: /^\/(openapi\.json|docs(\/.*)?)?$/, access: 'public' },
  // Management: off (404) without keys; admin scope with keys.
  { family: 'admin', pattern: /^\/v1\/admin(\/.*)?$/, access: 'admin' },
  { family: 'admin', pattern: /^\/v1\/config$/, access: 'admin' },
  {
    family: 'repository-load',
    pattern: new RegExp(`^/v2/repository/models/${M}/(load|unload)$`),
    access: 'admin',
    modelGroup: 1,
  },
  // Drift of a model is read like its metadata: open on a keyless local server, any valid key (limited
  // to its models) when keys are configured. Nothing under it changes state.
  {
    family: 'drift',
    methods: READ,
    pattern: new RegExp(`^/v1/models/${M}(/versions/${V})?/drift(/histograms)?$`),
    access: 'key',
    modelGroup: 1,
  },
  // Inference.
  {
    family: 'v1-predict',
    pattern: new RegExp(`^/v1/models/${M}(/versions/${V})?/predict$`),
    access: 'predict',
    modelGroup: 1,
  },
  {
    family: 'v2-infer',
    pattern: new RegExp(`^/v2/models/${M}(/versions/${V})?/infer$`),
    access: 'predict',
    modelGroup: 1,
  },
  {
    family: 'stream',
    pattern: new RegExp(`^/v1/models/${M}(/versions/${V})?/stream$`),
    access: 'predict',
    modelGroup: 1,
  },
  { family: 'openai', pattern: /^\/openai\/v1(\/.*)?$/, access: 'predict' },
  // The LLM gateway's spend summary (the dashboard page); invalidation is under /v1/admin.
  { family: 'llm', methods: READ, pattern: /^\/v1\/llm\/spend$/, access: 'key' },
  // The edge runtime downloads the model to run it: that is inference, with the same key.
  {
    family: 'artifact',
    pattern: new RegExp(`^/v1/models/${M}/versions/${V}/artifact$`),
    access: 'predict',
    modelGroup: 1,
  },
  // Asynchronous jobs.
  { family: 'jobs', pattern: new RegExp(`^/v1/models/${M}(/versions/${V})?/jobs$`), access: 'jobs', modelGroup: 1 },
  { family: 'jobs', pattern: /^\/v1\/jobs(\/.*)?$/, access: 'jobs' },
  // Batch pipeline results are read-only for apps; anything else on a pipeline (run, schedule) is management.
  { family: 'pipelines', methods: READ, pattern: /^\/v1\/pipelines(\/.*)?$/, access: 'pipelines:read' },
  // The bulk read is a POST only because its key list is a body.
  {
    family: 'pipelines',
    methods: ['POST'],
    pattern: /^\/v1\/pipelines\/[^/]+\/predictions:batchGet$/,
    access: 'pipelines:read',
  },
  { family: 'pipelines', pattern: /^\/v1\/pipelines(\/.*)?$/, access: 'admin' },
  // Listing, metadata and rollout status: any valid key (a key limited to models sees only those).
  {
    family: 'rollout-status',
    methods: READ,
    pattern: new RegExp(`^/v1/models/${M}/rollout$`),
    access: 'key',
    modelGroup: 1,
  },
  { family: 'metadata', methods: READ, pattern: /^\/v1\/models$/, access: 'key' },
  { family: 'metadata', methods: READ, pattern: new RegExp(`^/v1/models/${M}(/.*)?$`), access: 'key', modelGroup: 1 },
  { family: 'metadata', pattern: new RegExp(`^/v2/models/${M}(/.*)?$`), access: 'key', modelGroup: 1 },
  { family: 'metadata', pattern: /^\/v2\/repository\/index$/, access: 'key' },
  { family: 'metadata', pattern: /^\/v2$/, access: 'key' },
  // Prometheus sends a bearer token (`authorization` in the scrape config); a key with no scopes will do.
  { family: 'metrics', pattern: /^\/metrics$/, access: 'key' },
  // Anything else under the APIs (unknown routes included) needs a key; other paths are static files.
  { family: 'api-other', pattern: /^\/(v1|v2|openai)(\/.*)?$/, access: 'key' },
  { family: 'static', pattern: /^\/.*$/, access: 'public' },
];

export interface AccessDecision {
  readonly rule: AccessRule;
  /** The model name from the URL (without `@ref`), when the row names one. */
  readonly model?: string;
}

/**
 * Normalises the path the way the router will see it (percent-decoded, query and trailing slash
 * dropped, repeated slashes folded) so `/v1/%61dmin` or `//v1/admin/` cannot slip past a row.
 */
export function normalisePath(url: string): string | undefined {
  const raw = url.split('?', 1)[0]!.split('#', 1)[0]!;
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    return undefined;
  }
  let path = decoded.replace(/\/{2,}/g, '/');
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  return path.startsWith('/') ? path : `/${path}`;
}

export function accessFor(method: string, url: string): AccessDecision {
  // Every request asks, and most ask about the same few URLs: the answer is kept per method and URL
  // (bounded: the memo starts over once it holds MEMO_SIZE of them, so odd URLs cannot grow it).
  const key = `${method} ${url}`;
  const known = memo.get(key);
  if (known) return known;
  const decision = decide(method, url);
  if (memo.size >= MEMO_SIZE) memo.clear();
  memo.set(key, decision);
  return decision;
}

const MEMO_SIZE = 4096;
const memo = new Map<string, AccessDecision>();

function decide(method: string, url: string): AccessDecision {
  const path = normalisePath(url);
  // A path that does not decode is refused by the router later; it must still need a key here.
  if (path === undefined) return { rule: ACCESS_TABLE.find((r) => r.family === 'api-other')! };
  for (const rule of ACCESS_TABLE) {
    if (rule.methods && !rule.methods.includes(method)) continue;
    const m = rule.pattern.exec(path);
    if (!m) continue;
    const seg = rule.modelGroup !== undefined ? m[rule.modelGroup] : undefined;
    return seg !== undefined ? { rule, model: seg.split('@', 1)[0]! } : { rule };
  }
  /* c8 ignore next */
  return { rule: ACCESS_TABLE[ACCESS_TABLE.length - 1]! };
}
