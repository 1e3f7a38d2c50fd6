// `ferry cost`: turns a capacity profile into replicas at peak and a monthly cost range for each
// serving pattern, for the same workload, so the pattern is chosen from numbers. Every figure is
// a simple, stated formula over the profile and the price table (docs/production.md shows them).
import type { CapacityProfile } from './profile.js';
import { priceTableWarnings, type Prices } from './prices.js';

export const PATTERNS = ['sync', 'async', 'batch', 'edge'] as const;
export type Pattern = (typeof PATTERNS)[number];

export interface CostInput {
  profile: CapacityProfile;
  prices: Prices;
  requestsPerDay: number;
  /** Share of requests the prediction cache answers, 0 ≤ r < 1. */
  cacheHitRate: number;
  /** Only this pattern (sync also shows its serverless variant); all when absent. */
  pattern?: Pattern;
  /** The day the estimate is made, for the age of the price table (default: today). */
  now?: Date;
}

export interface Estimate {
  pattern: Pattern;
  /** What this row is, e.g. "real-time on VMs, cache 40%". */
  label: string;
  /** The instance type or serverless offer the row is priced on (the cheapest that fits). */
  on: string;
  cacheHitRate: number;
  /** Replicas (sync), workers (async) or machines (batch) at the traffic peak; null where it does not apply. */
  replicasAtPeak: number | null;
  monthly: { low: number; high: number };
  perMillionRequests: { low: number; high: number };
  notes: string[];
}

export interface CostReport {
  model: string;
  version: string;
  requestsPerDay: number;
  peakRps: number;
  averageRps: number;
  currency: string;
  pricesTakenOn: string;
  /** Whether the price table says its prices were checked against the provider (`verified: true`). */
  pricesVerified: boolean;
  /** Days between `pricesTakenOn` and the estimate. */
  pricesAgeDays: number;
  /** Warnings about the price table itself (unverified, older than a year); also in `warnings`. */
  priceWarnings: string[];
  estimates: Estimate[];
  warnings: string[];
}

const DAYS_PER_MONTH = 365 / 12;

export class CostError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CostError';
  }
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

function finish(e: Omit<Estimate, 'perMillionRequests'>, requestsPerMonth: number): Estimate {
  const m = requestsPerMonth / 1e6;
  return {
    ...e,
    monthly: { low: round2(e.monthly.low), high: round2(Math.max(e.monthly.low, e.monthly.high)) },
    perMillionRequests: { low: round2(e.monthly.low / m), high: round2(Math.max(e.monthly.low, e.monthly.high) / m) },
  };
}

/** Work per request relative to a cache miss. */
const loadFactor = (hit: number, p: Prices) => 1 - hit + hit * p.assumptions.cacheHitCostRatio;

function cheapest<T extends { monthly: { low: number; high: number } }>(rows: T[]): T {
  return rows.reduce((b, r) => (r.monthly.low + r.monthly.high < b.monthly.low + b.monthly.high ? r : b));
}

function syncOnVms(i: CostInput, hit: number, label: string): Omit<Estimate, 'perMillionRequests'> {
  const { profile, prices: p } = i;
  const a = p.assumptions;
  const avgLoad = (i.requestsPerDay / 86_400) * loadFactor(hit, p);
  const peakLoad = avgLoad * a.peakFactor;
  const rows = p.instances.map((inst) => {
    const cap = profile.capacityRpsPerCore * inst.vcpus * a.targetUtilization;
    const capSlow = cap * (1 - a.coreSpeedUncertainty);
    const peak = Math.max(a.minReplicas, Math.ceil(peakLoad / cap));
    const peakSlow = Math.max(a.minReplicas, Math.ceil(peakLoad / capSlow));
    const avg = Math.max(a.minReplicas, Math.ceil(avgLoad / cap));
    const redis = hit > 0 ? p.services.redisMonthly : 0;
    return {
      inst,
      peak,
      // Low: the autoscaler follows the daily curve (replicas for the average load); high: the
      // peak's replicas on slower cores, all month.
      monthly: {
        low: avg * inst.hourly * p.hoursPerMonth + redis,
        high: peakSlow * inst.hourly * p.hoursPerMonth + redis,
      },
    };
  });
  const best = cheapest(rows);
  return {
    pattern: 'sync',
    label,
    on: best.inst.name,
    cacheHitRate: hit,
    replicasAtPeak: best.peak,
    monthly: best.monthly,
    notes: [
      `${round2(profile.capacityRpsPerCore * best.inst.vcpus * a.targetUtilization)} req/s per replica at ${a.targetUtilization * 100}% of the knee`,
      ...(hit > 0 ? ['+ Redis for the shared cache'] : []),
    ],
  };
}

