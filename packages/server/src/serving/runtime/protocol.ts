// Messages between the main thread and the inference worker threads. Tensor buffers travel as
// transferables, so a request's input and output are moved, not copied.
import type { FieldIssue, Instance, Manifest, Prediction, TensorValue } from '@ferry/core';
import type { HandlerShape } from './handler-module.js';
import type { OrtSessionOptions } from './session-options.js';

/** A multi-model pipeline held by one worker: both sessions live on the same thread as its handler. */
export interface PipelineSpec {
  kind: 'ocr';
  detector: { path: string; input: string; output: string };
  recognizer: { path: string; input: string; output: string };
  labels: string[];
  params: Record<string, unknown>;
}

/** A decoded picture crossing to a worker (pixels transferred, not copied). */
export interface RawImage {
  width: number;
  height: number;
  channels: 3 | 4;
  data: Uint8Array;
}

/** A version's handler module: loaded with its session, in the same worker. */
export interface HandlerSpec {
  /** Absolute path of the module. */
  path: string;
  model: { name: string; version: string };
  manifest: Manifest;
}

export type ToWorker =
  | {
      type: 'load';
      id: number;
      key: string;
      modelPath: string;
      options: OrtSessionOptions;
      pipeline?: PipelineSpec;
      handler?: HandlerSpec;
    }
  /** A call through the version's handler: validated instances in, predictions out. */
  | { type: 'handle'; id: number; key: string; instances: Instance[] }
  /** The main thread's answer to a handler's `ctx.predict` (id: the worker's own negative call id). */
  | { type: 'call-result'; id: number; predictions?: Prediction[]; error?: { message: string; code?: string } }
  | { type: 'pipeline'; id: number; key: string; image: RawImage }
  | { type: 'unload'; id: number; key: string }
  | { type: 'shutdown'; id: number }
  | { type: 'run'; id: number; key: string; feeds: Record<string, TensorValue>; outputs?: string[] };

export interface IoMeta {
  name: string;
  dtype: string;
  shape: number[];
}

export type FromWorker =
  | { type: 'loaded'; id: number; inputs: IoMeta[]; outputs: IoMeta[]; loadMs: number; handler?: HandlerShape }
  | { type: 'handled'; id: number; predictions: Prediction[]; inferMs: number }
  /** A handler's `ctx.predict(model, instances)`, asked of the main thread (id < 0, the worker's own). */
  | { type: 'call'; id: number; model: string; instances: Instance[] }
  | { type: 'unloaded'; id: number }
  | { type: 'result'; id: number; outputs: Record<string, TensorValue>; inferMs: number }
  | { type: 'pipeline-result'; id: number; result: unknown; inferMs: number }
  | { type: 'error'; id: number; message: string; code?: string; issues?: FieldIssue[] };
