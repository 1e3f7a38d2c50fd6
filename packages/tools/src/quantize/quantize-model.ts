// Post-training dynamic INT8 quantisation of an ONNX graph, in TypeScript: MatMul and Gemm nodes whose
// weight (B) is a float32 initializer get 8-bit weights with a scale per tensor or per output channel;
// their activations are quantised at run time, per call, from the tensor's own min and max. Embedding
// tables (a Gather from a float32 initializer) are stored as int8 rows and only the gathered rows are
// turned back into float. No calibration data is needed, and the model's inputs and outputs keep their
// names, types and shapes.
import {
  readModel,
  encodeModel,
  floatTensorData,
  makeTensorProto,
  tensorDims,
  isExternalTensor,
  ONNX_ELEMENT_TYPE,
  OnnxDecodeError,
  type ModelProto,
} from '../onnx/index.js';
import { onnx, toNumber, type OnnxTypes } from '../onnx/proto.js';
import { QuantizeError } from './errors.js';
import {
  quantizeWeights,
  dequantizeWeights,
  quantizeRows,
  dequantizeRows,
  transpose,
  type QuantizedWeights,
} from './weights.js';

/**
 * How the quantised computation is written into the graph.
 * - `integer-ops`: standard ONNX ops, `DynamicQuantizeLinear` → `MatMulInteger` → `Cast` → `Mul` by
 *   (activation scale × weight scale). Runs on any ONNX runtime with opset ≥ 11.
 * - `qdq`: `DynamicQuantizeLinear` → `DequantizeLinear` on the activation, `DequantizeLinear` on the
 *   weight, then the original float `MatMul`; the runtime decides whether to fuse it into integer kernels.
 *   Needs opset ≥ 13 when per channel.
 * - `contrib`: ONNX Runtime's `com.microsoft.DynamicQuantizeMatMul`, one node per MatMul with the bias folded in.
 *   ONNX Runtime only (CPU, and the WASM build of onnxruntime-web).
 */
export type QuantFormat = 'integer-ops' | 'qdq' | 'contrib';
/** Operator types the quantiser rewrites. */
export type QuantOpType = 'MatMul' | 'Gemm' | 'Gather';
const QUANT_OP_TYPES: readonly QuantOpType[] = ['MatMul', 'Gemm', 'Gather'];
export const QUANT_FORMATS: readonly QuantFormat[] = Object.freeze(['integer-ops', 'qdq', 'contrib']);

export interface QuantizeOptions {
  /** One weight scale per output channel (column of B) instead of one per matrix. Default true: more accurate, no
   * slower.
   */
  perChannel?: boolean;
  /**
   * Graph form of the quantised MatMul. Default `'integer-ops'` (standard ONNX, which ONNX Runtime fuses
   * into DynamicQuantizeMatMul at load: as fast as `'contrib'` when measured), or `'contrib'` for models
   * below opset 11, which lack DynamicQuantizeLinear.
   */
  format?: QuantFormat;
  /**
   * Weights with fewer elements stay float32. Default 65536 (a 256×256 matrix): below it, measured here,
   * the run-time quantisation of the activations costs more than the int8 MatMul saves (64×64 runs at
   * 0.7–1.0× float speed), and the bytes saved are few. See docs/quantization.md for the sweep.
   */
  minElements?: number;
  /** Symmetric int8 weights (zero point 0) when true, asymmetric uint8 when false. Default true. */
  symmetric?: boolean;
  /** 7-bit weights, for CPUs without VNNI (see WeightQuantOptions). Default false. */
  reduceRange?: boolean;
  /**
   * Operator types to quantise. Default all three: `MatMul`, `Gemm`, and `Gather` (an embedding table read
   * with Gather along axis 0: int8 rows with a scale per row, or one per table when not per channel).
   */
  opTypes?: ReadonlyArray<QuantOpType>;
  /** Node names to leave in float (e.g. the final classifier layer). */
  exclude?: readonly string[];
}

