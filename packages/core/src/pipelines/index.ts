// Multi-step inference pipelines whose algorithm is independent of where the models run: the caller
// injects runners (ONNX Runtime in Node or worker threads, onnxruntime-web in the browser).
export * from './geometry.js';
export * from './db-postprocess.js';
export * from './ocr.js';
