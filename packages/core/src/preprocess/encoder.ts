// Turns validated request instances into the model's input tensors, as the manifest declares.
// Compiled once per model version; `encode` is the hot path and allocates only the output tensors.
import type { Feature, Manifest, TensorFeature, TensorBinding, TokenizerSection } from '../contract/schema.js';
import { ContractError, InputError, type FieldIssue } from '../errors.js';
import { allocate, elementCount, setElement, type TensorValue } from '../tensor.js';
import { compileStep, isSparse, type CompiledStep, type ValueShape } from './registry.js';
import { TextTokenizer, TooLongError, type TokenizedText } from './text-tokenizer.js';
import './steps.js';

export type Instance = Record<string, unknown>;

interface CompiledColumn {
  feature: Feature;
  width: number;
  steps: CompiledStep[];
}

interface CompiledBinding {
  input: string;
  dtype: NonNullable<TensorBinding['dtype']>;
  width: number;
  columns: CompiledColumn[];
}

/** What the postprocessing needs to know about one encoded row of a ragged (padded) input. */
export interface RowInfo {
  /** Real (unpadded) length of the row along the sequence axis. */
  length: number;
  /** Character offsets of each token (tokenizer step with offsets on). */
  offsets?: TokenizedText['offsets'];
  /** The row's text, for reporting entity words. */
  text?: string;
  pair?: string;
}

export interface EncodedBatch {
  feeds: Record<string, TensorValue>;
  /** Per-row sequence information; absent when no input has a padded sequence axis. */
  rows?: RowInfo[];
}

/** Files the contract refers to, read by the caller (the server from the version folder, the browser by fetch). */
export interface EncoderResources {
  /** Parsed `tokenizer.json`, required when the manifest has a `tokenizer` section. */
  tokenizer?: unknown;
}

export interface Encoder {
  /** The ONNX input names this encoder produces. */
  readonly inputNames: readonly string[];
  /** True when every produced tensor has a leading batch dimension, so instances can be stacked. */
  readonly batchable: boolean;
  /** Inputs with a padded (ragged) sequence axis and their pad values; empty when there are none. */
  readonly padValues: Readonly<Record<string, number>>;
  encode(instances: readonly Instance[], pointerBase?: string): Record<string, TensorValue>;
  /** Like `encode`, also returning each row's real length (and offsets) for un-padding token-level outputs. */
  encodeBatch(instances: readonly Instance[], pointerBase?: string): EncodedBatch;
}

function initialShape(f: Feature): ValueShape {
  switch (f.type) {
    case 'number':
    case 'integer':
    case 'boolean':
      return { kind: 'scalar' };
    case 'category':
      return { kind: 'category' };
    case 'string':
      return { kind: 'string' };
    case 'tensor':
    case 'image':
      return { kind: 'any' };
  }
}

function compileBinding(b: TensorBinding, features: Map<string, Feature>, bi: number): CompiledBinding {
  const columns = b.columns.map((c, ci): CompiledColumn => {
    const path = `/preprocess/${bi}/columns/${ci}`;
    const feature = features.get(c.feature);
    if (!feature) throw new ContractError(`${path}/feature`, `unknown feature "${c.feature}"`);
    if (feature.type === 'tensor')
      throw new ContractError(
        `${path}/feature`,
        `tensor feature "${c.feature}" cannot be a column; it feeds its input directly`,
      );
    if (feature.type === 'image')
      throw new ContractError(
        `${path}/feature`,
        `image feature "${c.feature}" cannot be a column; images feed a pipeline`,
      );
    let shape = initialShape(feature);
    if (b.dtype === 'string') {
      // A string input (a scikit-learn OneHotEncoder or LabelEncoder inside the graph): the text goes in as sent.
      if (feature.type !== 'string' && feature.type !== 'category')
        throw new ContractError(
          `${path}/feature`,
          `a string tensor takes string or category features, not ${feature.type}`,
        );
      if (c.steps?.length) throw new ContractError(`${path}/steps`, 'a string tensor takes the text as sent: no steps');
      return { feature, steps: [], width: 1 };
    }
    const specs =
      c.steps ??
      (feature.type === 'category' ? [{ op: 'index' }] : feature.type === 'string' ? [] : [{ op: 'identity' }]);
    const steps = specs.map((s, si) => {
      const step = compileStep(s as { op: string }, shape, { feature, path: `${path}/steps/${si}` });
      shape = step.output;
      return step;
    });
    if (shape.kind !== 'scalar' && shape.kind !== 'vector') {
      throw new ContractError(
        `${path}/steps`,
        `the steps for "${c.feature}" end in a ${shape.kind}; they must end in a number or a vector`,
      );
    }
    return { feature, steps, width: shape.kind === 'vector' ? shape.width : 1 };
  });
  return { input: b.input, dtype: b.dtype ?? 'float32', columns, width: columns.reduce((a, c) => a + c.width, 0) };
}

