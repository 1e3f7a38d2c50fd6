// The decoder graph builder (@ferry/tools) and the server's byte-level tokenizer writer, for the
// generative example. The tokenizer is reached through the server's build output: @ferry/server exports
// only its root entry, which does not include it.
export {
  buildDecoderOnnx,
  randomDecoderWeights,
  type DecoderShape,
  type DecoderWeights,
  type LayerWeights,
} from '@ferry/tools/onnx';
export * from '../../../packages/server/dist/generation/byte-tokenizer.js';
export { seededRandom } from '../../../packages/server/dist/generation/sampler.js';
