// Ferry's own metrics over time, for the dashboard's charts without a Prometheus server: every few
// seconds the recorder reads the prom-client registry, turns counter and histogram deltas into one
// point per model (and one for all models), and keeps the newest points in a ring buffer.
import type { Metrics } from '../metrics/metrics.js';

export interface TimeseriesPoint {
  /** End of the interval, epoch ms. */
  t: number;
  requests: number;
  /** Requests per second over the interval. */
  rps: number;
  /** Latency percentiles of the interval's requests, ms, interpolated within histogram buckets (null without requests).
   */
  p50Ms: number | null;
  p99Ms: number | null;
  /** Share of requests answered 5xx, and with a fallback (null without requests). */
  errorRate: number | null;
  fallbackRate: number | null;
  /** Cache hits / lookups in the interval (null without lookups). */
  cacheHitRate: number | null;
}

type Labels = Record<string, string | number>;
interface Sample {
  labels: Labels;
  value: number;
  metricName?: string;
}

/** All models together are the series with this key. */
export const ALL_MODELS = '*';

class Ring<T> {
  private items: T[] = [];
  constructor(private readonly size: number) {}
  push(x: T): void {
    this.items.push(x);
    if (this.items.length > this.size) this.items.splice(0, this.items.length - this.size);
  }
  list(): T[] {
    return [...this.items];
  }
}

/** The value at quantile q from cumulative bucket deltas, linearly interpolated inside its bucket. */
export function quantileFromBuckets(buckets: Array<[number, number]>, q: number): number | null {
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total <= 0) return null;
  const want = q * total;
  let prevBound = 0;
  let prevCount = 0;
  for (const [bound, count] of sorted) {
    if (count >= want) {
      if (!Number.isFinite(bound)) return prevBound;
      const inBucket = count - prevCount;
      return inBucket > 0 ? prevBound + ((want - prevCount) / inBucket) * (bound - prevBound) : bound;
    }
    prevBound = bound;
    prevCount = count;
  }
  return prevBound;
}

export class TimeseriesRecorder {
  private readonly series = new Map<string, Ring<TimeseriesPoint>>();
  private previous = new Map<string, number>();
  private previousAt = Date.now();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly metrics: Metrics,
    readonly intervalSeconds: number,
    private readonly points: number,
  ) {}

  start(): void {
    if (this.timer || this.intervalSeconds <= 0) return;
    let busy = false;
    this.timer = setInterval(() => {
      if (busy) return;
      busy = true;
      this.sample()
        .catch(() => undefined)
        .finally(() => {
          busy = false;
        });
    }, this.intervalSeconds * 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  models(): string[] {
    return [...this.series.keys()].filter((k) => k !== ALL_MODELS).sort();
  }

  get(model: string = ALL_MODELS): TimeseriesPoint[] {
    return this.series.get(model)?.list() ?? [];
  }

  /** Takes one sample now (the timer calls this; tests may too). */
  async sample(now = Date.now()): Promise<void> {
    const cur = new Map<string, number>();
    const add = (k: string, v: number) => cur.set(k, (cur.get(k) ?? 0) + v);
    const both = (model: string, k: string, v: number) => {
      add(`${model}|${k}`, v);
      add(`${ALL_MODELS}|${k}`, v);
    };
    for (const s of (await this.metrics.requestDuration.get()).values as Sample[]) {
      if (!s.labels.model || !s.metricName?.endsWith('_bucket')) continue;
      both(String(s.labels.model), `le|${s.labels.le}`, s.value);
    }
    for (const s of (await this.metrics.requests.get()).values as Sample[]) {
      if (!s.labels.model) continue;
      both(String(s.labels.model), 'requests', s.value);
      if (Number(s.labels.status) >= 500) both(String(s.labels.model), 'errors', s.value);
    }
    for (const s of (await this.metrics.fallbacks.get()).values as Sample[])
      both(String(s.labels.model), 'fallbacks', s.value);
    for (const s of (await this.metrics.cacheRequests.get()).values as Sample[]) {
      both(String(s.labels.model), 'lookups', s.value);
      if (s.labels.result === 'hit') both(String(s.labels.model), 'hits', s.value);
    }

    const seconds = Math.max((now - this.previousAt) / 1000, 1e-3);
    const models = new Set([...cur.keys()].map((k) => k.slice(0, k.indexOf('|'))));
    models.add(ALL_MODELS);
    for (const model of models) {
      const d = (k: string) => (cur.get(`${model}|${k}`) ?? 0) - (this.previous.get(`${model}|${k}`) ?? 0);
      const requests = d('requests');
      const lookups = d('lookups');
      const buckets: Array<[number, number]> = [...cur.keys()]
        .filter((k) => k.startsWith(`${model}|le|`))
        .map((k) => {
          const le = k.slice(`${model}|le|`.length);
          return [le === '+Inf' ? Infinity : Number(le) * 1000, d(`le|${le}`)];
        });
      const p = (q: number) => {
        const v = quantileFromBuckets(buckets, q);
        return v === null ? null : Math.round(v * 1000) / 1000;
      };
      const point: TimeseriesPoint = {
        t: now,
        requests,
        rps: requests / seconds,
        p50Ms: requests > 0 ? p(0.5) : null,
        p99Ms: requests > 0 ? p(0.99) : null,
        errorRate: requests > 0 ? d('errors') / requests : null,
        fallbackRate: requests > 0 ? d('fallbacks') / requests : null,
        cacheHitRate: lookups > 0 ? d('hits') / lookups : null,
      };
      let ring = this.series.get(model);
      if (!ring) {
        ring = new Ring(this.points);
        this.series.set(model, ring);
      }
      ring.push(point);
    }
    this.previous = cur;
    this.previousAt = now;
  }
}
