#!/usr/bin/env node
// A model worker's round trip (issue 20): a `run` message shaped as Ferry's pool sends it (one input
// tensor) and a `result` shaped as the worker answers (one output tensor), between the main thread and
// a worker thread, with the tensors' buffers moved (transfer list) or copied (structured clone). Ferry
// copies buffers under TRANSFER_MIN_BYTES (serving/runtime/rpc.ts) and moves larger ones; this measures
// both ways at both sizes in the same run. `node bench/dist/thread-hop.js`; a section of `npm run bench`.
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

export interface HopRow {
  floats: number;
  way: 'moved' | 'copied';
  p50Us: number;
  /** The process's CPU time (both threads) per round trip. */
  cpuUs: number;
}

interface Shape {
  floats: number;
  way: HopRow['way'];
}

function answer(): void {
  const { way } = workerData as Shape;
  parentPort!.on('message', (m: { id: number; feeds: { x: { data: Float32Array } } }) => {
    const data = new Float32Array(10);
    const result = { type: 'result', id: m.id, outputs: { y: { dtype: 'float32', dims: [1, 10], data } }, inferMs: 0 };
    parentPort!.postMessage(result, way === 'moved' ? [data.buffer] : []);
  });
}

async function roundTrips(shape: Shape, n: number): Promise<HopRow> {
  const worker = new Worker(new URL(import.meta.url), { workerData: shape });
  try {
    const once = (id: number) =>
      new Promise<void>((resolve) => {
        const data = new Float32Array(shape.floats);
        const msg = {
          type: 'run',
          id,
          key: 'model@1.0.0#1',
          feeds: { x: { dtype: 'float32', dims: [1, shape.floats], data } },
        };
        worker.once('message', () => resolve());
        worker.postMessage(msg, shape.way === 'moved' ? [data.buffer] : []);
      });
    for (let i = 0; i < Math.min(500, n); i++) await once(i);
    const times: number[] = [];
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await once(i);
      times.push((performance.now() - t0) * 1000);
    }
    const cpu = process.cpuUsage(cpu0);
    times.sort((a, b) => a - b);
    return { ...shape, p50Us: times[Math.floor(n / 2)]!, cpuUs: (cpu.user + cpu.system) / n };
  } finally {
    await worker.terminate();
  }
}

/** Round trips at one row of mlp-bench (256 floats) and at 64 Ki floats, moved and copied, alternating. */
export async function runThreadHopBench(n: number, rounds = 2): Promise<HopRow[]> {
  const shapes: Shape[] = [256, 65536].flatMap((floats) =>
    (['moved', 'copied'] as const).map((way) => ({ floats, way })),
  );
  const all = new Map<string, HopRow[]>();
  for (let r = 0; r < rounds; r++)
    for (const s of shapes) {
      const row = await roundTrips(s, n);
      all.set(`${s.floats}/${s.way}`, [...(all.get(`${s.floats}/${s.way}`) ?? []), row]);
    }
  // Each shape's best round: what the round trip costs when the machine is not in the way.
  return [...all.values()].map((rows) => rows.reduce((a, b) => (b.p50Us < a.p50Us ? b : a)));
}

export function formatThreadHopBench(rows: readonly HopRow[]): string {
  const lines = ['model worker round trip, one request (µs; moved = transfer list, copied = structured clone)'];
  for (const r of rows)
    lines.push(
      `  ${String(r.floats).padStart(6)} floats  ${r.way.padEnd(6)}  p50 ${r.p50Us.toFixed(0).padStart(5)}  cpu ${r.cpuUs.toFixed(0).padStart(5)}`,
    );
  return lines.join('\n');
}

if (!isMainThread) answer();
else if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href)
  console.log(formatThreadHopBench(await runThreadHopBench(3000)));