export const QUANTIZE_DEFAULTS = Object.freeze({
  perChannel: true,
  minElements: 65536,
  symmetric: true,
  reduceRange: false,
  opTypes: Object.freeze(['MatMul', 'Gemm', 'Gather'] as const),
  exclude: Object.freeze([] as string[]),
}) satisfies Required<Omit<QuantizeOptions, 'format'>>;

export interface QuantizedNode {
  /** Node name in the original graph (generated as `<opType>_<index>` when it had none). */
  name: string;
  opType: QuantOpType;
  /** Name of the float32 weight initializer (for Gather, the embedding table). */
  weight: string;
  /** [K, N] as MatMul sees it (after Gemm's transB); for Gather the table's [rows, width]. */
  shape: [number, number];
  /** `per-channel` is one scale per output column for MatMul/Gemm and one per row for a Gather table. */
  granularity: 'per-tensor' | 'per-channel';
  /** Largest |w - dequantised w| over the matrix. */
  maxAbsError: number;
  /** Root-mean-square weight error over root-mean-square weight. */
  relRmsError: number;
}

export interface SkippedNode {
  name: string;
  opType: string;
  reason: string;
}

export interface QuantizeReport {
  format: QuantFormat;
  perChannel: boolean;
  symmetric: boolean;
  reduceRange: boolean;
  minElements: number;
  quantized: QuantizedNode[];
  /** MatMul/Gemm nodes (and Conv nodes, which are never quantised) left in float, with the reason. */
  skipped: SkippedNode[];
  bytesBefore: number;
  bytesAfter: number;
  /** bytesBefore / bytesAfter. */
  sizeRatio: number;
}

export interface QuantizeResult {
  bytes: Uint8Array;
  report: QuantizeReport;
}

const T = onnx.AttributeProto.AttributeType;
const FLOAT = ONNX_ELEMENT_TYPE.float32;
const CONTRIB_DOMAIN = 'com.microsoft';
/** Marks a quantised model (and how) in metadata_props. */
export const QUANTIZATION_METADATA_KEY = 'ferry.quantization';

function attribute(node: OnnxTypes.INodeProto, name: string): OnnxTypes.IAttributeProto | undefined {
  return (node.attribute ?? []).find((a) => a.name === name);
}
function intAttr(node: OnnxTypes.INodeProto, name: string, fallback: number): number {
  const a = attribute(node, name);
  return a ? toNumber(a.i as number) : fallback;
}
function floatAttr(node: OnnxTypes.INodeProto, name: string, fallback: number): number {
  const a = attribute(node, name);
  return a ? (a.f ?? fallback) : fallback;
}

function resolveOptions(o: QuantizeOptions): Omit<Required<QuantizeOptions>, 'format'> & { format?: QuantFormat } {
  const r = {
    ...QUANTIZE_DEFAULTS,
    ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)),
  } as Omit<Required<QuantizeOptions>, 'format'> & { format?: QuantFormat };
  if (r.format !== undefined && !QUANT_FORMATS.includes(r.format)) {
    throw new QuantizeError(
      'quantize-invalid-options',
      `unknown format "${r.format}"; use one of ${QUANT_FORMATS.join(', ')}`,
    );
  }
  if (!Number.isInteger(r.minElements) || r.minElements < 0) {
    throw new QuantizeError(
      'quantize-invalid-options',
      `minElements must be a non-negative integer, got ${r.minElements}`,
    );
  }
  for (const t of r.opTypes) {
    if (!QUANT_OP_TYPES.includes(t))
      throw new QuantizeError(
        'quantize-invalid-options',
        `cannot quantise op type "${t}"; ${QUANT_OP_TYPES.join(', ')} are supported`,
      );
  }
  return r;
}

function decode(bytes: Uint8Array): ModelProto {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) {
    throw new QuantizeError('quantize-invalid-model', 'not an ONNX model: the input is empty');
  }
  try {
    return readModel(bytes);
  } catch (e) {
    const why = e instanceof OnnxDecodeError ? e.message : `not an ONNX model: ${(e as Error).message}`;
    throw new QuantizeError('quantize-invalid-model', `${why} (is the file truncated, or not an .onnx file?)`, {
      cause: e,
    });
  }
}

