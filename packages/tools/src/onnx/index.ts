// ONNX graph toolkit: build small models in TypeScript (examples, test fixtures) and read what a model
// file says about its own inputs and outputs. No inference here; that belongs to runtime/.
export {
  GraphBuilder,
  attr,
  type GraphBuilderOptions,
  type NodeOptions,
  type Dim,
  type TensorSpec,
  type NumericArray,
  type Attribute,
  type AttributeValue,
} from './graph-builder.js';
export { readModel, describeModel, type ModelDescription, type ValueDescription, type ValueKind } from './describe.js';
export { OnnxGraphError, OnnxDecodeError } from './errors.js';
export { ONNX_ELEMENT_TYPE, dtypeFromOnnx, type ModelProto } from './proto.js';
export { floatTensorData, makeTensorProto, encodeModel, tensorDims, isExternalTensor } from './tensor-proto.js';
export {
  buildDecoderOnnx,
  randomDecoderWeights,
  type DecoderShape,
  type DecoderWeights,
  type LayerWeights,
} from './decoder-graph.js';
