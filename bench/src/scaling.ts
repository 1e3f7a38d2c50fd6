// Cores and peers (issue 20, items 3 and 5): mlp-bench and tiny-lr at 64 connections served by
//   - Ferry, one process, pinned to one CPU (load on the other), as in the main table;
//   - Ferry, one process, unpinned (its HTTP thread and model workers spread over both cores);
//   - Ferry `--processes 2`, unpinned (two HTTP loops, each with its own model worker);
//   - FastAPI + uvicorn (bench/python/fastapi_server.py: numpy computing the same weights), pinned;
//   - Ferry pinned with the predict lane off (every request through Fastify's lifecycle), for the
//     lane's own gain in the same run.
// Ratios in the same run: unpinned / pinned, 2 processes / 1, Ferry / FastAPI. Before the FastAPI
// rows count, its answers are checked equal to Ferry's on the same body.
// Standalone: node bench/dist/scaling.js [--duration S] [--warmup S] [--rounds N] [--only a,b]
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { mlpBenchLayers } from '../../examples/dist/mlp-bench/build.js';
import { bestProcesses, predictedRps, type CoresModelInput } from './cores-model.js';
import type { LoadResult, LoadSpec } from './load.js';
import { parseOptions, type BenchOptions } from './options.js';
import { FERRY_CLI, REPO_ROOT } from './paths.js';
import { processCpuSeconds } from './proc-stat.js';
import {
  decidePinning,
  ferryServeArgs,
  freePort,
  onExit,
  runJson,
  startNode,
  stopAll,
  waitReady,
  type Child,
} from './processes.js';
import { tinyLrWeights, TINY_LR_VERSION, writeTinyLr } from './scratch-repo.js';
import { modelInfo, modelInfoAt, requestBodies, type ModelInfo } from './workloads.js';

export const SCALING_MODELS = ['mlp-bench', 'tiny-lr'] as const;
export const FASTAPI_SCRIPT = join(REPO_ROOT, 'bench/python/fastapi_server.py');
/** Debian's interpreter, where python3-fastapi, python3-uvicorn and python3-numpy install. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

export type ScalingConfig =
  'ferry-pinned' | 'ferry-fastify-pinned' | 'ferry-unpinned' | 'ferry-2proc-unpinned' | 'fastapi-pinned';

const LABELS: Record<ScalingConfig, string> = {
  'ferry-pinned': 'Ferry, 1 process, pinned to 1 CPU',
  'ferry-fastify-pinned': 'Ferry, pinned, predict lane off',
  'ferry-unpinned': 'Ferry, 1 process, unpinned',
  'ferry-2proc-unpinned': 'Ferry --processes 2, unpinned',
  'fastapi-pinned': 'FastAPI + uvicorn, pinned to 1 CPU',
};

export interface ScalingRow extends LoadResult {
  config: ScalingConfig;
  model: string;
  /** CPU of the server and its child processes over the whole load run (warm-up included), in cores. */
  serverTreeCpu: number | null;
  rpsRounds?: number[];
}

export interface ScalingReport {
  connections: number;
  pinning: { serverCpus?: string; loadCpus?: string; enabled: boolean };
  rows: ScalingRow[];
  ratios: Array<{ name: string; value: number | null }>;
  /** FastAPI's answer against Ferry's on the same body, per model: the largest score difference. */
  peerCheck: Array<{ model: string; maxAbsDiff: number | null; sameLabel: boolean | null }>;
  /** The capacity model for 8–32 cores (cores-model.ts), calibrated with the pinned rows' CPU per request. */
  coresModel: CoresModelReport | null;
  notes: string[];
}

export interface CoresModelReport {
  /** httpUs: tiny-lr pinned, server CPU per request; inferUs: mlp-bench pinned, CPU per request minus httpUs. */
  input: CoresModelInput;
  /** At this machine's 2 cores, less what the load generator used: predicted vs measured 2 processes / 1. */
  check: { cores: number; predictedRatio: number; measuredRatio: number | null };
  /** mlp-bench predicted req/s with 1 process and with the best process count. */
  table: Array<{ cores: number; oneProcessRps: number; bestProcesses: number; bestRps: number }>;
}

