import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Metrics } from '../metrics/metrics.js';
import { ObservationCollector } from './observations.js';

test('p99, error rate and fallback rate per version, over the interval since the last look', async () => {
  const m = new Metrics();
  const c = new ObservationCollector(m);
  const labels = { route: 'v1_predict', model: 'a', version: '1.0.0' };
  // 100 requests: 98 fast (≤ 5 ms), 2 slow (≤ 250 ms), 5 answered 500, 3 by a fallback.
  for (let i = 0; i < 100; i++) {
    m.requestDuration.observe(labels, i < 98 ? 0.004 : 0.2);
    m.requests.inc({ ...labels, status: i < 5 ? '500' : '200' });
  }
  m.fallbacks.inc({ model: 'a', version: '1.0.0', reason: 'timeout', policy: 'static' }, 3);
  m.requests.inc({ route: 'v1_predict', model: 'b', version: '2.0.0', status: '200' });
  m.requestDuration.observe({ route: 'v1_predict', model: 'b', version: '2.0.0' }, 0.0004);
  const first = await c.collect();
  const a = first.find((o) => o.model === 'a')!;
  assert.equal(a.requests, 100);
  assert.equal(a.p99Ms, 250, '99% of requests fall in buckets up to 0.25 s');
  assert.equal(a.errorRate, 0.05);
  assert.equal(a.fallbackRate, 0.03);
  assert.equal(first.find((o) => o.model === 'b')!.p99Ms, 0.5);

  // The next look sees only what happened since: 10 fast requests, no errors.
  for (let i = 0; i < 10; i++) {
    m.requestDuration.observe(labels, 0.001);
    m.requests.inc({ ...labels, status: '200' });
  }
  const second = (await c.collect()).find((o) => o.model === 'a')!;
  assert.equal(second.requests, 10);
  assert.equal(second.p99Ms, 1);
  assert.equal(second.errorRate, 0);
  assert.equal((await c.collect()).find((o) => o.model === 'a')!.requests, 0, 'nothing new: no rates');
});
