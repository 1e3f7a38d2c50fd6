// Streaming bench row: how many concurrent real-time audio sessions (silero-vad, 16 kHz, one
// 512-sample frame every 32 ms each) Ferry sustains on this machine, next to raw ONNX Runtime in
// the same run: one stream fed back frame by frame, and many streams stacked in one call (the upper
// bound sequence batching can reach). Event lag = event received − its frame's audio fully sent.
// A step keeps up when the median lag, and the median over the last tenth of the run, stay under
// LAG_LIMIT_MS: a server that falls behind real time has a backlog that grows to the end, while the
// spikes of a machine shared with other work (p95, reported) do not decide the verdict.
// Run alone: node bench/dist/streaming.js [--quick]; `npm run bench` runs it after the main suite.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import WebSocket from 'ws';
import { freePort, startNode, waitReady } from './processes.js';
import { FERRY_CLI, MODELS_DIR } from './paths.js';

const FRAME = 512;
const RATE = 16000;
const FRAME_MS = (FRAME * 1000) / RATE;
export const LAG_LIMIT_MS = 100;

export interface StreamingBench {
  rawSingleFramesPerS: number;
  rawBatched: { streams: number; framesPerS: number };
  /** Real-time sessions the raw numbers allow: frames/s × 32 ms. */
  rawSingleSessions: number;
  rawBatchedSessions: number;
  steps: Array<{ sessions: number; p50LagMs: number; p95LagMs: number; tailP50LagMs: number; keptUp: boolean }>;
  /** Most concurrent sessions that kept up. */
  sustainedSessions: number;
  /** sustainedSessions / rawSingleSessions and / rawBatchedSessions. */
  ratioToRawSingle: number;
  ratioToRawBatched: number;
}

function noise(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from(
    { length: n },
    () => ((s = (Math.imul(s, 48271) >>> 0) % 2147483647) / 2147483647 - 0.5) * 0.3,
  );
}

async function rawOrt(modelPath: string, seconds: number, streams: number): Promise<number> {
  const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const input = new ort.Tensor('float32', noise(FRAME * streams, 1), [streams, FRAME]);
  const sr = new ort.Tensor('int64', BigInt64Array.from([16000n]), []);
  let h = new ort.Tensor('float32', new Float32Array(128 * streams), [2, streams, 64]);
  let c = new ort.Tensor('float32', new Float32Array(128 * streams), [2, streams, 64]);
  let calls = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    const out = await session.run({ input, sr, h, c });
    h = out.hn as typeof h;
    c = out.cn as typeof c;
    calls++;
  }
  const s = (performance.now() - t0) / 1000;
  await session.release();
  return (calls * streams) / s;
}

/** `n` sessions streaming paced audio for `seconds`; returns the lag of every probability event. */
async function paced(url: string, n: number, seconds: number): Promise<Array<{ at: number; lag: number }>> {
  const frames = Math.round((seconds * 1000) / FRAME_MS);
  const lags: Array<{ at: number; lag: number }> = [];
  await Promise.all(
    Array.from(
      { length: n },
      (_, k) =>
        new Promise<void>((resolve, reject) => {
          const ws = new WebSocket(`${url}/v1/models/silero-vad/stream?format=f32&probabilityIntervalMs=32`);
          const sentAt: number[] = [];
          let got = 0;
          ws.on('error', reject);
          ws.on('close', (code, reason) =>
            code === 1000 ? resolve() : reject(new Error(`session ${k} closed ${code} ${String(reason)}`)),
          );
          ws.on('message', (d) => {
            const e = JSON.parse(String(d)) as { type: string };
            if (e.type === 'probability') lags.push({ at: got / frames, lag: performance.now() - sentAt[got++]! });
            if (e.type !== 'ready') return;
            const audio = noise(FRAME * frames, k + 7);
            // Sessions start spread over one frame, as independent clients would.
            const t0 = performance.now() + (k * FRAME_MS) / n;
            let i = 0;
            const tick = () => {
              const now = performance.now();
              while (i < frames && t0 + (i + 1) * FRAME_MS <= now) {
                ws.send(audio.subarray(i * FRAME, (i + 1) * FRAME));
                sentAt.push(performance.now());
                i++;
              }
              if (i < frames) setTimeout(tick, Math.max(1, t0 + (i + 1) * FRAME_MS - performance.now()));
              else ws.send(JSON.stringify({ type: 'end' }));
            };
            setTimeout(tick, Math.max(0, t0 + FRAME_MS - performance.now()));
          });
        }),
    ),
  );
  return lags;
}

const pct = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
};