function syncServerless(i: CostInput, hit: number): Omit<Estimate, 'perMillionRequests'> | undefined {
  const { profile, prices: p } = i;
  if (p.serverless.length === 0) return undefined;
  const first = [...profile.levels].sort((x, y) => x.concurrency - y.concurrency)[0]!;
  const invocations = i.requestsPerDay * DAYS_PER_MONTH;
  const f = loadFactor(hit, p);
  const rows = p.serverless.map((s) => {
    const cost = (ms: number) =>
      (invocations / 1e6) * s.perMillionRequests +
      invocations * f * (ms / 1000) * s.memoryGiB * s.perGbSecond +
      s.keepWarmMonthly +
      (hit > 0 ? p.services.redisMonthly : 0);
    // One request per function instance: billed time is the single-request latency (p50 low, p99 high).
    return { s, monthly: { low: cost(first.latencyMs.p50), high: cost(first.latencyMs.p99) } };
  });
  const best = cheapest(rows);
  const peakConcurrent = Math.ceil(
    (i.requestsPerDay / 86_400) * p.assumptions.peakFactor * (first.latencyMs.p99 / 1000),
  );
  return {
    pattern: 'sync',
    label: `real-time, serverless${hit > 0 ? `, cache ${Math.round(hit * 100)}%` : ''}`,
    on: best.s.name,
    cacheHitRate: hit,
    replicasAtPeak: Math.max(1, peakConcurrent),
    monthly: best.monthly,
    notes: [
      `${round2(first.latencyMs.p50)}–${round2(first.latencyMs.p99)} ms billed per request at ${best.s.memoryGiB} GiB; includes ${p.currency} ${best.s.keepWarmMonthly} a month kept warm`,
    ],
  };
}

function asyncWorkers(i: CostInput, hit: number): Omit<Estimate, 'perMillionRequests'> {
  const { profile, prices: p } = i;
  const a = p.assumptions;
  const avgLoad = (i.requestsPerDay / 86_400) * loadFactor(hit, p);
  const small = [...p.instances].sort((x, y) => x.hourly - y.hourly)[0]!;
  const rows = p.instances.map((inst) => {
    // Workers run flat out (throughput, not the latency SLA): the queue absorbs the peak, so the
    // low end keeps up with the daily average and the high end drains half the peak rate.
    const cap = profile.maxRpsPerCore * inst.vcpus * a.targetUtilization;
    const low = Math.max(1, Math.ceil(avgLoad / cap));
    const high = Math.max(1, Math.ceil((avgLoad * a.peakFactor) / 2 / (cap * (1 - a.coreSpeedUncertainty))));
    const fixed = a.minReplicas * small.hourly * p.hoursPerMonth + p.services.redisMonthly + p.services.postgresMonthly;
    return {
      inst,
      high,
      monthly: { low: low * inst.hourly * p.hoursPerMonth + fixed, high: high * inst.hourly * p.hoursPerMonth + fixed },
    };
  });
  const best = cheapest(rows);
  return {
    pattern: 'async',
    label: `async jobs (queue + workers)${hit > 0 ? `, cache ${Math.round(hit * 100)}%` : ''}`,
    on: best.inst.name,
    cacheHitRate: hit,
    replicasAtPeak: best.high,
    monthly: best.monthly,
    notes: [
      `${a.minReplicas} × ${small.name} API replicas + Redis (BullMQ) + PostgreSQL (job records) included; results arrive later, not in the request`,
    ],
  };
}

function batch(i: CostInput): Omit<Estimate, 'perMillionRequests'> {
  const { profile, prices: p } = i;
  const a = p.assumptions;
  const rows = p.instances.map((inst) => {
    const seconds = i.requestsPerDay / (profile.maxRpsPerCore * inst.vcpus);
    const hours = seconds / 3600 + a.batchOverheadMinutes / 60;
    const hoursSlow = seconds / (1 - a.coreSpeedUncertainty) / 3600 + a.batchOverheadMinutes / 60;
    return {
      inst,
      hours,
      monthly: {
        low: hours * inst.spotHourly * DAYS_PER_MONTH + p.services.postgresMonthly,
        high: hoursSlow * inst.hourly * DAYS_PER_MONTH + p.services.postgresMonthly,
      },
    };
  });
  const best = cheapest(rows);
  return {
    pattern: 'batch',
    label: 'nightly batch pipeline',
    on: best.inst.name,
    cacheHitRate: 0,
    replicasAtPeak: 1,
    monthly: best.monthly,
    notes: [
      `one ${best.inst.name} for ${round2(best.hours * 60)} min a night (spot low, on-demand high) + PostgreSQL for results; predictions are a day old`,
    ],
  };
}