function writeValue(
  out: Float32Array | Float64Array | ArrayLike<number>,
  offset: number,
  v: unknown,
  width: number,
): boolean {
  const target = out as unknown as Record<number, number>;
  if (typeof v === 'number') {
    target[offset] = v;
    return Number.isFinite(v);
  }
  if (isSparse(v)) {
    for (let i = 0; i < v.indices.length; i++) target[offset + v.indices[i]!] = v.values[i]!;
    return true;
  }
  const arr = v as ArrayLike<number>;
  let finite = true;
  for (let i = 0; i < width; i++) {
    const x = arr[i]!;
    target[offset + i] = x;
    if (!Number.isFinite(x)) finite = false;
  }
  return finite;
}

/**
 * Writes a value into a string or 64-bit integer tensor (typed `=` would throw on a BigInt64Array, and a
 * string tensor is a plain array); false when a number is not finite.
 */
function writeGeneric(out: TensorValue['data'], offset: number, v: unknown, width: number): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v === 'string' || typeof v === 'boolean' || typeof v === 'bigint') {
    setElement(out, offset, v);
    return true;
  }
  if (typeof v === 'number') {
    setElement(out, offset, v);
    return Number.isFinite(v);
  }
  const arr = v as ArrayLike<number>;
  let finite = true;
  for (let i = 0; i < width; i++) {
    const x = arr[i]!;
    if (!Number.isFinite(x)) finite = false;
    else setElement(out, offset + i, x);
  }
  return finite;
}

/** True for typed arrays that take plain numbers (not bigint, not string tensors). */
function isNumberArray(out: TensorValue['data']): out is Float32Array {
  return !Array.isArray(out) && !(out instanceof BigInt64Array) && !(out instanceof BigUint64Array);
}

/** Flattens a nested array row into `out` starting at `offset`, checking it against `dims`. */
function flattenRow(
  value: unknown,
  dims: readonly number[],
  out: TensorValue['data'],
  offset: number,
  pointer: string,
  issues: FieldIssue[],
): number {
  let written = 0;
  const numeric = isNumberArray(out);
  const walk = (v: unknown, depth: number, p: string): boolean => {
    if (depth === dims.length) {
      if (Array.isArray(v)) {
        issues.push({ pointer: p, reason: `expected a scalar at depth ${depth}, got an array` });
        return false;
      }
      if (typeof v === 'number' && !Number.isFinite(v)) {
        issues.push({ pointer: p, reason: 'NaN and Infinity are not allowed' });
        return false;
      }
      setElement(out, offset + written, v as number);
      written++;
      return true;
    }
    if (!Array.isArray(v)) {
      issues.push({ pointer: p, reason: `expected an array of length ${dims[depth]} at depth ${depth}` });
      return false;
    }
    if (v.length !== dims[depth]) {
      issues.push({ pointer: p, reason: `expected length ${dims[depth]}, got ${v.length}` });
      return false;
    }
    if (numeric && depth === dims.length - 1) {
      // Hot path for the innermost row: one native copy once every element is a finite number.
      let ok = true;
      for (let i = 0; i < v.length; i++) {
        const x = v[i];
        if (typeof x !== 'number' || !Number.isFinite(x)) {
          ok = false;
          break;
        }
      }
      if (ok) {
        out.set(v as number[], offset + written);
        written += v.length;
        return true;
      }
    }
    for (let i = 0; i < v.length; i++) if (!walk(v[i], depth + 1, `${p}/${i}`)) return false;
    return true;
  };
  walk(value, 0, pointer);
  return written;
}

/** Infers the dims of a nested array (following first elements). */
function nestedDims(v: unknown): number[] {
  const dims: number[] = [];
  let cur = v;
  while (Array.isArray(cur)) {
    dims.push(cur.length);
    cur = cur[0];
  }
  return dims;
}

