// Running comparison of a shadow version with the served answers: label agreement, the
// distribution of score differences, latency of both, errors. Bounded memory: the distributions
// keep the newest `capacity` observations.
import type { ShadowSource } from '../serving/predict/routing.js';
import { toNumbers, type Prediction, type TensorValue } from '@ferry/core';
import { float16BitsToFloat32 } from '@ferry/core';

class Ring {
  private readonly data: Float64Array;
  private n = 0;
  constructor(capacity: number) {
    this.data = new Float64Array(capacity);
  }
  push(x: number): void {
    this.data[this.n++ % this.data.length] = x;
  }
  get count(): number {
    return this.n;
  }
  summary(): { count: number; mean: number; p50: number; p90: number; p99: number; max: number } | null {
    const len = Math.min(this.n, this.data.length);
    if (len === 0) return null;
    const sorted = Array.from(this.data.subarray(0, len)).sort((a, b) => a - b);
    const q = (p: number) => sorted[Math.min(len - 1, Math.floor(p * len))]!;
    return {
      count: this.n,
      mean: sorted.reduce((s, x) => s + x, 0) / len,
      p50: q(0.5),
      p90: q(0.9),
      p99: q(0.99),
      max: sorted[len - 1]!,
    };
  }
}

/** Largest absolute difference between two predictions' scores (classification) or values (regression). */
export function scoreDifference(a: Prediction, b: Prediction): number | undefined {
  const sa = (a as { scores?: Record<string, number> }).scores;
  const sb = (b as { scores?: Record<string, number> }).scores;
  if (sa && sb) {
    let d = 0;
    for (const k of new Set([...Object.keys(sa), ...Object.keys(sb)]))
      d = Math.max(d, Math.abs((sa[k] ?? 0) - (sb[k] ?? 0)));
    return d;
  }
  const va = (a as { value?: number | number[] }).value;
  const vb = (b as { value?: number | number[] }).value;
  if (va === undefined || vb === undefined) return undefined;
  const xa = Array.isArray(va) ? va : [va];
  const xb = Array.isArray(vb) ? vb : [vb];
  if (xa.length !== xb.length) return Infinity;
  return xa.reduce((m, x, i) => Math.max(m, Math.abs(x - xb[i]!)), 0);
}

export interface InstanceComparison {
  agree?: boolean;
  diff?: number;
}

const numbers = (t: TensorValue): number[] | undefined => {
  if (t.dtype === 'string' || t.dtype === 'bool') return undefined;
  if (t.dtype === 'float16') return Array.from(t.data as Uint16Array, float16BitsToFloat32);
  return toNumbers(t.data) as number[];
};

const argmax = (xs: number[], from: number, to: number): number => {
  let best = from;
  for (let i = from + 1; i < to; i++) if (xs[i]! > xs[best]!) best = i;
  return best - from;
};

/**
 * Compares v2 output tensors row by row (axis 0 is the batch): the largest absolute difference over
 * every numeric output the two answers share, Infinity when their shapes differ; label agreement
 * (argmax of the row) on `labelOutput`, the output a classification contract reads its labels from.
 */
export function tensorRows(
  served: Record<string, TensorValue>,
  shadow: Record<string, TensorValue>,
  labelOutput?: string,
): InstanceComparison[] {
  const names = Object.keys(served).filter((n) => shadow[n] !== undefined);
  const first = names.length ? served[names[0]!]! : undefined;
  if (!first) return [];
  const rows = first.dims.length ? first.dims[0]! : 1;
  const out: InstanceComparison[] = Array.from({ length: rows }, () => ({}));
  for (const name of names) {
    const a = served[name]!;
    const b = shadow[name]!;
    const same = a.dims.length === b.dims.length && a.dims.every((d, i) => d === b.dims[i]);
    const xa = numbers(a);
    const xb = numbers(b);
    if (!xa || !xb) continue;
    const aRows = a.dims.length ? a.dims[0]! : 1;
    if (!same || aRows !== rows) {
      for (const r of out) r.diff = Infinity;
      continue;
    }
    const width = rows ? xa.length / rows : 0;
    for (let r = 0; r < rows; r++) {
      let d = out[r]!.diff ?? 0;
      for (let k = r * width; k < (r + 1) * width; k++) d = Math.max(d, Math.abs(xa[k]! - xb[k]!));
      out[r]!.diff = d;
      if (name === labelOutput && width > 0)
        out[r]!.agree = argmax(xa, r * width, (r + 1) * width) === argmax(xb, r * width, (r + 1) * width);
    }
  }
  return out;
}

/** Where sampled copies come from: v1 predict, v2 infer, completed jobs. */
export type { ShadowSource } from '../serving/predict/routing.js';

export class ShadowStats {
  sampled = 0;
  readonly bySource: Record<ShadowSource, number> = { predict: 0, infer: 0, jobs: 0 };
  compared = 0;
  labelled = 0;
  agreed = 0;
  errors = 0;
  dropped = 0;
  lastError?: string;
  private readonly diffs: Ring;
  private readonly servedMs: Ring;
  private readonly shadowMs: Ring;

  constructor(
    readonly version: string,
    capacity = 10_000,
  ) {
    this.diffs = new Ring(capacity);
    this.servedMs = new Ring(capacity);
    this.shadowMs = new Ring(capacity);
  }

  /** Records one compared request; returns per-instance agreement and differences for the metrics. */
  record(
    served: readonly Prediction[],
    shadow: readonly Prediction[],
    servedMs: number,
    shadowMs: number,
  ): InstanceComparison[] {
    const rows: InstanceComparison[] = [];
    for (let i = 0; i < served.length; i++) {
      const a = served[i]!;
      const b = shadow[i];
      if (b === undefined) continue;
      const la = (a as { label?: unknown }).label;
      const lb = (b as { label?: unknown }).label;
      const diff = scoreDifference(a, b);
      rows.push({
        ...(la !== undefined && lb !== undefined && { agree: la === lb }),
        ...(diff !== undefined && { diff }),
      });
    }
    return this.recordRows(rows, servedMs, shadowMs);
  }

  /** Records one compared request already reduced to one comparison per instance (v2 tensors). */
  recordRows(rows: InstanceComparison[], servedMs: number, shadowMs: number): InstanceComparison[] {
    this.servedMs.push(servedMs);
    this.shadowMs.push(shadowMs);
    for (const r of rows) {
      this.compared++;
      if (r.agree !== undefined) {
        this.labelled++;
        if (r.agree) this.agreed++;
      }
      if (r.diff !== undefined && Number.isFinite(r.diff)) this.diffs.push(r.diff);
    }
    return rows;
  }

  toJSON() {
    return {
      version: this.version,
      sampledRequests: this.sampled,
      sampledBySource: { ...this.bySource },
      comparedInstances: this.compared,
      errors: this.errors,
      dropped: this.dropped,
      labelAgreement: this.labelled ? this.agreed / this.labelled : null,
      labelledInstances: this.labelled,
      scoreDifference: this.diffs.summary(),
      latencyMs: { served: this.servedMs.summary(), shadow: this.shadowMs.summary() },
      ...(this.lastError !== undefined && { lastError: this.lastError }),
    };
  }
}
