// Seeded multi-layer perceptrons built with GraphBuilder, for the quantiser's tests and measurement:
// weight-dominated models whose size and shape we choose (e.g. the mlp-bench shape 256→1024→1024→10).
import { gaussian, seededRandom } from '@ferry/core';
import { GraphBuilder } from '../onnx/index.js';

export { gaussian, seededRandom } from '@ferry/core';

export interface MlpOptions {
  /** Layer widths, input first: [256, 1024, 1024, 10] is mlp-bench. */
  sizes: readonly number[];
  seed?: number;
  /** End with Softmax (a classifier emitting probabilities). Default true. */
  softmax?: boolean;
  /** Name of the input and output. Default `x` and `y`. */
  input?: string;
  output?: string;
}

export interface Mlp {
  bytes: Uint8Array;
  /** Weights per layer, row-major [in, out], and biases, for JS references. */
  weights: Float32Array[];
  biases: Float32Array[];
}

/**
 * x[batch, sizes[0]] → (MatMul + Add + Relu)* → MatMul + Add [→ Softmax]. He-initialised weights, so
 * activations keep their scale through the layers as in a trained network.
 */
export function buildMlp(o: MlpOptions): Mlp {
  const { sizes } = o;
  const normal = gaussian(seededRandom(o.seed ?? 1));
  const input = o.input ?? 'x';
  const output = o.output ?? 'y';
  const g = new GraphBuilder({ name: `mlp-${sizes.join('-')}` });
  g.input(input, 'float32', ['batch', sizes[0]!]).output(output, 'float32', ['batch', sizes[sizes.length - 1]!]);
  const weights: Float32Array[] = [];
  const biases: Float32Array[] = [];
  let h = input;
  for (let l = 0; l + 1 < sizes.length; l++) {
    const k = sizes[l]!;
    const n = sizes[l + 1]!;
    const std = Math.sqrt(2 / k);
    const w = Float32Array.from({ length: k * n }, () => normal() * std);
    const b = Float32Array.from({ length: n }, () => normal() * 0.05);
    weights.push(w);
    biases.push(b);
    g.floatInitializer(`w${l + 1}`, w, [k, n]).floatInitializer(`b${l + 1}`, b, [n]);
    const last = l + 2 === sizes.length;
    const z = g.op('Add', [g.op('MatMul', [h, `w${l + 1}`], {}, { name: `fc${l + 1}` }), `b${l + 1}`]);
    if (!last) h = g.op('Relu', [z]);
    else if (o.softmax ?? true) g.node('Softmax', [z], [output], { axis: -1 });
    else g.node('Identity', [z], [output]);
  }
  return { bytes: g.toBytes(), weights, biases };
}
