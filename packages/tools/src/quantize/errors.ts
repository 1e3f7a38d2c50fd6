// Errors of the quantiser and its validation. Codes are stable strings (documented in docs/quantization.md);
// the CLI maps them to exit codes and one-line messages.

export type QuantizeErrorCode =
  /** The input is not a readable ONNX model: not protobuf, truncated, or a graph that references undefined values. */
  | 'quantize-invalid-model'
  /** The model is ONNX but cannot be quantised in the requested form (opset too old for the format, ...). */
  | 'quantize-unsupported'
  /** Options that make no sense (negative minElements, unknown format, ...). */
  | 'quantize-invalid-options'
  /** Validation data that cannot be read or does not fit the model's inputs. */
  | 'quantize-invalid-data'
  /** ONNX Runtime refused to load or run one of the two models during validation. */
  | 'quantize-runtime-failed';

export class QuantizeError extends Error {
  readonly code: QuantizeErrorCode;
  constructor(code: QuantizeErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'QuantizeError';
    this.code = code;
  }
}
