// Raw ONNX Runtime throughput in one process: one session with Ferry's session options, input
// tensors encoded once up front, then `await session.run` in a loop for a fixed time.
// Usage: node raw-ort.js '<RawSpec JSON>'; prints one RawResult JSON line.
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { machineBusySeconds } from './proc-stat.js';
import { summarize } from './stats.js';
import { encodedBatch, modelInfo, modelInfoAt } from './workloads.js';

export interface RawSpec {
  model: string;
  /** The version folder (the scratch repository's copy); default: the newest version under models/. */
  modelDir?: string;
  batch: number;
  seconds: number;
  warmupSeconds: number;
  sessionOptions: Record<string, unknown>;
}

export interface RawResult {
  model: string;
  batch: number;
  calls: number;
  seconds: number;
  callsPerS: number;
  rowsPerS: number;
  p50CallMs: number;
  p99CallMs: number;
  /** CPU used by everything else on the machine meanwhile, in cores (see LoadResult.otherCpu). */
  otherCpu: number | null;
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '') as RawSpec;
  const info = spec.modelDir !== undefined ? modelInfoAt(spec.model, spec.modelDir) : modelInfo(spec.model);
  const session = await ort.InferenceSession.create(
    info.modelPath,
    spec.sessionOptions as ort.InferenceSession.SessionOptions,
  );
  const feeds = Object.fromEntries(
    Object.entries(encodedBatch(info, spec.batch)).map(([k, t]) => [
      k,
      new ort.Tensor(t.dtype as ort.Tensor.Type, t.data as never, t.dims),
    ]),
  );

  const warmEnd = performance.now() + spec.warmupSeconds * 1000;
  do await session.run(feeds);
  while (performance.now() < warmEnd);

  const times: number[] = [];
  const cpu0 = process.cpuUsage();
  const machine0 = machineBusySeconds();
  const t0 = performance.now();
  const end = t0 + spec.seconds * 1000;
  let now = t0;
  while (now < end) {
    const s = now;
    await session.run(feeds);
    now = performance.now();
    times.push(now - s);
  }
  const seconds = (now - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const machine1 = machineBusySeconds();
  const lat = summarize(times);
  const result: RawResult = {
    model: spec.model,
    batch: spec.batch,
    calls: times.length,
    seconds,
    callsPerS: times.length / seconds,
    rowsPerS: (times.length * spec.batch) / seconds,
    p50CallMs: lat.p50Ms,
    p99CallMs: lat.p99Ms,
    otherCpu:
      machine0 !== null && machine1 !== null
        ? Math.max(0, (machine1 - machine0) / seconds - (cpu.user + cpu.system) / 1e6 / seconds)
        : null,
  };
  await session.release();
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

await main();