function edge(i: CostInput): Omit<Estimate, 'perMillionRequests'> {
  const { profile, prices: p } = i;
  const a = p.assumptions;
  const users = i.requestsPerDay / a.requestsPerUserPerDay;
  const gb = (users * a.downloadsPerUserPerMonth * profile.artifactBytes) / 1e9;
  return {
    pattern: 'edge',
    label: 'edge (in the browser)',
    on: 'CDN',
    cacheHitRate: 0,
    replicasAtPeak: null,
    monthly: { low: gb * p.cdnEgressPerGb, high: gb * p.egressPerGb },
    notes: [
      `${Math.round(users)} users download the ${round2(profile.artifactBytes / 1e6)} MB model ${a.downloadsPerUserPerMonth}× a month; no server inference (the device pays in load time)`,
    ],
  };
}

export function estimateCost(i: CostInput): CostReport {
  if (!Number.isFinite(i.requestsPerDay) || i.requestsPerDay <= 0)
    throw new CostError('--requests-per-day: a number greater than 0');
  if (!Number.isFinite(i.cacheHitRate) || i.cacheHitRate < 0 || i.cacheHitRate >= 1)
    throw new CostError('--cache-hit-rate: a number from 0 up to (not including) 1, e.g. 0.4');
  const now = i.now ?? new Date();
  const priceWarnings = priceTableWarnings(i.prices, now);
  const warnings = [...priceWarnings, ...i.profile.warnings];
  const requestsPerMonth = i.requestsPerDay * DAYS_PER_MONTH;
  const want = (p: Pattern) => i.pattern === undefined || i.pattern === p;
  const rows: Array<Omit<Estimate, 'perMillionRequests'>> = [];
  if (want('sync')) {
    if (i.profile.capacityRpsPerCore > 0) {
      rows.push(syncOnVms(i, 0, 'real-time on VMs, no cache'));
      // The same workload with the cache: the given hit rate, or 40% to show what a cache is worth.
      const hit = i.cacheHitRate > 0 ? i.cacheHitRate : 0.4;
      rows.push(syncOnVms(i, hit, `real-time on VMs, cache ${Math.round(hit * 100)}%`));
    } else {
      warnings.push(
        `real-time on VMs: the model misses its SLA (p99 ${i.profile.sla?.p99Ms} ms) at every concurrency measured, so no replica count meets it`,
      );
    }
    const s = syncServerless(i, i.cacheHitRate);
    if (s) rows.push(s);
  }
  if (want('async')) rows.push(asyncWorkers(i, i.cacheHitRate));
  if (want('batch')) rows.push(batch(i));
  if (want('edge')) rows.push(edge(i));
  return {
    model: i.profile.model,
    version: i.profile.version,
    requestsPerDay: i.requestsPerDay,
    averageRps: round2(i.requestsPerDay / 86_400),
    peakRps: round2((i.requestsPerDay / 86_400) * i.prices.assumptions.peakFactor),
    currency: i.prices.currency,
    pricesTakenOn: i.prices.takenOn,
    pricesVerified: i.prices.verified === true,
    pricesAgeDays: Math.floor((now.getTime() - Date.parse(`${i.prices.takenOn}T00:00:00Z`)) / 86_400_000),
    priceWarnings,
    estimates: rows.map((r) => finish(r, requestsPerMonth)),
    warnings,
  };
}

export function formatCostReport(r: CostReport): string {
  const money = (n: number) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2));
  const head = `${r.model}@${r.version}: ${r.requestsPerDay.toLocaleString('en-US')} requests/day (average ${r.averageRps} req/s, peak ${r.peakRps} req/s); prices of ${r.pricesTakenOn}${r.pricesVerified ? '' : ' (UNVERIFIED example prices)'}, ${r.currency}/month\n`;
  const table = [
    ['pattern', 'on', 'at peak', 'monthly', 'per 1M requests'],
    ...r.estimates.map((e) => [
      e.label,
      e.on,
      e.replicasAtPeak === null ? '-' : String(e.replicasAtPeak),
      `${money(e.monthly.low)} – ${money(e.monthly.high)}`,
      `${money(e.perMillionRequests.low)} – ${money(e.perMillionRequests.high)}`,
    ]),
  ];
  const widths = table[0]!.map((_, c) => Math.max(...table.map((row) => row[c]!.length)));
  const lines = table.map((row) =>
    row
      .map((cell, c) => cell.padEnd(widths[c]!))
      .join('  ')
      .trimEnd(),
  );
  const notes = r.estimates.map((e) => `  ${e.label}: ${e.notes.join('; ')}`);
  return [head, ...lines, '', ...notes, ...r.warnings.map((w) => `warning: ${w}`)].join('\n') + '\n';
}
