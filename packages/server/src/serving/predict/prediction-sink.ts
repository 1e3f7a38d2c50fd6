// Where the predict path reports each answered instance. Defined here so serving does not depend on
// monitoring: monitoring's PredictionLog satisfies it and app/ wires one into the model service.

/** One answered instance, as the predictor saw it. */
export interface PredictionRecord {
  model: string;
  /** The version that answered (after a `version` fallback, the fallback's version). */
  version: string;
  /** The validated instance; kept by reference by the sink, never mutated afterwards. */
  input: unknown;
  output: unknown;
  latencyMs: number;
  fallbackReason?: string | null;
  cacheHit?: boolean;
  requestId?: string | null;
  /** Epoch ms of the prediction. */
  ts?: number;
}

export interface PredictionSink {
  /**
   * Called on the hot path: must return at once (sample, buffer, write in the background). With
   * `admitted`, the entry was already sampled in by `admit` and is kept without deciding again.
   */
  record(entry: PredictionRecord, admitted?: boolean): void;
  /** Samples one prediction of `model` before its entry is built (answers whose instances are not parsed yet). */
  admit(model: string): boolean;
}
