// Builds ONNX models in code, for the example models, the test fixtures and anything else that needs a
// real model without Python. Wraps the onnx-proto classes in a typed, name-checked builder so that a
// mistake (undefined value, int given where ONNX wants a float) fails here with a readable message
// instead of deep inside ONNX Runtime.
import type { TensorDtype } from '@ferry/core';
import { OnnxGraphError } from './errors.js';
import { onnx, ONNX_ELEMENT_TYPE, type OnnxTypes } from './proto.js';

/** A dimension: a fixed size, a name for a dynamic one (`'batch'`), or -1 / null for an anonymous dynamic one. */
export type Dim = number | string | null;

export type NumericArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array;

/** A constant tensor (initializer or tensor attribute). */
export interface TensorSpec {
  dtype: TensorDtype;
  dims: readonly number[];
  /**
   * Flat row-major data. The dtype's own typed array is stored as-is (float16 as raw bits in a
   * Uint16Array, bool as one byte per element); other numeric arrays are converted; `string` takes strings.
   */
  data: NumericArray | readonly number[] | readonly bigint[] | readonly string[];
}

/**
 * An explicitly typed attribute. ONNX distinguishes INT from FLOAT attributes and a JS number cannot,
 * so a float attribute must be written `attr.float(1)`; bare numbers are taken as ints.
 */
export type Attribute =
  | { readonly type: 'float'; readonly value: number }
  | { readonly type: 'floats'; readonly value: readonly number[] }
  | { readonly type: 'int'; readonly value: number }
  | { readonly type: 'ints'; readonly value: readonly number[] }
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'strings'; readonly value: readonly string[] }
  | { readonly type: 'tensor'; readonly value: TensorSpec };

/** Bare values: an integer is INT, an integer array INTS, a string STRING, a string array STRINGS. */
export type AttributeValue = number | string | readonly number[] | readonly string[] | Attribute;

/**
 * Constructors for typed attributes.
 * @example builder.node('Gemm', ['x', 'w', 'b'], ['y'], { alpha: attr.float(1), transB: 1 })
 */
export const attr = Object.freeze({
  float: (value: number): Attribute => ({ type: 'float', value }),
  floats: (value: readonly number[]): Attribute => ({ type: 'floats', value }),
  int: (value: number): Attribute => ({ type: 'int', value }),
  ints: (value: readonly number[]): Attribute => ({ type: 'ints', value }),
  string: (value: string): Attribute => ({ type: 'string', value }),
  strings: (value: readonly string[]): Attribute => ({ type: 'strings', value }),
  tensor: (value: TensorSpec): Attribute => ({ type: 'tensor', value }),
});

export interface GraphBuilderOptions {
  /** Graph name stored in the model. Default `'main'`. */
  name?: string;
  /** Version of the default (`ai.onnx`) operator set. Default 17. */
  opset?: number;
  /** ONNX IR version. Default 8: what opset 17 needs, and readable by onnxruntime 1.10+ and onnxruntime-web. */
  irVersion?: number;
  /** Further operator-set imports by domain, e.g. `{ 'com.microsoft': 1 }`. */
  domains?: Readonly<Record<string, number>>;
  /** Default `'ferry'`. */
  producerName?: string;
  /** Default `''`. */
  producerVersion?: string;
  docString?: string;
}

export interface NodeOptions {
  /** Node name; generated from the op type when omitted. */
  name?: string;
  /** Operator domain; default the ONNX domain. */
  domain?: string;
  docString?: string;
}

type Storage = new (length: number) => NumericArray;

const STORAGE: Readonly<Record<Exclude<TensorDtype, 'string'>, Storage>> = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  int8: Int8Array,
  int16: Int16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
  uint16: Uint16Array,
  uint32: Uint32Array,
  uint64: BigUint64Array,
  bool: Uint8Array,
};

// ONNX raw_data is little-endian whatever the host; typed arrays are host-endian.
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const utf8 = new TextEncoder();

function littleEndianBytes(a: NumericArray): Uint8Array {
  // Copied so that the caller mutating its array later cannot change a model already built.
  const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice();
  const width = a.BYTES_PER_ELEMENT;
  if (!HOST_LITTLE_ENDIAN && width > 1) {
    for (let i = 0; i < bytes.length; i += width) bytes.subarray(i, i + width).reverse();
  }
  return bytes;
}

function toStorage(dtype: Exclude<TensorDtype, 'string'>, data: TensorSpec['data'], where: string): NumericArray {
  const Ctor = STORAGE[dtype];
  if (data instanceof Ctor) return data;
  const out = new Ctor(data.length);
  const big = out instanceof BigInt64Array || out instanceof BigUint64Array;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (typeof v === 'string') throw new OnnxGraphError(`${where}: a ${dtype} tensor cannot hold strings`);
    if (big) (out as BigInt64Array)[i] = typeof v === 'bigint' ? v : BigInt(Math.trunc(v as number));
    else (out as Float64Array)[i] = Number(v);
  }
  return out;
}

