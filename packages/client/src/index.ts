// @ferry/client: the browser-safe entry (no Node-only imports; a test bundles it for the browser).
export { createClient, FerryClient, ModelHandle, parseRetryAfter, splitModelRef } from './client.js';
export type { ClientOptions, CallOptions, PredictOptions, RetryOptions, Fallback } from './client.js';
export * from './errors.js';
// The catalogue is @ferry/core's own: the client reads the server's list, it keeps no copy.
export { ERROR_CATALOGUE, ERROR_CATALOGUE as ERROR_CODES, isErrorCode, type ErrorCode } from '@ferry/core';
export { parseSse, type SseEvent } from './sse.js';
export { AudioSession, decodeWav } from './audio.js';
export type {
  AudioClose,
  AudioDoneEvent,
  AudioErrorEvent,
  AudioEvent,
  AudioReadyEvent,
  AudioSessionOptions,
  ProbabilityEvent,
  SpeechEndEvent,
  SpeechStartEvent,
} from './audio.js';
export type { ChatMessage, ChatRequest, TokenChunk } from './openai.js';
export type * from './types.js';
