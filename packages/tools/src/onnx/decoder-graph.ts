// Builds decoder-only transformer models in the layout Hugging Face's ONNX export uses
// (`input_ids`, `attention_mask`, `position_ids`, `past_key_values.{i}.key|value` → `logits`,
// `present.{i}.key|value`), so that Ferry's own example model and the test fixtures run through exactly
// the KV-cache path a real export does.
import { GraphBuilder, attr } from './graph-builder.js';

export interface DecoderShape {
  vocabSize: number;
  /** Model width (embedding size). */
  hidden: number;
  heads: number;
  layers: number;
  /** Rows of the learned position table: the context length. */
  maxPositions: number;
  /** Width of the feed-forward block. */
  mlpHidden: number;
  /** GPT-2 style pre-LayerNorm blocks plus a final LayerNorm; false for a plain residual network. */
  layerNorm: boolean;
  activation: 'relu' | 'gelu';
}

export interface LayerWeights {
  ln1g?: Float32Array;
  ln1b?: Float32Array;
  wq: Float32Array;
  bq: Float32Array;
  wk: Float32Array;
  bk: Float32Array;
  wv: Float32Array;
  bv: Float32Array;
  wo: Float32Array;
  bo: Float32Array;
  ln2g?: Float32Array;
  ln2b?: Float32Array;
  w1: Float32Array;
  b1: Float32Array;
  w2: Float32Array;
  b2: Float32Array;
}

/** Row-major weights: matrices are [in, out] so that `x · W` is the forward product. */
export interface DecoderWeights {
  tokEmb: Float32Array; // [vocab, hidden]
  posEmb: Float32Array; // [maxPositions, hidden]
  layers: LayerWeights[];
  lnfg?: Float32Array;
  lnfb?: Float32Array;
  head: Float32Array; // [hidden, vocab]
}

export const pastKeyName = (i: number): string => `past_key_values.${i}.key`;
export const pastValueName = (i: number): string => `past_key_values.${i}.value`;
export const presentKeyName = (i: number): string => `present.${i}.key`;
export const presentValueName = (i: number): string => `present.${i}.value`;

/** Random weights (normal, std 0.02 like GPT-2's init, with a seeded generator), for fixtures and as training start. */
export function randomDecoderWeights(shape: DecoderShape, random: () => number, std = 0.02): DecoderWeights {
  const normal = (n: number, s = std): Float32Array => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const u = Math.max(random(), 1e-12);
      a[i] = s * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
    }
    return a;
  };
  const ones = (n: number) => new Float32Array(n).fill(1);
  const { hidden: d, mlpHidden: m, vocabSize: v } = shape;
  return {
    tokEmb: normal(v * d),
    posEmb: normal(shape.maxPositions * d, std / 2),
    layers: Array.from({ length: shape.layers }, () => ({
      ...(shape.layerNorm && { ln1g: ones(d), ln1b: new Float32Array(d), ln2g: ones(d), ln2b: new Float32Array(d) }),
      wq: normal(d * d),
      bq: new Float32Array(d),
      wk: normal(d * d),
      bk: new Float32Array(d),
      wv: normal(d * d),
      bv: new Float32Array(d),
      wo: normal(d * d),
      bo: new Float32Array(d),
      w1: normal(d * m),
      b1: new Float32Array(m),
      w2: normal(m * d),
      b2: new Float32Array(d),
    })),
    ...(shape.layerNorm && { lnfg: ones(d), lnfb: new Float32Array(d) }),
    head: normal(d * v),
  };
}

