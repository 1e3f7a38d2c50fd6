// The arithmetic of weight quantisation: a float32 K×N matrix (MatMul's B, output channels along N)
// to 8-bit integers with a scale and zero point per tensor or per output channel. Pure functions, no
// graph knowledge, so the error of each scheme can be measured on its own.

export interface WeightQuantOptions {
  /** One scale (and zero point) per output channel (column of B) instead of one for the whole matrix. */
  perChannel: boolean;
  /** int8 with zero point 0 (range ±127) when true; uint8 with a zero point covering [min, max] when false. */
  symmetric: boolean;
  /**
   * Use 7 bits instead of 8 (±63 or 0..127). For CPUs without VNNI, where ONNX Runtime's u8×s8 kernel
   * sums pairs of products in int16 and can saturate; costs a little precision.
   */
  reduceRange: boolean;
}

export interface QuantizedWeights {
  /** Row-major K×N, int8 when symmetric, uint8 otherwise. */
  data: Int8Array | Uint8Array;
  /** One value (per tensor) or N values (per channel). */
  scale: Float32Array;
  zeroPoint: Int8Array | Uint8Array;
}

/** Rounds half to even, as ONNX QuantizeLinear does. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Quantises a row-major rows×cols matrix. Channels are columns (the N axis of MatMul's B).
 * A channel that is all zeros gets scale 1 so that dequantisation stays exact and finite.
 */
export function quantizeWeights(w: Float32Array, rows: number, cols: number, o: WeightQuantOptions): QuantizedWeights {
  if (w.length !== rows * cols)
    throw new RangeError(`weights hold ${w.length} values, ${rows}×${cols} needs ${rows * cols}`);
  const groups = o.perChannel ? cols : 1;
  const lo = new Float64Array(groups).fill(0);
  const hi = new Float64Array(groups).fill(0);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) {
      const v = w[base + c]!;
      if (!Number.isFinite(v)) throw new RangeError(`weight [${r}, ${c}] is ${v}; cannot quantise a non-finite weight`);
      const g = o.perChannel ? c : 0;
      if (v < lo[g]!) lo[g] = v;
      if (v > hi[g]!) hi[g] = v;
    }
  }
  const scale = new Float32Array(groups);
  const zeroPoint = o.symmetric ? new Int8Array(groups) : new Uint8Array(groups);
  let qmin: number;
  let qmax: number;
  if (o.symmetric) {
    qmax = o.reduceRange ? 63 : 127;
    qmin = -qmax;
    for (let g = 0; g < groups; g++) {
      const m = Math.max(-lo[g]!, hi[g]!);
      scale[g] = m > 0 ? m / qmax : 1;
    }
  } else {
    qmin = 0;
    qmax = o.reduceRange ? 127 : 255;
    for (let g = 0; g < groups; g++) {
      const span = hi[g]! - lo[g]!;
      const s = span > 0 ? span / qmax : 1;
      scale[g] = s;
      // The zero point is computed from the float32 scale actually stored, so that 0.0 maps exactly.
      zeroPoint[g] = Math.min(qmax, Math.max(qmin, roundHalfEven(-lo[g]! / scale[g]!)));
    }
  }
  const data = o.symmetric ? new Int8Array(w.length) : new Uint8Array(w.length);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) {
      const g = o.perChannel ? c : 0;
      const q = roundHalfEven(w[base + c]! / scale[g]!) + zeroPoint[g]!;
      data[base + c] = q < qmin ? qmin : q > qmax ? qmax : q;
    }
  }
  return { data, scale, zeroPoint };
}

/** The float values the quantised weights stand for: (q - zeroPoint) × scale. */
export function dequantizeWeights(q: QuantizedWeights, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const g = q.scale.length === 1 ? 0 : c;
      out[r * cols + c] = (q.data[r * cols + c]! - q.zeroPoint[g]!) * q.scale[g]!;
    }
  }
  return out;
}

/** Transposes a row-major rows×cols matrix (Gemm's transB weights become MatMul's K×N). */
export function transpose(w: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = w[r * cols + c]!;
  return out;
}

/**
 * Quantises an embedding table (row-major rows×width) to symmetric int8, with one scale per row when
 * `perRow` (rows differ in range: frequent tokens train to larger norms) or one for the table.
 */
export function quantizeRows(w: Float32Array, rows: number, width: number, perRow: boolean): QuantizedWeights {
  // Rows are the channels here: quantise the transpose per column, then lay the int8 rows back out.
  const t = quantizeWeights(transpose(w, rows, width), width, rows, {
    perChannel: perRow,
    symmetric: true,
    reduceRange: false,
  });
  const data = new Int8Array(w.length);
  for (let r = 0; r < rows; r++) for (let j = 0; j < width; j++) data[r * width + j] = t.data[j * rows + r]!;
  return { data, scale: t.scale, zeroPoint: t.zeroPoint };
}

/** The float rows an int8 table stands for: each value times its row's scale (or the table's one scale). */
export function dequantizeRows(q: QuantizedWeights, rows: number, width: number): Float32Array {
  const out = new Float32Array(rows * width);
  for (let r = 0; r < rows; r++) {
    const s = q.scale.length === 1 ? q.scale[0]! : q.scale[r]!;
    for (let j = 0; j < width; j++) out[r * width + j] = q.data[r * width + j]! * s;
  }
  return out;
}
