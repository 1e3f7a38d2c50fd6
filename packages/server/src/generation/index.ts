// Generative models: a decoder-only ONNX runtime with a KV cache in a dedicated worker, and the
// OpenAI-compatible API that streams its tokens.
export {
  GenerationService,
  Generation,
  type GenerationParams,
  type GenerationResult,
  type GenerativeVersion,
  type EndReason,
} from './service.js';
export { GenerationMetrics } from './metrics.js';
export { GenerationConfigSchema, type GenerationConfig } from '../config/schemas/generation.js';
export { TextCodec, TextStream, type ChatMessage } from './text-codec.js';
export { KvSequence, decoderLayout } from './decoder-session.js';
export { sampleToken, seededRandom, argmax } from './sampler.js';
