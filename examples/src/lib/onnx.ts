// The server's ONNX graph toolkit, for the generators. @ferry/server exports only its root entry,
// which does not include the toolkit, so this is the one place that reaches into its build output.
export * from '../../../packages/server/dist/onnx/index.js';
