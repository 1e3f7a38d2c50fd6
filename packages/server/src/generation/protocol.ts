// Messages between the main thread and the decode worker. The main thread grants `credit` (tokens the
// worker may produce ahead of the client); when the client's socket is full no credit comes, and the
// worker stops stepping that generation: backpressure reaches the model, not a buffer.
import type { OrtSessionOptions } from '../serving/runtime/session-options.js';

export interface DecoderLayout {
  layers: number;
  heads: number;
  headDim: number;
  vocabSize: number;
  /** Whether the export takes `position_ids` (some older GPT-2 exports do not). */
  positionIds: boolean;
  inputs: string[];
  outputs: string[];
}

export interface GenerateRequest {
  key: string;
  promptIds: number[];
  maxTokens: number;
  temperature: number;
  topP: number;
  seed: number;
  eosIds: number[];
  /** Tokens the worker may produce before waiting for more credit. */
  credit: number;
}

export type ToDecoder =
  | { type: 'load'; id: number; key: string; modelPath: string; options: OrtSessionOptions }
  | { type: 'unload'; id: number; key: string }
  | { type: 'generate'; id: number; request: GenerateRequest }
  | { type: 'credit'; id: number; tokens: number }
  | { type: 'cancel'; id: number }
  | { type: 'shutdown'; id: number };

export type FinishReason = 'stop' | 'length' | 'cancelled';

export type FromDecoder =
  | { type: 'loaded'; id: number; layout: DecoderLayout; loadMs: number }
  | { type: 'unloaded'; id: number }
  | {
      type: 'token';
      id: number;
      token: number;
      /** ms since the request reached the worker, for the first token */ sinceStartMs: number;
    }
  | { type: 'done'; id: number; reason: FinishReason; completionTokens: number; prefillMs: number; decodeMs: number }
  | { type: 'error'; id: number; message: string; code?: string };
