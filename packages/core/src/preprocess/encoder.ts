// Turns validated request instances into the model's input tensors, as the manifest declares.
// Compiled once per model version; `encode` is the hot path and allocates only the output tensors.
import type { Feature, Manifest, TensorFeature, TensorBinding } from '../contract/schema.js';
import { ContractError, InputError, type FieldIssue } from '../errors.js';
import { allocate, elementCount, setElement, type TensorValue } from '../tensor.js';
import { compileStep, isSparse, type CompiledStep, type ValueShape } from './registry.js';
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

export interface Encoder {
  /** The ONNX input names this encoder produces. */
  readonly inputNames: readonly string[];
  /** True when every produced tensor has a leading batch dimension, so instances can be stacked. */
  readonly batchable: boolean;
  encode(instances: readonly Instance[], pointerBase?: string): Record<string, TensorValue>;
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
): TensorValue {
  const issues: FieldIssue[] = [];
  const rowShape = batchable ? f.shape.slice(1) : f.shape;
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

export function compileEncoder(manifest: Manifest): Encoder {
  const features = new Map(manifest.inputs.map((f) => [f.name, f]));
  const bindings = (manifest.preprocess ?? []).map((b, i) => compileBinding(b, features, i));
  const bound = new Set(bindings.flatMap((b) => b.columns.map((c) => c.feature.name)));
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
  const names = [...bindings.map((b) => b.input), ...tensorFeatures.map((f) => f.name)];
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new ContractError('/preprocess', `model input "${dup}" is produced twice`);
  const batchable = tensorFeatures.every((f) => f.shape[0] === -1);

  return {
    inputNames: names,
    batchable,
    encode(instances, base = '/instances') {
      if (!batchable && instances.length !== 1) {
        throw new InputError([
          { pointer: base, reason: 'this model has no batch dimension: send exactly one instance' },
        ]);
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
      for (const f of tensorFeatures) result[f.name] = encodeTensorFeature(f, instances, batchable, base);
      return result;
    },
  };
}
