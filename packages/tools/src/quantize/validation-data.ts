// Reads validation data for `ferry quantize --validate DATA` from a file:
// - JSON Lines (or a JSON array, or a v1 request body `{"instances": [...]}`) of instances. An instance
//   either names the model's inputs (`{"x": [0.1, ...], "label": 3}`: raw rows) or carries the features of
//   the model's ferry.yaml contract (`{"text": "...", "label": "spam"}`), encoded with the contract's own
//   preprocessing. The label key is optional; string labels map through the contract's class labels.
// - JSON raw tensors: `{"inputs": {"x": {"dims": [n, 256], "data": [...]}}, "labels": [...]}`, or the
//   Open Inference Protocol form `{"inputs": [{"name": "x", "shape": [...], "datatype": "FP32", "data": [...]}]}`.
import { readFile } from 'node:fs/promises';
import {
  allocate,
  compileEncoder,
  type EncoderResources,
  setElement,
  type Instance,
  type Manifest,
  type TensorDtype,
  type TensorValue,
} from '@ferry/core';
import { describeModel, type ValueDescription } from '../onnx/index.js';
import { QuantizeError } from './errors.js';
import { tensorSource, type ValidationSource } from './validate.js';

export interface LoadValidationOptions {
  /** The float model: its input names, element types and shapes decide how rows become tensors. */
  model: Uint8Array;
  /** The model's contract, to encode feature instances and to name classes. */
  manifest?: Manifest | null;
  /** Key of the label in an instance. Default `'label'`. */
  labelKey?: string;
  /** Read at most this many rows. */
  limit?: number;
  /** Files the contract refers to (its tokenizer.json), for encoding text instances. */
  resources?: EncoderResources;
}

const bad = (message: string, cause?: unknown): QuantizeError =>
  new QuantizeError('quantize-invalid-data', message, cause === undefined ? undefined : { cause });

/** Class names from the contract's classification postprocess, when it has one. */
export function classNames(manifest: Manifest | null | undefined): readonly string[] | undefined {
  const p = manifest?.postprocess;
  return p?.kind === 'classification' ? p.labels : undefined;
}

function labelIndex(v: unknown, names: readonly string[] | undefined, where: string): number {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  if (typeof v === 'string') {
    const i = names?.indexOf(v) ?? -1;
    if (i >= 0) return i;
    if (/^\d+$/.test(v)) return Number(v);
    throw bad(
      `${where}: label ${JSON.stringify(v)} is not one of the model's classes (${names?.join(', ') ?? 'no ferry.yaml with classification labels was given'})`,
    );
  }
  throw bad(`${where}: label ${JSON.stringify(v)} must be a class index, a class name or a boolean`);
}

function flatten(v: unknown, out: unknown[]): void {
  if (Array.isArray(v)) for (const x of v) flatten(x, out);
  else out.push(v);
}

function fill(dtype: TensorDtype, values: readonly unknown[], where: string): TensorValue['data'] {
  const data = allocate(dtype, values.length);
  values.forEach((v, i) => {
    const ok =
      dtype === 'string'
        ? typeof v === 'string'
        : dtype === 'bool'
          ? typeof v === 'boolean' || v === 0 || v === 1
          : typeof v === 'number' || typeof v === 'bigint';
    if (!ok) throw bad(`${where}: value ${JSON.stringify(v)} at position ${i} does not fit ${dtype}`);
    setElement(data, i, v as number);
  });
  return data;
}

/** The per-row shape of a model input, when fixed (dims after the first). */
function rowShape(input: ValueDescription): number[] | null {
  const inner = (input.shape ?? []).slice(1);
  return inner.every((d) => d > 0) ? inner : null;
}

