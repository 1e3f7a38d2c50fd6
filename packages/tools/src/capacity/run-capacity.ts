// What `ferry bench` and `ferry cost` run; their options are declared in the server's cli/commands/.
import { readFileSync, writeFileSync } from 'node:fs';
import { Value } from '@sinclair/typebox/value';
import type { BenchCommandOptions, CliIo, CostCommandOptions } from '@ferry/server/cli';
import { runBench } from './bench.js';
import { estimateCost, formatCostReport } from './cost.js';
import { ProfileSchema, type CapacityProfile, type Level } from './profile.js';
import { loadPrices } from './prices.js';

export class ProfileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProfileError';
  }
}

export function readProfile(path: string): CapacityProfile {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ProfileError(`--profile ${path}: ${(e as Error).message}`);
  }
  const errors = [...Value.Errors(ProfileSchema, data)];
  if (errors.length)
    throw new ProfileError(
      `--profile ${path} is not a ferry bench profile: ${errors
        .slice(0, 3)
        .map((e) => `${e.path || '/'}: ${e.message}`)
        .join('; ')}`,
    );
  return data as CapacityProfile;
}

function formatLevel(l: Level): string {
  const f = (n: number) => n.toFixed(1).padStart(8);
  return `${String(l.concurrency).padStart(11)}  ${f(l.rps)}  ${f(l.rpsPerCore)}  ${f(l.latencyMs.p50)}  ${f(l.latencyMs.p99)}  ${String(l.errors + l.non2xx).padStart(6)}  ${l.withinSla ? 'yes' : 'no'}`;
}

/** `ferry bench MODEL`: runs the load test, writes the profile, prints a table (or the profile with --json). */
export async function benchCommand(o: BenchCommandOptions, io: CliIo): Promise<void> {
  if (!o.json) io.stdout(`concurrency     req/s  req/s/core   p50 ms   p99 ms  failed  within SLA\n`);
  const profile = await runBench({
    model: o.model,
    modelsDir: o.modelsDir,
    concurrency: o.concurrency,
    durationSec: o.durationSec,
    warmupSec: o.warmupSec,
    ...(o.url && { url: o.url }),
    ...(o.workers !== undefined && { workers: o.workers }),
    ...(o.configFile && { configFile: o.configFile }),
    ...(!o.json && { onLevel: (l: Level) => io.stdout(`${formatLevel(l)}\n`) }),
  });
  const out = o.out ?? `${profile.model}-profile.json`;
  writeFileSync(out, `${JSON.stringify(profile, null, 2)}\n`);
  if (o.json) {
    io.stdout(`${JSON.stringify(profile, null, 2)}\n`);
    return;
  }
  const k = profile.knee;
  io.stdout(
    k
      ? `knee: concurrency ${k.concurrency}, ${k.rps.toFixed(1)} req/s (${profile.capacityRpsPerCore.toFixed(1)} per core), p99 ${k.p99Ms.toFixed(1)} ms${profile.sla ? ` within the ${profile.sla.p99Ms} ms SLA` : ' (no SLA: where throughput stops growing)'}\n`
      : 'knee: none — the SLA is missed at every concurrency\n',
  );
  for (const w of profile.warnings) io.stdout(`warning: ${w}\n`);
  io.stdout(`profile written to ${out}\n`);
}

/** `ferry cost`: replicas and monthly cost per serving pattern, as a table (or JSON). */
export function costCommand(o: CostCommandOptions, io: CliIo): void {
  const report = estimateCost({
    profile: readProfile(o.profile),
    prices: loadPrices(o.prices),
    requestsPerDay: o.requestsPerDay,
    cacheHitRate: o.cacheHitRate,
    ...(o.pattern && { pattern: o.pattern }),
  });
  io.stdout(o.json ? `${JSON.stringify(report, null, 2)}\n` : formatCostReport(report));
}
