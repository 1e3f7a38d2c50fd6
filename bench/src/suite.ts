// The whole comparison in one run: raw ONNX Runtime in-process, then three servers started side by
// side (constant route, minimal main-thread server, Ferry) and loaded in turn from separate
// processes, then /healthz latency while mlp-bench is saturated. Next to the main rows, Ferry also
// serves a batching-off copy of a model and a cache-on one fed a small set of repeated bodies.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir, totalmem, type as osType, release } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
// Deep imports on purpose: the bench must open sessions exactly as Ferry does, and these two
// functions are not part of @ferry/server's public face.
import { loadConfig } from '../../packages/server/dist/config/index.js';
import { sessionOptionsFor, toOrtOptions } from '../../packages/server/dist/serving/runtime/session-options.js';
import { rowStats, scrapeFerry, type FerryRowStats } from './ferry-metrics.js';
import type { LoadResult, LoadSpec } from './load.js';
import type { BenchOptions } from './options.js';
import {
  allowedCpus,
  decidePinning,
  ferryServeArgs,
  freePort,
  onExit,
  runJson,
  startNode,
  stopAll,
  waitReady,
  type Child,
  type Pinning,
} from './processes.js';
import { FERRY_CLI, REPO_ROOT } from './paths.js';
import type { RawResult, RawSpec } from './raw-ort.js';
import { CLIENT_BOUND_CORES, computeBars, computeRatios, rowLabel, type Bar, type Ratio } from './report.js';
import { buildScratchRepo, type ScratchModel } from './scratch-repo.js';
import { bodyCount, REPEAT_SET, type ModelInfo } from './workloads.js';

export const TARGETS = ['constant', 'minimal', 'ferry'] as const;
export type TargetId = (typeof TARGETS)[number];

export const TARGET_LABELS: Record<TargetId, string> = {
  constant: 'constant route',
  minimal: 'minimal main-thread',
  ferry: 'Ferry',
};

/**
 * Which comparison a load row belongs to. `main`: the three targets on the model as shipped.
 * `batching-off`: Ferry serving `<model>-nobatch` (the same version, `batching: { enabled: false }`),
 * with the same bodies as `main`. `repeated`: the constant route and a cache-on Ferry version, both
 * cycling the same REPEAT_SET fixed bodies, so nearly every Ferry request is a cache hit.
 * `defaults`: Ferry serving `<model>-defaults`, the version with its `batching` block deleted, so
 * Ferry's own defaults apply (batching measured at warm-up, what `ferry init` writes); same bodies.
 * `log-off`: Ferry serving `<model>-nolog`, a second copy like `-defaults` that it never logs.
 */
export type Series = 'main' | 'batching-off' | 'repeated' | 'defaults' | 'log-off';

export interface LoadRow extends LoadResult {
  /** The workload's model (the bodies are made for it). */
  model: string;
  target: TargetId;
  series: Series;
  /** The model name in the request URL (a variant's name for Ferry's batching-off and cache rows). */
  served: string;
  /** `distinct` (every request differs) or `N cycled` (N fixed bodies, repeated). */
  bodies: string;
  /** Ferry rows only: its cache and batcher over the row (warm-up included), from its /metrics. */
  ferry?: FerryRowStats | null;
  /** With --rounds > 1: req/s of every round; the row's other numbers are the median round's. */
  rpsRounds?: number[];
  /** With --rounds > 1: p50 (ms) of every round, in round order like `rpsRounds`. */
  p50Rounds?: number[];
}

export interface HealthzRow {
  target: TargetId;
  /**
   * Where the probe went: the serving port's /healthz, or Ferry's health port (`--health-port`: a thread of
   * its own answering from the serving loop's heartbeat; docs/production.md#health-probes).
   */
  probe: 'serving port' | 'health port';
  /** The saturating load on mlp-bench that ran at the same time. */
  model: string;
  main: LoadResult;
  healthz: LoadResult;
  ferry?: FerryRowStats | null;
}

export interface ServerInfo {
  target: TargetId;
  url: string;
  /** Ferry: its health port's base URL. */
  healthUrl?: string;
  pid: number | undefined;
  readyMs: number;
  command: string;
}