/** The ONNX model of the network, in the Hugging Face decoder export layout with a KV cache. */
export function buildDecoderOnnx(
  shape: DecoderShape,
  w: DecoderWeights,
  metadata: Record<string, string> = {},
): Uint8Array {
  const { hidden: d, heads: h } = shape;
  if (d % h !== 0) throw new Error(`hidden ${d} is not a multiple of heads ${h}`);
  const hd = d / h;
  const g = new GraphBuilder({ name: 'decoder', opset: 17 });
  g.input('input_ids', 'int64', ['batch_size', 'sequence_length']);
  g.input('attention_mask', 'int64', ['batch_size', 'total_sequence_length']);
  g.input('position_ids', 'int64', ['batch_size', 'sequence_length']);
  for (let i = 0; i < shape.layers; i++) {
    g.input(pastKeyName(i), 'float32', ['batch_size', h, 'past_sequence_length', hd]);
    g.input(pastValueName(i), 'float32', ['batch_size', h, 'past_sequence_length', hd]);
  }
  g.output('logits', 'float32', ['batch_size', 'sequence_length', shape.vocabSize]);
  for (let i = 0; i < shape.layers; i++) {
    g.output(presentKeyName(i), 'float32', ['batch_size', h, 'total_sequence_length', hd]);
    g.output(presentValueName(i), 'float32', ['batch_size', h, 'total_sequence_length', hd]);
  }
  for (const [k, v] of Object.entries(metadata)) g.metadata(k, v);

  g.floatInitializer('tok_emb', w.tokEmb, [shape.vocabSize, d]);
  g.floatInitializer('pos_emb', w.posEmb, [shape.maxPositions, d]);
  g.floatInitializer('head', w.head, [d, shape.vocabSize]);
  g.intInitializer('split_heads', [0, 0, h, hd]);
  g.intInitializer('merge_heads', [0, 0, d]);
  g.intInitializer('axis0', [0]);
  g.intInitializer('axis1', [1]);
  g.intInitializer('axes12', [1, 2]);
  g.intInitializer('one', [1], []);
  g.floatInitializer('scale', [1 / Math.sqrt(hd)], []);
  g.floatInitializer('masked', [-1e9], []);
  if (shape.activation === 'gelu')
    g.floatInitializer('half', [0.5], [])
      .floatInitializer('one_f', [1], [])
      .floatInitializer('inv_sqrt2', [Math.SQRT1_2], []);

  // The causal mask for the new positions against every cached one: query i (at absolute position
  // past + i) sees key j when j <= past + i and the attention mask keeps j.
  const scalar = (from: string, start: number) =>
    g.op('Squeeze', [g.op('Shape', [from], { start, end: start + 1 }), 'axis0']);
  const seq = scalar('input_ids', 1);
  const total = scalar('attention_mask', 1);
  const past = g.op('Sub', [total, seq]);
  const qPos = g.op('Range', [past, total, 'one']);
  const kPos = g.op('Range', [g.op('Sub', [total, total]), total, 'one']);
  const causal = g.op('LessOrEqual', [g.op('Unsqueeze', [kPos, 'axis0']), g.op('Unsqueeze', [qPos, 'axis1'])]);
  const keep = g.op('Unsqueeze', [g.op('Cast', ['attention_mask'], { to: 9 }), 'axes12']);
  const mask = g.op('And', [causal, keep]); // [batch, 1, seq, total]

  let x = g.op('Add', [g.op('Gather', ['tok_emb', 'input_ids']), g.op('Gather', ['pos_emb', 'position_ids'])]);
  const linear = (input: string, wName: string, bName: string) => g.op('Add', [g.op('MatMul', [input, wName]), bName]);
  const layerNorm = (input: string, gName: string, bName: string) =>
    g.op('LayerNormalization', [input, gName, bName], { axis: -1, epsilon: attr.float(1e-5) });
  if (w.layers.length !== shape.layers)
    throw new Error(`weights hold ${w.layers.length} layers, the shape says ${shape.layers}`);
  w.layers.forEach((lw, i) => {
    const p = (n: string) => `l${i}_${n}`;
    for (const [n, a, dims] of [
      ['wq', lw.wq, [d, d]],
      ['bq', lw.bq, [d]],
      ['wk', lw.wk, [d, d]],
      ['bk', lw.bk, [d]],
      ['wv', lw.wv, [d, d]],
      ['bv', lw.bv, [d]],
      ['wo', lw.wo, [d, d]],
      ['bo', lw.bo, [d]],
      ['w1', lw.w1, [d, shape.mlpHidden]],
      ['b1', lw.b1, [shape.mlpHidden]],
      ['w2', lw.w2, [shape.mlpHidden, d]],
      ['b2', lw.b2, [d]],
    ] as const)
      g.floatInitializer(p(n), a, dims);
    let hIn = x;
    if (shape.layerNorm) {
      g.floatInitializer(p('ln1g'), lw.ln1g!).floatInitializer(p('ln1b'), lw.ln1b!);
      hIn = layerNorm(x, p('ln1g'), p('ln1b'));
    }
    const heads = (t: string) => g.op('Transpose', [g.op('Reshape', [t, 'split_heads'])], { perm: [0, 2, 1, 3] });
    const q = heads(linear(hIn, p('wq'), p('bq')));
    const k = heads(linear(hIn, p('wk'), p('bk')));
    const v = heads(linear(hIn, p('wv'), p('bv')));
    g.node('Concat', [pastKeyName(i), k], [presentKeyName(i)], { axis: 2 });
    g.node('Concat', [pastValueName(i), v], [presentValueName(i)], { axis: 2 });
    const scores = g.op('Mul', [
      g.op('MatMul', [q, g.op('Transpose', [presentKeyName(i)], { perm: [0, 1, 3, 2] })]),
      'scale',
    ]);
    const probs = g.op('Softmax', [g.op('Where', [mask, scores, 'masked'])], { axis: -1 });
    const attn = g.op('Reshape', [
      g.op('Transpose', [g.op('MatMul', [probs, presentValueName(i)])], { perm: [0, 2, 1, 3] }),
      'merge_heads',
    ]);
    x = g.op('Add', [x, linear(attn, p('wo'), p('bo'))]);
    let h2 = x;
    if (shape.layerNorm) {
      g.floatInitializer(p('ln2g'), lw.ln2g!).floatInitializer(p('ln2b'), lw.ln2b!);
      h2 = layerNorm(x, p('ln2g'), p('ln2b'));
    }
    const pre = linear(h2, p('w1'), p('b1'));
    // GELU written out with Erf: the Gelu operator only exists from opset 20.
    const act =
      shape.activation === 'relu'
        ? g.op('Relu', [pre])
        : g.op('Mul', [
            g.op('Mul', [pre, 'half']),
            g.op('Add', ['one_f', g.op('Erf', [g.op('Mul', [pre, 'inv_sqrt2'])])]),
          ]);
    x = g.op('Add', [x, linear(act, p('w2'), p('b2'))]);
  });
  if (shape.layerNorm) {
    g.floatInitializer('lnf_g', w.lnfg!).floatInitializer('lnf_b', w.lnfb!);
    x = layerNorm(x, 'lnf_g', 'lnf_b');
  }
  g.node('MatMul', [x, 'head'], ['logits']);
  return g.toBytes();
}
