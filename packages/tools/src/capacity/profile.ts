// The capacity profile `ferry bench` writes and `ferry cost` reads: one model version on one
// machine, throughput and latency at each concurrency, and the knee against the model's SLA.
import { Type, type Static } from '@sinclair/typebox';

export const LevelSchema = Type.Object({
  concurrency: Type.Integer({ minimum: 1 }),
  requests: Type.Integer({ minimum: 0 }),
  /** Successful requests per second (2xx only). */
  rps: Type.Number({ minimum: 0 }),
  rpsPerCore: Type.Number({ minimum: 0 }),
  latencyMs: Type.Object({
    p50: Type.Number(),
    p90: Type.Number(),
    p99: Type.Number(),
    max: Type.Number(),
    mean: Type.Number(),
  }),
  errors: Type.Integer({ minimum: 0 }),
  non2xx: Type.Integer({ minimum: 0 }),
  /** p99 within the SLA and no failed request (true when the model sets no SLA and nothing failed). */
  withinSla: Type.Boolean(),
});

export const ProfileSchema = Type.Object({
  kind: Type.Literal('ferry-capacity-profile'),
  schemaVersion: Type.Literal(1),
  model: Type.String(),
  version: Type.String(),
  createdAt: Type.String(),
  machine: Type.Object({
    cores: Type.Integer({ minimum: 1 }),
    cpuModel: Type.String(),
    totalMemoryBytes: Type.Number(),
    node: Type.String(),
  }),
  server: Type.Object({
    workers: Type.Integer({ minimum: 0 }),
    external: Type.Boolean(),
    residentMemoryBytes: Type.Union([Type.Number(), Type.Null()]),
  }),
  sla: Type.Union([Type.Object({ p99Ms: Type.Number({ exclusiveMinimum: 0 }) }), Type.Null()]),
  durationSec: Type.Number({ exclusiveMinimum: 0 }),
  artifactBytes: Type.Integer({ minimum: 0 }),
  /** Instances per request body sent (1 = one prediction per request). */
  instancesPerRequest: Type.Integer({ minimum: 1 }),
  levels: Type.Array(LevelSchema, { minItems: 1 }),
  knee: Type.Union([
    Type.Object({
      concurrency: Type.Integer({ minimum: 1 }),
      rps: Type.Number({ minimum: 0 }),
      p99Ms: Type.Number(),
      /** `sla`: the highest concurrency whose p99 meets the SLA; `throughput`: no SLA, the point where more concurrency
       * adds under 10% throughput.
       */
      basis: Type.Union([Type.Literal('sla'), Type.Literal('throughput')]),
    }),
    Type.Null(),
  ]),
  /** Requests/s one replica of this size sustains within the SLA (the knee's throughput), per core. */
  capacityRpsPerCore: Type.Number({ minimum: 0 }),
  /** Highest throughput seen at any concurrency, per core: what a batch or queue worker can do when latency does not
   * matter.
   */
  maxRpsPerCore: Type.Number({ minimum: 0 }),
  warnings: Type.Array(Type.String()),
});

export type Level = Static<typeof LevelSchema>;
export type CapacityProfile = Static<typeof ProfileSchema>;
export type Knee = NonNullable<CapacityProfile['knee']>;

/**
 * The knee. With an SLA: the highest concurrency whose p99 stays within it with no failures (null
 * when even concurrency 1 misses). Without one: the lowest concurrency reaching 90% of the best
 * throughput, past which extra load only adds queueing.
 */
export function findKnee(levels: readonly Level[], slaP99Ms: number | undefined): Knee | null {
  const sorted = [...levels].sort((a, b) => a.concurrency - b.concurrency);
  if (slaP99Ms !== undefined) {
    const ok = sorted.filter((l) => l.withinSla);
    // Throughput can dip and recover under noise; take the best level that meets the SLA.
    const best = ok.reduce<Level | undefined>((b, l) => (!b || l.rps > b.rps ? l : b), undefined);
    return best ? { concurrency: best.concurrency, rps: best.rps, p99Ms: best.latencyMs.p99, basis: 'sla' } : null;
  }
  const clean = sorted.filter((l) => l.errors === 0 && l.non2xx === 0);
  if (clean.length === 0) return null;
  const max = Math.max(...clean.map((l) => l.rps));
  const knee = clean.find((l) => l.rps >= 0.9 * max)!;
  return { concurrency: knee.concurrency, rps: knee.rps, p99Ms: knee.latencyMs.p99, basis: 'throughput' };
}
