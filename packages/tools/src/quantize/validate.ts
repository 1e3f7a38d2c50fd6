// Measures what quantisation cost: runs the float and the quantised model on the same validation rows
// with ONNX Runtime and compares their outputs, and for classifiers their top-1 choices and accuracy.
// The guide's rule is "quantise, and measure the accuracy delta before shipping"; this is the measuring.
import * as ort from 'onnxruntime-node';
import type { TensorValue } from '@ferry/core';
import { describeModel } from '../onnx/index.js';
import { QuantizeError } from './errors.js';

/** Rows to validate on: input tensors whose first dimension is the row, and optionally a class label per row. */
export interface ValidationData {
  /** By ONNX input name; every tensor has the same first dimension (the number of rows). */
  inputs: Record<string, TensorValue>;
  /** Class index per row (the column of the score output), for accuracy. */
  labels?: readonly number[];
  /** Names of the classes, by index, for the report. */
  labelNames?: readonly string[];
}

/**
 * Rows produced on demand, a batch at a time: for data that would be too large as whole tensors (e.g.
 * instances whose features hash into a wide vector). `loadValidationData` returns one.
 */
export interface ValidationSource {
  rows: number;
  labels?: readonly number[];
  labelNames?: readonly string[];
  /** The input tensors of rows [start, end), each with first dimension end - start. */
  slice(start: number, end: number): Record<string, TensorValue>;
}

/** How to read class decisions from the model's outputs. */
export interface ClassifierSpec {
  /** Output holding one score per class (argmax), or a single score for a binary model (`threshold`). */
  output: string;
  /** For a single-score output: the score at or above which the row is class 1. Default 0.5. */
  threshold?: number;
}

export interface ValidateOptions {
  /**
   * Rows per run. Default 32. Dynamic quantisation takes one activation scale per run, over the whole
   * batch, so results (slightly) depend on it: validate at the batch size you serve at.
   */
  batchSize?: number;
  /**
   * The classifier output, `null` for "not a classifier", or undefined to detect: the only float output
   * with rank 2 when labels are given, or one whose rows are probabilities (non-negative, summing to 1).
   */
  classifier?: ClassifierSpec | null;
  /** ONNX Runtime session options for both models. Default: all graph optimisations, runtime's own thread count. */
  sessionOptions?: ort.InferenceSession.SessionOptions;
}

export interface OutputComparison {
  name: string;
  /** Largest |fp32 - int8| over every element. */
  maxAbsDiff: number;
  meanAbsDiff: number;
  /** Largest |fp32| over every element, to put the difference in scale. */
  maxAbsValue: number;
}

export interface ClassificationComparison {
  output: string;
  /** Share of rows where both models choose the same class. */
  agreement: number;
  /** 1 - agreement. */
  disagreementRate: number;
  disagreements: number;
  /** With labels only. */
  fp32Accuracy?: number;
  int8Accuracy?: number;
  /** fp32Accuracy - int8Accuracy: positive when quantisation lost accuracy. */
  accuracyDelta?: number;
}

export interface ValidationReport {
  rows: number;
  batchSize: number;
  outputs: OutputComparison[];
  /** Null when the model was not treated as a classifier. */
  classification: ClassificationComparison | null;
}

const DEFAULT_BATCH = 32;

function checkTensors(inputs: Record<string, TensorValue>): number {
  const entries = Object.entries(inputs);
  if (entries.length === 0) throw new QuantizeError('quantize-invalid-data', 'validation data has no input tensors');
  let rows: number | null = null;
  for (const [name, t] of entries) {
    if (t.dims.length === 0)
      throw new QuantizeError(
        'quantize-invalid-data',
        `input "${name}" is a scalar; validation inputs need a leading row dimension`,
      );
    const count = t.dims.reduce((a, d) => a * d, 1);
    if (count !== t.data.length)
      throw new QuantizeError(
        'quantize-invalid-data',
        `input "${name}": dims [${t.dims.join(', ')}] hold ${count} values, data has ${t.data.length}`,
      );
    if (rows === null) rows = t.dims[0]!;
    else if (t.dims[0] !== rows)
      throw new QuantizeError(
        'quantize-invalid-data',
        `inputs disagree on the number of rows (${rows} and ${t.dims[0]} for "${name}")`,
      );
  }
  return rows ?? 0;
}

function sliceRows(t: TensorValue, start: number, end: number): TensorValue {
  const width = t.dims.slice(1).reduce((a, d) => a * d, 1);
  const data = Array.isArray(t.data)
    ? t.data.slice(start * width, end * width)
    : (t.data as Float32Array).subarray(start * width, end * width);
  return { dtype: t.dtype, dims: [end - start, ...t.dims.slice(1)], data };
}

