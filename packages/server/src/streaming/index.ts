// Streaming inference: WebSocket audio sessions with recurrent state, and SSE on /predict.
export { StreamingConfigSchema, type StreamingConfig } from '../config/schemas/streaming.js';
export { VadSegmenter, VAD_DEFAULTS, type VadParams, type SegmentEvent } from './vad-segmenter.js';
export { PcmFramer, type SampleFormat } from './pcm-framer.js';
export { CLOSE } from './close-codes.js';
export { decodeWav, type WavAudio } from './wav.js';
export { createStreamingService, type StreamingService, type StreamingServiceDeps } from './streaming-service.js';