function rawRowSource(
  instances: readonly Instance[],
  inputs: readonly ValueDescription[],
  labels: number[] | undefined,
  names: readonly string[] | undefined,
): ValidationSource {
  const widths = new Map<string, { width: number; inner: number[] }>();
  for (const input of inputs) {
    const shape = rowShape(input);
    const first: unknown[] = [];
    flatten(instances[0]![input.name], first);
    widths.set(
      input.name,
      shape
        ? { width: shape.reduce((a, d) => a * d, 1), inner: shape }
        : { width: first.length, inner: [first.length] },
    );
  }
  const tensors: Record<string, TensorValue> = {};
  for (const input of inputs) {
    const { width, inner } = widths.get(input.name)!;
    const dtype = input.dtype ?? 'float32';
    const values: unknown[] = [];
    instances.forEach((inst, row) => {
      const before = values.length;
      flatten(inst[input.name], values);
      if (values.length - before !== width)
        throw bad(
          `row ${row + 1}: "${input.name}" has ${values.length - before} values, the model takes ${width} per row`,
        );
    });
    tensors[input.name] = {
      dtype,
      dims: [instances.length, ...inner],
      data: fill(dtype, values, `input "${input.name}"`),
    };
  }
  return tensorSource({ inputs: tensors, ...(labels && { labels }), ...(names && { labelNames: names }) });
}

function contractSource(
  instances: readonly Instance[],
  manifest: Manifest,
  labels: number[] | undefined,
  names: readonly string[] | undefined,
  resources: EncoderResources = {},
): ValidationSource {
  let encoder: ReturnType<typeof compileEncoder>;
  try {
    encoder = compileEncoder(manifest, resources);
  } catch (e) {
    throw bad(`the model's ferry.yaml cannot encode instances: ${(e as Error).message}`, e);
  }
  return {
    rows: instances.length,
    ...(labels && { labels }),
    ...(names && { labelNames: names }),
    // Encoded a batch at a time: contracts may expand a feature into a wide vector (hashed text).
    slice(start, end) {
      try {
        return encoder.encode(instances.slice(start, end), `/rows/${start}`);
      } catch (e) {
        const issues = (e as { issues?: Array<{ pointer: string; reason: string }> }).issues;
        const detail = issues?.length
          ? issues
              .slice(0, 3)
              .map((i) => `${i.pointer}: ${i.reason}`)
              .join('; ')
          : (e as Error).message;
        throw bad(`rows ${start + 1}..${end} do not satisfy the model's contract: ${detail}`, e);
      }
    },
  };
}

/**
 * Turns instances into a validation source: raw rows when every instance names the model's inputs,
 * otherwise features encoded by `manifest`.
 */
export function instancesSource(instances: readonly Instance[], options: LoadValidationOptions): ValidationSource {
  if (instances.length === 0) throw bad('the validation data holds no rows');
  const labelKey = options.labelKey ?? 'label';
  const names = classNames(options.manifest);
  const rows = options.limit !== undefined ? instances.slice(0, options.limit) : instances;
  const hasLabels = rows.some((r) => r[labelKey] !== undefined);
  let labels: number[] | undefined;
  if (hasLabels) {
    labels = rows.map((r, i) => {
      if (r[labelKey] === undefined) throw bad(`row ${i + 1} has no "${labelKey}" while others do`);
      return labelIndex(r[labelKey], names, `row ${i + 1}`);
    });
  }
  const stripped = hasLabels
    ? rows.map((r) => {
        const { [labelKey]: _label, ...rest } = r;
        return rest;
      })
    : rows;
  const inputs = describeModel(options.model).inputs;
  const raw = inputs.every((i) => stripped[0]![i.name] !== undefined);
  if (raw) return rawRowSource(stripped, inputs, labels, names);
  if (options.manifest) return contractSource(stripped, options.manifest, labels, names, options.resources);
  throw bad(
    `row 1 has no key for model input(s) ${inputs
      .filter((i) => stripped[0]![i.name] === undefined)
      .map((i) => `"${i.name}"`)
      .join(', ')}; ` +
      "name the model's inputs in each row, or give the ferry.yaml whose features the rows carry (--manifest)",
  );
}

const OIP_DTYPES: Readonly<Record<string, TensorDtype>> = {
  FP32: 'float32',
  FP64: 'float64',
  FP16: 'float16',
  INT8: 'int8',
  INT16: 'int16',
  INT32: 'int32',
  INT64: 'int64',
  UINT8: 'uint8',
  UINT16: 'uint16',
  UINT32: 'uint32',
  UINT64: 'uint64',
  BOOL: 'bool',
  BYTES: 'string',
};

