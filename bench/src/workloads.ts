// The models the bench measures and the traffic it sends them: real rows from a version's
// reference data where it has some (flight-delay), seeded random tensors otherwise (mlp-bench,
// tiny-lr).
// One row per request, so served requests/s and rows/s are the same number.
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { compileEncoder, type Instance, type Manifest, type TensorValue } from '@ferry/core';
import { MODELS_DIR } from './paths.js';
import { mulberry32 } from './prng.js';

export const BENCH_MODELS = ['flight-delay', 'mlp-bench', 'tiny-lr'] as const;
export type BenchModel = (typeof BENCH_MODELS)[number];

export interface ModelInfo {
  name: string;
  version: string;
  /** The version folder in the repository. */
  dir: string;
  modelPath: string;
  manifest: Manifest;
  /** The model's own batch limit (`batching.maxBatchSize`), used for the large-batch raw run. */
  maxBatch: number;
}

const byVersion = (a: string, b: string): number => {
  const pa = a.split(/[.-]/).map(Number);
  const pb = b.split(/[.-]/).map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d) return d;
  }
  return 0;
};

/** The newest version of `name` in the repository (the one Ferry resolves a bare name to when it is the only one). */
export function modelInfo(name: string, modelsDir = MODELS_DIR): ModelInfo {
  const versions = readdirSync(join(modelsDir, name), { withFileTypes: true })
    .filter((d) => d.isDirectory() && /^\d+\.\d+\.\d+/.test(d.name))
    .map((d) => d.name)
    .sort(byVersion);
  const version = versions[versions.length - 1];
  if (!version) throw new Error(`no versions of ${name} under ${modelsDir}`);
  return modelInfoAt(name, join(modelsDir, name, version));
}

/** The model version in folder `dir` (named by the folder). */
export function modelInfoAt(name: string, dir: string): ModelInfo {
  const manifest = readManifest(dir);
  const version = basename(dir);
  return {
    name,
    version,
    dir,
    modelPath: join(dir, manifest.model ?? 'model.onnx'),
    manifest,
    maxBatch: manifest.batching?.maxBatchSize ?? 1,
  };
}

/** ferry.yaml parsed as-is (the baseline server reads it the same way; Ferry also validates it). */
export function readManifest(versionDir: string): Manifest {
  return parseYaml(readFileSync(join(versionDir, 'ferry.yaml'), 'utf8')) as Manifest;
}

/** Seeded random rows for tensor features with a batch dimension: floats in [-1, 1], 6 decimals. */
function syntheticRows(m: Manifest, count: number, seed: number): Instance[] {
  const rand = mulberry32(seed);
  const rows: Instance[] = [];
  for (let r = 0; r < count; r++) {
    const inst: Instance = {};
    for (const f of m.inputs) {
      if (f.type !== 'tensor' || f.shape[0] !== -1 || f.shape.slice(1).some((d) => d < 0)) {
        throw new Error(`cannot synthesize feature "${f.name}" (${f.type}); give the model reference data`);
      }
      const build = (dims: readonly number[]): unknown =>
        dims.length === 0
          ? Math.round((rand() * 2 - 1) * 1e6) / 1e6
          : Array.from({ length: dims[0]! }, () => build(dims.slice(1)));
      inst[f.name] = build(f.shape.slice(1));
    }
    rows.push(inst);
  }
  return rows;
}

/** Rows from the reference data with only the contract's features kept (labels and extras dropped). */
function referenceRows(info: ModelInfo, count: number): Instance[] {
  const names = info.manifest.inputs.map((f) => f.name);
  const lines = readFileSync(join(info.dir, info.manifest.reference!), 'utf8')
    .split('\n')
    .filter((l) => l.trim());
  return lines.slice(0, count).map((l) => {
    const row = JSON.parse(l) as Instance;
    const inst: Instance = {};
    for (const n of names) if (n in row) inst[n] = row[n];
    return inst;
  });
}

/** Up to `count` realistic instances for the model (reference rows, or seeded random tensors). */
export function instances(info: ModelInfo, count: number, seed = 42): Instance[] {
  return info.manifest.reference?.endsWith('.jsonl')
    ? referenceRows(info, count)
    : syntheticRows(info.manifest, count, seed);
}