export async function runStreamingBench(opts: { quick: boolean; log: (s: string) => void }): Promise<StreamingBench> {
  const modelPath = join(MODELS_DIR, 'silero-vad/4.0.0/model.onnx');
  const rawS = opts.quick ? 1 : 3;
  const rawSingleFramesPerS = await rawOrt(modelPath, rawS, 1);
  const batchedStreams = 64;
  const rawBatchedFps = await rawOrt(modelPath, rawS, batchedStreams);
  opts.log(
    `streaming: raw ORT ${rawSingleFramesPerS.toFixed(0)} frames/s (1 stream), ${rawBatchedFps.toFixed(0)} frames/s (${batchedStreams} streams per call)`,
  );

  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-stream-'));
  const port = await freePort();
  const cfgFile = join(dir, 'ferry.config.yaml');
  writeFileSync(
    cfgFile,
    `models: { dir: ${JSON.stringify(MODELS_DIR)}, only: [silero-vad] }\nserver: { host: 127.0.0.1, port: ${port} }\nlog: { level: warn }\nstreaming: { maxSessions: 4096, maxSessionsPerModel: 4096 }\n`,
  );
  const child = startNode('ferry-streaming', FERRY_CLI, ['serve', '-c', cfgFile]);
  const steps: StreamingBench['steps'] = [];
  try {
    const base = `http://127.0.0.1:${port}`;
    await waitReady(child, base, 60_000);
    const seconds = opts.quick ? 2 : 5;
    let sustained = 0;
    for (let n = 1; n <= 4096; n *= 2) {
      let lags: Array<{ at: number; lag: number }>;
      try {
        lags = await paced(base.replace('http', 'ws'), n, seconds);
      } catch (e) {
        opts.log(`streaming: ${n} sessions failed: ${(e as Error).message}`);
        steps.push({ sessions: n, p50LagMs: NaN, p95LagMs: NaN, tailP50LagMs: NaN, keptUp: false });
        break;
      }
      const all = lags.map((l) => l.lag);
      const p50 = pct(all, 0.5);
      const p95 = pct(all, 0.95);
      const tail = pct(
        lags.filter((l) => l.at >= 0.9).map((l) => l.lag),
        0.5,
      );
      const keptUp = p50 < LAG_LIMIT_MS && tail < LAG_LIMIT_MS;
      steps.push({ sessions: n, p50LagMs: p50, p95LagMs: p95, tailP50LagMs: tail, keptUp });
      opts.log(
        `streaming: ${n} sessions: event lag p50 ${p50.toFixed(1)} ms, p95 ${p95.toFixed(1)} ms, last tenth p50 ${tail.toFixed(1)} ms → ${keptUp ? 'real time' : 'behind'}`,
      );
      if (!keptUp) break;
      sustained = n;
    }
    const rawSingleSessions = (rawSingleFramesPerS * FRAME_MS) / 1000;
    const rawBatchedSessions = (rawBatchedFps * FRAME_MS) / 1000;
    return {
      rawSingleFramesPerS,
      rawBatched: { streams: batchedStreams, framesPerS: rawBatchedFps },
      rawSingleSessions,
      rawBatchedSessions,
      steps,
      sustainedSessions: sustained,
      ratioToRawSingle: sustained / rawSingleSessions,
      ratioToRawBatched: sustained / rawBatchedSessions,
    };
  } finally {
    await child.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function formatStreaming(r: StreamingBench): string {
  const f = (x: number) => x.toFixed(0);
  return [
    'Streaming audio (silero-vad, 16 kHz, 32 ms frames; real time = median event lag, overall and at the end, < 100 ms)',
    `  raw ONNX Runtime, 1 stream, state fed back     ${f(r.rawSingleFramesPerS)} frames/s  = ${f(r.rawSingleSessions)} real-time streams`,
    `  raw ONNX Runtime, ${r.rawBatched.streams} streams per call          ${f(r.rawBatched.framesPerS)} frames/s  = ${f(r.rawBatchedSessions)} real-time streams`,
    `  Ferry WebSocket sessions sustained in real time  ${r.sustainedSessions}  (×${r.ratioToRawSingle.toFixed(2)} of raw 1-stream, ×${r.ratioToRawBatched.toFixed(2)} of raw batched)`,
    `  steps: ${r.steps.map((s) => `${s.sessions}→${Number.isNaN(s.p50LagMs) ? 'failed' : `p50 ${s.p50LagMs.toFixed(0)}/p95 ${s.p95LagMs.toFixed(0)} ms`}`).join(', ')}`,
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await runStreamingBench({
    quick: process.argv.includes('--quick'),
    log: (s) => process.stderr.write(`${s}\n`),
  });
  process.stdout.write(`${formatStreaming(r)}\n${JSON.stringify(r)}\n`);
  process.exit(0);
}
