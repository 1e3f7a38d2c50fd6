// Messages between the main thread and the inference worker threads. Tensor buffers travel as
// transferables, so a request's input and output are moved, not copied.
import type { TensorValue } from '@ferry/core';
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

export type ToWorker =
  | { type: 'load'; id: number; key: string; modelPath: string; options: OrtSessionOptions; pipeline?: PipelineSpec }
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
  | { type: 'loaded'; id: number; inputs: IoMeta[]; outputs: IoMeta[]; loadMs: number }
  | { type: 'unloaded'; id: number }
  | { type: 'result'; id: number; outputs: Record<string, TensorValue>; inferMs: number }
  | { type: 'pipeline-result'; id: number; result: unknown; inferMs: number }
  | { type: 'error'; id: number; message: string; code?: string };
