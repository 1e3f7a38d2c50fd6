// The ham-chat network in plain TypeScript: a one-layer decoder-only transformer (causal multi-head
// attention and a ReLU feed-forward block, with residual connections, no LayerNorm) with its forward
// pass and hand-written backward pass, for training on one core. The same weights are exported by
// the server's decoder graph builder (Hugging Face layout); a test checks both compute the same logits.
import type { DecoderShape, DecoderWeights } from '../lib/generation.js';

/** C[n×m] = A[n×k] · B[k×m] (+ bias). */
function matmul(a: Float32Array, b: Float32Array, n: number, k: number, m: number, bias?: Float32Array): Float32Array {
  const c = new Float32Array(n * m);
  for (let i = 0; i < n; i++) {
    const row = i * m;
    if (bias) c.set(bias, row);
    for (let p = 0; p < k; p++) {
      const av = a[i * k + p]!;
      if (av === 0) continue;
      const bo = p * m;
      for (let j = 0; j < m; j++) c[row + j]! += av * b[bo + j]!;
    }
  }
  return c;
}

/** G[k×m] += Aᵀ[k×n] · D[n×m]: the weight gradient of C = A·B. */
function addATB(g: Float32Array, a: Float32Array, d: Float32Array, n: number, k: number, m: number): void {
  for (let i = 0; i < n; i++) {
    const dr = i * m;
    for (let p = 0; p < k; p++) {
      const av = a[i * k + p]!;
      if (av === 0) continue;
      const go = p * m;
      for (let j = 0; j < m; j++) g[go + j]! += av * d[dr + j]!;
    }
  }
}

/** X[n×k] (+)= D[n×m] · Bᵀ[m×k]: the input gradient of C = A·B. */
function matmulBT(
  d: Float32Array,
  b: Float32Array,
  n: number,
  m: number,
  k: number,
  into?: Float32Array,
): Float32Array {
  const x = into ?? new Float32Array(n * k);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < k; p++) {
      let s = 0;
      const bo = p * m;
      const dr = i * m;
      for (let j = 0; j < m; j++) s += d[dr + j]! * b[bo + j]!;
      x[i * k + p]! += s;
    }
  }
  return x;
}

function addColumnSums(g: Float32Array, d: Float32Array, n: number, m: number): void {
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) g[j]! += d[i * m + j]!;
}

interface Activations {
  ids: number[];
  x0: Float32Array;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  att: Float32Array;
  o: Float32Array;
  x1: Float32Array;
  u: Float32Array;
  r: Float32Array;
  x2: Float32Array;
  logits: Float32Array;
}

/** Forward pass over one sequence (positions 0..n-1); `att` holds each head's [n×n] attention weights. */
export function forward(shape: DecoderShape, w: DecoderWeights, ids: readonly number[]): Activations {
  const n = ids.length;
  const { hidden: d, heads, mlpHidden: m, vocabSize: vocab } = shape;
  const hd = d / heads;
  const l = w.layers[0]!;
  const x0 = new Float32Array(n * d);
  for (let t = 0; t < n; t++)
    for (let j = 0; j < d; j++) x0[t * d + j] = w.tokEmb[ids[t]! * d + j]! + w.posEmb[t * d + j]!;
  const q = matmul(x0, l.wq, n, d, d, l.bq);
  const k = matmul(x0, l.wk, n, d, d, l.bk);
  const v = matmul(x0, l.wv, n, d, d, l.bv);
  const att = new Float32Array(heads * n * n);
  const o = new Float32Array(n * d);
  const scale = 1 / Math.sqrt(hd);
  for (let h = 0; h < heads; h++) {
    const off = h * hd;
    for (let t = 0; t < n; t++) {
      const row = (h * n + t) * n;
      let max = -Infinity;
      for (let j = 0; j <= t; j++) {
        let s = 0;
        for (let c = 0; c < hd; c++) s += q[t * d + off + c]! * k[j * d + off + c]!;
        s *= scale;
        att[row + j] = s;
        if (s > max) max = s;
      }
      let sum = 0;
      for (let j = 0; j <= t; j++) sum += att[row + j] = Math.exp(att[row + j]! - max);
      for (let j = 0; j <= t; j++) {
        const a = (att[row + j]! /= sum);
        for (let c = 0; c < hd; c++) o[t * d + off + c]! += a * v[j * d + off + c]!;
      }
    }
  }
  const x1 = matmul(o, l.wo, n, d, d, l.bo);
  for (let i = 0; i < n * d; i++) x1[i]! += x0[i]!;
  const u = matmul(x1, l.w1, n, d, m, l.b1);
  const r = u.map((z) => (z > 0 ? z : 0));
  const x2 = matmul(r, l.w2, n, m, d, l.b2);
  for (let i = 0; i < n * d; i++) x2[i]! += x1[i]!;
  const logits = matmul(x2, w.head, n, d, vocab);
  return { ids: [...ids], x0, q, k, v, att, o, x1, u, r, x2, logits };
}

