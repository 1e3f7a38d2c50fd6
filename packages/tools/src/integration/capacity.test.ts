// ferry bench on the example models (structure and consistency of the profile, never timings) and
// ferry cost on it (monotone in traffic, cache hits cut replicas, hostile input refused).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir, availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { estimateCost, type CostReport } from '../capacity/cost.js';
import { findKnee, type CapacityProfile, type Level } from '../capacity/profile.js';
import { loadPrices, parsePrices, priceTableWarnings, DEFAULT_PRICES_PATH } from '../capacity/prices.js';
import { percentile } from '../capacity/load-generator.js';
import { readProfile } from '../capacity/run-capacity.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../../../server/dist/cli/main.js', import.meta.url));
const MODELS = fileURLToPath(new URL('../../../../models', import.meta.url));

const level = (concurrency: number, rps: number, p99: number, sla?: number, failed = 0): Level => ({
  concurrency,
  requests: Math.round(rps * 10),
  rps,
  rpsPerCore: rps / 2,
  latencyMs: { p50: p99 / 3, p90: p99 / 2, p99, max: p99 * 1.5, mean: p99 / 3 },
  errors: failed,
  non2xx: 0,
  withinSla: failed === 0 && (sla === undefined || p99 <= sla),
});

test('the knee: best throughput within the SLA; none when concurrency 1 misses it; without SLA, 90% of peak throughput', () => {
  const sla = 50;
  const levels = [
    level(1, 100, 10, sla),
    level(2, 190, 20, sla),
    level(4, 300, 45, sla),
    level(8, 320, 90, sla),
    level(16, 310, 200, sla),
  ];
  assert.deepEqual(findKnee(levels, sla), { concurrency: 4, rps: 300, p99Ms: 45, basis: 'sla' });
  assert.equal(findKnee([level(1, 10, 80, sla)], sla), null);
  const noSla = [level(1, 100, 10), level(2, 190, 20), level(4, 300, 45), level(8, 320, 90)];
  assert.deepEqual(findKnee(noSla, undefined), { concurrency: 4, rps: 300, p99Ms: 45, basis: 'throughput' });
  assert.deepEqual(findKnee([level(1, 100, 10, undefined, 3)], undefined), null, 'a level with failures is no knee');
  assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50), 5);
  assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99), 10);
});

function syntheticProfile(capacityRpsPerCore: number): CapacityProfile {
  const levels = [level(1, 400, 2, 50), level(4, 2 * capacityRpsPerCore, 20, 50)];
  return {
    kind: 'ferry-capacity-profile',
    schemaVersion: 1,
    model: 'm',
    version: '1.0.0',
    createdAt: new Date(0).toISOString(),
    machine: { cores: 2, cpuModel: 'x', totalMemoryBytes: 1e9, node: 'v20' },
    server: { workers: 0, external: false, residentMemoryBytes: 2e8 },
    sla: { p99Ms: 50 },
    durationSec: 10,
    artifactBytes: 5_000_000,
    instancesPerRequest: 1,
    levels,
    knee: findKnee(levels, 50),
    capacityRpsPerCore,
    maxRpsPerCore: capacityRpsPerCore * 1.2,
    warnings: [],
  };
}

const byLabel = (r: CostReport, re: RegExp) => r.estimates.find((e) => re.test(e.label))!;

