// @ferry/core: the inference contract and the code that turns requests into tensors and tensors
// into predictions. Pure TypeScript with no Node-only imports: the server and the browser share it.
export * from './contract/schema.js';
export * from './contract/json-schema.js';
export * from './contract/compat.js';
export * from './contract/handler.js';
export * from './errors.js';
export * from './error-catalogue.js';
export * from './tensor.js';
export * from './preprocess/registry.js';
export * from './preprocess/encoder.js';
export * from './postprocess/decode.js';
export * from './postprocess/transformer.js';
export * from './preprocess/text-tokenizer.js';
export * from './preprocess/steps-image.js';
export * from './preprocess/steps-audio.js';
export * from './postprocess/ctc.js';
export * from './pipelines/index.js';
export * from './random.js';
export * from './float16.js';
