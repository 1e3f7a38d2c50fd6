// Measures Silero VAD's cost per 512-sample window on this machine: ONNX Runtime called directly
// (one intra-op thread, state fed back), and one window per request through Ferry's /v1 predict
// (JSON, validation, worker thread). The card quotes the figures.
// Run: node examples/dist/silero-vad/measure.js [--windows 2000]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { frameSignal } from '@ferry/core';
import { createServer, loadConfig } from '@ferry/server';
import { isMain } from '../lib/main.js';
import { NAME, SAMPLE_RATE, sileroVad, VERSION, WINDOW } from './build.js';
import { openVadSession, ortVadRunner } from './ort-runner.js';
import { speechProbabilities } from './stream.js';

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function measureVad(
  windows: number,
  placement?: 'inline' | 'worker',
): Promise<{ msPerFrame: number; httpMsPerFrame: number }> {
  const files = await sileroVad.build();
  const repo = mkdtempSync(join(tmpdir(), 'ferry-vad-measure-'));
  try {
    const dir = join(repo, NAME, VERSION);
    mkdirSync(dir, { recursive: true });
    for (const [f, c] of Object.entries(files)) writeFileSync(join(dir, f), c);
    if (placement)
      writeFileSync(join(dir, 'ferry.yaml'), `${files['ferry.yaml'] as string}runtime: { placement: ${placement} }\n`);
    let seed = 1;
    const audio = Float32Array.from(
      { length: windows * WINDOW },
      () => ((seed = (Math.imul(seed, 48271) >>> 0) % 2147483647) / 2147483647 - 0.5) * 0.2,
    );
    const frames = frameSignal(audio, WINDOW);

    const run = ortVadRunner(await openVadSession(join(dir, 'model.onnx')));
    await speechProbabilities(frames.slice(0, 50), run);
    const rounds: number[] = [];
    for (let r = 0; r < 3; r++) {
      const t0 = performance.now();
      await speechProbabilities(frames, run);
      rounds.push((performance.now() - t0) / frames.length);
    }

    const cfg = loadConfig({ env: {}, overrides: { 'models.dir': repo, 'runtime.workers': 1, 'log.level': 'silent' } });
    const server = await createServer(cfg, { logger: false });
    await server.loaded;
    const zeroState = (): number[][][] => [[new Array<number>(64).fill(0)], [new Array<number>(64).fill(0)]];
    let h = zeroState();
    let c = zeroState();
    const httpFrames = frames.slice(0, Math.min(frames.length, 1000));
    const t0 = performance.now();
    for (const f of httpFrames) {
      const r = await server.app.inject({
        method: 'POST',
        url: `/v1/models/${NAME}/predict`,
        payload: { instances: [{ input: [Array.from(f)], sr: SAMPLE_RATE, h, c }] },
      });
      const p = r.json().predictions[0] as { hn: number[][][]; cn: number[][][] };
      h = p.hn;
      c = p.cn;
    }
    const httpMsPerFrame = (performance.now() - t0) / httpFrames.length;
    await server.close();
    return { msPerFrame: median(rounds), httpMsPerFrame };
  } finally {
    rmSync(repo, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: { windows: { type: 'string', default: '2000' }, placement: { type: 'string' } },
  });
  const placement = values.placement === 'inline' || values.placement === 'worker' ? values.placement : undefined;
  const r = await measureVad(Number(values.windows), placement);
  console.log(
    `silero-vad: ${r.msPerFrame.toFixed(3)} ms per ${WINDOW}-sample window (ONNX Runtime, 1 thread); ${r.httpMsPerFrame.toFixed(2)} ms per window through /v1 predict (placement: ${placement ?? 'manifest default'})`,
  );
}