function encodeTensorFeature(
  f: TensorFeature,
  instances: readonly Instance[],
  batchable: boolean,
  base: string,
  pad?: number,
  lengths: number[] = [],
): TensorValue {
  const issues: FieldIssue[] = [];
  const rowShape = batchable ? f.shape.slice(1) : f.shape;
  if (pad !== undefined) return encodeRaggedTensor(f, instances, rowShape, pad, base, lengths);
  // Dynamic non-batch dims are taken from the first instance; every other instance must match.
  const first = instances[0]?.[f.name];
  const seen = nestedDims(first);
  const dims = rowShape.map((d, i) => (d === -1 ? (seen[i] ?? 0) : d));
  const rowSize = elementCount(dims);
  const total = rowSize * instances.length;
  const out = allocate(f.dtype, total);
  instances.forEach((inst, i) => {
    const pointer = `${base}/${i}/${f.name}`;
    const n = flattenRow(inst[f.name], dims, out, i * rowSize, pointer, issues);
    if (n !== rowSize && issues.length === 0)
      issues.push({ pointer, reason: `expected ${rowSize} elements, got ${n}` });
  });
  if (issues.length) throw new InputError(issues);
  return { dtype: f.dtype, dims: batchable ? [instances.length, ...dims] : dims, data: out };
}

/**
 * A tensor input with a padded sequence axis (the first axis after the batch): each row keeps its own length
 * and is padded to the longest row of the request with the declared pad value.
 */
function encodeRaggedTensor(
  f: TensorFeature,
  instances: readonly Instance[],
  rowShape: readonly number[],
  pad: number,
  base: string,
  lengths: number[],
): TensorValue {
  const issues: FieldIssue[] = [];
  const rowDims = instances.map((inst) => {
    const seen = nestedDims(inst[f.name]);
    return rowShape.map((d, i) => (d === -1 ? (seen[i] ?? 0) : d));
  });
  const longest = Math.max(...rowDims.map((d) => d[0] ?? 0));
  if (longest === 0) {
    throw new InputError(
      instances.map((_, i) => ({ pointer: `${base}/${i}/${f.name}`, reason: 'a sequence needs at least one element' })),
    );
  }
  const inner = rowDims[0]!.slice(1);
  const step = elementCount(inner);
  const rowSize = longest * step;
  const out = allocate(f.dtype, rowSize * instances.length);
  if (pad !== 0) for (let k = 0; k < out.length; k++) setElement(out, k, pad);
  instances.forEach((inst, i) => {
    const pointer = `${base}/${i}/${f.name}`;
    const dims = rowDims[i]!;
    if (dims[0] === 0) {
      issues.push({ pointer, reason: 'a sequence needs at least one element' });
      return;
    }
    if (dims.slice(1).join('x') !== inner.join('x')) {
      issues.push({ pointer, reason: `expected inner shape [${inner.join(', ')}], got [${dims.slice(1).join(', ')}]` });
      return;
    }
    if (lengths[i] === undefined) lengths[i] = dims[0]!;
    else if (lengths[i] !== dims[0]) {
      issues.push({
        pointer,
        reason: `has ${dims[0]} positions but the row's other sequence inputs have ${lengths[i]}`,
      });
      return;
    }
    flattenRow(inst[f.name], dims, out, i * rowSize, pointer, issues);
  });
  if (issues.length) throw new InputError(issues);
  return { dtype: f.dtype, dims: [instances.length, longest, ...inner], data: out };
}

