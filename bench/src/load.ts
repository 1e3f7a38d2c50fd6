// The load generator, always run as its own process (never inside a server): autocannon with
// varied request bodies, a warm-up run, then a measured run. Latencies are recorded here from
// autocannon's per-response event at sub-millisecond precision (its own histogram keeps whole ms).
// Usage: node load.js '<LoadSpec JSON>'; prints one LoadResult JSON line.
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { machineBusySeconds, processCpuSeconds } from './proc-stat.js';
import { summarize, type LatencySummary } from './stats.js';
import { bodyCount, bodyTemplates, inferBodies, jitter, modelInfo, modelInfoAt, requestBodies } from './workloads.js';

export interface LoadSpec {
  url: string;
  /** `predict` POSTs realistic bodies for `model`; `infer` the same rows to /v2/models/{model}/infer; `healthz` GETs
   * /healthz.
   */
  kind: 'predict' | 'infer' | 'healthz';
  /** The workload: bodies are made for this model version (the folder `modelDir`). */
  model?: string;
  modelDir?: string;
  /** The model name in the URL, when the server serves a variant under another name (default `model`). */
  served?: string;
  connections: number;
  warmupSeconds: number;
  durationSeconds: number;
  /** Wait this long before starting (to begin a probe after another load's warm-up). */
  delaySeconds?: number;
  seed?: number;
  /**
   * true (the default): every request differs slightly from every other (see bodyTemplates), so
   * no server can answer from a cache. false: cycle the fixed bodies, so repeats can hit one.
   */
  unique?: boolean;
  /** Cycle exactly this many fixed bodies (implies unique: false); default with unique false: bodyCount. */
  repeatSet?: number;
  /** The server's pid, to report the CPU it used during the measured run. */
  serverPid?: number;
  /** Extra request headers (e.g. `authorization` for a server with API keys). */
  headers?: Record<string, string>;
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
  /** CPU used by this load generator during the measured run, in cores (1 = one core busy). */
  clientCpu: number;
  /** CPU used by the server process (all threads) during the measured run, in cores; null if unknown. */
  serverCpu: number | null;
  /**
   * CPU used by everything else on the machine meanwhile (other processes, the kernel, the bench's
   * own orchestrator), in cores. Well above zero means the numbers were disturbed.
   */
  otherCpu: number | null;
}

// The slice of autocannon's API this file uses (it ships no types).
interface AcRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** Called before every send of this request; autocannon rebuilds the bytes from what it returns. */
  setupRequest?: (req: AcRequest) => AcRequest;
}
interface AcClient {
  setRequests(requests: AcRequest[]): void;
}
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
  on(
    event: 'response',
    listener: (client: AcClient, statusCode: number, bytes: number, responseTimeMs: number) => void,
  ): this;
}
const autocannon = createRequire(import.meta.url)('autocannon') as (opts: AcOptions) => AcInstance;

function buildRequests(spec: LoadSpec): AcRequest[] {
  if (spec.kind === 'healthz') return [{ method: 'GET', path: '/healthz' }];
  const info = spec.modelDir !== undefined ? modelInfoAt(spec.model!, spec.modelDir) : modelInfo(spec.model!);
  const headers = { 'content-type': 'application/json', ...spec.headers };
  if (spec.kind === 'infer') {
    const path = `/v2/models/${encodeURIComponent(spec.served ?? info.name)}/infer`;
    return inferBodies(info, spec.repeatSet ?? bodyCount(info), spec.seed ?? 42).map((body) => ({
      method: 'POST',
      path,
      headers,
      body,
    }));
  }
  const path = `/v1/models/${encodeURIComponent(spec.served ?? info.name)}/predict`;
  if (spec.repeatSet !== undefined || spec.unique === false) {
    return requestBodies(info, spec.repeatSet ?? bodyCount(info), spec.seed ?? 42).map((body) => ({
      method: 'POST',
      path,
      headers,
      body,
    }));
  }
  return bodyTemplates(info, bodyCount(info), spec.seed ?? 42).map((t) => ({
    method: 'POST',
    path,
    headers,
    body: `${t.before}${t.value}${t.after}`,
    setupRequest: (req) => {
      req.body = `${t.before}${jitter(t, Math.random())}${t.after}`;
      return req;
    },
  }));
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
  const cpu0 = process.cpuUsage();
  const server0 = spec.serverPid !== undefined ? processCpuSeconds(spec.serverPid) : null;
  const machine0 = machineBusySeconds();
  const t0 = performance.now();
  const run = autocannon({
    ...base,
    duration: spec.durationSeconds,
    setupClient: staggered(requests, spec.connections),
  });
  run.on('response', (_client, status, _bytes, ms) => {
    if (status >= 200 && status < 300) {
      ok++;
      latencies.push(ms);
    }
  });
  const r = await run;
  const wallS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const server1 = spec.serverPid !== undefined ? processCpuSeconds(spec.serverPid) : null;
  const machine1 = machineBusySeconds();
  const clientCpu = (cpu.user + cpu.system) / 1e6 / wallS;
  const serverCpu = server0 !== null && server1 !== null ? (server1 - server0) / wallS : null;
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
    clientCpu,
    serverCpu,
    otherCpu:
      machine0 !== null && machine1 !== null && serverCpu !== null
        ? Math.max(0, (machine1 - machine0) / wallS - serverCpu - clientCpu)
        : null,
    ...summarize(latencies),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

await main();
