// The prediction log's settings as a TypeBox object for the server's config schema
// (`predictionLog: PredictionLogConfigSchema` in config/schema.ts), and the mapping to the options.
import { Type, type Static } from '@sinclair/typebox';

/** Defaults of the prediction log; the log itself falls back to them when built without a config. */
export const PREDICTION_LOG_DEFAULTS = Object.freeze({
  sampleRate: 1,
  // The log is a sample for drift detection: its cost is bounded by this cap, not by traffic
  // (docs/store.md, "What the log costs").
  maxEntriesPerSecond: 100,
  maxBufferEntries: 10_000,
  flushIntervalMs: 500,
  flushBatchSize: 500,
  maxRetryDelayMs: 5000,
  maxEntryBytes: 256 * 1024,
  retentionDays: 7,
  retentionIntervalMs: 3_600_000,
  retentionChunkRows: 10_000,
  closeTimeoutMs: 5000,
} as const);

const d = PREDICTION_LOG_DEFAULTS;

export const PredictionLogConfigSchema = Type.Object(
  {
    /** Log sampled predictions to the store (for drift detection). */
    enabled: Type.Boolean({ default: true }),
    /** Fraction of predictions logged, 0..1, for every model without its own rate in `sampleRates`. */
    sampleRate: Type.Number({ minimum: 0, maximum: 1, default: d.sampleRate }),
    /** Per-model rates as `model=rate` items, e.g. [flight-delay=0.1, spam=1]; env:
     * FERRY_PREDICTION_LOG_SAMPLE_RATES=flight-delay=0.1,spam=1.
     */
    sampleRates: Type.Array(Type.String({ pattern: '^[^=]+=[0-9.]+$' }), { default: [] }),
    /** Global cap on logged entries per second, after sampling (burst of one second). 0 = no cap. */
    maxEntriesPerSecond: Type.Integer({ minimum: 0, default: d.maxEntriesPerSecond }),
    /** Entries held in memory awaiting a write; beyond it entries are dropped and counted. */
    maxBufferEntries: Type.Integer({ minimum: 1, default: d.maxBufferEntries }),
    flushIntervalMs: Type.Integer({ minimum: 1, default: d.flushIntervalMs }),
    /** Rows per multi-row insert (at most 2000). */
    flushBatchSize: Type.Integer({ minimum: 1, maximum: 2000, default: d.flushBatchSize }),
    /** Entries whose input + output JSON is longer are not logged. */
    maxEntryBytes: Type.Integer({ minimum: 1, default: d.maxEntryBytes }),
    /** Rows older than this are deleted; 0 keeps them forever. */
    retentionDays: Type.Number({ minimum: 0, default: d.retentionDays }),
    retentionIntervalMs: Type.Integer({ minimum: 1000, default: d.retentionIntervalMs }),
    /** How long shutdown may spend writing what is buffered. */
    closeTimeoutMs: Type.Integer({ minimum: 0, default: d.closeTimeoutMs }),
  },
  { additionalProperties: false, default: {} },
);

export type PredictionLogConfig = Static<typeof PredictionLogConfigSchema>;

/** `['flight-delay=0.1', 'spam=1']` → `{ 'flight-delay': 0.1, spam: 1 }`; throws RangeError on a bad item. */
export function parseSampleRates(items: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of items) {
    const i = item.lastIndexOf('=');
    const model = item.slice(0, i).trim();
    const rate = Number(item.slice(i + 1));
    if (i <= 0 || model === '' || item.slice(i + 1).trim() === '' || !(rate >= 0 && rate <= 1)) {
      throw new RangeError(`predictionLog.sampleRates: "${item}" is not model=rate with a rate from 0 to 1`);
    }
    out[model] = rate;
  }
  return out;
}
