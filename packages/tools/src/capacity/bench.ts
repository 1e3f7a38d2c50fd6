// `ferry bench MODEL`: load-tests one model version on this machine at several concurrencies and
// writes a capacity profile. The server runs as a child process so the load generator never shares its event loop; both
// share the machine's cores, which the profile records.
import { availableParallelism, cpus, totalmem } from 'node:os';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Repository, syntheticInstance, startChildServer, type ModelVersion, type ChildServer } from '@ferry/server';
import { generateLoad } from './load-generator.js';
import { findKnee, type CapacityProfile, type Level } from './profile.js';

export interface BenchOptions {
  /** `name`, `name@version` or `name@major`. */
  model: string;
  modelsDir: string;
  concurrency: number[];
  durationSec: number;
  /** Seconds of untimed load before the first level (JIT, caches, worker threads). */
  warmupSec?: number;
  /** Bench a running server instead of starting one (its models must include `model`). */
  url?: string;
  /** Inference worker threads of the started server (0 = one per core). */
  workers?: number;
  configFile?: string;
  /** Extra environment for the started server. */
  env?: NodeJS.ProcessEnv;
  onLevel?: (level: Level) => void;
}

export class BenchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BenchError';
  }
}

/** Request bodies: rows of the version's reference data when it has JSONL (real variety), else its warm-up or synthetic
 * instance.
 */
export function benchBodies(v: ModelVersion, max = 256): string[] {
  const m = v.manifest;
  const names = new Set(m.inputs.map((f) => f.name));
  const ref = m.reference ? join(v.dir, m.reference) : undefined;
  let rows: Array<Record<string, unknown>> = [];
  if (ref && ref.endsWith('.jsonl') && existsSync(ref)) {
    rows = readFileSync(ref, 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .slice(0, max)
      .map((l) => {
        const r = JSON.parse(l) as Record<string, unknown>;
        return Object.fromEntries(Object.entries(r).filter(([k]) => names.has(k)));
      });
  }
  if (rows.length === 0)
    rows = (m.warmup?.instances as Array<Record<string, unknown>> | undefined) ?? [syntheticInstance(m)];
  return rows.map((r) => JSON.stringify({ instances: [r] }));
}

async function residentMemory(url: string): Promise<number | null> {
  try {
    const text = await (await fetch(`${url}/metrics`)).text();
    const m = /^process_resident_memory_bytes ([0-9.e+]+)$/m.exec(text);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

export async function runBench(o: BenchOptions): Promise<CapacityProfile> {
  if (o.concurrency.length === 0 || o.concurrency.some((c) => !Number.isInteger(c) || c < 1 || c > 4096))
    throw new BenchError('--concurrency: give positive integers up to 4096, e.g. 1,2,4,8');
  if (!Number.isFinite(o.durationSec) || o.durationSec <= 0 || o.durationSec > 3600)
    throw new BenchError('--duration: seconds, more than 0 and at most 3600');
  const repo = Repository.load(o.modelsDir, [o.model.split('@')[0]!]);
  let v: ModelVersion;
  try {
    v = repo.resolve(o.model);
  } catch (e) {
    throw new BenchError(`model "${o.model}": ${(e as Error).message}`);
  }
  const bodies = benchBodies(v);
  const warnings: string[] = [];
  let child: ChildServer | undefined;
  let url = o.url?.replace(/\/$/, '');
  const cores = availableParallelism();
  try {
    if (!url) {
      child = await startChildServer({
        args: [
          '--models',
          o.modelsDir,
          ...(o.configFile ? ['--config', o.configFile] : []),
          ...(o.workers !== undefined ? ['--workers', String(o.workers)] : []),
        ],
        env: {
          FERRY_MODELS_ONLY: v.name,
          // The profile measures inference capacity: a prediction cache would serve repeats of the
          // bench's bodies without running the model. `ferry cost --cache-hit-rate` accounts for hits.
          FERRY_CACHE_MAX_BYTES: '0',
          FERRY_REDIS_URL: '',
          FERRY_STORE_URL: 'sqlite::memory:',
          FERRY_LOG_LEVEL: 'info',
          ...o.env,
        },
      });
      url = child.url;
    } else {
      warnings.push('benchmarked an external server: its prediction cache, if on, may have served repeated bodies');
    }
    const path = `/v1/models/${encodeURIComponent(v.name)}/versions/${encodeURIComponent(v.version)}/predict`;
    const requests = bodies.map((body) => ({ method: 'POST', path, body }));
    const target = url;
    const fire = (connections: number, duration: number) => generateLoad(target, requests, connections, duration);
    const check = await fetch(`${url}${path}`, {
      method: 'POST',
      body: bodies[0],
      headers: { 'content-type': 'application/json' },
    });
    if (!check.ok) throw new BenchError(`the bench request fails: ${check.status} ${await check.text()}`);
    if ((o.warmupSec ?? 1) > 0) await fire(Math.max(...o.concurrency), o.warmupSec ?? 1);

    const sla = v.manifest.sla?.p99Ms;
    const levels: Level[] = [];
    for (const c of [...new Set(o.concurrency)].sort((a, b) => a - b)) {
      const r = await fire(c, o.durationSec);
      const level: Level = {
        concurrency: c,
        requests: r.ok + r.non2xx + r.errors,
        rps: r.ok / r.durationSec,
        rpsPerCore: r.ok / r.durationSec / cores,
        latencyMs: r.latencyMs,
        errors: r.errors,
        non2xx: r.non2xx,
        withinSla: r.errors + r.non2xx === 0 && (sla === undefined || r.latencyMs.p99 <= sla),
      };
      levels.push(level);
      o.onLevel?.(level);
    }
    const knee = findKnee(levels, sla);
    if (sla !== undefined && !knee)
      warnings.push(
        `p99 exceeds the SLA (${sla} ms) even at concurrency ${levels[0]!.concurrency}: no capacity within the SLA on this machine`,
      );
    if (levels.some((l) => l.non2xx > 0 || l.errors > 0))
      warnings.push('some requests failed (non-2xx or socket errors): see the levels');
    if (cores <= 4)
      warnings.push(
        `the load generator shared this machine's ${cores} cores with the server: per-core figures are conservative`,
      );
    const maxRps = Math.max(...levels.map((l) => l.rps));
    return {
      kind: 'ferry-capacity-profile',
      schemaVersion: 1,
      model: v.name,
      version: v.version,
      createdAt: new Date().toISOString(),
      machine: { cores, cpuModel: cpus()[0]?.model ?? 'unknown', totalMemoryBytes: totalmem(), node: process.version },
      server: { workers: o.workers ?? 0, external: !child, residentMemoryBytes: await residentMemory(url) },
      sla: sla !== undefined ? { p99Ms: sla } : null,
      durationSec: o.durationSec,
      artifactBytes: statSync(v.modelPath).size,
      instancesPerRequest: 1,
      levels,
      knee,
      capacityRpsPerCore: (knee?.rps ?? 0) / cores,
      maxRpsPerCore: maxRps / cores,
      warnings,
    };
  } finally {
    await child?.stop('SIGTERM');
  }
}
