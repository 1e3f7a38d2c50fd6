// Tiny real ONNX models for tests: each comes with its `ferry.yaml` manifest and a plain-JS reference of
// what it computes, so a test can serve it and assert the numbers, not just the status code.
// `writeModelVersion` lays them out as a model repository (`<repo>/<name>/<version>/`).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { stringify } from 'yaml';
import type { Manifest, Step } from '@ferry/core';
import { GraphBuilder } from '@ferry/tools/onnx';

/** A model ready to be written into a repository, plus how to check what it answers. */
export interface FixtureModel<I extends Record<string, unknown>> {
  onnx: Uint8Array;
  manifest: Manifest;
  /** The output row (all values of the manifest's single output for one instance), computed in float64 JS. */
  reference(instance: I): number[];
  /** A valid request instance. */
  example: I;
}

export interface ModelVersionFiles {
  onnx: Uint8Array;
  /** Written as `ferry.yaml`. `name` and `version` are filled from the arguments unless the manifest sets them. */
  manifest: object;
  /** Further files of the version folder (card.md, reference.jsonl, ...), by file name. */
  files?: Readonly<Record<string, string | Uint8Array>>;
}

/** Writes `<repoDir>/<name>/<version>/{model.onnx, ferry.yaml, ...}` and returns the version folder. */
export async function writeModelVersion(
  repoDir: string,
  name: string,
  version: string,
  model: ModelVersionFiles,
): Promise<string> {
  const dir = join(repoDir, name, version);
  await mkdir(dir, { recursive: true });
  const manifest = { name, version, ...model.manifest } as { model?: unknown };
  const modelFile = typeof manifest.model === 'string' ? manifest.model : 'model.onnx';
  await writeFile(join(dir, modelFile), model.onnx);
  await writeFile(join(dir, 'ferry.yaml'), stringify(manifest));
  for (const [file, content] of Object.entries(model.files ?? {})) await writeFile(join(dir, file), content);
  return dir;
}

/** A fresh empty model repository under the OS temp folder. */
export async function tempModelRepository(prefix = 'ferry-repo-'): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

export interface LinearInstance extends Record<string, unknown> {
  x: number[];
}

const LINEAR_W = [0.5, -0.25, 1, 2, -1, 0.125, 0.75, -0.5];
const LINEAR_B = 0.25;

/** y = x · w + b on float32 x[batch, 8] → y[batch, 1]: a raw-tensor model with fixed, exactly representable weights. */
export function tinyLinearModel(): FixtureModel<LinearInstance> {
  const g = new GraphBuilder({ name: 'tiny-linear' });
  g.input('x', 'float32', ['batch', 8]).output('y', 'float32', ['batch', 1]);
  g.floatInitializer('w', LINEAR_W, [8, 1]).floatInitializer('b', [LINEAR_B]);
  g.node('Add', [g.op('MatMul', ['x', 'w']), 'b'], ['y']);
  return {
    onnx: g.toBytes(),
    manifest: {
      description: 'Fixture: y = x·w + b',
      inputs: [{ name: 'x', type: 'tensor', dtype: 'float32', shape: [-1, 8] }],
      outputs: [{ name: 'y', dtype: 'float32', shape: [-1, 1] }],
      postprocess: { kind: 'regression', output: 'y' },
    },
    reference: ({ x }) => [x.reduce((s, v, i) => s + v * LINEAR_W[i]!, LINEAR_B)],
    example: { x: [1, 2, 3, 4, 5, 6, 7, 8] },
  };
}

export interface ClassifierInstance extends Record<string, unknown> {
  amount: number;
  items: number;
  member: boolean;
  color: string;
}

const COLORS = ['red', 'green', 'blue'];
const ITEMS = [0, 1, 2, 3];
const AMOUNT = { mean: 50, std: 20 };
// One row per encoded column (amount, items=0..3, member, red, green, blue); columns: [no, yes] logits.
const CLASSIFIER_W = [
  [0, 1.5],
  [0, -1],
  [0, -0.5],
  [0, 0.25],
  [0, 0.75],
  [0, 2],
  [0, 0.5],
  [0, -0.5],
  [0, 0],
];
const CLASSIFIER_B = [0, -0.25];

