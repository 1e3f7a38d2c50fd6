// ferry_requests_total and the request-duration histogram, counted the same way by Fastify's
// onResponse hook and by the predict lane (http/predict-lane.ts).
import type { Metrics } from '../monitoring/index.js';
import { labelChildren } from '../metrics/label-children.js';

/** Counts one answered request of a labelled route. */
export type RecordRequest = (
  route: string,
  model: string,
  version: string,
  status: number,
  seconds: number,
  exemplar?: { trace_id: string; span_id: string },
) => void;

export function requestMetricsRecorder(
  metrics: Pick<Metrics, 'requests' | 'requestDuration' | 'tallies' | 'histogramTallies'>,
): RecordRequest {
  // Children of the request metrics per label set, so a request costs a map lookup rather than
  // prom-client hashing its labels twice; both are tallies (metrics/tally.ts, metrics/histogram-tally.ts).
  const child = labelChildren((l: { route: string; model: string; version: string; status: number }) => ({
    count: metrics.tallies.of(
      metrics.requests.labels({ route: l.route, model: l.model, version: l.version, status: String(l.status) }),
    ),
    duration: metrics.histogramTallies.of(metrics.requestDuration, {
      route: l.route,
      model: l.model,
      version: l.version,
    }),
  }));
  return (route, model, version, status, seconds, exemplar) => {
    const m = child(`${route}\0${model}\0${version}\0${status}`, () => ({ route, model, version, status }));
    m.count.inc();
    // With tracing on, a sampled request's trace is kept as the bucket's exemplar (OpenMetrics /metrics).
    m.duration.observe(seconds, exemplar);
  };
}