/** Feeds produced by the tokenizer step: ids, mask and type ids, padded to the request's longest row. */
function compileTokenizerStep(
  t: TokenizerSection,
  features: Map<string, Feature>,
  resources: EncoderResources,
  padValues: Record<string, number>,
  offsets: boolean,
): {
  inputs: string[];
  pads: Record<string, number>;
  encode(instances: readonly Instance[], base: string): EncodedBatch;
} {
  for (const [key, name] of [
    ['text', t.text],
    ['textPair', t.textPair],
  ] as const) {
    if (name === undefined) continue;
    const f = features.get(name);
    if (!f) throw new ContractError(`/tokenizer/${key}`, `unknown feature "${name}"`);
    if (f.type !== 'string') throw new ContractError(`/tokenizer/${key}`, `feature "${name}" must be of type string`);
  }
  if (!t.inputIds) throw new ContractError('/tokenizer/inputIds', 'the tokenizer must feed the model an ids input');
  if (resources.tokenizer === undefined)
    throw new ContractError('/tokenizer/file', `${t.file ?? 'tokenizer.json'} was not provided to the encoder`);
  const tok = new TextTokenizer(resources.tokenizer, {
    maxLength: t.maxLength,
    ...(t.truncation && { truncation: t.truncation }),
    offsets,
  });
  const dtype = t.dtype ?? 'int64';
  const padId = padValues[t.inputIds] ?? tok.padId ?? 0;
  const inputs = [t.inputIds, t.attentionMask, t.tokenTypeIds, t.positionIds].filter(
    (n): n is string => n !== undefined,
  );
  const maskPad = t.attentionMask !== undefined ? (padValues[t.attentionMask] ?? 0) : 0;
  const typePad = t.tokenTypeIds !== undefined ? (padValues[t.tokenTypeIds] ?? 0) : 0;
  const positionPad = t.positionIds !== undefined ? (padValues[t.positionIds] ?? 0) : 0;
  const pads: Record<string, number> = { [t.inputIds]: padId };
  if (t.attentionMask) pads[t.attentionMask] = maskPad;
  if (t.tokenTypeIds) pads[t.tokenTypeIds] = typePad;
  if (t.positionIds) pads[t.positionIds] = positionPad;
  return {
    inputs,
    pads,
    encode(instances, base) {
      const issues: FieldIssue[] = [];
      const rows: RowInfo[] = [];
      const encoded: TokenizedText[] = [];
      instances.forEach((inst, i) => {
        const text = inst[t.text] as string | undefined;
        const pair = t.textPair !== undefined ? (inst[t.textPair] as string | undefined) : undefined;
        const sides = [
          [t.text, text],
          [t.textPair, pair],
        ] as const;
        for (const [name, value] of sides) {
          if (name === undefined || value === undefined) continue;
          if (/\p{Cs}/u.test(value))
            issues.push({ pointer: `${base}/${i}/${name}`, reason: 'text contains an unpaired UTF-16 surrogate' });
        }
        if (issues.length) return;
        if (text === undefined) {
          issues.push({ pointer: `${base}/${i}/${t.text}`, reason: `missing required feature "${t.text}"` });
          return;
        }
        let r: TokenizedText;
        try {
          r = tok.encode(text, pair);
        } catch (e) {
          if (!(e instanceof TooLongError)) throw e;
          const name = e.side === 1 && t.textPair ? t.textPair : t.text;
          issues.push({ pointer: `${base}/${i}/${name}`, reason: `text too long: ${e.message}` });
          return;
        }
        // A text with nothing left after normalisation (empty, only spaces or control characters) is refused.
        const empty = r.pieces[0] === 0 ? t.text : pair !== undefined && r.pieces[1] === 0 ? t.textPair : undefined;
        if (empty !== undefined) {
          issues.push({ pointer: `${base}/${i}/${empty}`, reason: 'text is empty (no tokens after normalisation)' });
          return;
        }
        encoded.push(r);
        rows.push({
          length: r.ids.length,
          ...(r.offsets && { offsets: r.offsets }),
          text,
          ...(pair !== undefined && { pair }),
        });
      });
      if (issues.length) throw new InputError(issues);
      const longest = Math.max(...encoded.map((r) => r.ids.length));
      const n = instances.length;
      const ids = allocate(dtype, n * longest);
      const mask = allocate(dtype, n * longest);
      const types = allocate(dtype, n * longest);
      const positions = t.positionIds ? allocate(dtype, n * longest) : undefined;
      encoded.forEach((r, row) => {
        const o = row * longest;
        for (let k = 0; k < longest; k++) {
          const real = k < r.ids.length;
          setElement(ids, o + k, real ? r.ids[k]! : padId);
          setElement(mask, o + k, real ? 1 : maskPad);
          setElement(types, o + k, real ? r.typeIds[k]! : typePad);
          if (positions) setElement(positions, o + k, real ? k : positionPad);
        }
      });
      const dims = [n, longest];
      const feeds: Record<string, TensorValue> = { [t.inputIds!]: { dtype, dims, data: ids } };
      if (t.attentionMask) feeds[t.attentionMask] = { dtype, dims: [...dims], data: mask };
      if (t.tokenTypeIds) feeds[t.tokenTypeIds] = { dtype, dims: [...dims], data: types };
      if (t.positionIds && positions) feeds[t.positionIds] = { dtype, dims: [...dims], data: positions };
      return { feeds, rows };
    },
  };
}