// Builds a step from its op and parameters, typed as a Step whatever the parameters are.
const step = (op: string, params: Record<string, unknown> = {}): Step => ({ op, ...params });

/** The tiny classifier's preprocessing, written independently of @ferry/core so it can check the encoder. */
function classifierRow(i: ClassifierInstance): number[] {
  return [
    (i.amount - AMOUNT.mean) / AMOUNT.std,
    ...ITEMS.map((v) => (i.items === v ? 1 : 0)),
    i.member ? 1 : 0,
    ...COLORS.map((c) => (i.color === c ? 1 : 0)),
  ];
}

/**
 * A 2-class logistic model over number, integer, boolean and category features (standardize, one-hot,
 * identity), outputting softmax probabilities [batch, 2] for labels [no, yes].
 */
export function tinyClassifier(): FixtureModel<ClassifierInstance> {
  const width = CLASSIFIER_W.length;
  const g = new GraphBuilder({ name: 'tiny-classifier' });
  g.input('features', 'float32', ['batch', width]).output('probabilities', 'float32', ['batch', 2]);
  g.floatInitializer('w', CLASSIFIER_W.flat(), [width, 2]).floatInitializer('b', CLASSIFIER_B);
  g.node('Softmax', [g.op('Add', [g.op('MatMul', ['features', 'w']), 'b'])], ['probabilities'], { axis: -1 });
  return {
    onnx: g.toBytes(),
    manifest: {
      description: 'Fixture: logistic regression over mixed feature types',
      inputs: [
        { name: 'amount', type: 'number', min: 0, max: 1000 },
        { name: 'items', type: 'integer', min: 0, max: 100 },
        { name: 'member', type: 'boolean' },
        { name: 'color', type: 'category', values: COLORS },
      ],
      preprocess: [
        {
          input: 'features',
          dtype: 'float32',
          columns: [
            { feature: 'amount', steps: [step('standardize', AMOUNT)] },
            { feature: 'items', steps: [step('one-hot', { values: ITEMS })] },
            { feature: 'member' },
            { feature: 'color', steps: [step('one-hot')] },
          ],
        },
      ],
      outputs: [{ name: 'probabilities', dtype: 'float32', shape: [-1, 2] }],
      postprocess: { kind: 'classification', output: 'probabilities', labels: ['no', 'yes'] },
    },
    reference: (instance) => {
      const row = classifierRow(instance);
      const z = [0, 1].map((j) => row.reduce((s, v, k) => s + v * CLASSIFIER_W[k]![j]!, CLASSIFIER_B[j]!));
      const e = z.map((v) => Math.exp(v - Math.max(...z)));
      return e.map((v) => v / (e[0]! + e[1]!));
    },
    example: { amount: 72.5, items: 2, member: true, color: 'green' },
  };
}

export interface SlowInstance extends Record<string, unknown> {
  x: number[];
}

const SLOW_N = 512;
/**
 * One 512×512 float32 MatMul, measured with onnxruntime-node 1.30 on this repository's 2-core dev
 * machine: 0.78 ms with default session options (2 intra-op threads; 625 MatMuls took 482-500 ms),
 * 1.57 ms with intraOpNumThreads 1. The fallback when it cannot be measured here (see msPerMatMulHere).
 */
const MS_PER_MATMUL = 0.78;
/** The same MatMul with one intra-op thread, as Ferry runs it, on the same machine. */
const MS_PER_MATMUL_ONE_THREAD = 1.57;

let oneThreadMsHere: number | undefined;
/**
 * One 512×512 MatMul's time on this machine with one intra-op thread, as Ferry runs it; MS_PER_MATMUL_ONE_THREAD
 * when it cannot be measured. Timed once per process, in a child process because `slowModel` is
 * synchronous: 20 chained MatMuls, best of three runs.
 */
