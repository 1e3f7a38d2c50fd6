import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Registry } from 'prom-client';
import { openMetricsText, prefersOpenMetrics } from './openmetrics.js';
import { TracedHistogram } from './traced-histogram.js';

test('Accept negotiation: OpenMetrics only when it is preferred', () => {
  // What Prometheus sends when it can read OpenMetrics.
  const prometheus =
    'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';
  assert.equal(prefersOpenMetrics(prometheus), true);
  assert.equal(prefersOpenMetrics('application/openmetrics-text; version=1.0.0; charset=utf-8'), true);
  assert.equal(prefersOpenMetrics(undefined), false);
  assert.equal(prefersOpenMetrics(''), false);
  assert.equal(prefersOpenMetrics('*/*'), false);
  assert.equal(prefersOpenMetrics('text/plain;version=0.0.4'), false);
  assert.equal(prefersOpenMetrics('text/plain, application/openmetrics-text;q=0.5'), false);
  assert.equal(prefersOpenMetrics('application/openmetrics-text;q=0'), false);
  assert.equal(prefersOpenMetrics('application/openmetrics-text;q=abc'), false);
});

const exemplar = { trace_id: 'ab'.repeat(16), span_id: 'cd'.repeat(8) };

function fixture() {
  const registry = new Registry();
  const requests = new Counter({
    name: 'x_requests_total',
    help: 'requests',
    labelNames: ['route'] as const,
    registers: [registry],
  });
  // A Prometheus-format registry refuses prom-client's exemplar histograms; this one registers itself.
  const latency = new TracedHistogram(registry, {
    name: 'x_latency_seconds',
    help: 'latency',
    labelNames: ['route', 'model'] as const,
    buckets: [0.01, 0.1, 1],
  });
  return { registry, requests, latency };
}

test('a traced histogram keeps the usual observe forms; exemplars only in OpenMetrics, only when given', async () => {
  const { registry, requests, latency } = fixture();
  requests.inc({ route: 'r' });
  latency.observe({ route: 'r', model: 'm' }, 0.005);
  latency.labels({ route: 'r', model: 'm' }).observe(0.05, exemplar);
  latency.labels('r', 'm').observe(0.5); // tracing is off: no exemplar from the (absent) active span
  latency.startTimer({ route: 'r', model: 'm' })();

  const prom = await registry.metrics();
  assert.match(prom, /^x_latency_seconds_count\{route="r",model="m"\} 4$/m);
  assert.match(prom, /^x_latency_seconds_bucket\{le="0\.1",route="r",model="m"\} [34]$/m);
  assert.ok(!prom.includes('#  {') && !prom.includes(' # {'), 'no exemplar in the Prometheus format');

  const om = await openMetricsText(registry);
  assert.ok(om.endsWith('\n# EOF\n'));
  const withExemplar = om.split('\n').filter((l) => l.includes(' # {'));
  assert.equal(withExemplar.length, 1, om);
  assert.match(
    withExemplar[0]!,
    new RegExp(
      `^x_latency_seconds_bucket\\{le="0\\.1",route="r",model="m"\\} \\d+ # \\{trace_id="${exemplar.trace_id}",span_id="${exemplar.span_id}"\\} 0\\.05 \\d+(\\.\\d+)?$`,
    ),
  );
  assert.match(om, /^# TYPE x_requests counter$/m);
  assert.match(om, /^x_requests_total\{route="r"\} 1$/m);

  // prom-client renames counters while writing OpenMetrics; the Prometheus output must not change.
  assert.equal((requests as unknown as { name: string }).name, 'x_requests_total');
  assert.equal(await registry.metrics(), prom);
});
