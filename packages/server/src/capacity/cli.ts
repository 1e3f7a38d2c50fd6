// `ferry bench` and `ferry cost`, registered on the CLI program.
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { Value } from '@sinclair/typebox/value';
import { loadConfig } from '../config/index.js';
import { runBench } from './bench.js';
import { estimateCost, formatCostReport, PATTERNS, type Pattern } from './cost.js';
import { ProfileSchema, type CapacityProfile, type Level } from './profile.js';
import { DEFAULT_PRICES_PATH, loadPrices } from './prices.js';

function positiveNumber(name: string) {
  return (raw: string): number => {
    const n = Number(raw.replace(/_/g, ''));
    if (raw.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a number greater than 0`);
    return n;
  };
}

function nonNegativeNumber(name: string) {
  return (raw: string): number => {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a number ≥ 0`);
    return n;
  };
}

function concurrencyList(raw: string): number[] {
  const parts = raw.split(',').map((s) => s.trim()).filter(Boolean);
  const out = parts.map(Number);
  if (parts.length === 0 || out.some((n) => !Number.isInteger(n) || n < 1 || n > 4096)) throw new InvalidArgumentError('give positive integers up to 4096, comma-separated, e.g. 1,2,4,8');
  return out;
}

export class ProfileError extends Error {
  constructor(message: string) { super(message); this.name = 'ProfileError'; }
}

export function readProfile(path: string): CapacityProfile {
  let data: unknown;
  try { data = JSON.parse(readFileSync(path, 'utf8')); } catch (e) { throw new ProfileError(`--profile ${path}: ${(e as Error).message}`); }
  const errors = [...Value.Errors(ProfileSchema, data)];
  if (errors.length) throw new ProfileError(`--profile ${path} is not a ferry bench profile: ${errors.slice(0, 3).map((e) => `${e.path || '/'}: ${e.message}`).join('; ')}`);
  return data as CapacityProfile;
}

function formatLevel(l: Level): string {
  const f = (n: number) => n.toFixed(1).padStart(8);
  return `${String(l.concurrency).padStart(11)}  ${f(l.rps)}  ${f(l.rpsPerCore)}  ${f(l.latencyMs.p50)}  ${f(l.latencyMs.p99)}  ${String(l.errors + l.non2xx).padStart(6)}  ${l.withinSla ? 'yes' : 'no'}`;
}

export function registerCapacityCommands(program: Command): void {
  program.command('bench <model>')
    .description('load-test one model on this machine: req/s per core, p50/p99 per concurrency, the knee vs its SLA; writes a JSON profile')
    .option('-m, --models <dir>', 'model repository folder')
    .option('-c, --config <file>', 'ferry.config.yaml for the server under test')
    .option('--concurrency <list>', 'concurrent connections to try, comma-separated', concurrencyList, [1, 2, 4, 8, 16, 32])
    .option('-d, --duration <seconds>', 'seconds of load at each concurrency', positiveNumber('--duration'), 10)
    .option('--warmup <seconds>', 'seconds of untimed load first', nonNegativeNumber('--warmup'), 2)
    .option('--workers <n>', 'inference worker threads of the server under test (0 = one per core)')
    .option('--url <url>', 'bench a running Ferry server instead of starting one')
    .option('-o, --out <file>', 'where to write the profile (default <model>-profile.json)')
    .option('--json', 'print the profile instead of a table')
    .action(async (model: string, o: { models?: string; config?: string; concurrency: number[]; duration: number; warmup: number; workers?: string; url?: string; out?: string; json?: boolean }) => {
      const cfg = loadConfig({ ...(o.config !== undefined && { file: o.config }), overrides: { 'models.dir': o.models } });
      const workers = o.workers === undefined ? undefined : Number(o.workers);
      if (workers !== undefined && (!Number.isInteger(workers) || workers < 0)) throw new InvalidArgumentError('--workers must be an integer ≥ 0');
      if (!o.json) process.stdout.write(`concurrency     req/s  req/s/core   p50 ms   p99 ms  failed  within SLA\n`);
      const profile = await runBench({
        model, modelsDir: cfg.models.dir, concurrency: o.concurrency, durationSec: o.duration, warmupSec: o.warmup,
        ...(o.url && { url: o.url }), ...(workers !== undefined && { workers }), ...(o.config && { configFile: o.config }),
        ...(!o.json && { onLevel: (l: Level) => process.stdout.write(`${formatLevel(l)}\n`) }),
      });
      const out = o.out ?? `${profile.model}-profile.json`;
      writeFileSync(out, `${JSON.stringify(profile, null, 2)}\n`);
      if (o.json) { process.stdout.write(`${JSON.stringify(profile, null, 2)}\n`); return; }
      const k = profile.knee;
      process.stdout.write(k
        ? `knee: concurrency ${k.concurrency}, ${k.rps.toFixed(1)} req/s (${profile.capacityRpsPerCore.toFixed(1)} per core), p99 ${k.p99Ms.toFixed(1)} ms${profile.sla ? ` within the ${profile.sla.p99Ms} ms SLA` : ' (no SLA: where throughput stops growing)'}\n`
        : 'knee: none — the SLA is missed at every concurrency\n');
      for (const w of profile.warnings) process.stdout.write(`warning: ${w}\n`);
      process.stdout.write(`profile written to ${out}\n`);
    });

  program.command('cost')
    .description('replicas at peak and a monthly cost range per serving pattern, from a `ferry bench` profile and a price table')
    .option('--profile <file>', 'profile written by ferry bench')
    .option('--requests-per-day <n>', 'requests a day', positiveNumber('--requests-per-day'))
    .addOption(new Option('--pattern <pattern>', 'only this pattern (default: all side by side)').choices([...PATTERNS]))
    .option('--cache-hit-rate <r>', 'share of requests the prediction cache answers (0 ≤ r < 1)', nonNegativeNumber('--cache-hit-rate'), 0)
    .option('--prices <file>', `price table (default: the one shipped, ${DEFAULT_PRICES_PATH})`)
    .option('--write-prices <file>', 'copy the default price table to FILE for editing, and stop')
    .option('--json', 'print JSON')
    .action((o: { profile?: string; requestsPerDay?: number; pattern?: Pattern; cacheHitRate: number; prices?: string; writePrices?: string; json?: boolean }) => {
      if (o.writePrices) {
        if (existsSync(o.writePrices)) throw new InvalidArgumentError(`--write-prices: ${o.writePrices} exists; not overwriting it`);
        copyFileSync(DEFAULT_PRICES_PATH, o.writePrices);
        process.stdout.write(`wrote ${o.writePrices}\n`);
        return;
      }
      if (!o.profile) throw new InvalidArgumentError('--profile is required (run ferry bench MODEL first)');
      if (o.requestsPerDay === undefined) throw new InvalidArgumentError('--requests-per-day is required');
      const report = estimateCost({
        profile: readProfile(o.profile), prices: loadPrices(o.prices), requestsPerDay: o.requestsPerDay, cacheHitRate: o.cacheHitRate,
        ...(o.pattern && { pattern: o.pattern }),
      });
      process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : formatCostReport(report));
    });
}
