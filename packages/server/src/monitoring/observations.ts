// What the alert rules look at, per model version, over the interval since the previous look:
// p99 latency (from the request-duration histogram's bucket deltas), error rate and fallback rate
// (from counter deltas). Read from Ferry's own Prometheus metrics, so alerts and dashboards agree.
import type { Metrics } from '../metrics/metrics.js';

export interface VersionObservation {
  model: string;
  version: string;
  requests: number;
  /** Upper bound of the bucket holding the 99th percentile, in ms (undefined without requests). */
  p99Ms?: number;
  errorRate?: number;
  fallbackRate?: number;
}

type Labels = Record<string, string | number>;
interface Sample {
  labels: Labels;
  value: number;
  metricName?: string;
}

const key = (l: Labels) => `${l.model}@${l.version}`;

export class ObservationCollector {
  private previous = new Map<string, number>();

  constructor(private readonly metrics: Metrics) {}

  /** Observations since the previous call (the first call covers everything since start). */
  async collect(): Promise<VersionObservation[]> {
    const now = new Map<string, number>();
    const add = (k: string, v: number) => now.set(k, (now.get(k) ?? 0) + v);
    const duration = (await this.metrics.requestDuration.get()).values as Sample[];
    for (const s of duration) {
      if (!s.labels.model || !s.metricName?.endsWith('_bucket')) continue;
      add(`bucket|${key(s.labels)}|${s.labels.le}`, s.value);
    }
    for (const s of (await this.metrics.requests.get()).values as Sample[]) {
      if (!s.labels.model) continue;
      add(`requests|${key(s.labels)}`, s.value);
      if (Number(s.labels.status) >= 500) add(`errors|${key(s.labels)}`, s.value);
    }
    for (const s of (await this.metrics.fallbacks.get()).values as Sample[]) add(`fallbacks|${key(s.labels)}`, s.value);

    const delta = (k: string) => (now.get(k) ?? 0) - (this.previous.get(k) ?? 0);
    const versions = new Set(
      [...now.keys()].filter((k) => k.startsWith('requests|')).map((k) => k.slice('requests|'.length)),
    );
    const out: VersionObservation[] = [];
    for (const v of versions) {
      const at = v.lastIndexOf('@');
      const requests = delta(`requests|${v}`);
      const obs: VersionObservation = { model: v.slice(0, at), version: v.slice(at + 1), requests };
      if (requests > 0) {
        obs.errorRate = delta(`errors|${v}`) / requests;
        obs.fallbackRate = delta(`fallbacks|${v}`) / requests;
        // Buckets are cumulative: the first bound whose count reaches 99% holds the 99th percentile.
        const bounds = [...now.keys()]
          .filter((k) => k.startsWith(`bucket|${v}|`))
          .map((k) => k.split('|')[2]!)
          .filter((le, i, all) => all.indexOf(le) === i)
          .sort((a, b) => (a === '+Inf' ? 1 : b === '+Inf' ? -1 : Number(a) - Number(b)));
        const total = delta(`bucket|${v}|+Inf`);
        const bound = bounds.find((le) => delta(`bucket|${v}|${le}`) >= 0.99 * total);
        if (bound !== undefined) obs.p99Ms = bound === '+Inf' ? Infinity : Number(bound) * 1000;
      }
      out.push(obs);
    }
    this.previous = now;
    return out;
  }
}
