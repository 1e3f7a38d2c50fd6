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
    engine: 'autocannon',
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

test('a bar carries its ratio in each round; when their median and the median rounds disagree, it is undecided', () => {
  const withRounds = (r: LoadRow, rps: number[], p50: number[], p50Ms: number): LoadRow => ({
    ...r,
    rpsRounds: rps,
    p50Rounds: p50,
    p50Ms,
  });
  const at1 = (r: LoadRow): LoadRow => ({ ...r, connections: 1 });
  const load = [
    // @64: the same verdict in every round (missed), so the bar says NO with its three ratios.
    withRounds(row('mlp-bench', 'ferry', 'defaults', 7_100, 0.6), [7_000, 7_200, 7_100], [5, 5, 5], 5),
    withRounds(row('mlp-bench', 'minimal', 'main', 4_650, 0.5), [4_600, 4_700, 4_650], [5, 5, 5], 5),
    // @1: the median rounds give 0.40 ÷ 0.31 = 1.29× (missed); the rounds' own ratios are 1.07×,
    // 1.59×, 1.19×, whose median meets the bar.
    at1(withRounds(row('mlp-bench', 'ferry', 'defaults', 2_500, 0.3), [2_400, 2_500, 2_600], [0.31, 0.54, 0.37], 0.4)),
    at1(withRounds(row('mlp-bench', 'minimal', 'main', 3_000, 0.3), [2_900, 3_000, 3_100], [0.29, 0.34, 0.31], 0.31)),
  ];
  const bars = computeBars({ raw: [], load, healthz: [] });
  const rps = bars.find((b) => b.name.startsWith('mlp-bench @64 conns: Ferry defaults req/s vs minimal'))!;
  const p50 = bars.find((b) => b.name.startsWith('mlp-bench @1 conn: Ferry defaults p50 vs minimal p50'))!;
  assert.deepEqual(
    rps.rounds!.map((v) => v.toFixed(3)),
    [7_000 / 4_600, 7_200 / 4_700, 7_100 / 4_650].map((v) => v.toFixed(3)),
  );
  assert.equal(rps.met, false);
  assert.equal(rps.split, undefined);
  assert.ok(Math.abs(p50.measured! - 0.4 / 0.31) < 1e-12);
  assert.equal(p50.met, false);
  assert.equal(p50.split, true);

  const text = formatBars(bars);
  const line = (name: string) => text.split('\n').find((l) => l.startsWith(name))!;
  assert.match(line('mlp-bench @64 conns: Ferry defaults req/s vs minimal'), /1\.52 1\.53 1\.53 .*NO$/);
  assert.match(line('mlp-bench @1 conn: Ferry defaults p50'), /1\.07 1\.59 1\.19 .*undecided \(the rounds disagree\)$/);
});