test('ferry cost: monotone in requests/day for every pattern, cache hits cut replicas at peak, batch is the cheapest server pattern at scale', () => {
  const prices = loadPrices();
  const profile = syntheticProfile(100);
  let prev: CostReport | undefined;
  for (const rpd of [1e3, 1e4, 1e5, 1e6, 5e6, 2e7, 1e8]) {
    const r = estimateCost({ profile, prices, requestsPerDay: rpd, cacheHitRate: 0 });
    assert.equal(r.estimates.length, 6);
    for (const e of r.estimates) {
      assert.ok(e.monthly.low >= 0 && e.monthly.high >= e.monthly.low, `${e.label}: low ≤ high`);
      if (prev) {
        const before = prev.estimates.find((p) => p.label === e.label)!;
        assert.ok(
          e.monthly.low >= before.monthly.low && e.monthly.high >= before.monthly.high,
          `${e.label} grows with traffic (${rpd}/day)`,
        );
        if (e.replicasAtPeak !== null && before.replicasAtPeak !== null)
          assert.ok(e.replicasAtPeak >= before.replicasAtPeak);
      }
    }
    prev = r;
  }
  // 20M requests/day at 100 req/s/core: enough that replicas exceed the minimum of 2.
  const big = estimateCost({ profile, prices, requestsPerDay: 2e7, cacheHitRate: 0.4 });
  const noCache = byLabel(big, /VMs, no cache/);
  const cached = byLabel(big, /VMs, cache 40%/);
  assert.ok(
    cached.replicasAtPeak! < noCache.replicasAtPeak!,
    `cache 40%: ${cached.replicasAtPeak} < ${noCache.replicasAtPeak} replicas`,
  );
  assert.ok(cached.monthly.high < noCache.monthly.high);
  // Peak replicas follow the formula: ceil(peak load / (capacity per core × vCPUs × utilisation)).
  const inst = prices.instances.find((i) => i.name === noCache.on)!;
  const peakRps = (2e7 / 86_400) * prices.assumptions.peakFactor;
  assert.equal(
    noCache.replicasAtPeak,
    Math.max(
      prices.assumptions.minReplicas,
      Math.ceil(peakRps / (100 * inst.vcpus * prices.assumptions.targetUtilization)),
    ),
  );
  assert.equal(big.peakRps, Math.round(peakRps * 100) / 100);
  const batch = byLabel(big, /batch/);
  assert.ok(
    batch.monthly.high < noCache.monthly.low,
    'nightly batch costs less than real-time for the same predictions',
  );
  // Higher cache hit rates never cost more.
  const rates = [0.1, 0.3, 0.5, 0.7, 0.9].map(
    (h) => byLabel(estimateCost({ profile, prices, requestsPerDay: 2e7, cacheHitRate: h }), /VMs, cache/).monthly.high,
  );
  for (let i = 1; i < rates.length; i++) assert.ok(rates[i]! <= rates[i - 1]!);
  // --pattern keeps only that pattern.
  assert.deepEqual(
    estimateCost({ profile, prices, requestsPerDay: 1e5, cacheHitRate: 0, pattern: 'batch' }).estimates.map(
      (e) => e.pattern,
    ),
    ['batch'],
  );
});

test('ferry cost refuses hostile input naming the bad field', () => {
  const prices = loadPrices();
  const profile = syntheticProfile(100);
  for (const rpd of [0, -5, Number.NaN, Number.POSITIVE_INFINITY])
    assert.throws(() => estimateCost({ profile, prices, requestsPerDay: rpd, cacheHitRate: 0 }), /--requests-per-day/);
  for (const h of [-0.1, 1, 7, Number.NaN])
    assert.throws(() => estimateCost({ profile, prices, requestsPerDay: 1e5, cacheHitRate: h }), /--cache-hit-rate/);
  const text = readFileSync(DEFAULT_PRICES_PATH, 'utf8');
  const doc = parse(text) as { instances: Array<{ hourly: unknown }>; takenOn: string };
  assert.match(doc.takenOn, /^\d{4}-\d{2}-\d{2}$/, 'the price table says when the prices were taken');
  doc.instances[1]!.hourly = 'cheap';
  assert.throws(() => parsePrices(JSON.stringify(doc), 'p.yaml'), /p\.yaml: \/instances\/1\/hourly/);
  assert.throws(() => parsePrices('instances: [', 'p.yaml'), /invalid YAML/);
  // A profile missing the SLA capacity: real-time on VMs is not offered, with a warning instead of Infinity replicas.
  const missed = { ...profile, knee: null, capacityRpsPerCore: 0 };
  const r = estimateCost({ profile: missed, prices, requestsPerDay: 1e5, cacheHitRate: 0 });
  assert.ok(!r.estimates.some((e) => /VMs/.test(e.label)));
  assert.ok(r.warnings.some((w) => /misses its SLA/.test(w)));
  for (const e of r.estimates) assert.ok(Number.isFinite(e.monthly.high));
});

