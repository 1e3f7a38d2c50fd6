// Tensor values as they cross between the contract code, worker threads and ONNX Runtime:
// a dtype, dims and a flat typed array (or string array), independent of any runtime's Tensor class.
import type { TensorDtype } from './contract/schema.js';

export type TensorData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array
  | string[];

export interface TensorValue {
  dtype: TensorDtype;
  dims: number[];
  data: TensorData;
}

/** Allocates the flat storage ONNX Runtime expects for `dtype` (bool is one byte per element; float16 is raw bits). */
export function allocate(dtype: TensorDtype, size: number): TensorData {
  switch (dtype) {
    case 'float32':
      return new Float32Array(size);
    case 'float64':
      return new Float64Array(size);
    case 'float16':
      return new Uint16Array(size);
    case 'int8':
      return new Int8Array(size);
    case 'int16':
      return new Int16Array(size);
    case 'int32':
      return new Int32Array(size);
    case 'int64':
      return new BigInt64Array(size);
    case 'uint8':
      return new Uint8Array(size);
    case 'uint16':
      return new Uint16Array(size);
    case 'uint32':
      return new Uint32Array(size);
    case 'uint64':
      return new BigUint64Array(size);
    case 'bool':
      return new Uint8Array(size);
    case 'string':
      return new Array<string>(size).fill('');
  }
}

export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** Writes a JS number into position `i` of a typed array of any dtype. */
export function setElement(data: TensorData, i: number, v: number | bigint | boolean | string): void {
  if (Array.isArray(data)) {
    data[i] = String(v);
    return;
  }
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    data[i] = typeof v === 'bigint' ? v : BigInt(Math.trunc(Number(v)));
    return;
  }
  (data as Float32Array)[i] = typeof v === 'boolean' ? (v ? 1 : 0) : Number(v);
}

/** Converts flat tensor data into plain JSON-safe numbers (int64 beyond 2^53 loses precision, as JSON does). */
export function toNumbers(data: TensorData): Array<number | string | boolean> {
  if (Array.isArray(data)) return data;
  const out = new Array<number>(data.length);
  for (let i = 0; i < data.length; i++) out[i] = Number(data[i]);
  return out;
}

/** Splits flat data of shape [n, ...rest] into n nested arrays of shape rest. */
export function nest(flat: ArrayLike<unknown>, dims: readonly number[]): unknown {
  if (dims.length === 0) return flat[0];
  const build = (offset: number, depth: number): unknown => {
    const size = dims[depth]!;
    if (depth === dims.length - 1) {
      return Array.from({ length: size }, (_, i) => flat[offset + i]);
    }
    const stride = elementCount(dims.slice(depth + 1));
    return Array.from({ length: size }, (_, i) => build(offset + i * stride, depth + 1));
  };
  return build(0, 0);
}