function tensorProto(name: string, t: TensorSpec, where: string): OnnxTypes.ITensorProto {
  const count = t.dims.reduce((a, d) => a * d, 1);
  if (t.dims.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new OnnxGraphError(`${where}: dims must be non-negative integers, got [${t.dims.join(', ')}]`);
  }
  if (t.data.length !== count) {
    throw new OnnxGraphError(`${where}: dims [${t.dims.join(', ')}] hold ${count} elements, data has ${t.data.length}`);
  }
  const base = { name, dims: [...t.dims], dataType: ONNX_ELEMENT_TYPE[t.dtype] };
  if (t.dtype === 'string') {
    const strings = Array.from(t.data as ArrayLike<unknown>, (s) => {
      if (typeof s !== 'string') throw new OnnxGraphError(`${where}: a string tensor needs strings`);
      return utf8.encode(s);
    });
    return { ...base, stringData: strings };
  }
  return { ...base, rawData: littleEndianBytes(toStorage(t.dtype, t.data, where)) };
}

function normaliseAttribute(name: string, v: AttributeValue, where: string): Attribute {
  if (typeof v === 'string') return { type: 'string', value: v };
  if (typeof v === 'number') return { type: 'int', value: v };
  if (Array.isArray(v)) {
    if (v.length === 0)
      throw new OnnxGraphError(`${where}: attribute "${name}" is an empty array; use attr.ints([]) or attr.floats([])`);
    return typeof v[0] === 'string'
      ? { type: 'strings', value: v as string[] }
      : { type: 'ints', value: v as number[] };
  }
  return v as Attribute;
}

function checkInt(name: string, n: number, where: string): number {
  if (!Number.isSafeInteger(n)) {
    throw new OnnxGraphError(
      `${where}: attribute "${name}" = ${n} is not an integer; write attr.float(${n}) for a FLOAT attribute`,
    );
  }
  return n;
}

function attributeProto(name: string, value: AttributeValue, where: string): OnnxTypes.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  const a = normaliseAttribute(name, value, where);
  switch (a.type) {
    case 'float':
      return { name, type: T.FLOAT, f: a.value };
    case 'floats':
      return { name, type: T.FLOATS, floats: [...a.value] };
    case 'int':
      return { name, type: T.INT, i: checkInt(name, a.value, where) };
    case 'ints':
      return { name, type: T.INTS, ints: a.value.map((n) => checkInt(name, n, where)) };
    case 'string':
      return { name, type: T.STRING, s: utf8.encode(a.value) };
    case 'strings':
      return { name, type: T.STRINGS, strings: a.value.map((s) => utf8.encode(s)) };
    case 'tensor':
      return { name, type: T.TENSOR, t: tensorProto('', a.value, `${where}, attribute "${name}"`) };
  }
}

function valueInfo(
  name: string,
  dtype: TensorDtype,
  shape: readonly Dim[],
  docString?: string,
): OnnxTypes.IValueInfoProto {
  const dim = shape.map((d): OnnxTypes.TensorShapeProto.IDimension => {
    if (typeof d === 'string') return { dimParam: d };
    if (d === null || d === -1) return {};
    if (!Number.isInteger(d) || d < 0) throw new OnnxGraphError(`value "${name}": bad dimension ${d}`);
    return { dimValue: d };
  });
  return {
    name,
    type: { tensorType: { elemType: ONNX_ELEMENT_TYPE[dtype], shape: { dim } } },
    ...(docString !== undefined && { docString }),
  };
}

/**
 * Accumulates a graph and serialises it as an ONNX ModelProto. Nodes must be added in topological
 * order (as ONNX requires); `build()` checks every name.
 *
 * @example
 * const g = new GraphBuilder();
 * g.input('x', 'float32', ['batch', 4]).output('y', 'float32', ['batch', 2]);
 * g.floatInitializer('w', weights, [4, 2]);
 * g.node('MatMul', ['x', 'w'], ['y']);
 * const bytes = g.toBytes();
 */
export class GraphBuilder {
  readonly #options: Required<Omit<GraphBuilderOptions, 'docString'>> & { docString?: string };
  readonly #inputs: OnnxTypes.IValueInfoProto[] = [];
  readonly #outputs: OnnxTypes.IValueInfoProto[] = [];
  readonly #initializers: OnnxTypes.ITensorProto[] = [];
  readonly #nodes: OnnxTypes.INodeProto[] = [];
  readonly #metadata = new Map<string, string>();
  readonly #names = new Set<string>();
  #counter = 0;