function rawTensorSource(doc: { inputs: unknown; labels?: unknown }, options: LoadValidationOptions): ValidationSource {
  const model = describeModel(options.model).inputs;
  const entries: Array<[string, { dims?: unknown; shape?: unknown; data?: unknown; datatype?: unknown }]> =
    Array.isArray(doc.inputs)
      ? (doc.inputs as Array<{ name?: unknown }>).map((t, i) => {
          if (typeof t?.name !== 'string') throw bad(`inputs[${i}] has no name`);
          return [t.name, t as never];
        })
      : Object.entries(doc.inputs as Record<string, never>);
  const tensors: Record<string, TensorValue> = {};
  for (const [name, t] of entries) {
    const dims = (t.dims ?? t.shape) as unknown;
    if (!Array.isArray(dims) || !dims.every((d) => Number.isInteger(d) && d >= 0))
      throw bad(`input "${name}": dims (or shape) must be an array of non-negative integers`);
    const declared = model.find((m) => m.name === name)?.dtype;
    const dtype = declared ?? (typeof t.datatype === 'string' ? OIP_DTYPES[t.datatype] : undefined) ?? 'float32';
    const values: unknown[] = [];
    flatten(t.data, values);
    const count = (dims as number[]).reduce((a, d) => a * d, 1);
    if (values.length !== count)
      throw bad(`input "${name}": dims [${dims.join(', ')}] hold ${count} values, data has ${values.length}`);
    tensors[name] = { dtype, dims: dims as number[], data: fill(dtype, values, `input "${name}"`) };
  }
  const names = classNames(options.manifest);
  let labels: number[] | undefined;
  if (doc.labels !== undefined) {
    if (!Array.isArray(doc.labels)) throw bad('"labels" must be an array');
    labels = doc.labels.map((l, i) => labelIndex(l, names, `labels[${i}]`));
  }
  const source = tensorSource({ inputs: tensors, ...(labels && { labels }), ...(names && { labelNames: names }) });
  if (options.limit !== undefined && options.limit < source.rows) {
    const limit = options.limit;
    return { ...source, rows: limit, ...(source.labels && { labels: source.labels.slice(0, limit) }) };
  }
  return source;
}

/** Parses the text of a validation file (see the module comment for the forms accepted). */
export function parseValidationData(
  text: string,
  options: LoadValidationOptions,
  file = 'validation data',
): ValidationSource {
  const trimmed = text.trim();
  if (!trimmed) throw bad(`${file} is empty`);
  let whole: unknown;
  let isWhole = false;
  try {
    whole = JSON.parse(trimmed);
    isWhole = true;
  } catch {
    /* not one JSON document: JSON Lines */
  }
  if (isWhole) {
    if (Array.isArray(whole)) return instancesSource(whole as Instance[], options);
    if (whole && typeof whole === 'object') {
      const o = whole as Record<string, unknown>;
      if (Array.isArray(o.instances)) return instancesSource(o.instances as Instance[], options);
      if (o.inputs && typeof o.inputs === 'object') return rawTensorSource(o as { inputs: unknown }, options);
      return instancesSource([o], options); // a JSON Lines file of one line
    }
    throw bad(`${file}: expected JSON Lines of instances, an array of instances, or {"inputs": ...} raw tensors`);
  }
  const instances: Instance[] = [];
  const lines = trimmed.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line) continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw bad(`${file}, line ${i + 1}: not JSON (${(e as Error).message})`, e);
    }
    if (!v || typeof v !== 'object' || Array.isArray(v))
      throw bad(`${file}, line ${i + 1}: each line must be a JSON object (an instance)`);
    instances.push(v as Instance);
    if (options.limit !== undefined && instances.length >= options.limit) break;
  }
  return instancesSource(instances, options);
}

/** Reads a validation file (JSON Lines of instances, or JSON raw tensors). */
export async function loadValidationData(file: string, options: LoadValidationOptions): Promise<ValidationSource> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw bad(`cannot read validation data ${file}: ${(e as Error).message}`, e);
  }
  return parseValidationData(text, options, file);
}
