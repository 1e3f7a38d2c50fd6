// Running comparison of a shadow version with the served answers: label agreement, the
// distribution of score differences, latency of both, errors. Bounded memory: the distributions
// keep the newest `capacity` observations.
import type { Prediction } from '@ferry/core';

class Ring {
  private readonly data: Float64Array;
  private n = 0;
  constructor(capacity: number) { this.data = new Float64Array(capacity); }
  push(x: number): void { this.data[this.n++ % this.data.length] = x; }
  get count(): number { return this.n; }
  summary(): { count: number; mean: number; p50: number; p90: number; p99: number; max: number } | null {
    const len = Math.min(this.n, this.data.length);
    if (len === 0) return null;
    const sorted = Array.from(this.data.subarray(0, len)).sort((a, b) => a - b);
    const q = (p: number) => sorted[Math.min(len - 1, Math.floor(p * len))]!;
    return { count: this.n, mean: sorted.reduce((s, x) => s + x, 0) / len, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: sorted[len - 1]! };
  }
}

/** Largest absolute difference between two predictions' scores (classification) or values (regression). */
export function scoreDifference(a: Prediction, b: Prediction): number | undefined {
  const sa = (a as { scores?: Record<string, number> }).scores;
  const sb = (b as { scores?: Record<string, number> }).scores;
  if (sa && sb) {
    let d = 0;
    for (const k of new Set([...Object.keys(sa), ...Object.keys(sb)])) d = Math.max(d, Math.abs((sa[k] ?? 0) - (sb[k] ?? 0)));
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

export class ShadowStats {
  sampled = 0;
  compared = 0;
  labelled = 0;
  agreed = 0;
  errors = 0;
  dropped = 0;
  lastError?: string;
  private readonly diffs: Ring;
  private readonly servedMs: Ring;
  private readonly shadowMs: Ring;

  constructor(readonly version: string, capacity = 10_000) {
    this.diffs = new Ring(capacity);
    this.servedMs = new Ring(capacity);
    this.shadowMs = new Ring(capacity);
  }

  /** Records one compared request; returns per-instance agreement and differences for the metrics. */
  record(served: readonly Prediction[], shadow: readonly Prediction[], servedMs: number, shadowMs: number): Array<{ agree?: boolean; diff?: number }> {
    this.servedMs.push(servedMs);
    this.shadowMs.push(shadowMs);
    const out: Array<{ agree?: boolean; diff?: number }> = [];
    for (let i = 0; i < served.length; i++) {
      const a = served[i]!;
      const b = shadow[i];
      if (b === undefined) continue;
      this.compared++;
      const la = (a as { label?: unknown }).label;
      const lb = (b as { label?: unknown }).label;
      let agree: boolean | undefined;
      if (la !== undefined && lb !== undefined) {
        this.labelled++;
        agree = la === lb;
        if (agree) this.agreed++;
      }
      const diff = scoreDifference(a, b);
      if (diff !== undefined && Number.isFinite(diff)) this.diffs.push(diff);
      out.push({ ...(agree !== undefined && { agree }), ...(diff !== undefined && { diff }) });
    }
    return out;
  }

  toJSON() {
    return {
      version: this.version,
      sampledRequests: this.sampled,
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