export interface BenchReport {
  schema: 'ferry-bench/1';
  startedAt: string;
  finishedAt: string;
  command: string;
  git: { commit: string; dirty: boolean } | null;
  machine: {
    cpus: number;
    cpuModel: string;
    allowedCpus: number[];
    memGb: number;
    node: string;
    os: string;
    onnxruntime: string;
  };
  options: BenchOptions;
  pinning: Pinning;
  ferryWorkers: string;
  sessionOptions: Record<string, unknown>;
  models: Array<{
    name: string;
    version: string;
    maxBatch: number;
    noBatch?: string;
    defaults?: string;
    cached?: string;
  }>;
  servers: ServerInfo[];
  /** Ferry's batching and placement per served version at the end of the load rows (GET /v1/models). */
  ferryVersions?: VersionInForce[];
  raw: RawResult[];
  load: LoadRow[];
  healthz: HealthzRow[];
  ratios: Ratio[];
  bars: Bar[];
  notes: string[];
}

/** One served version's batching and placement as `GET /v1/models` shows them. */
export interface VersionInForce {
  name: string;
  version: string;
  batching?: { maxBatchSize: number; maxQueueDelayUs: number; source: string; measuredMaxBatchSize?: number };
  placement?: { mode: string; inlineMaxRows: number; inlineRunUs?: number; loadedMaxRows?: number; reason?: string };
}

/** Every version Ferry serves, with its batching and placement; undefined when it cannot be read. */
async function versionsInForce(url: string | undefined): Promise<VersionInForce[] | undefined> {
  if (url === undefined) return undefined;
  try {
    const res = await fetch(`${url}/v1/models`);
    if (!res.ok) return undefined;
    const body = (await res.json()) as {
      models: Array<{ name: string; versions: Array<Omit<VersionInForce, 'name'>> }>;
    };
    return body.models.flatMap((m) =>
      m.versions.map((v) => ({
        name: m.name,
        version: v.version,
        ...(v.batching && { batching: v.batching }),
        ...(v.placement && { placement: v.placement }),
      })),
    );
  } catch {
    return undefined;
  }
}

function gitInfo(): BenchReport['git'] {
  const head = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' });
  if (head.status !== 0) return null;
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
  });
  return { commit: head.stdout.trim(), dirty: dirty.stdout.trim().length > 0 };
}

function ortVersion(): string {
  try {
    return (
      JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules/onnxruntime-node/package.json'), 'utf8')) as {
        version: string;
      }
    ).version;
  } catch {
    return 'unknown';
  }
}

interface RunningServer {
  target: TargetId;
  child: Child;
  url: string;
  info: ServerInfo;
}

/** One load row to run per connection count (and round). */
interface RowPlan {
  target: TargetId;
  series: Series;
  served: string;
  repeatSet: number | null;
}

/** The rows of one model, in the order they run at each connection count. */
export function rowPlan(m: ScratchModel, opts: Pick<BenchOptions, 'repeatBodies'>): RowPlan[] {
  const name = m.info.name;
  const mainSet = opts.repeatBodies ? bodyCount(m.info) : null;
  const plan: RowPlan[] = TARGETS.map((target) => ({ target, series: 'main', served: name, repeatSet: mainSet }));
  if (m.defaults) plan.push({ target: 'ferry', series: 'defaults', served: m.defaults, repeatSet: mainSet });
  if (m.noLog) plan.push({ target: 'ferry', series: 'log-off', served: m.noLog, repeatSet: mainSet });
  if (m.noBatch) plan.push({ target: 'ferry', series: 'batching-off', served: m.noBatch, repeatSet: mainSet });
  if (m.cached) {
    plan.push({ target: 'constant', series: 'repeated', served: name, repeatSet: REPEAT_SET });
    plan.push({ target: 'ferry', series: 'repeated', served: m.cached, repeatSet: REPEAT_SET });
  }
  return plan;
}

/**
 * The order of a model's rows in round `round` (1-based): as planned in odd rounds, reversed in even
 * ones, so a row's place in the round (what ran just before it, drift across the round) falls on
 * every row alike over two rounds instead of always on the same one.
 */
export function roundOrder(rows: number, round: number): number[] {
  const order = Array.from({ length: rows }, (_, i) => i);
  return round % 2 === 0 ? order.reverse() : order;
}