function coresModel(rows: ScalingRow[]): CoresModelReport | null {
  const row = (c: ScalingConfig, m: string) => rows.find((r) => r.config === c && r.model === m);
  const perReqUs = (r?: ScalingRow) => (r?.serverTreeCpu && r.rps > 0 ? (r.serverTreeCpu / r.rps) * 1e6 : null);
  const httpUs = perReqUs(row('ferry-pinned', 'tiny-lr'));
  const mlpUs = perReqUs(row('ferry-pinned', 'mlp-bench'));
  if (httpUs === null || mlpUs === null || mlpUs <= httpUs) return null;
  const input = { httpUs, inferUs: mlpUs - httpUs };
  const one = row('ferry-unpinned', 'mlp-bench');
  const two = row('ferry-2proc-unpinned', 'mlp-bench');
  // Unpinned, the load generator shares the two cores: the server had what it left.
  const cores = Math.max(1, 2 - (one?.clientCpu ?? 0));
  return {
    input,
    check: {
      cores,
      predictedRatio: predictedRps(input, cores, 2) / predictedRps(input, cores, 1),
      measuredRatio: one && two && one.rps > 0 ? two.rps / one.rps : null,
    },
    table: [2, 8, 16, 32].map((c) => {
      const best = bestProcesses(input, c);
      return { cores: c, oneProcessRps: predictedRps(input, c, 1), bestProcesses: best.processes, bestRps: best.rps };
    }),
  };
}

function childPids(pid: number): number[] {
  try {
    const text = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    return text ? text.split(/\s+/).map(Number) : [];
  } catch {
    return [];
  }
}

/** CPU seconds of a process and every process below it (a cluster primary and its children). */
function treeCpuSeconds(pid: number): number | null {
  const own = processCpuSeconds(pid);
  if (own === null) return null;
  return own + childPids(pid).reduce((s, c) => s + (treeCpuSeconds(c) ?? 0), 0);
}

/** Writes the weights of mlp-bench and tiny-lr for the Python peer (raw float32, see fastapi_server.py). */
function writePeerWeights(dir: string, models: readonly string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const f32 = (file: string, data: ArrayLike<number>) =>
    writeFileSync(file, Buffer.from(Float32Array.from(data as ArrayLike<number>).buffer));
  if (models.includes('mlp-bench')) {
    const d = join(dir, 'mlp-bench');
    mkdirSync(d, { recursive: true });
    const layers = mlpBenchLayers().map((l, i) => {
      f32(join(d, `w${i}.f32`), l.weight);
      f32(join(d, `b${i}.f32`), l.bias);
      return { weight: `w${i}.f32`, bias: `b${i}.f32`, fanIn: l.fanIn, fanOut: l.fanOut };
    });
    const info = modelInfo('mlp-bench');
    const post = info.manifest.postprocess as { labels: string[] };
    writeFileSync(
      join(d, 'meta.json'),
      JSON.stringify({ version: info.version, input: 'x', width: 256, labels: post.labels, final: 'softmax', layers }),
    );
    out.push(['mlp-bench', d]);
  }
  if (models.includes('tiny-lr')) {
    const d = join(dir, 'tiny-lr');
    mkdirSync(d, { recursive: true });
    const { w, b } = tinyLrWeights();
    f32(join(d, 'w0.f32'), w);
    f32(join(d, 'b0.f32'), [b]);
    writeFileSync(
      join(d, 'meta.json'),
      JSON.stringify({
        version: TINY_LR_VERSION,
        input: 'x',
        width: w.length,
        labels: ['no', 'yes'],
        final: 'sigmoid',
        layers: [{ weight: 'w0.f32', bias: 'b0.f32', fanIn: w.length, fanOut: 1 }],
      }),
    );
    out.push(['tiny-lr', d]);
  }
  return out;
}

interface Started {
  child: Child;
  url: string;
}

/** `python3 fastapi_server.py` as a child that dies with the bench (the watchdog is for node scripts). */
function startPython(args: string[], cpus: string | undefined): Child {
  // A tiny node launcher keeps the bench's watchdog and cleanup (startNode) for a non-node server.
  const launcher = join(tmpdir(), `ferry-bench-py-${process.pid}.mjs`);
  writeFileSync(
    launcher,
    `import { spawn } from 'node:child_process';
const p = spawn(${JSON.stringify(SYSTEM_PYTHON)}, process.argv.slice(2), { stdio: 'inherit' });
for (const s of ['SIGTERM', 'SIGINT']) process.on(s, () => p.kill(s));
process.on('exit', () => p.kill('SIGKILL'));
p.on('exit', (code) => process.exit(code ?? 1));
`,
  );
  onExit(() => rmSync(launcher, { force: true }));
  return startNode('fastapi server', launcher, [FASTAPI_SCRIPT, ...args], cpus !== undefined ? { cpus } : {});
}

