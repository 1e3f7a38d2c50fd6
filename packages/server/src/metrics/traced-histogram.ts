// A latency histogram with exemplars: each bucket keeps the trace of its latest sampled observation,
// printed in the OpenMetrics exposition (`/metrics` asked for application/openmetrics-text) so a
// dashboard can go from a slow bucket to a trace. prom-client keeps exemplars only for histograms built
// with `enableExemplars`, which also turns observe() into an object-argument call and is refused by a
// Prometheus-format registry; this class keeps the usual observe(labels, value) and
// labels(...).observe(value), fills the exemplar from the active span, and registers itself directly.
// With tracing off (or an unsampled request) an observation costs what a plain histogram's does.
import { Histogram, type HistogramConfiguration, type LabelValues, type Registry } from 'prom-client';
import { exemplarLabels } from '../telemetry/index.js';

type Exemplar = { trace_id: string; span_id: string };
type ObserveWithExemplar<T extends string> = (d: {
  labels: LabelValues<T>;
  value: number;
  exemplarLabels?: Exemplar;
}) => void;

/** A child for one label set, as prom-client's labels() returns, whose observe() may be given the exemplar. */
export interface TracedHistogramChild {
  /** `exemplar`: the trace to keep (default: the active span's, when sampled). */
  observe(value: number, exemplar?: Exemplar): void;
}

export class TracedHistogram<T extends string> extends Histogram<T> {
  readonly #labelNames: readonly T[];
  readonly #observeWithExemplar: ObserveWithExemplar<T>;

  constructor(registry: Registry, cfg: Omit<HistogramConfiguration<T>, 'registers' | 'enableExemplars'>) {
    super({ ...cfg, registers: [], enableExemplars: true });
    this.#labelNames = cfg.labelNames ?? [];
    // prom-client's constructor installed its object-argument observe on the instance.
    this.#observeWithExemplar = (this.observe as unknown as ObserveWithExemplar<T>).bind(this);
    const observe = (a: LabelValues<T> | number, b?: number): void => {
      if (typeof a === 'number') return this.#record({}, a);
      if (b === undefined && typeof (a as { value?: unknown }).value === 'number') {
        // Already the object form (prom-client's own startTimer calls it so).
        const d = a as unknown as { labels?: LabelValues<T>; value: number; exemplarLabels?: Exemplar };
        return this.#record(d.labels ?? {}, d.value, d.exemplarLabels);
      }
      this.#record(a, b!);
    };
    Object.defineProperty(this, 'observe', { value: observe, writable: true, configurable: true });
    registry.registerMetric(this);
  }

  #record(labels: LabelValues<T>, value: number, exemplar?: Exemplar): void {
    const ex = exemplar && Object.keys(exemplar).length > 0 ? exemplar : exemplarLabels();
    this.#observeWithExemplar(ex ? { labels, value, exemplarLabels: ex } : { labels, value });
  }

  /** As Histogram.labels; the child's observe() keeps an exemplar (and is prom-client's own otherwise). */
  override labels(...values: string[]): ReturnType<Histogram<T>['labels']> & TracedHistogramChild;
  override labels(labels: LabelValues<T>): ReturnType<Histogram<T>['labels']> & TracedHistogramChild;
  override labels(...args: unknown[]): ReturnType<Histogram<T>['labels']> & TracedHistogramChild {
    const child = (super.labels as (...a: unknown[]) => ReturnType<Histogram<T>['labels']>)(...args);
    const labels = (
      typeof args[0] === 'object' && args[0] !== null
        ? args[0]
        : Object.fromEntries(this.#labelNames.map((n, i) => [n, args[i]]))
    ) as LabelValues<T>;
    const plain = child.observe;
    return {
      ...child,
      observe: (value: number, exemplar?: Exemplar) => {
        const ex = exemplar ?? exemplarLabels();
        if (ex) this.#observeWithExemplar({ labels, value, exemplarLabels: ex });
        else plain(value);
      },
    };
  }
}