test('ferry cost says when the price table is unverified or more than a year old, in the human and the JSON output', async () => {
  const shipped = loadPrices();
  // The shipped table was typed from memory: it must say so, and every estimate made with it must warn.
  assert.equal(shipped.verified, false, 'the shipped prices are marked unverified');
  assert.match(shipped.source, /unverified/);
  const profile = syntheticProfile(100);
  const verified = { ...shipped, verified: true, source: 'https://example.test/pricing', takenOn: '2026-01-10' };
  const fresh = estimateCost({
    profile,
    prices: verified,
    requestsPerDay: 1e5,
    cacheHitRate: 0,
    now: new Date('2026-06-01T00:00:00Z'),
  });
  assert.deepEqual(fresh.priceWarnings, []);
  assert.equal(fresh.pricesVerified, true);
  assert.equal(fresh.pricesAgeDays, 142);
  const stale = estimateCost({
    profile,
    prices: verified,
    requestsPerDay: 1e5,
    cacheHitRate: 0,
    now: new Date('2027-01-11T00:00:00Z'),
  });
  assert.equal(stale.priceWarnings.length, 1);
  assert.match(stale.priceWarnings[0]!, /taken on 2026-01-10, 366 days ago \(more than a year\)/);
  assert.ok(stale.warnings.includes(stale.priceWarnings[0]!));
  assert.deepEqual(
    priceTableWarnings(verified, new Date('2027-01-10T00:00:00Z')),
    [],
    'exactly a year old is not yet stale',
  );
  const unverified = priceTableWarnings({ ...verified, verified: false }, new Date('2026-02-01T00:00:00Z'));
  assert.equal(unverified.length, 1);
  assert.match(unverified[0]!, /unverified example prices/);
  const absent: Record<string, unknown> = { ...verified };
  delete absent.verified;
  assert.equal(
    priceTableWarnings(absent as typeof verified, new Date('2026-02-01T00:00:00Z')).length,
    1,
    'a table without `verified` counts as unverified',
  );

  // The real command on the shipped table, human and JSON.
  const dir = mkdtempSync(join(tmpdir(), 'ferry-cost-'));
  try {
    const file = join(dir, 'profile.json');
    writeFileSync(file, JSON.stringify(profile));
    const human = (await run(process.execPath, [CLI, 'cost', '--profile', file, '--requests-per-day', '100000']))
      .stdout;
    assert.match(human, new RegExp(`prices of ${shipped.takenOn} \\(UNVERIFIED example prices\\)`));
    assert.match(human, /^warning: prices of 2025-06-01 are unverified example prices/m);
    const ageDays = Math.floor((Date.now() - Date.parse(`${shipped.takenOn}T00:00:00Z`)) / 86_400_000);
    if (ageDays > 365)
      assert.match(human, /^warning: prices were taken on 2025-06-01, \d+ days ago \(more than a year\)/m);
    const json = JSON.parse(
      (await run(process.execPath, [CLI, 'cost', '--profile', file, '--requests-per-day', '100000', '--json'])).stdout,
    ) as CostReport;
    assert.equal(json.pricesTakenOn, shipped.takenOn);
    assert.equal(json.pricesVerified, false);
    assert.equal(json.pricesAgeDays, ageDays);
    assert.equal(json.priceWarnings.length, ageDays > 365 ? 2 : 1);
    // A checked, recent table of the user's: no price warning.
    const mine = join(dir, 'prices.yaml');
    writeFileSync(mine, JSON.stringify({ ...verified, takenOn: new Date().toISOString().slice(0, 10) }));
    const ok = JSON.parse(
      (
        await run(process.execPath, [
          CLI,
          'cost',
          '--profile',
          file,
          '--requests-per-day',
          '100000',
          '--prices',
          mine,
          '--json',
        ])
      ).stdout,
    ) as CostReport;
    assert.equal(ok.pricesVerified, true);
    assert.deepEqual(ok.priceWarnings, []);
    assert.doesNotMatch(
      (await run(process.execPath, [CLI, 'cost', '--profile', file, '--requests-per-day', '100000', '--prices', mine]))
        .stdout,
      /UNVERIFIED|warning: prices/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test(
  'ferry bench and ferry cost on the example models: profile structure and consistency, cost JSON; bad flags refused',
  { timeout: 240_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-'));
    try {
      for (const model of ['flight-delay', 'spam', 'mlp-bench']) {
        const out = join(dir, `${model}.json`);
        await run(
          process.execPath,
          [
            CLI,
            'bench',
            model,
            '--models',
            MODELS,
            '--concurrency',
            '1,4',
            '--duration',
            '1',
            '--warmup',
            '0.5',
            '--workers',
            '1',
            '-o',
            out,
          ],
          { cwd: dir, timeout: 120_000 },
        );
        const p = readProfile(out);
        const manifest = parse(readFileSync(join(MODELS, model, p.version, 'ferry.yaml'), 'utf8')) as {
          sla?: { p99Ms?: number };
        };
        assert.equal(p.model, model);
        assert.equal(p.machine.cores, availableParallelism());
        assert.equal(p.artifactBytes, statSync(join(MODELS, model, p.version, 'model.onnx')).size);
        assert.deepEqual(p.sla, manifest.sla?.p99Ms !== undefined ? { p99Ms: manifest.sla.p99Ms } : null);
        assert.deepEqual(
          p.levels.map((l) => l.concurrency),
          [1, 4],
        );
        for (const l of p.levels) {
          assert.ok(l.rps > 0 && l.requests > 0, `${model} c=${l.concurrency} served requests`);
          assert.equal(l.errors + l.non2xx, 0, `${model}: no failed request`);
          assert.ok(Math.abs(l.rpsPerCore * p.machine.cores - l.rps) < 1e-6);
          assert.ok(
            l.latencyMs.p50 > 0 &&
              l.latencyMs.p50 <= l.latencyMs.p90 &&
              l.latencyMs.p90 <= l.latencyMs.p99 &&
              l.latencyMs.p99 <= l.latencyMs.max,
          );
          assert.equal(l.withinSla, p.sla === null || l.latencyMs.p99 <= p.sla.p99Ms);
        }
        assert.deepEqual(p.knee, findKnee(p.levels, p.sla?.p99Ms), 'the knee is the one the levels imply');
        assert.ok(Math.abs(p.capacityRpsPerCore - (p.knee?.rps ?? 0) / p.machine.cores) < 1e-9);
        assert.ok(p.maxRpsPerCore >= p.capacityRpsPerCore);
        assert.ok(p.server.residentMemoryBytes === null || p.server.residentMemoryBytes > 10e6);

        const cost = JSON.parse(
          (
            await run(process.execPath, [
              CLI,
              'cost',
              '--profile',
              out,
              '--requests-per-day',
              '100000',
              '--cache-hit-rate',
              '0.4',
              '--json',
            ])
          ).stdout,
        ) as CostReport;
        assert.equal(cost.model, model);
        assert.ok(cost.estimates.length >= 4);
        for (const e of cost.estimates) assert.ok(Number.isFinite(e.monthly.low) && e.monthly.high >= e.monthly.low);
        const text = (await run(process.execPath, [CLI, 'cost', '--profile', out, '--requests-per-day', '1_000_000']))
          .stdout;
        assert.match(text, /nightly batch pipeline/);
        assert.match(text, /prices of \d{4}-\d{2}-\d{2}/);
      }
      const fail = (args: string[]) =>
        run(process.execPath, [CLI, ...args], { cwd: dir }).then(
          () => assert.fail(`ferry ${args.join(' ')} should fail`),
          (e: { code: number; stderr: string }) => {
            assert.equal(e.code, 1);
            return e.stderr;
          },
        );
      assert.match(await fail(['bench', 'no-such-model', '--models', MODELS, '--duration', '1']), /no-such-model/);
      assert.match(await fail(['bench', 'spam', '--models', MODELS, '--concurrency', '0,-1']), /concurrency/);
      assert.match(await fail(['bench', 'spam', '--models', MODELS, '--duration', 'soon']), /--duration/);
      assert.match(await fail(['bench', 'spam', '--models', MODELS, '--warmup', '-1']), /--warmup/);
      const profile = join(dir, 'spam.json');
      assert.match(await fail(['cost', '--profile', profile, '--requests-per-day', '-3']), /--requests-per-day/);
      assert.match(
        await fail(['cost', '--profile', profile, '--requests-per-day', '100', '--cache-hit-rate', '1.5']),
        /--cache-hit-rate/,
      );
      assert.match(
        await fail(['cost', '--profile', profile, '--requests-per-day', '100', '--cache-hit-rate', 'lots']),
        /--cache-hit-rate/,
      );
      assert.match(await fail(['cost', '--requests-per-day', '100']), /--profile is required/);
      assert.match(
        await fail(['cost', '--profile', join(dir, 'missing.json'), '--requests-per-day', '100']),
        /missing\.json/,
      );
      assert.match(
        await fail(['cost', '--profile', profile, '--requests-per-day', '100', '--pattern', 'carrier-pigeon']),
        /pattern/,
      );
      writeFileSync(join(dir, 'junk.json'), '{"kind": "something-else"}');
      assert.match(
        await fail(['cost', '--profile', join(dir, 'junk.json'), '--requests-per-day', '100']),
        /not a ferry bench profile/,
      );
      writeFileSync(
        join(dir, 'bad-prices.yaml'),
        readFileSync(DEFAULT_PRICES_PATH, 'utf8').replace(/^takenOn: .*$/m, 'takenOn: yesterday'),
      );
      assert.match(
        await fail([
          'cost',
          '--profile',
          profile,
          '--requests-per-day',
          '100',
          '--prices',
          join(dir, 'bad-prices.yaml'),
        ]),
        /bad-prices\.yaml: \/takenOn/,
      );
      await run(process.execPath, [CLI, 'cost', '--write-prices', join(dir, 'mine.yaml')]);
      assert.equal(readFileSync(join(dir, 'mine.yaml'), 'utf8'), readFileSync(DEFAULT_PRICES_PATH, 'utf8'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