async function startConfig(
  config: ScalingConfig,
  repoDir: string,
  weights: Array<[string, string]>,
  serverCpus: string | undefined,
  readyTimeoutMs: number,
): Promise<Started> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child =
    config === 'fastapi-pinned'
      ? startPython(['--port', String(port), ...weights.flatMap(([n, d]) => ['--model', `${n}=${d}`])], serverCpus)
      : startNode(
          LABELS[config],
          FERRY_CLI,
          ferryServeArgs(repoDir, port, config === 'ferry-2proc-unpinned' ? ['--processes', '2'] : []),
          {
            cwd: repoDir,
            ...(serverCpus !== undefined && { cpus: serverCpus }),
            ...(config === 'ferry-fastify-pinned' && { env: { FERRY_SERVER_PREDICT_LANE: 'false' } }),
          },
        );
  await waitReady(child, url, readyTimeoutMs);
  // A cluster is ready when one child is; wait until /readyz has answered from every child a few times over.
  if (config === 'ferry-2proc-unpinned') {
    for (let ok = 0, tries = 0; ok < 10 && tries < 600; tries++) {
      const r = await fetch(`${url}/readyz`, { headers: { connection: 'close' } }).catch(() => undefined);
      await r?.arrayBuffer();
      ok = r?.status === 200 ? ok + 1 : 0;
      await sleep(50);
    }
  }
  return { child, url };
}

