// The one place that loads the generated ONNX protobuf classes (onnx-proto, protobufjs-based) and maps
// ONNX element types onto Ferry's dtype names, so nothing else in the server spells ONNX enum numbers.
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';
import type { TensorDtype } from '@ferry/core';

export const { onnx } = onnxProto;
export type ModelProto = OnnxTypes.ModelProto;
export type { OnnxTypes };

/** ONNX TensorProto.DataType code of each Ferry dtype. */
export const ONNX_ELEMENT_TYPE: Readonly<Record<TensorDtype, number>> = Object.freeze({
  float32: 1,
  uint8: 2,
  int8: 3,
  uint16: 4,
  int16: 5,
  int32: 6,
  int64: 7,
  string: 8,
  bool: 9,
  float16: 10,
  float64: 11,
  uint32: 12,
  uint64: 13,
});

const BY_CODE = new Map<number, TensorDtype>(
  Object.entries(ONNX_ELEMENT_TYPE).map(([name, code]) => [code, name as TensorDtype]),
);

/** Ferry's name for an ONNX element type, or null for types Ferry cannot move (bfloat16, complex, ...). */
export function dtypeFromOnnx(code: number | null | undefined): TensorDtype | null {
  return BY_CODE.get(code ?? 0) ?? null;
}

/** protobufjs hands int64 fields back as a Long when the `long` package is present, else as a number. */
export function toNumber(v: number | { toNumber(): number } | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}
