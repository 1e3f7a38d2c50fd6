// The types of a model's TypeScript handler: the module a version names with `handler:` in its
// ferry.yaml, for what the contract's steps cannot express. The server loads it with the version,
// inside the inference worker threads (never on the HTTP thread); see docs/handlers.md. A team writes
//
//   import type { ModelHandler } from '@ferry/core';
//   export default { preprocess(instances, ctx) { ... } } satisfies ModelHandler<MyInstance>;
//
// A handler is trusted code: it runs with the server's rights, like the model files beside it.
import type { Manifest } from './schema.js';
import type { TensorValue } from '../tensor.js';
import type { Prediction } from '../postprocess/decode.js';
import type { Instance } from '../preprocess/encoder.js';
import type { FieldIssue } from '../errors.js';

/** What a handler's functions are given besides their data. */
export interface HandlerContext {
  /** The version this handler serves. */
  readonly model: { readonly name: string; readonly version: string };
  /** The version's contract (ferry.yaml), as validated at load. */
  readonly manifest: Manifest;
  /** The contract's own preprocessing (its `preprocess` bindings): instances → the model's input tensors. */
  encode(instances: readonly Instance[]): Record<string, TensorValue>;
  /** The contract's own postprocessing: output tensors → one prediction per instance. */
  decode(outputs: Record<string, TensorValue>, rows: number): Prediction[];
  /** Runs this version's ONNX model (in this worker thread) on input tensors; all tensor outputs come back. */
  run(feeds: Record<string, TensorValue>): Promise<Record<string, TensorValue>>;
  /**
   * Predicts with another model of the repository (`name`, `name@1`, `name@1.2.0`, `name@stable`) through its
   * full predict path (validation, cache, batching). Instances are in that model's feature form.
   */
  predict(model: string, instances: readonly Instance[]): Promise<Prediction[]>;
  /**
   * Refuses the request as bad input (400 `invalid-input`). Pointers are relative to the instances the
   * handler was given (`/0/text`); the server rewrites them to the request's own (`/instances/3/text`).
   */
  invalid(issues: ReadonlyArray<FieldIssue> | string): never;
}

/**
 * A model's handler. Every function is optional; what it leaves out, the contract does. Each takes the
 * instances of one call (already validated against the contract's inputs), in request order, and its
 * answer is checked against the contract's prediction schema before it is returned.
 */
export interface ModelHandler<I extends Instance = Instance, P extends Prediction = Prediction> {
  /** Instances → the model's input tensors (instead of the contract's `preprocess`). */
  preprocess?(instances: I[], ctx: HandlerContext): Record<string, TensorValue> | Promise<Record<string, TensorValue>>;
  /** The model's output tensors → one prediction per instance (instead of the contract's `postprocess`). */
  postprocess?(outputs: Record<string, TensorValue>, instances: I[], ctx: HandlerContext): P[] | Promise<P[]>;
  /**
   * The whole call (instead of preprocess → run → postprocess): may run this model with `ctx.run`, call
   * other models with `ctx.predict`, or answer without a model. One prediction per instance.
   */
  predict?(instances: I[], ctx: HandlerContext): P[] | Promise<P[]>;
  /** Called once when the version loads in a worker (before warm-up), e.g. to read a file beside the model. */
  setup?(ctx: HandlerContext): void | Promise<void>;
}

/** Identity helper that types a handler without `satisfies`: `export default defineHandler({...})`. */
export function defineHandler<I extends Instance = Instance, P extends Prediction = Prediction>(
  handler: ModelHandler<I, P>,
): ModelHandler<I, P> {
  return handler;
}