async function answer(url: string, info: ModelInfo): Promise<{ label: string; scores: Record<string, number> }> {
  const res = await fetch(`${url}/v1/models/${info.name}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: requestBodies(info, 1, 7)[0]!,
  });
  if (res.status !== 200) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { predictions: Array<{ label: string; scores: Record<string, number> }> };
  return body.predictions[0]!;
}

// eslint-disable-next-line max-lines-per-function -- one run's configurations, rounds and ratios in one place
export async function runScalingBench(opts: BenchOptions, log: (line: string) => void): Promise<ScalingReport> {
  const models = SCALING_MODELS.filter((m) => (opts.only as readonly string[]).includes(m));
  const pinning = decidePinning(true);
  const repoDir = mkdtempSync(join(tmpdir(), 'ferry-bench-scaling-'));
  const unregister = onExit(() => rmSync(repoDir, { recursive: true, force: true }));
  const notes: string[] = [];
  const connections = 64;
  try {
    const infos: ModelInfo[] = models.map((name) => {
      if (name === 'tiny-lr') return modelInfoAt('tiny-lr', writeTinyLr(repoDir));
      const src = modelInfo(name);
      const dir = join(repoDir, name, src.version);
      cpSync(src.dir, dir, { recursive: true });
      return modelInfoAt(name, dir);
    });
    const weights = writePeerWeights(join(repoDir, '.peer-weights'), models);
    const havePython =
      existsSync(SYSTEM_PYTHON) &&
      (await new Promise<boolean>((resolve) => {
        const p = spawn(SYSTEM_PYTHON, ['-c', 'import fastapi, uvicorn, numpy'], { stdio: 'ignore' });
        p.on('exit', (code) => resolve(code === 0));
        p.on('error', () => resolve(false));
      }));
    const configs: ScalingConfig[] = ['ferry-pinned', 'ferry-fastify-pinned', 'ferry-unpinned', 'ferry-2proc-unpinned'];
    if (havePython) configs.push('fastapi-pinned');
    else notes.push(`FastAPI peer not measured: ${SYSTEM_PYTHON} cannot import fastapi, uvicorn and numpy`);
    if (!pinning.enabled) notes.push(`pinning unavailable (${pinning.reason}): the pinned rows ran unpinned`);

    const byKey = new Map<string, ScalingRow[]>();
    const peerAnswers = new Map<string, { label: string; scores: Record<string, number> }>();
    const peerCheck: ScalingReport['peerCheck'] = [];
    for (let round = 1; round <= opts.rounds; round++) {
      for (const config of configs) {
        const pinned = config.endsWith('-pinned');
        const s = await startConfig(
          config,
          repoDir,
          weights,
          pinned ? pinning.serverCpus : undefined,
          opts.readyTimeoutMs,
        );
        const pid = s.child.proc.pid!;
        for (const info of infos) {
          if (round === 1 && (config === 'ferry-pinned' || config === 'fastapi-pinned')) {
            const a = await answer(s.url, info);
            if (config === 'ferry-pinned') peerAnswers.set(info.name, a);
            else {
              const ref = peerAnswers.get(info.name);
              const diff = ref
                ? Math.max(...Object.keys(ref.scores).map((k) => Math.abs((a.scores[k] ?? NaN) - ref.scores[k]!)))
                : null;
              peerCheck.push({
                model: info.name,
                maxAbsDiff: diff,
                sameLabel: ref ? ref.label === a.label : null,
              });
              if (diff === null || !(diff <= 1e-4))
                notes.push(
                  `FastAPI's answer for ${info.name} differs from Ferry's (max |diff| ${diff}): its rows do not count`,
                );
            }
          }
          const spec: LoadSpec = {
            url: s.url,
            kind: 'predict',
            model: info.name,
            modelDir: info.dir,
            connections,
            warmupSeconds: opts.warmupS,
            durationSeconds: opts.durationS,
            unique: true,
            serverPid: pid,
          };
          const cpu0 = treeCpuSeconds(pid);
          const t0 = performance.now();
          const r = await runJson<LoadResult>(
            `load ${config} ${info.name}`,
            'load.js',
            spec,
            pinned ? pinning.loadCpus : undefined,
          );
          const cpu1 = treeCpuSeconds(pid);
          const seconds = (performance.now() - t0) / 1000;
          if (s.child.hasExited()) throw new Error(`${LABELS[config]} died:\n${s.child.stderrTail()}`);
          const row: ScalingRow = {
            config,
            model: info.name,
            ...r,
            serverTreeCpu: cpu0 !== null && cpu1 !== null ? (cpu1 - cpu0) / seconds : null,
          };
          const key = `${config}|${info.name}`;
          byKey.set(key, [...(byKey.get(key) ?? []), row]);
          log(
            `scaling ${LABELS[config].padEnd(36)} ${info.name.padEnd(10)} c=${connections}${opts.rounds > 1 ? ` r${round}` : ''}  ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50Ms.toFixed(2)} ms  p99 ${r.p99Ms.toFixed(2)} ms  non-2xx ${r.non2xx}  server CPU ${row.serverTreeCpu?.toFixed(2) ?? '-'}  client CPU ${r.clientCpu.toFixed(2)}`,
          );
          await sleep(250);
        }
        await s.child.stop(15_000);
      }
    }
    const rows = [...byKey.values()].map((rs) => {
      const sorted = [...rs].sort((a, b) => a.rps - b.rps);
      const mid = sorted[Math.floor((sorted.length - 1) / 2)]!;
      return rs.length > 1 ? { ...mid, rpsRounds: rs.map((r) => r.rps) } : mid;
    });
    const rps = (c: ScalingConfig, m: string) => rows.find((r) => r.config === c && r.model === m)?.rps;
    const div = (a?: number, b?: number) => (a !== undefined && b !== undefined && b > 0 ? a / b : null);
    const perCpu = (c: ScalingConfig, m: string) => {
      const r = rows.find((x) => x.config === c && x.model === m);
      return r?.serverTreeCpu ? r.rps / r.serverTreeCpu : undefined;
    };
    const peerOk = (m: string) => peerCheck.find((p) => p.model === m)?.maxAbsDiff !== undefined;
    const ratios: ScalingReport['ratios'] = [];
    for (const m of models) {
      ratios.push({
        name: `${m} @${connections}: Ferry predict lane / Fastify path (both pinned to 1 CPU)`,
        value: div(rps('ferry-pinned', m), rps('ferry-fastify-pinned', m)),
      });
      ratios.push({
        name: `${m} @${connections}: Ferry unpinned / pinned to 1 CPU`,
        value: div(rps('ferry-unpinned', m), rps('ferry-pinned', m)),
      });
      ratios.push({
        name: `${m} @${connections}: Ferry --processes 2 / 1 process (both unpinned)`,
        value: div(rps('ferry-2proc-unpinned', m), rps('ferry-unpinned', m)),
      });
      if (havePython && peerOk(m)) {
        ratios.push({
          name: `${m} @${connections}: Ferry / FastAPI + uvicorn req/s (both pinned to 1 CPU)`,
          value: div(rps('ferry-pinned', m), rps('fastapi-pinned', m)),
        });
        // Requests per CPU-second: what each server gets out of the CPU it was given, which holds when
        // other work on the machine takes part of the pinned core (req/s alone does not).
        ratios.push({
          name: `${m} @${connections}: Ferry / FastAPI + uvicorn requests per CPU-second (both pinned)`,
          value: div(perCpu('ferry-pinned', m), perCpu('fastapi-pinned', m)),
        });
      }
    }
    for (const r of rows)
      if (r.clientCpu >= 0.9)
        notes.push(
          `${LABELS[r.config]} ${r.model}: the load generator used ${r.clientCpu.toFixed(2)} cores, so it set the pace`,
        );
    return {
      connections,
      pinning: {
        enabled: pinning.enabled,
        ...(pinning.serverCpus !== undefined && { serverCpus: pinning.serverCpus }),
        ...(pinning.loadCpus !== undefined && { loadCpus: pinning.loadCpus }),
      },
      rows,
      ratios,
      peerCheck,
      coresModel: coresModel(rows),
      notes,
    };
  } finally {
    await stopAll();
    rmSync(repoDir, { recursive: true, force: true });
    unregister();
  }
}

export function formatScaling(r: ScalingReport): string {
  const out = [
    `Cores and peers (${r.connections} connections; pinned rows: server on CPU ${r.pinning.serverCpus ?? '-'}, load on CPU ${r.pinning.loadCpus ?? '-'})`,
  ];
  out.push(
    `  ${'server'.padEnd(38)} ${'model'.padEnd(10)} ${'req/s'.padStart(7)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'server CPU'.padStart(10)} ${'CPU µs/req'.padStart(10)} ${'client CPU'.padStart(10)} ${'non-2xx'.padStart(7)}`,
  );
  for (const x of r.rows)
    out.push(
      `  ${LABELS[x.config].padEnd(38)} ${x.model.padEnd(10)} ${x.rps.toFixed(0).padStart(7)} ${x.p50Ms.toFixed(2).padStart(8)} ${x.p99Ms.toFixed(2).padStart(8)} ${(x.serverTreeCpu?.toFixed(2) ?? '-').padStart(10)} ${(x.serverTreeCpu && x.rps > 0 ? ((x.serverTreeCpu / x.rps) * 1e6).toFixed(0) : '-').padStart(10)} ${x.clientCpu.toFixed(2).padStart(10)} ${String(x.non2xx).padStart(7)}`,
    );
  for (const p of r.peerCheck)
    out.push(
      `  FastAPI answer check ${p.model}: max |score diff| vs Ferry ${p.maxAbsDiff?.toExponential(2) ?? '-'}, same label ${p.sameLabel}`,
    );
  const cm = r.coresModel;
  if (cm) {
    out.push(
      `  capacity model (cores-model.ts): HTTP ${cm.input.httpUs.toFixed(0)} µs CPU/request (tiny-lr pinned), mlp-bench inference ${cm.input.inferUs.toFixed(0)} µs CPU/request`,
    );
    out.push(
      `  check on ${cm.check.cores.toFixed(2)} cores: 2 processes / 1 predicted ${cm.check.predictedRatio.toFixed(2)}x, measured ${cm.check.measuredRatio?.toFixed(2) ?? '-'}x`,
    );
    for (const t of cm.table)
      out.push(
        `  mlp-bench on ${String(t.cores).padStart(2)} cores: 1 process ${t.oneProcessRps.toFixed(0).padStart(7)} req/s; best ${String(t.bestProcesses).padStart(2)} processes ${t.bestRps.toFixed(0).padStart(7)} req/s (upper bound)`,
      );
  }
  for (const x of r.ratios) out.push(`  ${x.name}: ${x.value === null ? 'not measured' : `${x.value.toFixed(2)}x`}`);
  for (const n of r.notes) out.push(`  note: ${n}`);
  return out.join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const opts = parseOptions(process.argv.slice(2));
  if (opts === 'help') process.exit(0);
  const report = await runScalingBench(opts, (line) => process.stderr.write(`${line}\n`));
  const out = opts.out.replace(/\.json$/, '') + '.scaling.json';
  mkdirSync(join(out, '..'), { recursive: true });
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`${formatScaling(report)}\nwrote ${out}\n`);
  process.exit(0);
}
