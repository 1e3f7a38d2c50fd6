// Reading classical (scikit-learn / onnxmltools) exports for `ferry init`: graphs built from the
// `ai.onnx.ml` operators (TreeEnsembleClassifier/Regressor, LinearClassifier, Scaler, OneHotEncoder, ...).
// skl2onnx ends a classifier in a ZipMap whose output is a sequence of maps, which onnxruntime-node cannot
// return; the probabilities are taken from before it (the ZipMap becomes an Identity whose output is the
// [N, classes] float tensor, under the same name), and the class labels are read from the ZipMap itself.
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';

const { onnx } = onnxProto;
const ML_DOMAIN = 'ai.onnx.ml';
const FLOAT = 1;
const text = new TextDecoder();

/** What init learns from an ONNX-ML graph. */
export interface OnnxMlInfo {
  /** True when the graph uses any `ai.onnx.ml` operator. */
  classical: boolean;
  /** The class labels of the classifier (from its ZipMap, or the classifier node), as strings. */
  labels?: string[];
  /** Whether the model's own labels are integers (`classlabels_int64s`) or strings. */
  labelType?: 'string' | 'integer';
  /** The graph output holding the [N, classes] probabilities once ZipMaps are removed. */
  probabilities?: string;
  /** The graph outputs ZipMaps produced (now tensors). */
  zipMapOutputs: string[];
  /** Category values of string inputs fed straight into a OneHotEncoder or LabelEncoder. */
  categories: Map<string, string[]>;
  /** True when the graph ends in a regressor (TreeEnsembleRegressor, LinearRegressor, SVMRegressor). */
  regressor: boolean;
  /** The model bytes to serve: the original, or with its ZipMaps replaced. */
  bytes: Uint8Array;
}

type Node = OnnxTypes.INodeProto;

/** protobufjs gives int64 as a Long (when the `long` package is present) or a number. */
function num(v: number | { toNumber(): number } | null | undefined): number {
  return v === null || v === undefined ? 0 : typeof v === 'number' ? v : v.toNumber();
}

function attr(n: Node, name: string): OnnxTypes.IAttributeProto | undefined {
  return n.attribute?.find((a) => a.name === name);
}

function strings(n: Node, name: string): string[] | undefined {
  const a = attr(n, name);
  return a?.strings?.length ? a.strings.map((b) => text.decode(b)) : undefined;
}

function ints(n: Node, name: string): string[] | undefined {
  const a = attr(n, name);
  return a?.ints?.length ? a.ints.map((v) => String(num(v))) : undefined;
}

function classLabels(n: Node): { labels: string[]; labelType: 'string' | 'integer' } | undefined {
  const s = strings(n, 'classlabels_strings');
  if (s) return { labels: s, labelType: 'string' };
  const i = ints(n, 'classlabels_int64s') ?? ints(n, 'classlabels_ints');
  return i ? { labels: i, labelType: 'integer' } : undefined;
}

/** Reads an ONNX file's graph and, for an ONNX-ML classifier, removes its ZipMaps. */
export function readOnnxMl(bytes: Uint8Array): OnnxMlInfo {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph;
  const info: OnnxMlInfo = {
    classical: false,
    zipMapOutputs: [],
    categories: new Map(),
    regressor: false,
    bytes,
  };
  if (!graph?.node) return info;
  info.classical = graph.node.some((n) => n.domain === ML_DOMAIN);
  if (!info.classical) return info;
  const graphInputs = new Set((graph.input ?? []).map((i) => i.name));
  for (const n of graph.node) {
    if (n.domain !== ML_DOMAIN) continue;
    if (n.opType === 'OneHotEncoder' || n.opType === 'LabelEncoder') {
      const input = n.input?.[0];
      const cats = strings(n, n.opType === 'OneHotEncoder' ? 'cats_strings' : 'keys_strings');
      if (input && cats && graphInputs.has(input)) info.categories.set(input, cats);
    }
    if (/Regressor$/.test(n.opType ?? '')) info.regressor = true;
    if (/Classifier$/.test(n.opType ?? '') && !info.labels) {
      const l = classLabels(n);
      if (l) Object.assign(info, l);
    }
  }
  const outputs = new Map((graph.output ?? []).map((o) => [o.name, o]));
  let changed = false;
  for (const n of graph.node) {
    if (n.domain !== ML_DOMAIN || n.opType !== 'ZipMap') continue;
    const out = n.output?.[0];
    const input = n.input?.[0];
    const vi = out ? outputs.get(out) : undefined;
    if (!out || !input || !vi) continue;
    const l = classLabels(n);
    if (l) Object.assign(info, l);
    // Identity keeps the output's name, so a client that knew the export still finds it; the value is now
    // the [N, classes] tensor the ZipMap read.
    n.opType = 'Identity';
    n.domain = '';
    n.attribute = [];
    vi.type = onnx.TypeProto.create({
      tensorType: {
        elemType: FLOAT,
        shape: { dim: [{ dimParam: 'N' }, { dimValue: info.labels?.length ?? 0 }] },
      },
    });
    info.zipMapOutputs.push(out);
    info.probabilities = out;
    changed = true;
  }
  if (!info.probabilities && info.labels) {
    // Exported with zipmap=False: the probabilities are the float [N, classes] output.
    const probs = (graph.output ?? []).find((o) => {
      const t = o.type?.tensorType;
      const dims = t?.shape?.dim ?? [];
      return t?.elemType === FLOAT && dims.length === 2 && num(dims[1]?.dimValue) === info.labels!.length;
    });
    if (probs?.name) info.probabilities = probs.name;
  }
  if (changed) {
    // An Identity is a default-domain operator: make sure the graph imports that domain.
    if (!(model.opsetImport ?? []).some((o) => !o.domain))
      model.opsetImport = [...(model.opsetImport ?? []), { domain: '', version: 13 }];
    info.bytes = onnx.ModelProto.encode(model).finish();
  }
  return info;
}
