// The load generator, always run as its own process (never inside a server): varied request bodies,
// a warm-up run, then a measured run, sent by wrk when it is installed (wrk.ts; a C client that
// spends a fraction of the CPU a request that autocannon does, so it does not set the pace of a fast
// server on its one core) or else by autocannon. With autocannon, latencies are recorded here from
// its per-response event at sub-millisecond precision (its own histogram keeps whole ms); wrk keeps
// them in microseconds. FERRY_BENCH_LOADGEN=autocannon|wrk picks one.
// Usage: node load.js '<LoadSpec JSON>'; prints one LoadResult JSON line.
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { machineBusySeconds, processCpuSeconds, reapedChildrenCpuSeconds } from './proc-stat.js';
import { summarize, type LatencySummary } from './stats.js';
import { bodyCount, bodyTemplates, inferBodies, jitter, modelInfo, modelInfoAt, requestBodies } from './workloads.js';
import { findWrk, runWrk, type LoadPlan } from './wrk.js';

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

export type LoadEngine = 'autocannon' | 'wrk';

export interface LoadResult extends LatencySummary {
  connections: number;
  /** What sent the requests: wrk (C) when it is installed, else autocannon (chooseEngine). */
  engine: LoadEngine;
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

/** What the load sends, for either engine. */
function buildPlan(spec: LoadSpec): LoadPlan {
  if (spec.kind === 'healthz') return { method: 'GET', path: '/healthz', headers: { ...spec.headers } };
  const info = spec.modelDir !== undefined ? modelInfoAt(spec.model!, spec.modelDir) : modelInfo(spec.model!);
  const headers = { 'content-type': 'application/json', ...spec.headers };
  if (spec.kind === 'infer') {
    const path = `/v2/models/${encodeURIComponent(spec.served ?? info.name)}/infer`;
    return {
      method: 'POST',
      path,
      headers,
      bodies: inferBodies(info, spec.repeatSet ?? bodyCount(info), spec.seed ?? 42),
    };
  }
  const path = `/v1/models/${encodeURIComponent(spec.served ?? info.name)}/predict`;
  if (spec.repeatSet !== undefined || spec.unique === false)
    return {
      method: 'POST',
      path,
      headers,
      bodies: requestBodies(info, spec.repeatSet ?? bodyCount(info), spec.seed ?? 42),
    };
  return { method: 'POST', path, headers, templates: bodyTemplates(info, bodyCount(info), spec.seed ?? 42) };
}

function autocannonRequests(plan: LoadPlan): AcRequest[] {
  const { method, path } = plan;
  const headers = Object.keys(plan.headers).length > 0 ? plan.headers : undefined;
  if (plan.templates)
    return plan.templates.map((t) => ({
      method,
      path,
      ...(headers && { headers }),
      body: `${t.before}${t.value}${t.after}`,
      setupRequest: (req) => {
        req.body = `${t.before}${jitter(t, Math.random())}${t.after}`;
        return req;
      },
    }));
  if (plan.bodies) return plan.bodies.map((body) => ({ method, path, ...(headers && { headers }), body }));
  return [{ method, path, ...(headers && { headers }) }];
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

/** The load engine: FERRY_BENCH_LOADGEN `wrk`, `autocannon`, or `auto` (the default: wrk when it is installed). */
function chooseEngine(env: NodeJS.ProcessEnv = process.env): { engine: LoadEngine; wrk?: string } {
  const want = env.FERRY_BENCH_LOADGEN ?? 'auto';
  if (want === 'autocannon') return { engine: 'autocannon' };
  if (want !== 'wrk' && want !== 'auto')
    throw new Error(`FERRY_BENCH_LOADGEN must be wrk, autocannon or auto, not ${JSON.stringify(want)}`);
  const wrk = findWrk(env);
  if (wrk !== undefined) return { engine: 'wrk', wrk };
  if (want === 'wrk') throw new Error('FERRY_BENCH_LOADGEN=wrk, but no wrk was found (apt-get install wrk)');
  return { engine: 'autocannon' };
}

/** A measured run's counts and latencies, whichever engine made it. */
type Counted = Omit<LoadResult, 'connections' | 'engine' | 'clientCpu' | 'serverCpu' | 'otherCpu'>;

/**
 * CPU meters around the measured run only (not the warm-up): this process and its reaped children
 * (wrk), the server, the whole machine.
 */
class Meter {
  readonly #pid: number | undefined;
  readonly #own = process.cpuUsage();
  readonly #children = reapedChildrenCpuSeconds();
  readonly #server: number | null;
  readonly #machine = machineBusySeconds();
  readonly #t0 = performance.now();
  constructor(serverPid: number | undefined) {
    this.#pid = serverPid;
    this.#server = serverPid !== undefined ? processCpuSeconds(serverPid) : null;
  }
  /** Cores used meanwhile (1 = one core busy). */
  stop(): Pick<LoadResult, 'clientCpu' | 'serverCpu' | 'otherCpu'> {
    const wallS = (performance.now() - this.#t0) / 1000;
    const own = process.cpuUsage(this.#own);
    const children1 = reapedChildrenCpuSeconds();
    const server1 = this.#pid !== undefined ? processCpuSeconds(this.#pid) : null;
    const machine1 = machineBusySeconds();
    const childrenS = this.#children !== null && children1 !== null ? children1 - this.#children : 0;
    const clientCpu = ((own.user + own.system) / 1e6 + childrenS) / wallS;
    const serverCpu = this.#server !== null && server1 !== null ? (server1 - this.#server) / wallS : null;
    return {
      clientCpu,
      serverCpu,
      otherCpu:
        this.#machine !== null && machine1 !== null && serverCpu !== null
          ? Math.max(0, (machine1 - this.#machine) / wallS - serverCpu - clientCpu)
          : null,
    };
  }
}

async function withAutocannon(spec: LoadSpec, plan: LoadPlan): Promise<Counted & ReturnType<Meter['stop']>> {
  const requests = autocannonRequests(plan);
  const base = { url: spec.url, connections: spec.connections, requests, timeout: 10 };
  if (spec.warmupSeconds > 0) {
    await autocannon({ ...base, duration: spec.warmupSeconds, setupClient: staggered(requests, spec.connections) });
  }
  const latencies: number[] = [];
  let ok = 0;
  const meter = new Meter(spec.serverPid);
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
  const cpu = meter.stop();
  const statusCodes: Record<string, number> = {};
  for (const [code, s] of Object.entries(r.statusCodeStats)) statusCodes[code] = s.count;
  return {
    durationS: r.duration,
    rps: ok / r.duration,
    ok,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    statusCodes,
    ...cpu,
    ...summarize(latencies),
  };
}

async function withWrk(spec: LoadSpec, plan: LoadPlan, bin: string): Promise<Counted & ReturnType<Meter['stop']>> {
  const options = { bin, url: spec.url, connections: spec.connections, timeoutSeconds: 10 };
  if (spec.warmupSeconds > 0) await runWrk(plan, { ...options, seconds: spec.warmupSeconds });
  const meter = new Meter(spec.serverPid);
  const r = await runWrk(plan, { ...options, seconds: spec.durationSeconds });
  const cpu = meter.stop();
  const durationS = r.durationUs / 1e6;
  // wrk counts a status of 400 or more as an error; it does not keep the codes themselves.
  const ok = r.requests - r.status;
  const ms = (us: number) => us / 1000;
  return {
    durationS,
    rps: ok / durationS,
    ok,
    non2xx: r.status,
    errors: r.connect + r.read + r.write,
    timeouts: r.timeout,
    statusCodes: { ...(ok > 0 && { '2xx': ok }), ...(r.status > 0 && { '4xx/5xx': r.status }) },
    ...cpu,
    count: r.requests,
    meanMs: ms(r.meanUs),
    p50Ms: ms(r.p50Us),
    p90Ms: ms(r.p90Us),
    p99Ms: ms(r.p99Us),
    maxMs: ms(r.maxUs),
  };
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '') as LoadSpec;
  const plan = buildPlan(spec);
  const { engine, wrk } = chooseEngine();
  if (spec.delaySeconds) await sleep(spec.delaySeconds * 1000);
  const counted = engine === 'wrk' ? await withWrk(spec, plan, wrk!) : await withAutocannon(spec, plan);
  const result: LoadResult = { connections: spec.connections, engine, ...counted };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

await main();