/** Names a subgraph reads from its enclosing scope (If/Loop/Scan bodies may use outer initializers). */
function namesReadBySubgraphs(nodes: readonly OnnxTypes.INodeProto[], into: Set<string>): void {
  for (const n of nodes) {
    for (const a of n.attribute ?? []) {
      for (const g of [a.g, ...(a.graphs ?? [])]) {
        if (!g) continue;
        for (const sn of g.node ?? []) for (const i of sn.input ?? []) into.add(i);
        namesReadBySubgraphs(g.node ?? [], into);
      }
    }
  }
}

/**
 * Checks that every value a top-level node reads is defined before it. A truncated file can decode as
 * protobuf yet lose its tail (initializers, later nodes); this turns that into a clear error instead of
 * a model that fails later in ONNX Runtime.
 */
function checkGraph(model: ModelProto): void {
  const g = model.graph!;
  if (!(model.opsetImport ?? []).some((o) => !o.domain || o.domain === 'ai.onnx')) {
    throw new QuantizeError(
      'quantize-invalid-model',
      'not a complete ONNX model: it imports no ai.onnx operator set (truncated file?)',
    );
  }
  if ((g.node ?? []).length === 0)
    throw new QuantizeError('quantize-invalid-model', 'not a complete ONNX model: the graph has no nodes');
  const defined = new Set<string>([
    ...(g.input ?? []).map((v) => v.name ?? ''),
    ...(g.initializer ?? []).map((t) => t.name ?? ''),
  ]);
  for (const n of g.node ?? []) {
    for (const i of n.input ?? []) {
      if (i !== '' && !defined.has(i)) {
        throw new QuantizeError(
          'quantize-invalid-model',
          `not a complete ONNX model: node "${n.name ?? n.opType}" (${n.opType}) reads "${i}", which nothing defines (truncated or corrupt file?)`,
        );
      }
    }
    for (const o of n.output ?? []) defined.add(o);
  }
  for (const o of g.output ?? []) {
    if (!defined.has(o.name ?? ''))
      throw new QuantizeError(
        'quantize-invalid-model',
        `not a complete ONNX model: output "${o.name}" is not produced by any node`,
      );
  }
}

function opsetOf(model: ModelProto): number {
  const o = (model.opsetImport ?? []).find((x) => !x.domain || x.domain === 'ai.onnx');
  return o ? toNumber(o.version as number) : 0;
}

