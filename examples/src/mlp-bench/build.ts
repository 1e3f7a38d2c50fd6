// Builds `mlp-bench`, the synthetic compute-bound model the benchmarks use: a 256 → 1024 → 1024 → 10
// MLP with seeded random weights. Its answers mean nothing; its cost is what matters (about 2.6 MFLOP
// per row, 5 MB of weights), enough for batching to pay off. The .onnx file is not committed; the
// generator rebuilds it byte for byte.
// Run: node examples/dist/mlp-bench/build.js   (or `npm run models`)
import type { Manifest } from '@ferry/core';
import { BUILDER_SOURCES, writeExample, type ArtifactFiles, type ExampleModel } from '../lib/example-model.js';
import { isMain } from '../lib/main.js';
import { GraphBuilder } from '../lib/onnx.js';
import { gaussian, mulberry32 } from '../lib/random.js';
import { toYaml } from '../lib/yaml.js';

export const NAME = 'mlp-bench';
export const VERSION = '1.0.0';
export const SEED = 0x5eed;
/** Layer widths from input to output. */
export const LAYERS = [256, 1024, 1024, 10] as const;

export interface Layer {
  /** [fanIn, fanOut], row-major. */
  weight: Float32Array;
  bias: Float32Array;
  fanIn: number;
  fanOut: number;
}

/** He-initialised layers (N(0, 2/fanIn) weights, small biases): activations neither vanish nor blow up through ReLUs.
 */
export function mlpBenchLayers(seed = SEED): Layer[] {
  const normal = gaussian(mulberry32(seed));
  return LAYERS.slice(1).map((fanOut, i) => {
    const fanIn = LAYERS[i]!;
    const scale = Math.sqrt(2 / fanIn);
    const weight = new Float32Array(fanIn * fanOut);
    for (let k = 0; k < weight.length; k++) weight[k] = normal() * scale;
    const bias = new Float32Array(fanOut);
    for (let k = 0; k < fanOut; k++) bias[k] = normal() * 0.01;
    return { weight, bias, fanIn, fanOut };
  });
}

/** x[batch,256] → (MatMul, Add, Relu) ×2 → MatMul, Add → Softmax → probabilities[batch,10]. */
export function mlpBenchOnnx(layers = mlpBenchLayers()): Uint8Array {
  const g = new GraphBuilder({ name: NAME, producerName: 'ferry-examples', producerVersion: VERSION });
  g.input('x', 'float32', ['batch', LAYERS[0]]).output('probabilities', 'float32', [
    'batch',
    LAYERS[LAYERS.length - 1],
  ]);
  let h = 'x';
  layers.forEach((l, i) => {
    g.floatInitializer(`w${i}`, l.weight, [l.fanIn, l.fanOut]).floatInitializer(`b${i}`, l.bias);
    h = g.op('Add', [g.op('MatMul', [h, `w${i}`]), `b${i}`]);
    if (i < layers.length - 1) h = g.op('Relu', [h]);
  });
  g.node('Softmax', [h], ['probabilities'], { axis: -1 });
  return g.toBytes();
}

/** The same network in plain JS (float64), for checking the ONNX file. */
export function mlpBenchReference(layers: readonly Layer[], x: ArrayLike<number>): number[] {
  let h = Array.from(x);
  layers.forEach((l, i) => {
    const out = Array.from(l.bias);
    for (let r = 0; r < l.fanIn; r++) {
      const v = h[r]!;
      if (v === 0) continue;
      for (let c = 0; c < l.fanOut; c++) out[c]! += v * l.weight[r * l.fanOut + c]!;
    }
    h = i < layers.length - 1 ? out.map((v) => Math.max(0, v)) : out;
  });
  const max = Math.max(...h);
  const e = h.map((v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

const LABELS = Array.from({ length: LAYERS[LAYERS.length - 1] }, (_, i) => `class_${i}`);

export const manifest: Manifest = {
  name: NAME,
  version: VERSION,
  description:
    'Synthetic compute-bound MLP (256-1024-1024-10, random weights) for benchmarks. Its predictions mean nothing.',
  inputs: [{ name: 'x', type: 'tensor', dtype: 'float32', shape: [-1, LAYERS[0]] }],
  outputs: [{ name: 'probabilities', dtype: 'float32', shape: [-1, LAYERS[LAYERS.length - 1]] }],
  postprocess: { kind: 'classification', output: 'probabilities', labels: LABELS },
  batching: { maxBatchSize: 32, maxQueueDelayUs: 200 },
};

function card(onnxBytes: number): string {
  const macs = LAYERS.slice(1).reduce((a, out, i) => a + LAYERS[i]! * out, 0);
  const params = LAYERS.slice(1).reduce((a, out, i) => a + (LAYERS[i]! + 1) * out, 0);
  return `# mlp-bench 1.0.0

A synthetic model for benchmarks, not for predictions: its weights are random (seed
0x${SEED.toString(16)}, mulberry32 with Box-Muller, He-scaled), so its "classes" mean nothing.

## Shape
- Input \`x\`: float32 [batch, ${LAYERS[0]}]. Output \`probabilities\`: float32 [batch, ${LAYERS[LAYERS.length - 1]}], softmax over \`class_0\` … \`class_9\`.
- Layers: MatMul ${LAYERS[0]}×${LAYERS[1]} + Add + Relu → MatMul ${LAYERS[1]}×${LAYERS[2]} + Add + Relu → MatMul ${LAYERS[2]}×${LAYERS[3]} + Add → Softmax (ONNX opset 17).
- ${params.toLocaleString('en-US')} parameters, ${onnxBytes.toLocaleString('en-US')} bytes; ${macs.toLocaleString('en-US')} multiply-adds (${((2 * macs) / 1e6).toFixed(2)} MFLOP) per row.

## Why it exists
Its cost per row is dominated by reading 5 MB of weights, which a batch of rows shares: batching
pays off clearly, so the benchmarks in \`bench/\` use it to show what dynamic batching buys over
one-at-a-time inference and how Ferry compares with raw ONNX Runtime.

## Building
\`model.onnx\` is not committed. \`npm run models\` (run by \`npm ci\`) rebuilds it byte for byte with
\`examples/src/mlp-bench/build.ts\`.
`;
}

export const mlpBench: ExampleModel = {
  name: NAME,
  version: VERSION,
  inputs: ['examples/src/mlp-bench', 'examples/src/lib', ...BUILDER_SOURCES],
  async build(): Promise<ArtifactFiles> {
    const onnx = mlpBenchOnnx();
    return { 'model.onnx': onnx, 'ferry.yaml': toYaml(manifest), 'card.md': card(onnx.length) };
  },
};

if (isMain(import.meta.url)) {
  const t0 = performance.now();
  await writeExample(mlpBench);
  console.log(`mlp-bench ${VERSION}: built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
