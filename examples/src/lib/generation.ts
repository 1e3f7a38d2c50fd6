// The server's decoder graph builder and byte-level tokenizer writer, for the generative example.
// Reached through the server's build output, as lib/onnx.ts does for the ONNX toolkit.
export * from '../../../packages/server/dist/generation/decoder-graph.js';
export * from '../../../packages/server/dist/generation/byte-tokenizer.js';
export { seededRandom } from '../../../packages/server/dist/generation/sampler.js';
