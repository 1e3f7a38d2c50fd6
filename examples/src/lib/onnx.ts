// The ONNX graph toolkit of @ferry/tools, for the generators.
export * from '@ferry/tools/onnx';
