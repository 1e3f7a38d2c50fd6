// Post-training dynamic INT8 quantisation of ONNX models (MatMul and Gemm weights), the validation that
// measures what it cost, the `ferry quantize` command and a measurement of what it buys.
export {
  quantizeModel,
  QUANT_FORMATS,
  QUANTIZE_DEFAULTS,
  QUANTIZATION_METADATA_KEY,
  type QuantizeOptions,
  type QuantFormat,
  type QuantizeResult,
  type QuantizeReport,
  type QuantizedNode,
  type SkippedNode,
} from './quantize-model.js';
export {
  validate,
  tensorSource,
  gatedFigure,
  type ValidationData,
  type ValidationSource,
  type ValidateOptions,
  type ValidationReport,
  type ClassifierSpec,
  type OutputComparison,
  type ClassificationComparison,
} from './validate.js';
export {
  loadValidationData,
  parseValidationData,
  instancesSource,
  type LoadValidationOptions,
} from './validation-data.js';
export { quantizeWeights, dequantizeWeights, type WeightQuantOptions, type QuantizedWeights } from './weights.js';
export { runQuantize, QUANTIZE_EXIT } from './run-quantize.js';
export { measureQuantization, type QuantizationMeasurement, type MeasureOptions } from './measure.js';
export { QuantizeError, type QuantizeErrorCode } from './errors.js';
export { int8SaturatesHere } from './cpu.js';
