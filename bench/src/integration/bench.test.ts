// Runs the real suite in its smallest form (flight-delay only, about a second per row) and checks
// that it writes a well-formed report with positive measurements, Ferry's batching-off row batches
// nothing and its repeated-bodies row hits the cache. Absolute numbers are not judged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCH_DIST } from '../paths.js';
import type { BenchReport } from '../suite.js';

test('a tiny quick run writes a well-formed report', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-test-'));
  try {
    const out = join(dir, 'report.json');
    // No warm-up: autocannon ends runs on whole seconds, so a warm-up would add a second per row.
    const args = [
      '--quick',
      '--only',
      'flight-delay',
      '--duration',
      '0.8',
      '--warmup',
      '0',
      '--raw-seconds',
      '0.3',
      '--connections',
      '1,8',
      '--out',
      out,
    ];
    // The main suite only: generation, transformer, LLM and scaling have their own standalone scripts
    // and take minutes together, which is not what this test checks.
    const r = spawnSync(process.execPath, [join(BENCH_DIST, 'run.js'), ...args], {
      encoding: 'utf8',
      timeout: 110_000,
      env: {
        ...process.env,
        FERRY_BENCH_GENERATION: '0',
        FERRY_BENCH_TRANSFORMER: '0',
        FERRY_BENCH_LLM: '0',
        FERRY_BENCH_SCALING: '0',
      },
    });
    assert.equal(r.status, 0, `bench exited with ${r.status}\n${r.stderr}`);
    assert.match(r.stdout, /Bars \(from the issue/);

    const report = JSON.parse(readFileSync(out, 'utf8')) as BenchReport;
    assert.equal(report.schema, 'ferry-bench/1');
    assert.equal(typeof report.pinning.enabled, 'boolean');
    assert.deepEqual(
      report.models.map((m) => m.name),
      ['flight-delay'],
    );

    assert.deepEqual(
      report.raw.map((x) => x.batch),
      [1, report.models[0]!.maxBatch],
    );
    for (const x of report.raw) {
      assert.ok(x.calls > 0 && x.callsPerS > 0 && x.rowsPerS >= x.callsPerS, `raw ${JSON.stringify(x)}`);
    }

    // Per connection count: the three targets, Ferry with its defaults, the same unlogged, Ferry with
    // batching off, and the constant route and Ferry's cache on the same repeated bodies.
    assert.equal(report.load.length, 8 * 2, 'eight rows at two connection counts');
    for (const row of report.load) {
      const what = `${row.series} ${row.target} c${row.connections}`;
      assert.ok(row.ok > 0 && row.rps > 0, `${what}: no successful requests`);
      assert.equal(row.non2xx, 0, `${what}: non-2xx answers ${JSON.stringify(row.statusCodes)}`);
      assert.ok(row.p50Ms > 0 && row.p99Ms >= row.p50Ms, `${what}: latencies ${row.p50Ms} ${row.p99Ms}`);
    }
    const ferryRows = (series: string) => report.load.filter((x) => x.target === 'ferry' && x.series === series);
    for (const row of ferryRows('batching-off')) {
      assert.equal(row.served, 'flight-delay-nobatch');
      assert.equal(row.ferry?.meanBatchRows, 1, 'batching off: one row per inference');
    }
    for (const row of ferryRows('defaults')) assert.equal(row.served, 'flight-delay-defaults');
    for (const row of ferryRows('log-off')) assert.equal(row.served, 'flight-delay-nolog');
    const logRatio = report.ratios.find(
      (x) => x.name === 'flight-delay @8 conns: Ferry defaults, prediction log on / off req/s',
    );
    assert.ok(logRatio && logRatio.value !== null && logRatio.value > 0, 'the log on / off ratio computed');
    for (const row of ferryRows('repeated')) {
      assert.equal(row.bodies, '100 cycled');
      // Each of the 100 bodies misses once (plus at most one concurrent first per connection);
      // every later request for it is a hit. Load-independent: a slow machine sends fewer requests,
      // not a different split.
      const f = row.ferry!;
      assert.ok(f.cacheMisses <= 100 + row.connections, `repeated bodies miss at most once each: ${JSON.stringify(f)}`);
      if (f.cacheHits + f.cacheMisses > 100 + row.connections)
        assert.ok(f.cacheHits > 0, `repeated bodies hit the cache: ${JSON.stringify(f)}`);
    }
    for (const row of ferryRows('main')) assert.equal(row.ferry?.cacheHits, 0, 'distinct bodies never hit the cache');
    assert.deepEqual(report.healthz, [], 'healthz under load needs mlp-bench');

    const ratio = report.ratios.find((x) => x.name === 'flight-delay @8 conns: Ferry / minimal req/s');
    assert.ok(ratio && ratio.value !== null && ratio.value > 0, 'Ferry / minimal ratio computed');
    // Issue 20's bars are on mlp-bench and tiny-lr: "not measured" in a run of flight-delay alone.
    assert.ok(report.bars.length > 0);
    for (const b of report.bars) assert.equal(b.met, null, `${b.name}: not measured in this run`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
