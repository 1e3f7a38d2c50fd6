// L2-regularised logistic regression over sparse rows, fitted by L-BFGS. Full-batch and free of
// randomness, so the same rows give the same weights on every run; the whole corpus is a few million
// non-zeros, which a full gradient pass covers in milliseconds.

/** Rows in compressed sparse row form. */
export interface SparseRows {
  readonly width: number;
  /** rowStart[i]..rowStart[i+1] index `columns`/`values` for row i; length rows + 1. */
  readonly rowStart: Int32Array;
  readonly columns: Int32Array;
  readonly values: Float32Array;
}

export interface LogisticModel {
  readonly weights: Float64Array;
  readonly bias: number;
}

export interface FitOptions {
  /** Strength of the (λ/2)·‖w‖² penalty added to the mean log-loss; the bias is not penalised. */
  l2: number;
  /** Default 500. */
  maxIterations?: number;
  /** Stop when the gradient's max-norm falls below this. Default 1e-6. */
  tolerance?: number;
  /** Pairs kept by L-BFGS. Default 10. */
  memory?: number;
}

export interface FitReport {
  iterations: number;
  loss: number;
  gradientNorm: number;
}

/** Builds CSR rows from a list of sparse vectors (as the hash-ngrams step returns). */
export function toRows(
  vectors: ReadonlyArray<{ indices: ArrayLike<number>; values: ArrayLike<number> }>,
  width: number,
): SparseRows {
  const rowStart = new Int32Array(vectors.length + 1);
  vectors.forEach((v, i) => {
    rowStart[i + 1] = rowStart[i]! + v.indices.length;
  });
  const columns = new Int32Array(rowStart[vectors.length]!);
  const values = new Float32Array(columns.length);
  vectors.forEach((v, i) => {
    columns.set(Array.from(v.indices), rowStart[i]!);
    values.set(Array.from(v.values), rowStart[i]!);
  });
  return { width, rowStart, columns, values };
}

/** The decision value b + w·x of each row. */
export function margins(model: LogisticModel, rows: SparseRows): Float64Array {
  const n = rows.rowStart.length - 1;
  const z = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = model.bias;
    for (let k = rows.rowStart[i]!; k < rows.rowStart[i + 1]!; k++)
      s += model.weights[rows.columns[k]!]! * rows.values[k]!;
    z[i] = s;
  }
  return z;
}

export const sigmoid = (z: number): number => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z)));

/** log(1 + e^z) without overflow. */
const softplus = (z: number): number => (z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z)));

/**
 * Objective and gradient at the parameter vector `theta` = [w..., b]. Returns the loss and fills `grad`.
 */
function evaluate(theta: Float64Array, rows: SparseRows, labels: Uint8Array, l2: number, grad: Float64Array): number {
  const n = labels.length;
  const width = rows.width;
  grad.fill(0);
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const start = rows.rowStart[i]!;
    const end = rows.rowStart[i + 1]!;
    let z = theta[width]!;
    for (let k = start; k < end; k++) z += theta[rows.columns[k]!]! * rows.values[k]!;
    const y = labels[i]!;
    loss += softplus(z) - y * z;
    const g = (sigmoid(z) - y) / n;
    for (let k = start; k < end; k++) grad[rows.columns[k]!] += g * rows.values[k]!;
    grad[width] += g;
  }
  loss /= n;
  let penalty = 0;
  for (let j = 0; j < width; j++) {
    penalty += theta[j]! * theta[j]!;
    grad[j] += l2 * theta[j]!;
  }
  return loss + 0.5 * l2 * penalty;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

function maxAbs(a: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

/** Fits the model; `labels[i]` is 1 for the positive class. */
export function fitLogistic(
  rows: SparseRows,
  labels: Uint8Array,
  options: FitOptions,
): { model: LogisticModel; report: FitReport } {
  const size = rows.width + 1;
  const maxIterations = options.maxIterations ?? 500;
  const tolerance = options.tolerance ?? 1e-6;
  const memory = options.memory ?? 10;
  let theta = new Float64Array(size);
  let grad = new Float64Array(size);
  let loss = evaluate(theta, rows, labels, options.l2, grad);
  const s: Float64Array[] = [];
  const y: Float64Array[] = [];
  const rho: number[] = [];
  const direction = new Float64Array(size);
  const alpha = new Float64Array(memory);
  let nextTheta = new Float64Array(size);
  let nextGrad = new Float64Array(size);
  let iterations = 0;
  for (; iterations < maxIterations && maxAbs(grad) > tolerance; iterations++) {
    // Two-loop recursion: direction = -H·grad.
    for (let i = 0; i < size; i++) direction[i] = -grad[i]!;
    for (let m = s.length - 1; m >= 0; m--) {
      alpha[m] = rho[m]! * dot(s[m]!, direction);
      const ym = y[m]!;
      for (let i = 0; i < size; i++) direction[i] -= alpha[m]! * ym[i]!;
    }
    const gamma = s.length
      ? dot(s[s.length - 1]!, y[y.length - 1]!) / dot(y[y.length - 1]!, y[y.length - 1]!)
      : 1 / Math.max(1, Math.sqrt(dot(grad, grad)));
    for (let i = 0; i < size; i++) direction[i] *= gamma;
    for (let m = 0; m < s.length; m++) {
      const beta = rho[m]! * dot(y[m]!, direction);
      const sm = s[m]!;
      for (let i = 0; i < size; i++) direction[i] += (alpha[m]! - beta) * sm[i]!;
    }
    let slope = dot(grad, direction);
    if (slope >= 0) {
      // Not a descent direction (curvature information went stale): restart from steepest descent.
      s.length = 0;
      y.length = 0;
      rho.length = 0;
      for (let i = 0; i < size; i++) direction[i] = -grad[i]!;
      slope = dot(grad, direction);
    }
    // Backtracking line search for the Armijo condition.
    let step = 1;
    let nextLoss = Infinity;
    for (let tries = 0; tries < 40; tries++, step *= 0.5) {
      for (let i = 0; i < size; i++) nextTheta[i] = theta[i]! + step * direction[i]!;
      nextLoss = evaluate(nextTheta, rows, labels, options.l2, nextGrad);
      if (nextLoss <= loss + 1e-4 * step * slope) break;
    }
    if (!(nextLoss < loss)) break; // no progress possible at this precision
    const sk = new Float64Array(size);
    const yk = new Float64Array(size);
    for (let i = 0; i < size; i++) {
      sk[i] = nextTheta[i]! - theta[i]!;
      yk[i] = nextGrad[i]! - grad[i]!;
    }
    const sy = dot(sk, yk);
    if (sy > 1e-12) {
      if (s.length === memory) {
        s.shift();
        y.shift();
        rho.shift();
      }
      s.push(sk);
      y.push(yk);
      rho.push(1 / sy);
    }
    [theta, nextTheta] = [nextTheta, theta];
    [grad, nextGrad] = [nextGrad, grad];
    const improvement = loss - nextLoss;
    loss = nextLoss;
    if (improvement < 1e-12 * Math.max(1, Math.abs(loss))) {
      iterations++;
      break;
    }
  }
  return {
    model: { weights: theta.slice(0, rows.width), bias: theta[rows.width]! },
    report: { iterations, loss, gradientNorm: maxAbs(grad) },
  };
}
