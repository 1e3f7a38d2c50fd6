// The load generator, always run as its own process (never inside a server): autocannon with
// varied request bodies, a warm-up run, then a measured run. Latencies are recorded here from
// autocannon's per-response event at sub-millisecond precision (its own histogram keeps whole ms).
// Usage: node load.js '<LoadSpec JSON>'; prints one LoadResult JSON line.
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { summarize, type LatencySummary } from './stats.js';
import { bodyCount, modelInfo, requestBodies } from './workloads.js';

export interface LoadSpec {
  url: string;
  /** `predict` POSTs realistic bodies for `model`; `healthz` GETs /healthz. */
  kind: 'predict' | 'healthz';
  model?: string;
  connections: number;
  warmupSeconds: number;
  durationSeconds: number;
  /** Wait this long before starting (to begin a probe after another load's warm-up). */
  delaySeconds?: number;
  seed?: number;
}

export interface LoadResult extends LatencySummary {
  connections: number;
  durationS: number;
  /** 2xx responses per second. */
  rps: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
}

// The slice of autocannon's API this file uses (it ships no types).
interface AcRequest { method: string; path: string; headers?: Record<string, string>; body?: string }
interface AcClient { setRequests(requests: AcRequest[]): void }
interface AcOptions {
  url: string;
  connections: number;
  duration: number;
  requests: AcRequest[];
  timeout?: number;
  setupClient?: (client: AcClient) => void;
}
interface AcResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  statusCodeStats: Record<string, { count: number }>;
}
interface AcInstance extends PromiseLike<AcResult> {
  on(event: 'response', listener: (client: AcClient, statusCode: number, bytes: number, responseTimeMs: number) => void): this;
}
const autocannon = createRequire(import.meta.url)('autocannon') as (opts: AcOptions) => AcInstance;

function buildRequests(spec: LoadSpec): AcRequest[] {
  if (spec.kind === 'healthz') return [{ method: 'GET', path: '/healthz' }];
  const info = modelInfo(spec.model!);
  const headers = { 'content-type': 'application/json' };
  const path = `/v1/models/${encodeURIComponent(info.name)}/predict`;
  return requestBodies(info, bodyCount(info), spec.seed ?? 42).map((body) => ({ method: 'POST', path, headers, body }));
}

/** Each connection starts at a different body, so concurrent requests differ from one another. */
function staggered(requests: AcRequest[], connections: number): (client: AcClient) => void {
  let next = 0;
  const stride = Math.max(1, Math.floor(requests.length / connections));
  return (client) => {
    const start = (next++ * stride) % requests.length;
    client.setRequests([...requests.slice(start), ...requests.slice(0, start)].map((r) => ({ ...r })));
  };
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '') as LoadSpec;
  const requests = buildRequests(spec);
  if (spec.delaySeconds) await sleep(spec.delaySeconds * 1000);
  const base = { url: spec.url, connections: spec.connections, requests, timeout: 10 };
  if (spec.warmupSeconds > 0) {
    await autocannon({ ...base, duration: spec.warmupSeconds, setupClient: staggered(requests, spec.connections) });
  }
  const latencies: number[] = [];
  let ok = 0;
  const run = autocannon({ ...base, duration: spec.durationSeconds, setupClient: staggered(requests, spec.connections) });
  run.on('response', (_client, status, _bytes, ms) => {
    if (status >= 200 && status < 300) {
      ok++;
      latencies.push(ms);
    }
  });
  const r = await run;
  const statusCodes: Record<string, number> = {};
  for (const [code, s] of Object.entries(r.statusCodeStats)) statusCodes[code] = s.count;
  const result: LoadResult = {
    connections: spec.connections,
    durationS: r.duration,
    rps: ok / r.duration,
    ok,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    statusCodes,
    ...summarize(latencies),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

await main();
