// Messages between the main thread and the inference worker threads. Tensor buffers travel as
// transferables, so a request's input and output are moved, not copied.
import type { TensorValue } from '@ferry/core';
import type { OrtSessionOptions } from './session-options.js';

export type ToWorker =
  | { type: 'load'; id: number; key: string; modelPath: string; options: OrtSessionOptions }
  | { type: 'unload'; id: number; key: string }
  | { type: 'shutdown'; id: number }
  | { type: 'run'; id: number; key: string; feeds: Record<string, TensorValue>; outputs?: string[] };

export interface IoMeta { name: string; dtype: string; shape: number[] }

export type FromWorker =
  | { type: 'loaded'; id: number; inputs: IoMeta[]; outputs: IoMeta[]; loadMs: number }
  | { type: 'unloaded'; id: number }
  | { type: 'result'; id: number; outputs: Record<string, TensorValue>; inferMs: number }
  | { type: 'error'; id: number; message: string; code?: string };
