// Streaming inference: WebSocket audio sessions with recurrent state, and SSE on /predict.
export { StreamingConfigSchema, type StreamingConfig } from './config-schema.js';
export { registerStreaming, type StreamingService } from './route.js';
export { streamPredict, wantsEventStream } from './sse-predict.js';
export { VadSegmenter, VAD_DEFAULTS, type VadParams, type SegmentEvent } from './vad-segmenter.js';
export { PcmFramer, type SampleFormat } from './pcm-framer.js';
export { CLOSE } from './close-codes.js';
export { runStreamCli } from './cli-stream.js';
export { decodeWav, type WavAudio } from './wav.js';