/** A source over whole tensors held in memory. */
export function tensorSource(data: ValidationData): ValidationSource {
  const rows = checkTensors(data.inputs);
  return {
    rows,
    ...(data.labels && { labels: data.labels }),
    ...(data.labelNames && { labelNames: data.labelNames }),
    slice: (start, end) =>
      Object.fromEntries(Object.entries(data.inputs).map(([n, t]) => [n, sliceRows(t, start, end)])),
  };
}

const toOrt = (t: TensorValue): ort.Tensor =>
  new ort.Tensor(t.dtype as ort.Tensor.Type, t.data as Float32Array, t.dims);

async function openSession(
  bytes: Uint8Array,
  which: string,
  options: ort.InferenceSession.SessionOptions,
): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(bytes, options);
  } catch (e) {
    throw new QuantizeError(
      'quantize-runtime-failed',
      `ONNX Runtime cannot load the ${which} model: ${(e as Error).message}`,
      { cause: e },
    );
  }
}

function argmaxRow(d: ArrayLike<number>, row: number, width: number): number {
  let best = 0;
  const base = row * width;
  for (let j = 1; j < width; j++) if (d[base + j]! > d[base + best]!) best = j;
  return best;
}

function looksLikeProbabilities(d: ArrayLike<number>, rows: number, width: number): boolean {
  if (width < 2) return false;
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let j = 0; j < width; j++) {
      const v = d[r * width + j]!;
      if (!(v >= 0)) return false;
      sum += v;
    }
    if (Math.abs(sum - 1) > 1e-3) return false;
  }
  return true;
}

/**
 * Runs both models on every row and compares them.
 *
 * @example
 * const report = await validate(fp32, int8, { inputs: { x: { dtype: 'float32', dims: [n, 256], data } }, labels });
 * if ((report.classification?.accuracyDelta ?? 0) > 0.01) throw new Error('too lossy');
 */
