// ferry_requests_total and the request-duration histogram, counted the same way by Fastify's
// onResponse hook and by the predict lane (http/predict-lane.ts).
import type { Metrics } from '../monitoring/index.js';
import type { TracedHistogramChild } from '../metrics/traced-histogram.js';

/** Counts one answered request of a labelled route. */
export type RecordRequest = (
  route: string,
  model: string,
  version: string,
  status: number,
  seconds: number,
  exemplar?: { trace_id: string; span_id: string },
) => void;

export function requestMetricsRecorder(metrics: Pick<Metrics, 'requests' | 'requestDuration'>): RecordRequest {
  // Children of the request metrics per label set, so a request costs a map lookup rather than
  // prom-client hashing its labels twice (bounded: past the bound, labels are hashed as before).
  const children = new Map<string, { count: { inc(): void }; duration: TracedHistogramChild }>();
  return (route, model, version, status, seconds, exemplar) => {
    const key = `${route}\0${model}\0${version}\0${status}`;
    let m = children.get(key);
    if (!m) {
      const labels = { route, model, version };
      m = {
        count: metrics.requests.labels({ ...labels, status: String(status) }),
        duration: metrics.requestDuration.labels(labels),
      };
      if (children.size < 10_000) children.set(key, m);
    }
    m.count.inc();
    // With tracing on, a sampled request's trace is kept as the bucket's exemplar (OpenMetrics /metrics).
    m.duration.observe(seconds, exemplar);
  };
}