/** Allocates value and node names that collide with nothing in the graph. */
class Names {
  readonly #taken = new Set<string>();
  constructor(g: OnnxTypes.IGraphProto) {
    const add = (s: string | null | undefined): void => {
      if (s) this.#taken.add(s);
    };
    for (const v of [...(g.input ?? []), ...(g.output ?? []), ...(g.valueInfo ?? [])]) add(v.name);
    for (const t of g.initializer ?? []) add(t.name);
    for (const n of g.node ?? []) {
      add(n.name);
      for (const o of n.output ?? []) add(o);
    }
  }
  fresh(base: string): string {
    let name = base;
    for (let i = 1; this.#taken.has(name); i++) name = `${base}_${i}`;
    this.#taken.add(name);
    return name;
  }
}

interface WeightEntry {
  q: string;
  scale: string;
  zeroPoint: string | null;
  /** DequantizeLinear output, for the qdq format; made once per weight. */
  dequantized?: string;
  quantized: QuantizedWeights;
}

interface Candidate {
  node: OnnxTypes.INodeProto;
  name: string;
  opType: 'MatMul' | 'Gemm';
  weight: OnnxTypes.ITensorProto;
  k: number;
  n: number;
}

/** An embedding lookup: Gather along axis 0 from a float32 [rows, width] initializer. */
interface GatherCandidate {
  node: OnnxTypes.INodeProto;
  name: string;
  table: OnnxTypes.ITensorProto;
  rows: number;
  width: number;
}

/**
 * Quantises a model's MatMul and Gemm weights to 8 bits, with activations quantised dynamically, and its
 * embedding tables (Gather along axis 0 from a float32 weight) to int8 rows. A model with nothing to
 * quantise comes back byte for byte unchanged (`report.quantized` empty).
 *
 * @example
 * const { bytes, report } = quantizeModel(await readFile('model.onnx'), { perChannel: true });
 * console.log(`${report.quantized.length} nodes, ${report.sizeRatio.toFixed(1)}× smaller`);
 */
export function quantizeModel(bytes: Uint8Array, options: QuantizeOptions = {}): QuantizeResult {
  const resolved = resolveOptions(options);
  const model = decode(bytes);
  checkGraph(model);
  const g = model.graph!;
  const opset = opsetOf(model);
  const o = { ...resolved, format: resolved.format ?? (opset >= 11 ? 'integer-ops' : 'contrib') };
  const report: QuantizeReport = {
    format: o.format,
    perChannel: o.perChannel,
    symmetric: o.symmetric,
    reduceRange: o.reduceRange,
    minElements: o.minElements,
    quantized: [],
    skipped: [],
    bytesBefore: bytes.length,
    bytesAfter: bytes.length,
    sizeRatio: 1,
  };

  const initializers = new Map((g.initializer ?? []).map((t) => [t.name ?? '', t]));
  // An initializer that is also a graph input is an overridable default: the caller may feed other weights.
  const graphInputs = new Set((g.input ?? []).map((v) => v.name ?? ''));
  const consumers = new Map<string, OnnxTypes.INodeProto[]>();
  for (const n of g.node ?? []) for (const i of n.input ?? []) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  const graphOutputs = new Set((g.output ?? []).map((v) => v.name ?? ''));
  const readBySubgraphs = new Set<string>();
  namesReadBySubgraphs(g.node ?? [], readBySubgraphs);

  // 1. Pick the nodes.
  const candidates: Candidate[] = [];
  const gathers: GatherCandidate[] = [];
  (g.node ?? []).forEach((node, index) => {
    const opType = node.opType ?? '';
    const name = node.name || `${opType}_${index}`;
    if (opType === 'Gather' && (node.domain ?? '') === '') {
      const tName = node.input?.[0] ?? '';
      const t = initializers.get(tName);
      // Gathers from run-time values (shapes, hidden states) or integer constants are plumbing, not weights.
      if (!t || t.dataType !== FLOAT) return;
      const skip = (reason: string): void => {
        report.skipped.push({ name, opType, reason });
      };
      if (!o.opTypes.includes('Gather')) return skip('Gather is not in opTypes');
      if (o.exclude.includes(name)) return skip('excluded by name');
      if (graphInputs.has(tName)) return skip('the table is also a graph input, so callers may override it');
      if (isExternalTensor(t)) return skip('the table is stored as external data');
      const dims = tensorDims(t);
      if (dims.length !== 2) return skip(`the table has rank ${dims.length}; only 2-D tables are quantised`);
      if (intAttr(node, 'axis', 0) !== 0) return skip('the Gather is not along axis 0 (rows of the table)');
      const elements = dims[0]! * dims[1]!;
      if (elements < o.minElements)
        return skip(`the table has ${elements} elements, fewer than minElements ${o.minElements}`);
      gathers.push({ node, name, table: t, rows: dims[0]!, width: dims[1]! });
      return;
    }
    if (opType === 'Conv' && (node.domain ?? '') === '') {
      report.skipped.push({
        name,
        opType,
        reason: 'Conv is left in float: dynamic ConvInteger is not faster than float Conv in ONNX Runtime on CPU',
      });
      return;
    }
    if ((opType !== 'MatMul' && opType !== 'Gemm') || (node.domain ?? '') !== '') return;
    const skip = (reason: string): void => {
      report.skipped.push({ name, opType, reason });
    };
    if (!o.opTypes.includes(opType)) return skip(`${opType} is not in opTypes`);
    if (o.exclude.includes(name)) return skip('excluded by name');
    const wName = node.input?.[1] ?? '';
    const w = initializers.get(wName);
    if (!w) return skip('the weight (input B) is not an initializer');
    if (graphInputs.has(wName)) return skip('the weight is also a graph input, so callers may override it');
    if (w.dataType !== FLOAT) return skip(`the weight is not float32 (data type ${w.dataType})`);
    if (isExternalTensor(w)) return skip('the weight is stored as external data');
    const dims = tensorDims(w);
    if (dims.length !== 2) return skip(`the weight has rank ${dims.length}; only 2-D weights are quantised`);
    const elements = dims[0]! * dims[1]!;
    if (elements < o.minElements)
      return skip(`the weight has ${elements} elements, fewer than minElements ${o.minElements}`);
    let [k, n] = dims as [number, number];
    if (opType === 'Gemm' && intAttr(node, 'transB', 0) !== 0) [k, n] = [n, k];
    candidates.push({ node, name, opType, weight: w, k, n });
  });
  if (candidates.length === 0 && gathers.length === 0) return { bytes, report };

  // 2. Check the format fits the model before touching it (the Gather rewrite uses only Cast and Mul).
  if (candidates.length > 0 && (o.format === 'integer-ops' || o.format === 'qdq') && opset < 11) {
    throw new QuantizeError(
      'quantize-unsupported',
      `format "${o.format}" needs opset 11 or later (DynamicQuantizeLinear); this model uses opset ${opset}. Use format "contrib" instead`,
    );
  }
  if (candidates.length > 0 && o.format === 'qdq' && o.perChannel && opset < 13) {
    throw new QuantizeError(
      'quantize-unsupported',
      `per-channel qdq needs opset 13 or later (DequantizeLinear axis); this model uses opset ${opset}. Use per-tensor, or format "integer-ops" or "contrib"`,
    );
  }

  // 3. Rewrite.
  const names = new Names(g);
  const newInitializers: OnnxTypes.TensorProto[] = [];
  const weights = new Map<string, WeightEntry>();
  const activations = new Map<string, { q: string; scale: string; zeroPoint: string; dequantized?: string }>();
  const replacements = new Map<OnnxTypes.INodeProto, OnnxTypes.INodeProto[]>();
  const removed = new Set<OnnxTypes.INodeProto>();
  // Float initializers that may now be unread: weights, and Gemm Cs copied with beta.
  const replaced = new Set<string>();
  const mk = (
    opType: string,
    input: string[],
    output: string[],
    name: string,
    attrs: OnnxTypes.IAttributeProto[] = [],
    domain = '',
  ): OnnxTypes.INodeProto =>
    onnx.NodeProto.create({
      opType,
      input,
      output,
      name: names.fresh(name),
      attribute: attrs,
      ...(domain && { domain }),
    });
  const constFloat = (base: string, dims: number[], data: Float32Array): string => {
    const name = names.fresh(base);
    newInitializers.push(makeTensorProto(name, dims, data));
    return name;
  };

  // Embedding tables: int8 rows, and only the rows a run gathers are turned back into float32
  // (Gather int8 → Cast → Mul by the row's scale, gathered with the same indices). Symmetric and 8-bit
  // whatever the MatMul options say: no integer product reads these values, so neither a zero point nor
  // VNNI's reduced range has anything to fix.
  const tables = new Map<string, { q: string; scale: string; quantized: QuantizedWeights }>();
  for (const c of gathers) {
    const { node, name } = c;
    const tName = c.table.name ?? '';
    const w = floatTensorData(c.table);
    let te = tables.get(tName);
    if (!te) {
      const quantized = quantizeRows(w, c.rows, c.width, o.perChannel);
      const q = names.fresh(`${tName}_quantized`);
      newInitializers.push(makeTensorProto(q, [c.rows, c.width], quantized.data));
      const scale = constFloat(`${tName}_scale`, o.perChannel ? [c.rows, 1] : [], quantized.scale);
      te = { q, scale, quantized };
      tables.set(tName, te);
    }
    replaced.add(tName);
    const indices = node.input![1]!;
    const y = node.output![0]!;
    const rowsQ = names.fresh(`${y}_quantized`);
    const rowsF = names.fresh(`${y}_int8_float`);
    const out = [
      mk('Gather', [te.q, indices], [rowsQ], `${name}_quant`, [{ name: 'axis', type: T.INT, i: 0 }]),
      mk('Cast', [rowsQ], [rowsF], `${name}_cast`, [{ name: 'to', type: T.INT, i: FLOAT }]),
    ];
    let rowScale = te.scale;
    if (o.perChannel) {
      rowScale = names.fresh(`${y}_scale`);
      out.push(mk('Gather', [te.scale, indices], [rowScale], `${name}_scale`, [{ name: 'axis', type: T.INT, i: 0 }]));
    }
    out.push(mk('Mul', [rowsF, rowScale], [y], `${name}_dequantize`));
    replacements.set(node, out);
    const stats = weightError(w, dequantizeRows(te.quantized, c.rows, c.width));
    report.quantized.push({
      name,
      opType: 'Gather',
      weight: tName,
      shape: [c.rows, c.width],
      granularity: o.perChannel ? 'per-channel' : 'per-tensor',
      maxAbsError: stats.maxAbs,
      relRmsError: stats.relRms,
    });
  }

  for (const c of candidates) {
    const { node, name } = c;
    const out: OnnxTypes.INodeProto[] = [];
    const isGemm = c.opType === 'Gemm';
    const alpha = isGemm ? floatAttr(node, 'alpha', 1) : 1;
    const beta = isGemm ? floatAttr(node, 'beta', 1) : 1;
    const transA = isGemm ? intAttr(node, 'transA', 0) !== 0 : false;
    const transB = isGemm ? intAttr(node, 'transB', 0) !== 0 : false;
    const wName = c.weight.name ?? '';

    // The weight, as MatMul's K×N with Gemm's alpha folded in; shared by every node using the same initializer the same
    // way.
    const wKey = `${wName}\u0000${transB}\u0000${alpha}`;
    let we = weights.get(wKey);
    let wStats: { maxAbs: number; relRms: number };
    {
      let w = floatTensorData(c.weight);
      if (transB) w = transpose(w, c.n, c.k);
      if (alpha !== 1) w = w.map((v) => v * alpha);
      if (!we) {
        const quantized = quantizeWeights(w, c.k, c.n, {
          perChannel: o.perChannel,
          symmetric: o.symmetric,
          reduceRange: o.reduceRange,
        });
        const chDims = o.perChannel ? [c.n] : [];
        const q = names.fresh(`${wName}_quantized`);
        newInitializers.push(makeTensorProto(q, [c.k, c.n], quantized.data));
        const scale = constFloat(`${wName}_scale`, chDims, quantized.scale);
        let zeroPoint: string | null = null;
        if (!o.symmetric) {
          zeroPoint = names.fresh(`${wName}_zero_point`);
          newInitializers.push(makeTensorProto(zeroPoint, chDims, quantized.zeroPoint));
        }
        we = { q, scale, zeroPoint, quantized };
        weights.set(wKey, we);
      }
      wStats = weightError(w, dequantizeWeights(we.quantized, c.k, c.n));
    }
    replaced.add(wName);

    // Activation input, transposed first when Gemm says transA.
    let a = node.input![0]!;
    if (transA) {
      const t = names.fresh(`${a}_transposed`);
      out.push(mk('Transpose', [a], [t], `${name}_transpose_a`, [{ name: 'perm', type: T.INTS, ints: [1, 0] }]));
      a = t;
    }

    // Bias: Gemm's beta·C, or (contrib only) the Add that follows a MatMul.
    const y = node.output![0]!;
    let bias: string | null = null; // a float32 [N] initializer passed to DynamicQuantizeMatMul
    let after: ((mm: string) => void) | null = null; // emits the nodes that add C, writing y
    let fusedOutput: string | null = null; // the output of a MatMul's bias Add folded into the node
    if (isGemm && (node.input?.[2] ?? '') !== '' && beta !== 0) {
      const cName = node.input![2]!;
      const cInit = initializers.get(cName);
      const cFloat = cInit && cInit.dataType === FLOAT && !isExternalTensor(cInit) && !graphInputs.has(cName);
      const cDims = cInit ? tensorDims(cInit) : [];
      const isRow =
        cFloat &&
        ((cDims.length === 1 && cDims[0] === c.n) || (cDims.length === 2 && cDims[0] === 1 && cDims[1] === c.n));
      if (cFloat && isRow && o.format === 'contrib') {
        bias = constFloat(
          `${cName}_bias`,
          [c.n],
          floatTensorData(cInit).map((v) => v * beta),
        );
        replaced.add(cName);
      } else {
        let addend = cName;
        if (cFloat && beta !== 1) {
          addend = constFloat(
            `${cName}_scaled`,
            cDims,
            floatTensorData(cInit).map((v) => v * beta),
          );
          replaced.add(cName);
        } else if (beta !== 1) {
          const b = constFloat(`${name}_beta`, [], new Float32Array([beta]));
          addend = names.fresh(`${cName}_scaled`);
          out.push(mk('Mul', [cName, b], [addend], `${name}_scale_c`));
        }
        after = (mm) => {
          out.push(mk('Add', [mm, addend], [y], `${name}_add_c`));
        };
      }
    } else if (!isGemm && o.format === 'contrib') {
      const users = consumers.get(y) ?? [];
      const sole = users.length === 1 && !graphOutputs.has(y) && !readBySubgraphs.has(y);
      const add = sole && users[0]!.opType === 'Add' && !users[0]!.domain ? users[0]! : null;
      if (add) {
        const other = add.input![0] === y ? add.input![1]! : add.input![0]!;
        const bInit = initializers.get(other);
        if (bInit && bInit.dataType === FLOAT && !isExternalTensor(bInit) && !graphInputs.has(other)) {
          const bDims = tensorDims(bInit);
          if (bDims.length === 1 && bDims[0] === c.n && add.input![0] !== add.input![1]) {
            bias = other;
            removed.add(add);
            fusedOutput = add.output![0]!;
          }
        }
      }
    }
    const mmOut = fusedOutput ?? (after ? names.fresh(`${y}_matmul`) : y);

    if (o.format === 'contrib') {
      const inputs = [a, we.q, we.scale, we.zeroPoint ?? '', ...(bias ? [bias] : [])];
      while (inputs[inputs.length - 1] === '') inputs.pop();
      out.push(mk('DynamicQuantizeMatMul', inputs, [mmOut], `${name}_quant`, [], CONTRIB_DOMAIN));
    } else {
      let act = activations.get(a);
      if (!act) {
        act = {
          q: names.fresh(`${a}_quantized`),
          scale: names.fresh(`${a}_scale`),
          zeroPoint: names.fresh(`${a}_zero_point`),
        };
        activations.set(a, act);
        out.push(mk('DynamicQuantizeLinear', [a], [act.q, act.scale, act.zeroPoint], `${a}_quantize`));
      }
      if (o.format === 'integer-ops') {
        const yi = names.fresh(`${y}_int32`);
        const yf = names.fresh(`${y}_int32_float`);
        const s = names.fresh(`${name}_output_scale`);
        out.push(
          mk(
            'MatMulInteger',
            [act.q, we.q, act.zeroPoint, ...(we.zeroPoint ? [we.zeroPoint] : [])],
            [yi],
            `${name}_quant`,
          ),
        );
        out.push(mk('Cast', [yi], [yf], `${name}_cast`, [{ name: 'to', type: T.INT, i: FLOAT }]));
        out.push(mk('Mul', [act.scale, we.scale], [s], `${name}_scales_mul`));
        out.push(mk('Mul', [yf, s], [mmOut], `${name}_output_scale_mul`));
      } else {
        if (!act.dequantized) {
          act.dequantized = names.fresh(`${a}_dequantized`);
          out.push(mk('DequantizeLinear', [act.q, act.scale, act.zeroPoint], [act.dequantized], `${a}_dequantize`));
        }
        if (!we.dequantized) {
          we.dequantized = names.fresh(`${wName}_dequantized`);
          const axis = o.perChannel ? [{ name: 'axis', type: T.INT, i: 1 }] : [];
          out.push(
            mk(
              'DequantizeLinear',
              [we.q, we.scale, ...(we.zeroPoint ? [we.zeroPoint] : [])],
              [we.dequantized],
              `${wName}_dequantize`,
              axis,
            ),
          );
        }
        out.push(mk('MatMul', [act.dequantized, we.dequantized], [mmOut], `${name}_dequantized`));
      }
    }
    after?.(mmOut);
    replacements.set(node, out);
    report.quantized.push({
      name,
      opType: c.opType,
      weight: wName,
      shape: [c.k, c.n],
      granularity: o.perChannel ? 'per-channel' : 'per-tensor',
      maxAbsError: wStats.maxAbs,
      relRmsError: wStats.relRms,
    });
  }

  g.node = (g.node ?? []).flatMap((n) => (removed.has(n) ? [] : (replacements.get(n) ?? [n]))) as OnnxTypes.NodeProto[];

  // Drop the float weights nothing reads any more (another node may still use one in float).
  const read = new Set<string>();
  for (const n of g.node) for (const i of n.input ?? []) read.add(i);
  namesReadBySubgraphs(g.node, read);
  for (const v of g.output ?? []) read.add(v.name ?? '');
  const dropped = new Set<string>();
  for (const t of g.initializer ?? []) {
    const tn = t.name ?? '';
    if (replaced.has(tn) && !read.has(tn)) dropped.add(tn);
  }
  g.initializer = [
    ...(g.initializer ?? []).filter((t) => !dropped.has(t.name ?? '')),
    ...newInitializers,
  ] as OnnxTypes.TensorProto[];
  // Shape annotations of values that no longer exist (dropped weights, a MatMul output folded into its bias Add).
  const exists = new Set<string>([
    ...(g.input ?? []).map((v) => v.name ?? ''),
    ...g.initializer.map((t) => t.name ?? ''),
  ]);
  for (const n of g.node) for (const o of n.output ?? []) exists.add(o);
  if (g.valueInfo) g.valueInfo = g.valueInfo.filter((v) => exists.has(v.name ?? '')) as OnnxTypes.ValueInfoProto[];

  if (
    o.format === 'contrib' &&
    candidates.length > 0 &&
    !(model.opsetImport ?? []).some((x) => x.domain === CONTRIB_DOMAIN)
  ) {
    model.opsetImport = [
      ...(model.opsetImport ?? []),
      onnx.OperatorSetIdProto.create({ domain: CONTRIB_DOMAIN, version: 1 }),
    ];
  }
  const meta = JSON.stringify({
    format: o.format,
    perChannel: o.perChannel,
    symmetric: o.symmetric,
    reduceRange: o.reduceRange,
    nodes: report.quantized.length,
  });
  model.metadataProps = [
    ...(model.metadataProps ?? []).filter((p) => p.key !== QUANTIZATION_METADATA_KEY),
    onnx.StringStringEntryProto.create({ key: QUANTIZATION_METADATA_KEY, value: meta }),
  ];

  const outBytes = encodeModel(model);
  report.bytesAfter = outBytes.length;
  report.sizeRatio = report.bytesBefore / report.bytesAfter;
  return { bytes: outBytes, report };
}

function weightError(w: Float32Array, d: Float32Array): { maxAbs: number; relRms: number } {
  let maxAbs = 0;
  let se = 0;
  let sw = 0;
  for (let i = 0; i < w.length; i++) {
    const e = Math.abs(w[i]! - d[i]!);
    if (e > maxAbs) maxAbs = e;
    se += e * e;
    sw += w[i]! * w[i]!;
  }
  return { maxAbs, relRms: sw > 0 ? Math.sqrt(se / sw) : 0 };
}