export async function runSuite(opts: BenchOptions, log: (line: string) => void): Promise<BenchReport> {
  const startedAt = new Date().toISOString();
  const pinning = decidePinning(opts.pin);
  log(
    pinning.enabled
      ? `pinning: servers on CPU ${pinning.serverCpus}, load generators on CPU ${pinning.loadCpus}`
      : `pinning: off (${pinning.reason})`,
  );
  const repoDir = mkdtempSync(join(tmpdir(), 'ferry-bench-models-'));
  const removeRepo = () => rmSync(repoDir, { recursive: true, force: true });
  const unregister = onExit(removeRepo);
  const notes: string[] = [];
  try {
    // Ferry gets a repository holding only the versions this run measures (and their variants), so
    // loading stays short. Every process reads the models from there.
    const scratch = buildScratchRepo(repoDir, opts.only);
    const infos: ModelInfo[] = scratch.map((m) => m.info);
    const cfg = loadConfig({ cwd: repoDir });
    const sessionOptions: Record<string, Record<string, unknown>> = {};
    for (const info of infos) sessionOptions[info.name] = { ...toOrtOptions(sessionOptionsFor(cfg, info.manifest)) };

    const usableCpus = pinning.enabled
      ? pinning.serverCpus!.split(',').length
      : allowedCpus().length || availableParallelism();
    const ferryWorkers =
      opts.ferryWorkers !== undefined ? String(opts.ferryWorkers) : `default (one per usable CPU: ${usableCpus})`;

    // 1. Raw ONNX Runtime, before any server exists, on the CPU the servers will use.
    const raw: RawResult[] = [];
    for (const info of infos) {
      for (const batch of [...new Set([1, info.maxBatch])]) {
        const spec: RawSpec = {
          model: info.name,
          modelDir: info.dir,
          batch,
          seconds: opts.rawSeconds,
          warmupSeconds: Math.min(1, opts.rawSeconds / 2),
          sessionOptions: sessionOptions[info.name]!,
        };
        const r = await runJson<RawResult>(`raw-ort ${info.name} b${batch}`, 'raw-ort.js', spec, pinning.serverCpus);
        log(`raw ORT ${info.name} batch ${batch}: ${r.callsPerS.toFixed(0)} calls/s, ${r.rowsPerS.toFixed(0)} rows/s`);
        raw.push(r);
      }
    }

    // 2-3. The three servers, side by side; idle ones cost nothing while another is loaded.
    const noLog = scratch.flatMap((m) => (m.noLog ? [m.noLog] : []));
    const servers = await startServers(opts, infos, repoDir, sessionOptions, pinning, noLog);
    const byTarget = new Map(servers.map((s) => [s.target, s]));

    // 4. Load rows: per model, per connection count, the planned rows in turn (interleaved, so
    // slow drift in the machine affects them all alike), every other round in reverse (roundOrder).
    const load: LoadRow[] = [];
    for (const m of scratch) {
      const info = m.info;
      const plan = rowPlan(m, opts);
      for (const connections of opts.connections) {
        const rounds: LoadRow[][] = plan.map(() => []);
        for (let round = 1; round <= opts.rounds; round++) {
          for (const i of roundOrder(plan.length, round)) {
            const p = plan[i]!;
            const s = byTarget.get(p.target)!;
            const spec: LoadSpec = {
              url: s.url,
              kind: 'predict',
              model: info.name,
              modelDir: info.dir,
              served: p.served,
              connections,
              warmupSeconds: opts.warmupS,
              durationSeconds: opts.durationS,
              unique: p.repeatSet === null,
              ...(p.repeatSet !== null && { repeatSet: p.repeatSet }),
              ...(s.info.pid !== undefined && { serverPid: s.info.pid }),
            };
            const label = rowLabel({ ...p, model: info.name });
            const bodies = p.repeatSet === null ? 'distinct' : `${p.repeatSet} cycled`;
            const before = p.target === 'ferry' ? await scrapeFerry(s.url, p.served) : null;
            const r = await runJson<LoadResult>(
              `load ${label} ${info.name} c${connections}`,
              'load.js',
              spec,
              pinning.loadCpus,
            );
            assertAlive(servers);
            const ferry = p.target === 'ferry' ? rowStats(before, await scrapeFerry(s.url, p.served)) : undefined;
            rounds[i]!.push({
              model: info.name,
              target: p.target,
              series: p.series,
              served: p.served,
              bodies,
              ...r,
              ...(ferry !== undefined && { ferry }),
            });
            const extra = ferry
              ? `  rows/batch ${ferry.meanBatchRows?.toFixed(1) ?? '-'}  inline ${ferry.inlineShare == null ? '-' : `${(ferry.inlineShare * 100).toFixed(0)}%`}  cache hits ${ferry.cacheHitRatio === null ? '-' : `${(ferry.cacheHitRatio * 100).toFixed(0)}%`}`
              : '';
            const other =
              r.otherCpu !== null && r.otherCpu > 0.2 ? `  (other CPU ${r.otherCpu.toFixed(2)}: disturbed)` : '';
            const bodiesNote = p.series === 'repeated' ? ` (${bodies})` : '';
            log(
              `${info.name.padEnd(13)} ${`${label}${bodiesNote}`.padEnd(36)} c=${String(connections).padStart(3)}${opts.rounds > 1 ? ` r${round}` : ''}  ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50Ms.toFixed(2)} ms  p99 ${r.p99Ms.toFixed(2)} ms  non-2xx ${r.non2xx}${extra}${other}`,
            );
            await sleep(250);
          }
        }
        for (const rows of rounds) load.push(medianRound(rows));
      }
    }

    // 5. /healthz while mlp-bench is saturated, for Ferry and the minimal server.
    const healthz: HealthzRow[] = [];
    const sat = infos.find((i) => i.name === 'mlp-bench');
    if (!sat) notes.push('healthz under load not measured: it saturates mlp-bench, which --only left out');
    else {
      const connections = 64;
      const probes = [
        { target: 'ferry', probe: 'health port' },
        { target: 'ferry', probe: 'serving port' },
        { target: 'minimal', probe: 'serving port' },
      ] as const;
      for (const { target, probe: where } of probes) {
        const s = byTarget.get(target)!;
        const main: LoadSpec = {
          url: s.url,
          kind: 'predict',
          model: sat.name,
          modelDir: sat.dir,
          connections,
          warmupSeconds: opts.warmupS,
          durationSeconds: opts.durationS,
          unique: !opts.repeatBodies,
          ...(s.info.pid !== undefined && { serverPid: s.info.pid }),
        };
        // The probe starts after the main load's warm-up and ends before the main load does (in whole
        // seconds, which is what wrk runs for).
        const probe: LoadSpec = {
          url: where === 'health port' ? s.info.healthUrl! : s.url,
          kind: 'healthz',
          connections: 1,
          warmupSeconds: 0,
          delaySeconds: opts.warmupS + 0.25,
          durationSeconds: Math.max(0.5, Math.floor(opts.durationS - 0.5)),
        };
        const before = target === 'ferry' ? await scrapeFerry(s.url, sat.name) : null;
        const [m, h] = await Promise.all([
          runJson<LoadResult>(
            `load ${target} ${sat.name} c${connections} (healthz run)`,
            'load.js',
            main,
            pinning.loadCpus,
          ),
          runJson<LoadResult>(`healthz probe ${target}`, 'load.js', probe, pinning.loadCpus),
        ]);
        assertAlive(servers);
        const ferry = target === 'ferry' ? rowStats(before, await scrapeFerry(s.url, sat.name)) : undefined;
        healthz.push({
          target,
          probe: where,
          model: sat.name,
          main: m,
          healthz: h,
          ...(ferry !== undefined && { ferry }),
        });
        log(
          `healthz under load ${`${TARGET_LABELS[target]} (${where})`.padEnd(34)} mlp-bench ${m.rps.toFixed(0)} req/s; /healthz p50 ${h.p50Ms.toFixed(2)} ms p99 ${h.p99Ms.toFixed(2)} ms`,
        );
        await sleep(250);
      }
    }

    // What Ferry ran with: the batching and placement it measured (they can be timed again during a run).
    const ferryVersions = await versionsInForce(byTarget.get('ferry')?.url);
    await stopAll();
    const partial = { raw, load, healthz };
    const ratios = computeRatios(partial, opts, infos);
    const bars = computeBars(partial);
    if (!pinning.enabled)
      notes.push('unpinned: servers and load generators share all CPUs, so load generation competes with the server');
    const rowsToCheck: Array<[string, LoadResult]> = [
      ...load.map((r): [string, LoadResult] => [
        `${r.model} ${rowLabel(r)}${r.series === 'repeated' ? ` (${r.bodies})` : ''} @${r.connections}`,
        r,
      ]),
      ...healthz.flatMap((h): Array<[string, LoadResult]> => [
        [`${h.model} ${h.target} @${h.main.connections} (healthz run, ${h.probe})`, h.main],
        [`/healthz probe ${h.target} (${h.probe})`, h.healthz],
      ]),
    ];
    for (const r of raw) {
      if (r.otherCpu !== null && r.otherCpu >= 0.25)
        notes.push(
          `raw ORT ${r.model} batch ${r.batch}: disturbed, other activity used ${r.otherCpu.toFixed(2)} cores meanwhile; rerun`,
        );
    }
    for (const [name, r] of rowsToCheck) {
      if (r.clientCpu >= CLIENT_BOUND_CORES)
        notes.push(
          `${name}: the load generator used ${r.clientCpu.toFixed(2)} cores, so it set the pace; the server may have more headroom than this row shows`,
        );
      if (r.otherCpu !== null && r.otherCpu >= 0.25)
        notes.push(
          `${name}: disturbed, other activity used ${r.otherCpu.toFixed(2)} cores meanwhile; rerun or use --rounds`,
        );
    }
    return {
      schema: 'ferry-bench/1',
      startedAt,
      finishedAt: new Date().toISOString(),
      command: `node ${process.argv.slice(1).join(' ')}`,
      git: gitInfo(),
      machine: {
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model ?? 'unknown',
        allowedCpus: allowedCpus(),
        memGb: Math.round(totalmem() / 2 ** 30),
        node: process.version,
        os: `${osType()} ${release()}`,
        onnxruntime: ortVersion(),
      },
      options: opts,
      pinning,
      ferryWorkers,
      sessionOptions,
      models: scratch.map((m) => ({
        name: m.info.name,
        version: m.info.version,
        maxBatch: m.info.maxBatch,
        ...(m.noBatch && { noBatch: m.noBatch }),
        ...(m.defaults && { defaults: m.defaults }),
        ...(m.noLog && { noLog: m.noLog }),
        ...(m.cached && { cached: m.cached }),
      })),
      servers: servers.map((s) => s.info),
      ...(ferryVersions && { ferryVersions }),
      raw,
      load,
      healthz,
      ratios,
      bars,
      notes,
    };
  } finally {
    await stopAll();
    removeRepo();
    unregister();
  }
}

