// A closed-loop HTTP load generator: `connections` clients, each sending its next request when the
// previous one answers, for a fixed time. Written here rather than using autocannon because
// autocannon's histogram rounds latencies to whole milliseconds, and a small model's p50 is well
// under one: the SLA check and serverless billing need sub-millisecond figures.
import { Agent, request } from 'node:http';

export interface LoadRequest {
  method: string;
  path: string;
  body: string;
}

export interface LoadResult {
  durationSec: number;
  ok: number;
  non2xx: number;
  errors: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: Float64Array | number[], p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export async function generateLoad(
  baseUrl: string,
  requests: LoadRequest[],
  connections: number,
  durationSec: number,
  timeoutMs = 30_000,
): Promise<LoadResult> {
  const url = new URL(baseUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  let samples = new Float64Array(4096);
  let n = 0;
  let ok = 0;
  let non2xx = 0;
  let errors = 0;
  const record = (ms: number) => {
    if (n === samples.length) {
      const s = new Float64Array(n * 2);
      s.set(samples);
      samples = s;
    }
    samples[n++] = ms;
  };
  const one = (r: LoadRequest) =>
    new Promise<void>((resolve) => {
      const t0 = process.hrtime.bigint();
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          path: r.path,
          method: r.method,
          agent,
          timeout: timeoutMs,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(r.body) },
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            const ms = Number(process.hrtime.bigint() - t0) / 1e6;
            record(ms);
            if (res.statusCode! >= 200 && res.statusCode! < 300) ok++;
            else non2xx++;
            resolve();
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => {
        errors++;
        resolve();
      });
      req.end(r.body);
    });
  const started = process.hrtime.bigint();
  const endAt = Date.now() + durationSec * 1000;
  await Promise.all(
    Array.from({ length: connections }, async (_, c) => {
      let i = c;
      while (Date.now() < endAt) {
        await one(requests[i % requests.length]!);
        i += connections;
      }
    }),
  );
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  agent.destroy();
  const sorted = samples.slice(0, n).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    durationSec: elapsed,
    ok,
    non2xx,
    errors,
    latencyMs: {
      p50: percentile(sorted, 50),
      p90: percentile(sorted, 90),
      p99: percentile(sorted, 99),
      max: n ? sorted[n - 1]! : 0,
      mean: n ? sum / n : 0,
    },
  };
}
