// The scratch model repository Ferry serves during a run: copies of the measured versions, the
// generated tiny-lr model, and variants of a version that differ only in their ferry.yaml
// (`<model>-nobatch`: batching off; `<model>-cache`: prediction cache on; `<model>-defaults`: no
// batching block, so Ferry's measured defaults apply).
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
// Deep import on purpose: the project's ONNX builder is not part of @ferry/server's public face.
import { GraphBuilder } from '@ferry/tools/onnx';
import { mulberry32 } from './prng.js';
import { modelInfo, modelInfoAt, type BenchModel, type ModelInfo } from './workloads.js';

/** Models the bench builds itself instead of reading from models/. */
export const GENERATED_MODELS: ReadonlySet<string> = new Set(['tiny-lr']);

export const TINY_LR_VERSION = '1.0.0';
const TINY_LR_FEATURES = 8;

/** tiny-lr's weights and bias: seeded, so every run serves the same model. */
export function tinyLrWeights(seed = 8): { w: number[]; b: number } {
  const rand = mulberry32(seed);
  const w = Array.from({ length: TINY_LR_FEATURES }, () => Math.round((rand() * 2 - 1) * 1e4) / 1e4);
  return { w, b: Math.round((rand() - 0.5) * 1e4) / 1e4 };
}

/**
 * A tiny 8-float logistic regression: x[batch, 8] float32 → Sigmoid(x·w + b) → p[batch, 1], served
 * as a 2-label classifier (one score with labels [no, yes] is P(yes)). Writes
 * `<repoDir>/tiny-lr/1.0.0/{model.onnx, ferry.yaml}` and returns the version folder.
 */
export function writeTinyLr(repoDir: string): string {
  const { w, b } = tinyLrWeights();
  const g = new GraphBuilder({ name: 'tiny-lr' });
  g.input('x', 'float32', ['batch', TINY_LR_FEATURES]).output('p', 'float32', ['batch', 1]);
  g.floatInitializer('w', w, [TINY_LR_FEATURES, 1]).floatInitializer('b', [b]);
  g.node('Sigmoid', [g.op('Add', [g.op('MatMul', ['x', 'w']), 'b'])], ['p']);
  const dir = join(repoDir, 'tiny-lr', TINY_LR_VERSION);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'model.onnx'), g.toBytes());
  writeFileSync(
    join(dir, 'ferry.yaml'),
    stringify({
      name: 'tiny-lr',
      version: TINY_LR_VERSION,
      description:
        'Bench: 8-float logistic regression with seeded weights; the per-request cost is nearly all serving overhead.',
      inputs: [{ name: 'x', type: 'tensor', dtype: 'float32', shape: [-1, TINY_LR_FEATURES] }],
      outputs: [{ name: 'p', dtype: 'float32', shape: [-1, 1] }],
      postprocess: { kind: 'classification', output: 'p', labels: ['no', 'yes'], activation: 'none' },
      batching: { maxBatchSize: 64, maxQueueDelayUs: 500 },
    }),
  );
  return dir;
}

/** A model version as measured, with the variants of it Ferry also serves. */
export interface ScratchModel {
  /** The version in the scratch repository (same content as models/, or generated). */
  info: ModelInfo;
  /** Served name of the copy with `batching: { enabled: false }`, if this model has one. */
  noBatch?: string;
  /** Served name of the copy without a `batching` block (Ferry's measured defaults). */
  defaults?: string;
  /**
   * Served name of a second copy of `defaults` that the bench's Ferry never logs (its
   * `predictionLog.sampleRates` entry is 0): the prediction log's cost is `defaults` ÷ this.
   */
  noLog?: string;
  /**
   * Served name of a version with the prediction cache on, for the repeated-bodies row: the model
   * itself when its manifest caches already, else a `-cache` copy. Undefined: no repeated row.
   */
  cached?: string;
}

/** Which variants each model gets. tiny-lr measures overhead only and has none. */
const VARIANTS: Record<BenchModel, { noBatch: boolean; cacheRow: boolean }> = {
  'flight-delay': { noBatch: true, cacheRow: true },
  'mlp-bench': { noBatch: true, cacheRow: true },
  'tiny-lr': { noBatch: false, cacheRow: false },
};

/** Copies `info`'s folder to `<repoDir>/<name>/<version>` with its manifest changed by `edit`. */
function writeVariant(
  repoDir: string,
  info: ModelInfo,
  name: string,
  edit: (m: Record<string, unknown>) => void,
): void {
  const dir = join(repoDir, name, info.version);
  cpSync(info.dir, dir, { recursive: true });
  const manifest = parseYaml(readFileSync(join(dir, 'ferry.yaml'), 'utf8')) as Record<string, unknown>;
  manifest.name = name;
  edit(manifest);
  writeFileSync(join(dir, 'ferry.yaml'), stringify(manifest));
}

/** Fills `repoDir` with the measured models and their variants. */
export function buildScratchRepo(repoDir: string, models: readonly BenchModel[]): ScratchModel[] {
  return models.map((name) => {
    let dir: string;
    if (GENERATED_MODELS.has(name)) dir = writeTinyLr(repoDir);
    else {
      const src = modelInfo(name);
      dir = join(repoDir, name, src.version);
      cpSync(src.dir, dir, { recursive: true });
    }
    const info = modelInfoAt(name, dir);
    const out: ScratchModel = { info };
    const v = VARIANTS[name];
    // Every model: Ferry's defaults, and the same again unlogged (the prediction log's cost).
    out.defaults = `${name}-defaults`;
    out.noLog = `${name}-nolog`;
    for (const variant of [out.defaults, out.noLog])
      writeVariant(repoDir, info, variant, (m) => {
        delete m.batching;
      });
    if (v.noBatch) {
      out.noBatch = `${name}-nobatch`;
      writeVariant(repoDir, info, out.noBatch, (m) => {
        m.batching = { ...(m.batching as object | undefined), enabled: false };
      });
    }
    if (v.cacheRow) {
      if (info.manifest.cache?.enabled === true) out.cached = name;
      else {
        out.cached = `${name}-cache`;
        writeVariant(repoDir, info, out.cached, (m) => {
          m.cache = { enabled: true, ttlSeconds: 300 };
        });
      }
    }
    return out;
  });
}
