// The registry in the OpenMetrics text format (the only one that carries exemplars), beside the
// Prometheus text format the registry itself writes, and which format a scraper asked for.
import { Registry, type Metric, type OpenMetricsContentType } from 'prom-client';

export const OPENMETRICS_CONTENT_TYPE = Registry.OPENMETRICS_CONTENT_TYPE;

/**
 * Whether an Accept header prefers OpenMetrics to the Prometheus text format: it must name
 * application/openmetrics-text with a q above 0 and at least as high as any other range it accepts
 * (Prometheus sends `application/openmetrics-text;version=1.0.0,...,text/plain;version=0.0.4;q=0.5,...`).
 * @example prefersOpenMetrics('application/openmetrics-text; version=1.0.0') // true
 */
export function prefersOpenMetrics(accept: string | undefined): boolean {
  if (!accept) return false;
  let open = 0;
  let other = 0;
  for (const range of accept.split(',')) {
    const [type = '', ...params] = range.split(';').map((s) => s.trim().toLowerCase());
    const qParam = params.find((p) => p.startsWith('q='));
    const q = qParam ? Number(qParam.slice(2)) : 1;
    if (!Number.isFinite(q)) continue;
    if (type === 'application/openmetrics-text') open = Math.max(open, q);
    else if (type === 'text/plain' || type === 'text/*' || type === '*/*') other = Math.max(other, q);
  }
  return open > 0 && open >= other;
}

/**
 * The metrics of `registry` in the OpenMetrics format. prom-client writes it only for a registry of that
 * type, and renames counters in place while doing so (it strips `_total` from the metric objects), which
 * would change the Prometheus output of the shared metrics; so each metric is registered here behind an
 * object that inherits from it: the rename lands on that object, reads and collect() reach the metric.
 */
export async function openMetricsText(registry: Registry): Promise<string> {
  const view = new Registry<OpenMetricsContentType>();
  view.setContentType(OPENMETRICS_CONTENT_TYPE);
  for (const m of registry.getMetricsAsArray()) view.registerMetric(Object.create(m) as Metric);
  return view.metrics();
}