export async function validate(
  fp32Bytes: Uint8Array,
  int8Bytes: Uint8Array,
  data: ValidationData | ValidationSource,
  options: ValidateOptions = {},
): Promise<ValidationReport> {
  const source = 'slice' in data ? data : tensorSource(data);
  const { rows } = source;
  if (!rows) throw new QuantizeError('quantize-invalid-data', 'validation data has no rows');
  if (source.labels && source.labels.length !== rows) {
    throw new QuantizeError('quantize-invalid-data', `${source.labels.length} labels for ${rows} rows`);
  }
  const labels = source.labels;
  const description = describeModel(fp32Bytes);
  const inputNames = description.inputs.map((i) => i.name);
  // A model whose first input dimension is fixed takes exactly that many rows per run.
  const fixed = description.inputs.map((i) => i.shape?.[0] ?? -1).find((d) => d > 0);
  let batchSize = options.batchSize ?? DEFAULT_BATCH;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new QuantizeError('quantize-invalid-options', `batchSize must be a positive integer, got ${batchSize}`);
  if (fixed !== undefined) {
    if (rows % fixed !== 0)
      throw new QuantizeError(
        'quantize-invalid-data',
        `the model takes exactly ${fixed} rows per run; ${rows} rows do not divide into such runs`,
      );
    batchSize = fixed;
  }
  const sessionOptions = options.sessionOptions ?? { graphOptimizationLevel: 'all' };
  const fp32 = await openSession(fp32Bytes, 'float', sessionOptions);
  const int8 = await openSession(int8Bytes, 'quantised', sessionOptions);
  try {
    const outputNames = fp32.outputNames;
    const stats = new Map(
      outputNames.map((n) => [n, { name: n, maxAbsDiff: 0, sumAbsDiff: 0, count: 0, maxAbsValue: 0, tensor: true }]),
    );
    // Class scores are kept (a float per row per class) so detection can look at every row.
    const scores: Record<string, { a: number[]; b: number[]; width: number }> = {};
    for (let start = 0; start < rows; start += batchSize) {
      const end = Math.min(rows, start + batchSize);
      const batch = source.slice(start, end);
      const missing = inputNames.filter((n) => !(n in batch));
      if (missing.length) {
        throw new QuantizeError(
          'quantize-invalid-data',
          `validation data lacks model input(s) ${missing.map((n) => `"${n}"`).join(', ')} (has ${Object.keys(batch).join(', ') || 'none'})`,
        );
      }
      const feeds: Record<string, ort.Tensor> = {};
      for (const n of inputNames) {
        if (checkTensors({ [n]: batch[n]! }) !== end - start)
          throw new QuantizeError(
            'quantize-invalid-data',
            `input "${n}" of rows ${start}..${end - 1} does not have ${end - start} rows`,
          );
        feeds[n] = toOrt(batch[n]!);
      }
      let ra: ort.InferenceSession.OnnxValueMapType;
      let rb: ort.InferenceSession.OnnxValueMapType;
      try {
        ra = await fp32.run(feeds);
        rb = await int8.run(feeds);
      } catch (e) {
        throw new QuantizeError(
          'quantize-runtime-failed',
          `ONNX Runtime failed on rows ${start}..${end - 1}: ${(e as Error).message}`,
          { cause: e },
        );
      }
      for (const n of outputNames) {
        const ta = ra[n] as ort.Tensor | undefined;
        const tb = rb[n] as ort.Tensor | undefined;
        const s = stats.get(n)!;
        if (
          !ta ||
          !tb ||
          typeof ta.data === 'string' ||
          Array.isArray(ta.data) ||
          ta.type === 'string' ||
          ta.type === 'int64' ||
          ta.type === 'uint64'
        ) {
          // Labels (int64), strings and non-tensor outputs are not compared numerically; class outputs decide.
          s.tensor = false;
          continue;
        }
        const da = ta.data as Float32Array;
        const db = tb.data as Float32Array;
        if (da.length !== db.length)
          throw new QuantizeError(
            'quantize-runtime-failed',
            `output "${n}" has ${da.length} values from the float model and ${db.length} from the quantised one`,
          );
        for (let i = 0; i < da.length; i++) {
          const diff = Math.abs(da[i]! - db[i]!);
          if (diff > s.maxAbsDiff || Number.isNaN(diff)) s.maxAbsDiff = Number.isNaN(diff) ? Infinity : diff;
          s.sumAbsDiff += diff;
          const v = Math.abs(da[i]!);
          if (v > s.maxAbsValue) s.maxAbsValue = v;
        }
        s.count += da.length;
        if (ta.dims.length === 2 && ta.type === 'float32') {
          const width = ta.dims[1]!;
          const acc = (scores[n] ??= { a: [], b: [], width });
          for (let i = 0; i < da.length; i++) {
            acc.a.push(da[i]!);
            acc.b.push(db[i]!);
          }
        }
      }
    }
    const outputs: OutputComparison[] = [...stats.values()]
      .filter((s) => s.tensor)
      .map((s) => ({
        name: s.name,
        maxAbsDiff: s.maxAbsDiff,
        meanAbsDiff: s.count ? s.sumAbsDiff / s.count : 0,
        maxAbsValue: s.maxAbsValue,
      }));

    let spec: ClassifierSpec | null = null;
    if (options.classifier !== undefined) spec = options.classifier;
    else {
      const candidates = Object.entries(scores).filter(([, s]) => s.width >= 2);
      const probabilities = candidates.find(([, s]) => looksLikeProbabilities(s.a, rows, s.width));
      if (labels && candidates.length === 1) spec = { output: candidates[0]![0] };
      else if (probabilities) spec = { output: probabilities[0] };
      if (!spec && labels) {
        throw new QuantizeError(
          'quantize-invalid-data',
          `labels were given but no single output of class scores was found (float outputs of shape [rows, classes]: ${candidates.map(([n]) => n).join(', ') || 'none'}); name the classifier output`,
        );
      }
    }
    let classification: ClassificationComparison | null = null;
    if (spec) {
      const s = scores[spec.output];
      if (!s)
        throw new QuantizeError(
          'quantize-invalid-data',
          `classifier output "${spec.output}" is not a float32 [rows, classes] output of the model`,
        );
      const threshold = spec.threshold ?? 0.5;
      const choose = (d: number[], r: number): number =>
        s.width === 1 ? (d[r]! >= threshold ? 1 : 0) : argmaxRow(d, r, s.width);
      let agree = 0;
      let rightA = 0;
      let rightB = 0;
      for (let r = 0; r < rows; r++) {
        const ca = choose(s.a, r);
        const cb = choose(s.b, r);
        if (ca === cb) agree++;
        if (labels) {
          if (ca === labels[r]) rightA++;
          if (cb === labels[r]) rightB++;
        }
      }
      classification = {
        output: spec.output,
        agreement: agree / rows,
        disagreementRate: 1 - agree / rows,
        disagreements: rows - agree,
      };
      if (labels) {
        classification.fp32Accuracy = rightA / rows;
        classification.int8Accuracy = rightB / rows;
        classification.accuracyDelta = (rightA - rightB) / rows;
      }
    }
    return { rows, batchSize, outputs, classification };
  } finally {
    await Promise.allSettled([fp32.release(), int8.release()]);
  }
}

/** The figure `--max-delta` bounds, and what it is called, for a report. */
export function gatedFigure(report: ValidationReport): { name: string; value: number } {
  const c = report.classification;
  if (c?.accuracyDelta !== undefined) return { name: 'accuracy delta (fp32 - int8)', value: c.accuracyDelta };
  if (c) return { name: 'top-1 disagreement rate', value: c.disagreementRate };
  const worst = report.outputs.reduce((m, o) => Math.max(m, o.maxAbsDiff), 0);
  return { name: 'largest absolute output difference', value: worst };
}
