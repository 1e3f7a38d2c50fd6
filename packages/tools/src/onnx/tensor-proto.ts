// Reading and writing the contents of a decoded model: an initializer's values as a typed array, a new
// initializer from a typed array, and the ModelProto back to bytes. For graph rewrites (quantize/) that
// decode a model, change it and write it out again.
import { OnnxGraphError } from './errors.js';
import { onnx, toNumber, ONNX_ELEMENT_TYPE, type ModelProto, type OnnxTypes } from './proto.js';

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The dims of a tensor as plain numbers (protobufjs may hand int64 back as Long). */
export function tensorDims(t: OnnxTypes.ITensorProto): number[] {
  return (t.dims ?? []).map((d) => toNumber(d as number));
}

/** True when the tensor's values live outside the model file (external data), so they cannot be read here. */
export function isExternalTensor(t: OnnxTypes.ITensorProto): boolean {
  return t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL || (t.externalData?.length ?? 0) > 0;
}

/**
 * The values of a float32 tensor (initializer) as a fresh Float32Array, whether stored as raw_data or
 * float_data. Throws OnnxGraphError for other element types and for external data.
 */
export function floatTensorData(t: OnnxTypes.ITensorProto): Float32Array {
  const where = `tensor "${t.name ?? ''}"`;
  if (t.dataType !== ONNX_ELEMENT_TYPE.float32)
    throw new OnnxGraphError(`${where} is not float32 (data type ${t.dataType})`);
  if (isExternalTensor(t)) throw new OnnxGraphError(`${where} keeps its data in an external file`);
  const count = tensorDims(t).reduce((a, d) => a * d, 1);
  const raw = t.rawData;
  let out: Float32Array;
  if (raw && raw.length > 0) {
    if (raw.length !== count * 4)
      throw new OnnxGraphError(`${where}: raw data holds ${raw.length} bytes, dims need ${count * 4}`);
    // Copy into an aligned buffer: a decoded raw_data is a view at an arbitrary offset of the file. Not
    // raw.slice(): when the model was decoded from a Node Buffer, raw_data is a Buffer, whose slice is a view.
    const bytes = new Uint8Array(raw);
    if (!HOST_LITTLE_ENDIAN) for (let i = 0; i < bytes.length; i += 4) bytes.subarray(i, i + 4).reverse();
    out = new Float32Array(bytes.buffer, bytes.byteOffset, count);
  } else {
    const f = t.floatData ?? [];
    if (f.length !== count)
      throw new OnnxGraphError(`${where}: float data holds ${f.length} values, dims need ${count}`);
    out = Float32Array.from(f);
  }
  return out;
}

type RawArray = Float32Array | Int8Array | Uint8Array | Int32Array;

const DTYPE_OF = (a: RawArray): number =>
  a instanceof Float32Array
    ? ONNX_ELEMENT_TYPE.float32
    : a instanceof Int8Array
      ? ONNX_ELEMENT_TYPE.int8
      : a instanceof Uint8Array
        ? ONNX_ELEMENT_TYPE.uint8
        : ONNX_ELEMENT_TYPE.int32;

/** A new TensorProto (for an initializer) holding `data` as little-endian raw_data; the element type follows the array.
 */
export function makeTensorProto(name: string, dims: readonly number[], data: RawArray): OnnxTypes.TensorProto {
  const count = dims.reduce((a, d) => a * d, 1);
  if (count !== data.length)
    throw new OnnxGraphError(
      `tensor "${name}": dims [${dims.join(', ')}] hold ${count} elements, data has ${data.length}`,
    );
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  const width = data.BYTES_PER_ELEMENT;
  if (!HOST_LITTLE_ENDIAN && width > 1)
    for (let i = 0; i < bytes.length; i += width) bytes.subarray(i, i + width).reverse();
  return onnx.TensorProto.create({ name, dims: [...dims], dataType: DTYPE_OF(data), rawData: bytes });
}

/** Serialises a (possibly edited) ModelProto; a fresh Uint8Array, not a view into protobufjs's pool. */
export function encodeModel(model: ModelProto | OnnxTypes.IModelProto): Uint8Array {
  return new Uint8Array(onnx.ModelProto.encode(model).finish());
}
