// Streaming inference: WebSocket audio sessions with recurrent state, and SSE on /predict.
export { StreamingConfigSchema, type StreamingConfig } from '../config/schemas/streaming.js';
export { type StreamingService } from '../http/plugins/stream.js';
export { streamPredict, wantsEventStream } from '../http/plugins/sse-predict.js';
export { VadSegmenter, VAD_DEFAULTS, type VadParams, type SegmentEvent } from './vad-segmenter.js';
export { PcmFramer, type SampleFormat } from './pcm-framer.js';
export { CLOSE } from './close-codes.js';
export { runStreamCli } from '../cli/commands/stream.js';
export { decodeWav, type WavAudio } from './wav.js';