/** The round with the median req/s (all its numbers together), with every round's req/s and p50 kept. */
function medianRound(rows: LoadRow[]): LoadRow {
  const sorted = [...rows].sort((a, b) => a.rps - b.rps);
  const mid = sorted[Math.floor((sorted.length - 1) / 2)]!;
  return rows.length > 1 ? { ...mid, rpsRounds: rows.map((r) => r.rps), p50Rounds: rows.map((r) => r.p50Ms) } : mid;
}

function assertAlive(servers: RunningServer[]): void {
  for (const s of servers) {
    if (s.child.hasExited()) throw new Error(`${s.child.name} died during the run:\n${s.child.stderrTail().trim()}`);
  }
}

async function startServers(
  opts: BenchOptions,
  infos: ModelInfo[],
  repoDir: string,
  sessionOptions: Record<string, unknown>,
  pinning: Pinning,
  noLog: readonly string[] = [],
): Promise<RunningServer[]> {
  const cpusArg = pinning.serverCpus;
  const host = '127.0.0.1';
  const healthPort = await freePort();
  const specs: Array<{ target: TargetId; script: string; args: (port: number) => string[] }> = [
    {
      target: 'constant',
      script: 'baselines/constant-server.js',
      args: (port) => ['--port', String(port), '--host', host],
    },
    {
      target: 'minimal',
      script: 'baselines/minimal-server.js',
      args: (port) => [
        '--port',
        String(port),
        '--host',
        host,
        ...infos.flatMap((i) => ['--model', `${i.name}=${i.dir}`]),
        '--session-options',
        JSON.stringify(sessionOptions),
      ],
    },
    {
      target: 'ferry',
      script: FERRY_CLI,
      args: (port) =>
        ferryServeArgs(
          repoDir,
          port,
          [
            '--health-port',
            String(healthPort),
            ...(opts.ferryWorkers !== undefined ? ['--workers', String(opts.ferryWorkers)] : []),
          ],
          host,
        ),
    },
  ];
  const started: RunningServer[] = [];
  for (const s of specs) {
    const port = await freePort();
    const args = s.args(port);
    // Ferry runs in the scratch folder so a stray ./ferry.config.yaml cannot change it.
    const child = startNode(`${TARGET_LABELS[s.target]} server`, s.script, args, {
      ...(cpusArg !== undefined && { cpus: cpusArg }),
      cwd: repoDir,
      // The `-nolog` copies are never logged: the prediction log's cost is their row against `defaults`.
      ...(s.target === 'ferry' &&
        noLog.length > 0 && { env: { FERRY_PREDICTION_LOG_SAMPLE_RATES: noLog.map((n) => `${n}=0`).join(',') } }),
    });
    const url = `http://${host}:${port}`;
    started.push({
      target: s.target,
      child,
      url,
      info: {
        target: s.target,
        url,
        ...(s.target === 'ferry' && { healthUrl: `http://${host}:${healthPort}` }),
        pid: child.proc.pid,
        readyMs: 0,
        command: `node ${s.script} ${args.join(' ')}`,
      },
    });
  }
  await Promise.all(
    started.map(async (s) => {
      s.info.readyMs = Math.round(await waitReady(s.child, s.url, opts.readyTimeoutMs));
    }),
  );
  return started;
}