export function compileEncoder(manifest: Manifest, resources: EncoderResources = {}): Encoder {
  const features = new Map(manifest.inputs.map((f) => [f.name, f]));
  const bindings = (manifest.preprocess ?? []).map((b, i) => compileBinding(b, features, i));
  const bound = new Set(bindings.flatMap((b) => b.columns.map((c) => c.feature.name)));
  const padValues: Record<string, number> = { ...(manifest.batching?.padding?.values ?? {}) };
  const post = manifest.postprocess;
  const tokenizer = manifest.tokenizer
    ? compileTokenizerStep(manifest.tokenizer, features, resources, padValues, post?.kind === 'token-classification')
    : undefined;
  if (manifest.tokenizer) {
    bound.add(manifest.tokenizer.text);
    if (manifest.tokenizer.textPair) bound.add(manifest.tokenizer.textPair);
  }
  const tensorFeatures = manifest.inputs.filter((f): f is TensorFeature => f.type === 'tensor');
  const images = manifest.inputs.filter((f) => f.type === 'image');
  if (images.length)
    throw new ContractError(
      '/inputs',
      `image input "${images[0]!.name}" needs a \`pipeline\` section (e.g. kind: ocr)`,
    );
  const unbound = manifest.inputs.filter((f) => f.type !== 'tensor' && !bound.has(f.name));
  // A version with a handler may turn features into tensors in code: unbound features are its to encode.
  if (unbound.length && !manifest.handler) {
    throw new ContractError(
      '/preprocess',
      `feature(s) ${unbound.map((f) => `"${f.name}"`).join(', ')} are not used by any preprocess binding`,
    );
  }
  const names = [...bindings.map((b) => b.input), ...(tokenizer?.inputs ?? []), ...tensorFeatures.map((f) => f.name)];
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new ContractError('/preprocess', `model input "${dup}" is produced twice`);
  const batchable = tensorFeatures.every((f) => f.shape[0] === -1);
  // Across requests, inputs are padded only where `batching.padding` says so (without it, requests of
  // different lengths run in separate batches); within a request the tokenizer always pads to the longest row.
  const ragged = new Set<string>(manifest.batching?.padding ? (tokenizer?.inputs ?? []) : []);
  for (const name of Object.keys(padValues)) {
    if (!names.includes(name))
      throw new ContractError(`/batching/padding/values/${name}`, `"${name}" is not an input of the model`);
    const f = features.get(name);
    if (f?.type === 'tensor') {
      if (f.shape.length < 2 || f.shape[0] !== -1 || f.shape[1] !== -1)
        throw new ContractError(
          `/batching/padding/values/${name}`,
          `"${name}" must have a dynamic batch and sequence axis (shape [-1, -1, ...]) to be padded`,
        );
      ragged.add(name);
    }
  }

  const encodeBatch = (instances: readonly Instance[], base = '/instances'): EncodedBatch => {
    if (!batchable && instances.length !== 1) {
      throw new InputError([{ pointer: base, reason: 'this model has no batch dimension: send exactly one instance' }]);
    }
    const result: Record<string, TensorValue> = {};
    const issues: FieldIssue[] = [];
    for (const b of bindings) {
      const data = allocate(b.dtype, instances.length * b.width);
      const numeric = isNumberArray(data);
      instances.forEach((inst, row) => {
        let offset = row * b.width;
        for (const col of b.columns) {
          let v: unknown = inst[col.feature.name] ?? (col.feature as { default?: unknown }).default;
          for (const s of col.steps) v = s.apply(v);
          const ok = numeric
            ? writeValue(data as Float32Array, offset, v, col.width)
            : writeGeneric(data, offset, v, col.width);
          if (!ok) {
            issues.push({
              pointer: `${base}/${row}/${col.feature.name}`,
              reason: 'preprocessing produced NaN or Infinity (missing value without an impute step?)',
            });
          }
          offset += col.width;
        }
      });
      result[b.input] = { dtype: b.dtype, dims: [instances.length, b.width], data };
    }
    if (issues.length) throw new InputError(issues);
    let rows: RowInfo[] | undefined;
    if (tokenizer) {
      const t = tokenizer.encode(instances, base);
      Object.assign(result, t.feeds);
      rows = t.rows;
    }
    const lengths: number[] = [];
    for (const f of tensorFeatures) {
      const pad = ragged.has(f.name) ? padValues[f.name] : undefined;
      result[f.name] = encodeTensorFeature(f, instances, batchable, base, pad, lengths);
    }
    if (!rows && lengths.length) rows = lengths.map((length) => ({ length }));
    return { feeds: result, ...(rows && { rows }) };
  };

  return {
    inputNames: names,
    batchable,
    padValues: Object.fromEntries([...ragged].map((n) => [n, tokenizer?.pads[n] ?? padValues[n] ?? 0])),
    encodeBatch,
    encode: (instances, base) => encodeBatch(instances, base).feeds,
  };
}