  constructor(options: GraphBuilderOptions = {}) {
    this.#options = {
      name: options.name ?? 'main',
      opset: options.opset ?? 17,
      irVersion: options.irVersion ?? 8,
      domains: { ...options.domains },
      producerName: options.producerName ?? 'ferry',
      producerVersion: options.producerVersion ?? '',
      ...(options.docString !== undefined && { docString: options.docString }),
    };
  }

  /** Declares a graph input. Use a string for a named dynamic dimension (`['batch', 8]`). */
  input(name: string, dtype: TensorDtype, shape: readonly Dim[], docString?: string): this {
    this.#claim(name, `input "${name}"`);
    this.#inputs.push(valueInfo(name, dtype, shape, docString));
    return this;
  }

  /** Declares a graph output; some node must produce a value of this name. */
  output(name: string, dtype: TensorDtype, shape: readonly Dim[], docString?: string): this {
    if (this.#outputs.some((o) => o.name === name)) throw new OnnxGraphError(`output "${name}" is declared twice`);
    this.#outputs.push(valueInfo(name, dtype, shape, docString));
    return this;
  }

  /** Adds a constant tensor of any dtype. */
  initializer(name: string, tensor: TensorSpec): this {
    this.#claim(name, `initializer "${name}"`);
    this.#initializers.push(tensorProto(name, tensor, `initializer "${name}"`));
    return this;
  }

  /** Adds a float32 constant; `dims` defaults to a vector of the data's length. */
  floatInitializer(
    name: string,
    data: Float32Array | readonly number[],
    dims: readonly number[] = [data.length],
  ): this {
    return this.initializer(name, { dtype: 'float32', dims, data });
  }

  /** Adds an integer constant (int64 unless told otherwise), e.g. the shape input of Reshape. */
  intInitializer(
    name: string,
    data: readonly number[] | readonly bigint[] | BigInt64Array | Int32Array,
    dims: readonly number[] = [data.length],
    dtype: 'int64' | 'int32' = 'int64',
  ): this {
    return this.initializer(name, { dtype, dims, data });
  }

  /** Adds a node whose outputs are named by the caller. */
  node(
    opType: string,
    inputs: readonly string[],
    outputs: readonly string[],
    attributes: Readonly<Record<string, AttributeValue>> = {},
    options: NodeOptions = {},
  ): this {
    const name = options.name ?? `${opType}_${this.#nodes.length}`;
    const where = `node "${name}" (${opType})`;
    if (outputs.length === 0) throw new OnnxGraphError(`${where}: a node needs at least one output`);
    for (const o of outputs) this.#claim(o, `${where} output "${o}"`);
    this.#nodes.push({
      name,
      opType,
      input: [...inputs],
      output: [...outputs],
      attribute: Object.entries(attributes).map(([k, v]) => attributeProto(k, v, where)),
      ...(options.domain !== undefined && { domain: options.domain }),
      ...(options.docString !== undefined && { docString: options.docString }),
    });
    return this;
  }

  /**
   * Adds a single-output node and returns the generated name of its output, for chaining
   * intermediate values: `const h = g.op('Relu', [g.op('MatMul', ['x', 'w'])])`.
   */
  op(
    opType: string,
    inputs: readonly string[],
    attributes: Readonly<Record<string, AttributeValue>> = {},
    options: NodeOptions = {},
  ): string {
    let out: string;
    do out = `${(options.name ?? opType).toLowerCase()}_${this.#counter++}`;
    while (this.#names.has(out));
    this.node(opType, inputs, [out], attributes, options);
    return out;
  }

  /** Stores a key/value pair in the model's metadata_props. */
  metadata(key: string, value: string): this {
    this.#metadata.set(key, value);
    return this;
  }

  /** Checks the graph and returns it as a ModelProto object. */
  build(): OnnxTypes.IModelProto {
    this.#check();
    const o = this.#options;
    return {
      irVersion: o.irVersion,
      opsetImport: [
        { domain: '', version: o.opset },
        ...Object.entries(o.domains).map(([domain, version]) => ({ domain, version })),
      ],
      producerName: o.producerName,
      producerVersion: o.producerVersion,
      ...(o.docString !== undefined && { docString: o.docString }),
      graph: {
        name: o.name,
        node: this.#nodes,
        initializer: this.#initializers,
        input: this.#inputs,
        output: this.#outputs,
      },
      metadataProps: [...this.#metadata].map(([key, value]) => ({ key, value })),
    };
  }

  /** The serialised model, ready for `ort.InferenceSession.create(bytes)` or a `model.onnx` file. */
  toBytes(): Uint8Array {
    // A fresh Uint8Array rather than protobufjs's Buffer, which may be a view into a shared pool.
    return new Uint8Array(onnx.ModelProto.encode(this.build()).finish());
  }

  #claim(name: string, what: string): void {
    if (!name) throw new OnnxGraphError(`${what}: names must be non-empty`);
    if (this.#names.has(name)) throw new OnnxGraphError(`${what}: the name "${name}" is already defined`);
    this.#names.add(name);
  }

  #check(): void {
    const defined = new Set<string>([...this.#inputs.map((v) => v.name!), ...this.#initializers.map((t) => t.name!)]);
    for (const n of this.#nodes) {
      for (const i of n.input ?? []) {
        // An empty name is how ONNX skips an optional input.
        if (i !== '' && !defined.has(i)) {
          throw new OnnxGraphError(
            `node "${n.name}" (${n.opType}) reads "${i}", which is not an input, an initializer or the output of an earlier node`,
          );
        }
      }
      for (const o of n.output ?? []) defined.add(o);
    }
    if (this.#outputs.length === 0) throw new OnnxGraphError('the graph declares no output');
    for (const o of this.#outputs) {
      if (!defined.has(o.name!)) throw new OnnxGraphError(`output "${o.name}" is not produced by any node`);
    }
  }
}
