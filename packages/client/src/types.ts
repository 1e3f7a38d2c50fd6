// Wire types of Ferry's v1 API as the client sees them, and the registry per-model types plug into.

/** A prediction as the server's postprocessing writes it. */
export interface ClassificationPrediction<L extends string = string> {
  label: L;
  scores: Record<L, number>;
  topK?: Array<{ label: L; score: number }>;
}
export interface RegressionPrediction {
  value: number | number[];
}
export type AnyPrediction = ClassificationPrediction | RegressionPrediction | Record<string, unknown>;

/**
 * Per-model types. Empty here; `ferry client types --out src/ferry-models.d.ts` writes a file that
 * augments it with one entry per model (and per `name@major` and exact version):
 * `{ input: {...features}; prediction: {...}; label: 'a' | 'b' }`.
 */

// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- augmented by generated types
export interface ModelRegistry {}

export interface ModelTypes {
  input: Record<string, unknown>;
  prediction: AnyPrediction;
}
export type ModelName = keyof ModelRegistry extends never ? string : keyof ModelRegistry;
export type InputOf<M> = M extends keyof ModelRegistry
  ? ModelRegistry[M] extends ModelTypes
    ? ModelRegistry[M]['input']
    : Record<string, unknown>
  : Record<string, unknown>;
export type PredictionOf<M> = M extends keyof ModelRegistry
  ? ModelRegistry[M] extends ModelTypes
    ? ModelRegistry[M]['prediction']
    : AnyPrediction
  : AnyPrediction;

export interface FallbackInfo {
  /** `client`: the app's own fallback answered (server unreachable or too slow); otherwise the server's policy. */
  source: 'client' | 'server';
  reason: string;
  policy?: string;
}

export interface PredictResult<P = AnyPrediction> {
  model: string;
  version: string;
  predictions: P[];
  /** Present when the answer is a fallback rather than the model's own. */
  fallback?: FallbackInfo;
  /** `hit` when the server answered from its prediction cache. */
  cache?: string;
  /** Client-measured round trip in ms (including retries). */
  latencyMs: number;
}

export interface VersionSummary {
  version: string;
  state: string;
  description?: string;
  loadMs?: number;
  warmupMs?: number;
}
export interface ModelSummary {
  name: string;
  defaultVersion: string;
  aliases: Record<string, string>;
  versions: VersionSummary[];
}
export interface ModelDescription extends VersionSummary {
  name: string;
  contract: Record<string, unknown> & {
    inputs: Array<Record<string, unknown> & { name: string; type: string }>;
    outputs: unknown[];
    postprocess?: Record<string, unknown>;
  };
  schemas: { instance: unknown; request: unknown; response: unknown };
  card?: string;
  /** One instance the version takes (warm-up instance, first reference row, or built from the contract). */
  example?: Record<string, unknown>;
  defaultVersion?: string;
  aliases?: Record<string, string>;
  versions?: VersionSummary[];
}

export type JobState = 'queued' | 'active' | 'completed' | 'failed' | 'cancelled';
export interface Job<R = unknown> {
  id: string;
  model: string;
  version: string;
  state: JobState;
  progress?: number | Record<string, unknown> | null;
  result?: R | null;
  error?: unknown;
  attempts?: number;
  createdAt?: string;
  startedAt?: string | null;
  finishedAt?: string | null;
  [k: string]: unknown;
}

export interface TimeseriesPoint {
  t: number;
  requests: number;
  rps: number;
  p50Ms: number | null;
  p99Ms: number | null;
  errorRate: number | null;
  fallbackRate: number | null;
  cacheHitRate: number | null;
}
export interface Timeseries {
  intervalSeconds: number;
  model: string;
  models: string[];
  points: TimeseriesPoint[];
}