/** Mean cross-entropy of predicting ids[t+1] from positions 0..t, in nats. */
export function loss(shape: DecoderShape, logits: Float32Array, ids: readonly number[]): number {
  const V = shape.vocabSize;
  let total = 0;
  for (let t = 0; t + 1 < ids.length; t++) {
    let max = -Infinity;
    for (let j = 0; j < V; j++) max = Math.max(max, logits[t * V + j]!);
    let sum = 0;
    for (let j = 0; j < V; j++) sum += Math.exp(logits[t * V + j]! - max);
    total += Math.log(sum) + max - logits[t * V + ids[t + 1]!]!;
  }
  return total / Math.max(1, ids.length - 1);
}

/** Adds this sequence's gradient of (loss × `weight`) into `g`; returns the sequence's loss. */
export function backward(
  shape: DecoderShape,
  w: DecoderWeights,
  g: DecoderWeights,
  act: Activations,
  weight: number,
): number {
  const { ids, x0, q, k, v, att, o, x1, u, r, x2, logits } = act;
  const n = ids.length;
  const { hidden: d, heads, mlpHidden: m, vocabSize: V } = shape;
  const hd = d / heads;
  const l = w.layers[0]!;
  const gl = g.layers[0]!;
  const targets = n - 1;
  const dlogits = new Float32Array(n * V);
  let total = 0;
  for (let t = 0; t < targets; t++) {
    let max = -Infinity;
    for (let j = 0; j < V; j++) max = Math.max(max, logits[t * V + j]!);
    let sum = 0;
    for (let j = 0; j < V; j++) sum += dlogits[t * V + j] = Math.exp(logits[t * V + j]! - max);
    const y = ids[t + 1]!;
    total += Math.log(sum) + max - logits[t * V + y]!;
    const f = weight / targets;
    for (let j = 0; j < V; j++) dlogits[t * V + j] = (dlogits[t * V + j]! / sum) * f;
    dlogits[t * V + y]! -= f;
  }
  addATB(g.head, x2, dlogits, n, d, V);
  const dx2 = matmulBT(dlogits, w.head, n, V, d);
  // Feed-forward block (residual: dx1 starts as dx2).
  addATB(gl.w2, r, dx2, n, m, d);
  addColumnSums(gl.b2, dx2, n, d);
  const dr = matmulBT(dx2, l.w2, n, d, m);
  for (let i = 0; i < n * m; i++) if (u[i]! <= 0) dr[i] = 0;
  addATB(gl.w1, x1, dr, n, d, m);
  addColumnSums(gl.b1, dr, n, m);
  const dx1 = matmulBT(dr, l.w1, n, m, d, dx2.slice());
  // Attention block (residual: dx0 starts as dx1).
  addATB(gl.wo, o, dx1, n, d, d);
  addColumnSums(gl.bo, dx1, n, d);
  const dO = matmulBT(dx1, l.wo, n, d, d);
  const dq = new Float32Array(n * d);
  const dk = new Float32Array(n * d);
  const dv = new Float32Array(n * d);
  const scale = 1 / Math.sqrt(hd);
  const da = new Float32Array(n);
  for (let h = 0; h < heads; h++) {
    const off = h * hd;
    for (let t = 0; t < n; t++) {
      const row = (h * n + t) * n;
      let dot = 0;
      for (let j = 0; j <= t; j++) {
        const a = att[row + j]!;
        let s = 0;
        for (let c = 0; c < hd; c++) {
          s += dO[t * d + off + c]! * v[j * d + off + c]!;
          dv[j * d + off + c]! += a * dO[t * d + off + c]!;
        }
        da[j] = s;
        dot += a * s;
      }
      for (let j = 0; j <= t; j++) {
        const ds = att[row + j]! * (da[j]! - dot) * scale;
        if (ds === 0) continue;
        for (let c = 0; c < hd; c++) {
          dq[t * d + off + c]! += ds * k[j * d + off + c]!;
          dk[j * d + off + c]! += ds * q[t * d + off + c]!;
        }
      }
    }
  }
  const dx0 = dx1.slice();
  for (const [dz, wz, gw, gb] of [
    [dq, l.wq, gl.wq, gl.bq],
    [dk, l.wk, gl.wk, gl.bk],
    [dv, l.wv, gl.wv, gl.bv],
  ] as const) {
    addATB(gw, x0, dz, n, d, d);
    addColumnSums(gb, dz, n, d);
    matmulBT(dz, wz, n, d, d, dx0);
  }
  for (let t = 0; t < n; t++) {
    for (let j = 0; j < d; j++) {
      g.tokEmb[ids[t]! * d + j]! += dx0[t * d + j]!;
      g.posEmb[t * d + j]! += dx0[t * d + j]!;
    }
  }
  return total / Math.max(1, targets);
}

