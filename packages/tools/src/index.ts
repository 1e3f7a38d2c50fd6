// @ferry/tools: what Ferry offers besides serving. The ONNX graph builder (examples and test fixtures
// build real models with it), the INT8 quantiser, and bench and cost planning.
export * from './onnx/index.js';
export * from './quantize/index.js';
export * from './capacity/index.js';