export function oneThreadMatMulMsHere(): number {
  if (oneThreadMsHere !== undefined) return oneThreadMsHere;
  oneThreadMsHere = MS_PER_MATMUL_ONE_THREAD;
  const dir = mkdtempSync(join(tmpdir(), 'ferry-matmul-'));
  try {
    const file = join(dir, 'slow.onnx');
    writeFileSync(file, buildSlowGraph(20));
    const ort = pathToFileURL(createRequire(import.meta.url).resolve('onnxruntime-node')).href;
    const script = `
      const ort = await import(${JSON.stringify(ort)});
      const s = await ort.InferenceSession.create(${JSON.stringify(file)}, { intraOpNumThreads: 1, interOpNumThreads: 1 });
      let best = Infinity;
      for (let i = 0; i < 4; i++) {
        const t0 = performance.now();
        await s.run({ x: new ort.Tensor('float32', new Float32Array([1, 2, 3, 4]), [1, 4]) });
        if (i > 0) best = Math.min(best, performance.now() - t0);
      }
      console.log(best / 20);`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    const ms = Number(r.stdout.trim());
    if (r.status === 0 && Number.isFinite(ms) && ms > 0) oneThreadMsHere = ms;
  } catch {
    // Keep the fallback.
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return oneThreadMsHere;
}

/**
 * MS_PER_MATMUL scaled to this machine, so that a server's run of `slowModel(targetMs)` (one intra-op
 * thread) takes what it took on the dev machine the tests were written on, about twice `targetMs`, on
 * any CPU (a host five times slower turned a 150 ms model into 1.4 s, past the shutdown deadlines
 * the tests set).
 */
export function msPerMatMulHere(): number {
  return (MS_PER_MATMUL * oneThreadMatMulMsHere()) / MS_PER_MATMUL_ONE_THREAD;
}

/** The slow model's graph with `matMuls` chained 512×512 MatMuls (see `slowModel`). */
function buildSlowGraph(matMuls: number): Uint8Array {
  const n = SLOW_N;
  const p = new Float32Array(n * n);
  // Row i has its 1 in column (7i + 3) mod n, a permutation because gcd(7, 512) = 1.
  for (let i = 0; i < n; i++) p[i * n + ((7 * i + 3) % n)] = 1;
  const g = new GraphBuilder({ name: 'slow' });
  g.input('x', 'float32', ['batch', 4]).output('y', 'float32', ['batch', 1]);
  g.floatInitializer('p', p, [n, n]).floatInitializer('zero', [0]).intInitializer('axis1', [1]);
  const tie = g.op('Mul', [g.op('ReduceMean', ['x'], { keepdims: 0 }), 'zero']);
  let a = g.op('Add', ['p', tie]);
  for (let k = 0; k < matMuls; k++) a = g.op('MatMul', [a, 'p']);
  // The mean of a permuted permutation matrix is exactly 1/n.
  const mean = g.op('ReduceMean', [a], { keepdims: 0 });
  g.node('Add', [g.op('ReduceSum', ['x', 'axis1'], { keepdims: 1 }), mean], ['y']);
  return g.toBytes();
}

/**
 * A model whose every inference takes roughly `targetMs` whatever the batch size, for timeout,
 * queueing and event-loop tests: x[batch, 4] → y[batch, 1] = sum(x) + 1/512.
 *
 * Inside, a 512×512 matrix is multiplied by the same permutation matrix (one shared initializer,
 * so the file stays about 1 MB) once per 0.78 ms of target on the dev machine, scaled to this one
 * (msPerMatMulHere): a server running one intra-op thread takes about twice `targetMs`, as it did
 * there. A permutation keeps every value exact and bounded: no overflow, no denormals slowing some
 * runs. The chain starts from `P + 0·mean(x)` so that it depends on the input and ONNX Runtime cannot
 * constant-fold it away at load.
 */
export function slowModel(
  targetMs = 500,
  /** One MatMul's time; measured on this machine unless given. */
  msPerMatMul = msPerMatMulHere(),
): FixtureModel<SlowInstance> & { matMuls: number } {
  const matMuls = Math.max(1, Math.round(targetMs / msPerMatMul));
  const n = SLOW_N;
  return {
    onnx: buildSlowGraph(matMuls),
    manifest: {
      description: `Fixture: about ${targetMs} ms per inference (${matMuls} chained 512×512 MatMuls)`,
      inputs: [{ name: 'x', type: 'tensor', dtype: 'float32', shape: [-1, 4] }],
      outputs: [{ name: 'y', dtype: 'float32', shape: [-1, 1] }],
      postprocess: { kind: 'regression', output: 'y' },
    },
    reference: ({ x }) => [x.reduce((s, v) => s + v, 0) + 1 / n],
    example: { x: [1, 2, 3, 4] },
    matMuls,
  };
}
