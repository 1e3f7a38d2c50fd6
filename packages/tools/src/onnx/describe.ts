// Reads an ONNX file's own description of itself: input and output names, element types and shapes,
// opset and producer. The repository checks a manifest against it and `ferry init` drafts one from it.
import type { TensorDtype } from '@ferry/core';
import { OnnxDecodeError } from './errors.js';
import { dtypeFromOnnx, onnx, toNumber, type ModelProto, type OnnxTypes } from './proto.js';

export type ValueKind = 'tensor' | 'sparse-tensor' | 'sequence' | 'map' | 'optional' | 'unknown';

export interface ValueDescription {
  name: string;
  kind: ValueKind;
  /** Ferry's dtype name; null for non-tensor values and element types Ferry cannot carry (bfloat16, complex). */
  dtype: TensorDtype | null;
  /** Dimensions with -1 for every dynamic one (named or not); null when the model does not state the rank. */
  shape: number[] | null;
}

export interface ModelDescription {
  inputs: ValueDescription[];
  outputs: ValueDescription[];
  /** Version of the default (`ai.onnx`) operator set; 0 when the model imports none. */
  opset: number;
  irVersion: number;
  producer: string;
  producerVersion: string;
}

/** Decodes ONNX bytes into a ModelProto; throws OnnxDecodeError for anything that is not one. */
export function readModel(bytes: Uint8Array): ModelProto {
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (cause) {
    throw new OnnxDecodeError(`not an ONNX model: ${(cause as Error).message}`, { cause });
  }
  // Protobuf decodes many non-ONNX byte strings "successfully"; a model without a graph is one of them.
  if (!model.graph) throw new OnnxDecodeError('not an ONNX model: no graph');
  return model;
}

function describeValue(v: OnnxTypes.IValueInfoProto): ValueDescription {
  const t = v.type;
  const name = v.name ?? '';
  const tensor = t?.tensorType ?? t?.sparseTensorType;
  if (!tensor) {
    const kind: ValueKind = t?.sequenceType
      ? 'sequence'
      : t?.mapType
        ? 'map'
        : t?.optionalType
          ? 'optional'
          : 'unknown';
    return { name, kind, dtype: null, shape: null };
  }
  const shape = tensor.shape
    ? (tensor.shape.dim ?? []).map((d) =>
        d.dimValue !== null && d.dimValue !== undefined && !d.dimParam ? toNumber(d.dimValue) : -1,
      )
    : null;
  return { name, kind: t?.tensorType ? 'tensor' : 'sparse-tensor', dtype: dtypeFromOnnx(tensor.elemType), shape };
}

/**
 * Summarises a model's interface. Graph inputs that are also initializers (allowed since IR 4, as
 * overridable constants) are left out: callers are not expected to feed them.
 */
export function describeModel(model: Uint8Array | ModelProto): ModelDescription {
  const m = model instanceof Uint8Array ? readModel(model) : model;
  const graph = m.graph!;
  const constants = new Set((graph.initializer ?? []).map((t) => t.name));
  const opset = (m.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  return {
    inputs: (graph.input ?? []).filter((v) => !constants.has(v.name)).map(describeValue),
    outputs: (graph.output ?? []).map(describeValue),
    opset: opset ? toNumber(opset.version) : 0,
    irVersion: toNumber(m.irVersion),
    producer: m.producerName ?? '',
    producerVersion: m.producerVersion ?? '',
  };
}
