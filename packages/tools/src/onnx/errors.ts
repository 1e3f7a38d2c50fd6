// Errors of the ONNX toolkit: a graph that cannot be serialised, or bytes that are not an ONNX model.

/** A graph the builder refuses to serialise (undefined value, duplicate name, missing output, ...). */
export class OnnxGraphError extends Error {
  readonly code = 'ONNX_GRAPH_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'OnnxGraphError';
  }
}

/** Bytes that do not decode as an ONNX ModelProto. */
export class OnnxDecodeError extends Error {
  readonly code = 'ONNX_DECODE_FAILED';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OnnxDecodeError';
  }
}
