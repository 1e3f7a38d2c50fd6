import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Histogram, Registry } from 'prom-client';
import { HistogramTallies } from './histogram-tally.js';
import { openMetricsText } from './openmetrics.js';
import { TracedHistogram } from './traced-histogram.js';

const BUCKETS = [0.001, 0.01, 0.1, 1];
// On a bound, between bounds, under the first, above the last, zero, and a negative value.
const VALUES = [0.001, 0.0005, 0.01, 0.05, 0.1, 0.99, 1, 1.5, 250, 0, -3, 0.2, 0.2];

function pair(name: string, tallies: HistogramTallies) {
  const plain = new Registry();
  const tallied = new Registry();
  const p = new Histogram({ name, help: 'h', labelNames: ['model'] as const, buckets: BUCKETS, registers: [plain] });
  const t = new Histogram({
    name,
    help: 'h',
    labelNames: ['model'] as const,
    buckets: BUCKETS,
    registers: [tallied],
    collect: tallies.flush,
  });
  return { plain, tallied, p, t };
}

test('a tallied histogram reads exactly as prom-client fed the same values, text and JSON', async () => {
  const tallies = new HistogramTallies();
  const { plain, tallied, p, t } = pair('lat_seconds', tallies);
  const a = tallies.of(t, { model: 'a' });
  const b = tallies.of(t, { model: 'b' });
  for (const v of VALUES) {
    p.observe({ model: 'a' }, v);
    a.observe(v);
  }
  p.observe({ model: 'b' }, 0.05);
  b.observe(0.05);
  assert.equal(await tallied.metrics(), await plain.metrics());
  assert.deepEqual(await tallied.getMetricsAsJSON(), await plain.getMetricsAsJSON());
  // Read again with nothing new: the same, not doubled; then more observations on both.
  assert.equal(await tallied.metrics(), await plain.metrics());
  p.observe({ model: 'a' }, 0.003);
  a.observe(0.003);
  assert.equal(await tallied.metrics(), await plain.metrics());
  assert.match(await tallied.metrics(), /lat_seconds_count\{model="a"\} 14/);
});

test('after a reset the tally makes its entry again and counts from zero', async () => {
  const tallies = new HistogramTallies();
  const { tallied, t } = pair('r_seconds', tallies);
  const a = tallies.of(t, { model: 'a' });
  a.observe(0.5);
  await tallied.metrics();
  t.reset();
  a.observe(0.05);
  a.observe(2);
  const text = await tallied.metrics();
  assert.match(text, /r_seconds_count\{model="a"\} 2/);
  assert.match(text, /r_seconds_bucket\{le="0.1",model="a"\} 1/);
  assert.match(text, /r_seconds_sum\{model="a"\} 2.05/);
});

test('past the bound, observations go to the histogram directly', async () => {
  const tallies = new HistogramTallies(1);
  const { tallied, t } = pair('b_seconds', tallies);
  const kept = tallies.of(t, { model: 'a' });
  const direct = tallies.of(t, { model: 'b' });
  kept.observe(0.5);
  direct.observe(0.5);
  direct.observe(5);
  const text = await tallied.metrics();
  assert.match(text, /b_seconds_count\{model="a"\} 1/);
  assert.match(text, /b_seconds_count\{model="b"\} 2/);
});

test('a value that is not a finite number is refused, as prom-client refuses it', () => {
  const tallies = new HistogramTallies();
  const { t } = pair('n_seconds', tallies);
  const a = tallies.of(t, { model: 'a' });
  assert.throws(() => a.observe(Number.NaN), TypeError);
  assert.throws(() => a.observe(Infinity), TypeError);
});

test('an observation with an exemplar keeps it in the OpenMetrics exposition, beside the tallied counts', async () => {
  const registry = new Registry();
  const tallies = new HistogramTallies();
  const h = new TracedHistogram(registry, {
    name: 'ex_seconds',
    help: 'h',
    labelNames: ['model'] as const,
    buckets: BUCKETS,
    collect: tallies.flush,
  });
  const a = tallies.of(h, { model: 'a' });
  a.observe(0.05);
  a.observe(0.07, { trace_id: 'abc123', span_id: 'def456' });
  a.observe(0.5);
  const text = await openMetricsText(registry);
  assert.match(text, /ex_seconds_bucket\{le="0.1",model="a"\} 2 # \{trace_id="abc123",span_id="def456"\} 0.07/);
  assert.match(text, /ex_seconds_count\{model="a"\} 3/);
});
