// Observing on a hot path: prom-client's histogram observe() converts, validates and hashes the label set
// at every call, even on a child, and a prediction made four of them. A histogram tally is a plain
// array of bucket counts with a sum and a count for one label set; the histogram receives them when
// the registry reads it (the histogram's `collect`, prom-client's own hook, called by every scrape,
// JSON export and cluster aggregation), so every read sees every observation made before it.
//
// prom-client has no public way to add counts to a bucket, so `flush` adds them to the histogram's own
// entry for the label set (the `hashMap` entry its observe() writes: per-bucket counts, sum, count),
// made by its public `zero()`. histogram-tally.test.ts compares the exposition with a plain histogram
// fed the same values, so a prom-client release that moves these fields fails there, not in production.
import type { Histogram, LabelValues } from 'prom-client';
import { exemplarLabels } from '../telemetry/index.js';
import { TracedHistogram } from './traced-histogram.js';

type Exemplar = { trace_id: string; span_id: string };

/** What a hot path observes into: a tally, or (past the bound, or with an exemplar) prom-client itself. */
export interface HistogramSink {
  /** `exemplar`: the trace to keep with this observation (default: the tally's own source, if any). */
  observe(value: number, exemplar?: Exemplar): void;
}

/** prom-client's entry for one label set of a histogram (lib/histogram.js, createBaseValues). */
interface Entry {
  labels: Record<string, string | number>;
  bucketValues: Record<number, number>;
  sum: number;
  count: number;
}

interface HistogramInternals {
  hashMap: Record<string, Entry>;
  upperBounds: number[];
}

export class HistogramTally implements HistogramSink {
  /** Observations per bucket since the last flush; the last slot counts those above every bound. */
  readonly counts: Float64Array;
  sum = 0;
  n = 0;
  /** The histogram's key of this label set, found at the first flush. */
  key: string | undefined;
  /** prom-client's child for this label set, made at the first observation with an exemplar. */
  #child: HistogramSink | undefined;

  constructor(
    readonly histogram: Histogram<string>,
    readonly labels: Record<string, string | number>,
    readonly bounds: readonly number[],
    private readonly exemplar: () => Exemplar | undefined,
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number, exemplar?: Exemplar): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    // A sampled request's trace is kept as its bucket's exemplar: prom-client's own path.
    const ex = exemplar ?? this.exemplar();
    if (ex) {
      this.#child ??= this.histogram.labels(this.labels as LabelValues<string>) as unknown as HistogramSink;
      this.#child.observe(value, ex);
      return;
    }
    // prom-client's bucket rule: the first upper bound the value is at or under.
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.n++;
  }
}

const noExemplar = (): undefined => undefined;

/** The histogram tallies of one registry; pass `flush` as the `collect` of every histogram they feed. */
export class HistogramTallies {
  private readonly all: HistogramTally[] = [];

  /** At most `max` tallies are kept; past that, observations go straight to prom-client. */
  constructor(private readonly max = 10_000) {}

  /**
   * A sink for one label set of `histogram`. For a TracedHistogram, an observation made while a sampled
   * span is active (or given an exemplar) goes through prom-client with it, so its bucket keeps the trace.
   */
  of(histogram: Histogram<string>, labels: Record<string, string | number>): HistogramSink {
    const exemplar = histogram instanceof TracedHistogram ? exemplarLabels : noExemplar;
    if (this.all.length >= this.max) {
      const child = histogram.labels(labels as LabelValues<string>) as unknown as HistogramSink;
      return { observe: (v, ex) => child.observe(v, ex ?? exemplar()) };
    }
    const bounds = (histogram as unknown as HistogramInternals).upperBounds;
    const t = new HistogramTally(histogram, labels, bounds, exemplar);
    this.all.push(t);
    return t;
  }

  readonly flush = (): void => {
    for (const t of this.all) if (t.n > 0) move(t);
  };
}

/** Adds a tally's counts to the histogram's entry for its label set (made by zero() when missing). */
function move(t: HistogramTally): void {
  const h = t.histogram as unknown as HistogramInternals;
  t.key ??= keyOf(h, t.labels);
  let entry = t.key === undefined ? undefined : h.hashMap[t.key];
  if (entry === undefined) {
    // zero() makes the entry as observe() would (and after a reset() or remove(), makes it again).
    t.histogram.zero(t.labels as LabelValues<string>);
    t.key ??= keyOf(h, t.labels);
    entry = t.key === undefined ? undefined : h.hashMap[t.key];
    if (entry === undefined) throw new Error('a histogram has no entry for a tallied label set (prom-client changed?)');
  }
  for (let i = 0; i < t.bounds.length; i++) {
    const c = t.counts[i]!;
    if (c !== 0) entry.bucketValues[t.bounds[i]!]! += c;
  }
  entry.sum += t.sum;
  entry.count += t.n;
  t.counts.fill(0);
  t.sum = 0;
  t.n = 0;
}

/** The histogram's key of an entry with these labels, if it has one (looked up once per tally). */
function keyOf(h: HistogramInternals, labels: Record<string, string | number>): string | undefined {
  return Object.keys(h.hashMap).find((k) => sameLabels(h.hashMap[k]!.labels, labels));
}

function sameLabels(a: Record<string, string | number>, b: Record<string, string | number>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => String(a[k]) === String(b[k]));
}