/**
 * Distinct Open Inference Protocol bodies (one row each) for a model whose inputs are all float32
 * tensors: each input as its own tensor of shape [1, ...].
 */
export function inferBodies(info: ModelInfo, count: number, seed = 42): string[] {
  const inputs = info.manifest.inputs;
  if (inputs.some((f) => f.type !== 'tensor' || f.dtype !== 'float32'))
    throw new Error(`${info.name}: v2 bodies are made for float32 tensor inputs only`);
  return instances(info, count, seed).map((row) =>
    JSON.stringify({
      inputs: inputs.map((f) => {
        const data = row[f.name] as unknown[];
        const shape = [1];
        for (let d: unknown = data; Array.isArray(d); d = d[0]) shape.push(d.length);
        return { name: f.name, shape, datatype: 'FP32', data };
      }),
    }),
  );
}

/** Distinct request bodies (`{"instances":[row]}`), one row each. */
export function requestBodies(info: ModelInfo, count: number, seed = 42): string[] {
  return instances(info, count, seed).map((row) => JSON.stringify({ instances: [row] }));
}

/** A request body with one number left open, so every request can carry a slightly different value. */
export interface BodyTemplate {
  before: string;
  value: number;
  after: string;
  /** The contract's range for the value, when it declares one. */
  min?: number;
  max?: number;
}

const SENTINEL = 987654321.125;

/**
 * Bodies like `requestBodies`, with one value per row left open: the first `number` feature
 * (flight-delay: hour) or else the first element of the first tensor (mlp-bench: x[0]).
 * Filling it with `jitter()` makes every request distinct, so Ferry's prediction cache and
 * in-flight coalescing see no repeats and every request costs an inference.
 */
export function bodyTemplates(info: ModelInfo, count: number, seed = 42): BodyTemplate[] {
  const numberFeature = info.manifest.inputs.find((f) => f.type === 'number');
  const tensorFeature = info.manifest.inputs.find((f) => f.type === 'tensor');
  const mark = String(SENTINEL);
  return instances(info, count, seed).map((row) => {
    const copy = structuredClone(row);
    let value: number;
    let range: { min?: number; max?: number } = {};
    if (numberFeature) {
      value = row[numberFeature.name] as number;
      copy[numberFeature.name] = SENTINEL;
      range = {
        ...(numberFeature.min !== undefined && { min: numberFeature.min }),
        ...(numberFeature.max !== undefined && { max: numberFeature.max }),
      };
    } else if (tensorFeature) {
      let inner = copy[tensorFeature.name] as unknown[];
      while (Array.isArray(inner[0])) inner = inner[0] as unknown[];
      value = inner[0] as number;
      inner[0] = SENTINEL;
    } else {
      throw new Error(`${info.name}: no number feature or tensor to vary`);
    }
    const text = JSON.stringify({ instances: [copy] });
    const at = text.indexOf(mark);
    return { before: text.slice(0, at), value, after: text.slice(at + mark.length), ...range };
  });
}

/** The template's value moved by less than a millionth (of itself, or of 1 near zero), staying in its range. */
export function jitter(t: BodyTemplate, u: number): number {
  const delta = Math.max(Math.abs(t.value), 1) * u * 1e-6;
  const down = t.value - delta;
  return t.min !== undefined && down < t.min ? Math.min(t.value + delta, t.max ?? Infinity) : down;
}

/** How many fixed bodies the cache rows cycle: small, so after the first round nearly every request repeats one. */
export const REPEAT_SET = 100;

/** How many distinct bodies to cycle: enough to vary, few enough that 64 connections' copies stay small. */
export function bodyCount(info: ModelInfo): number {
  return info.manifest.reference ? 1000 : 256;
}

/** Input tensors of `batch` rows, encoded by the contract's own encoder (what Ferry feeds the session). */
export function encodedBatch(info: ModelInfo, batch: number, seed = 42): Record<string, TensorValue> {
  const pool = instances(info, Math.max(batch, 64), seed);
  const rows = Array.from({ length: batch }, (_, i) => pool[i % pool.length]!);
  return compileEncoder(info.manifest).encode(rows);
}
