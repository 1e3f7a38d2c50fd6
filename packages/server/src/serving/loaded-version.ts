// The serving state of one loaded model version, shared by the model service (which builds and
// swaps loads) and the predictor (which runs requests on them) so neither imports the other.
import type { Decoder, Encoder, Prediction } from '@ferry/core';
import type { ModelVersion } from './repository/index.js';
import type { IoMeta, PipelineSpec } from './runtime/protocol.js';
import type { RequestValidator } from './predict/validation.js';
import type { BatchingChoice, DynamicBatcher, ProbeTiming } from './batching/index.js';
import type { CircuitBreaker } from './predict/breaker.js';
import type { HandlerShape } from './runtime/handler-module.js';
import type { PlacementInForce } from './runtime/placement.js';
import type { TensorBodyReader } from './predict/tensor-body.js';

export type VersionState = 'loading' | 'ready' | 'failed';

/** The batching a load runs with: from its contract, or measured at warm-up where the contract left it unset. */
export interface BatchingInForce {
  enabled: boolean;
  maxBatchSize: number;
  maxQueueDelayUs: number;
  /** Batches of this version that run at once (workers holding it). */
  concurrency: number;
  /** `default`: warm-up was off, so the unmeasured default size applies. */
  source: 'contract' | 'measured' | 'default';
  /**
   * On one core, when `maxBatchSize` was cut to the batch that runs on the main thread: the size the
   * probe chose (runtime/placement.ts).
   */
  measuredMaxBatchSize?: number;
}

export interface LoadedVersion {
  readonly version: ModelVersion;
  /** Key of this load's sessions in the pool: `name@version#generation`, so a reload can warm new sessions beside the
   * old.
   */
  readonly sessionKey: string;
  /** Requests holding this load (counted so a replaced load is disposed only once they finish). */
  users: number;
  /**
   * `name@version~digest` of the model and manifest bytes: the prediction cache's key, so answers
   * cached before a reload with new weights are never served after it (and replicas agree).
   */
  contentKey: string;
  readonly encoder: Encoder;
  readonly decoder: Decoder;
  readonly validator: RequestValidator;
  /**
   * For a contract of one float32 tensor fed as sent, neither cached nor handled in code: reads a plain
   * JSON body straight into the batch's tensor (predict/tensor-body.ts).
   */
  readonly bodyReader?: TensorBodyReader;
  state: VersionState;
  error?: string;
  inputs: IoMeta[];
  outputs: IoMeta[];
  loadMs?: number;
  warmupMs?: number;
  readonly batcher: DynamicBatcher;
  /** Set once warmed. */
  batching?: BatchingInForce;
  /** The batching probe's choice and timings, when the size was measured at warm-up. */
  batchingProbe?: BatchingChoice & { timings: ProbeTiming[] };
  readonly breaker: CircuitBreaker;
  /** Where its batches run (`runtime.placement`; for `auto`, measured at warm-up). */
  readonly placement: PlacementInForce;
  /** Set once loaded for a version with a handler module: which parts of the path it replaces. */
  handler?: HandlerShape;
  /** For a version with a handler: holds its predictions against the contract (count and schema). */
  checkPredictions?: (predictions: unknown, rows: number, key: string) => Prediction[];
  /** Set for pipeline versions (e.g. OCR) once loaded: what the worker runs. */
  pipeline?: PipelineSpec;
}
