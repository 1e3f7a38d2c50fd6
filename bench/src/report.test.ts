// Issue 20's bars as the suite reports them: a ratio whose rows a load generator paced is undecided.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeBars, formatBars } from './report.js';
import type { LoadRow, Series, TargetId } from './suite.js';

function row(model: string, target: TargetId, series: Series, rps: number, clientCpu: number): LoadRow {
  return {
    model,
    target,
    series,
    served: model,
    bodies: 'distinct',
    connections: 64,
    durationS: 5,
    rps,
    ok: rps * 5,
    non2xx: 0,
    errors: 0,
    timeouts: 0,
    statusCodes: { '200': rps * 5 },
    clientCpu,
    serverCpu: 0.9,
    otherCpu: 0,
    p50Ms: 5,
    p90Ms: 8,
    p99Ms: 10,
    maxMs: 20,
    meanMs: 5,
    count: rps * 5,
  };
}

test('a missed req/s bar is undecided when a load generator set the pace of one of its rows', () => {
  const load = [
    // tiny-lr: both servers at the client's limit; Ferry a little behind.
    row('tiny-lr', 'ferry', 'defaults', 10_399, 0.95),
    row('tiny-lr', 'minimal', 'main', 10_791, 1.0),
    // mlp-bench: the servers set the pace; Ferry behind the bar.
    row('mlp-bench', 'ferry', 'defaults', 7_130, 0.64),
    row('mlp-bench', 'minimal', 'main', 4_628, 0.49),
  ];
  const bars = computeBars({ raw: [], load, healthz: [] });
  const tiny = bars.find((b) => b.name.startsWith('tiny-lr @64 conns: Ferry defaults req/s vs minimal'))!;
  const mlp = bars.find((b) => b.name.startsWith('mlp-bench @64 conns: Ferry defaults req/s vs minimal'))!;
  assert.equal(tiny.met, false);
  assert.equal(tiny.clientBound, true);
  assert.equal(mlp.met, false);
  assert.equal(mlp.clientBound, undefined);
  assert.ok(Math.abs(mlp.measured! - 7_130 / 4_628) < 1e-12);

  const text = formatBars(bars);
  const line = (name: string) => text.split('\n').find((l) => l.startsWith(name))!;
  assert.match(
    line('tiny-lr @64 conns: Ferry defaults req/s vs minimal'),
    /undecided \(a load generator set the pace\)$/,
  );
  assert.match(line('mlp-bench @64 conns: Ferry defaults req/s vs minimal'), /NO$/);
});