/** Every parameter array of the weights, in a fixed order (for the optimiser and for zeroing gradients). */
export function parameters(w: DecoderWeights): Float32Array[] {
  const l = w.layers[0]!;
  return [w.tokEmb, w.posEmb, w.head, l.wq, l.bq, l.wk, l.bk, l.wv, l.bv, l.wo, l.bo, l.w1, l.b1, l.w2, l.b2];
}

export function zerosLike(w: DecoderWeights): DecoderWeights {
  const z = (a: Float32Array) => new Float32Array(a.length);
  const l = w.layers[0]!;
  return {
    tokEmb: z(w.tokEmb),
    posEmb: z(w.posEmb),
    head: z(w.head),
    layers: [
      {
        wq: z(l.wq),
        bq: z(l.bq),
        wk: z(l.wk),
        bk: z(l.bk),
        wv: z(l.wv),
        bv: z(l.bv),
        wo: z(l.wo),
        bo: z(l.bo),
        w1: z(l.w1),
        b1: z(l.b1),
        w2: z(l.w2),
        b2: z(l.b2),
      },
    ],
  };
}

/** Adam with bias correction, over the parameter arrays in `parameters()` order. */
export class Adam {
  readonly #m: Float32Array[];
  readonly #v: Float32Array[];
  #t = 0;
  constructor(
    params: Float32Array[],
    private readonly beta1 = 0.9,
    private readonly beta2 = 0.99,
    private readonly eps = 1e-8,
  ) {
    this.#m = params.map((p) => new Float32Array(p.length));
    this.#v = params.map((p) => new Float32Array(p.length));
  }
  step(params: Float32Array[], grads: Float32Array[], lr: number, clip: number): void {
    this.#t++;
    let norm = 0;
    for (const g of grads) for (let i = 0; i < g.length; i++) norm += g[i]! * g[i]!;
    norm = Math.sqrt(norm);
    const s = norm > clip ? clip / norm : 1;
    const c1 = 1 - this.beta1 ** this.#t;
    const c2 = 1 - this.beta2 ** this.#t;
    params.forEach((p, k) => {
      const g = grads[k]!;
      const m = this.#m[k]!;
      const v = this.#v[k]!;
      for (let i = 0; i < p.length; i++) {
        const gi = g[i]! * s;
        m[i] = this.beta1 * m[i]! + (1 - this.beta1) * gi;
        v[i] = this.beta2 * v[i]! + (1 - this.beta2) * gi * gi;
        p[i]! -= (lr * (m[i]! / c1)) / (Math.sqrt(v[i]! / c2) + this.eps);
      }
    });
  }
}
