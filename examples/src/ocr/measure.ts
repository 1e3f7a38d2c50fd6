// Measures runOcr's time per image on this machine with ONNX Runtime called directly, for the
// images the tests render, at one and two intra-op threads, and the time per request through the
// server's /v1 predict. The card quotes the figures.
// Run: node examples/dist/ocr/measure.js [--runs 5]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runOcr } from '@ferry/core';
import { createServer, loadConfig } from '@ferry/server';
import { versionDir, writeExample } from '../lib/example-model.js';
import { isMain } from '../lib/main.js';
import { NAME, ocr } from './build.js';
import { openOcrVersion } from './pipeline.js';
import { decodeImage, renderPng, type RenderSpec } from './render.js';

export const MEASURED_IMAGES: Array<{ label: string; spec: RenderSpec }> = [
  {
    label: '720×160, one line (64 px)',
    spec: { width: 720, height: 160, spans: [{ text: 'HELLO 2026', x: 30, y: 102, size: 64 }] },
  },
  {
    label: '640×240, two lines (36 px)',
    spec: {
      width: 640,
      height: 240,
      spans: [
        { text: 'Ferry carries models', x: 30, y: 80, size: 36 },
        { text: 'into production', x: 30, y: 170, size: 36 },
      ],
    },
  },
  {
    label: '1600×300, one line (80 px), detector input 960×192',
    spec: { width: 1600, height: 300, spans: [{ text: 'Small print 42', x: 50, y: 150, size: 80 }] },
  },
  {
    label: '1200×900, 12 lines (28 px)',
    spec: {
      width: 1200,
      height: 900,
      spans: Array.from({ length: 12 }, (_, i) => ({
        text: `Line ${i + 1}: ferry carries models into production`,
        x: 40,
        y: 60 + i * 70,
        size: 28,
      })),
    },
  },
];

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export interface OcrTiming {
  image: string;
  threads: number;
  ms: number;
  detectMs: number;
  recognizeMs: number;
  lines: number;
}

export async function measureOcr(
  runs: number,
): Promise<{ direct: OcrTiming[]; served: Array<{ image: string; ms: number }> }> {
  const repo = mkdtempSync(join(tmpdir(), 'ferry-ocr-measure-'));
  try {
    await writeExample(ocr, repo);
    const dir = versionDir(ocr, repo);
    const rows: OcrTiming[] = [];
    for (const threads of [1, 2]) {
      const v = await openOcrVersion(dir, { intraOpThreads: threads });
      // Time inside each network, so that the rest (resizing, DB post-processing, crops, CTC) shows.
      let detectMs = 0;
      let recognizeMs = 0;
      const timed =
        (run: typeof v.runners.detect, add: (ms: number) => void): typeof run =>
        async (t) => {
          const t0 = performance.now();
          try {
            return await run(t);
          } finally {
            add(performance.now() - t0);
          }
        };
      const runners = {
        detect: timed(v.runners.detect, (ms) => {
          detectMs += ms;
        }),
        recognize: timed(v.runners.recognize, (ms) => {
          recognizeMs += ms;
        }),
      };
      for (const { label, spec } of MEASURED_IMAGES) {
        const image = await decodeImage(await renderPng(spec));
        const lines = (await runOcr(image, runners, v.params)).length;
        const times: number[] = [];
        const det: number[] = [];
        const rec: number[] = [];
        for (let r = 0; r < runs; r++) {
          detectMs = 0;
          recognizeMs = 0;
          const t0 = performance.now();
          await runOcr(image, runners, v.params);
          times.push(performance.now() - t0);
          det.push(detectMs);
          rec.push(recognizeMs);
        }
        rows.push({
          image: label,
          threads,
          ms: Math.round(median(times)),
          detectMs: Math.round(median(det)),
          recognizeMs: Math.round(median(rec)),
          lines,
        });
      }
      await v.dispose();
    }
    const served: Array<{ image: string; ms: number }> = [];
    const server = await createServer(
      loadConfig({ env: {}, overrides: { 'models.dir': repo, 'runtime.workers': 1, 'log.level': 'silent' } }),
      { logger: false },
    );
    try {
      await server.loaded;
      for (const { label, spec } of MEASURED_IMAGES) {
        const payload = { instances: [{ image: (await renderPng(spec)).toString('base64') }] };
        const times: number[] = [];
        for (let r = 0; r <= runs; r++) {
          const t0 = performance.now();
          const res = await server.app.inject({ method: 'POST', url: `/v1/models/${NAME}/predict`, payload });
          if (res.statusCode !== 200) throw new Error(`${label}: ${res.statusCode} ${res.body}`);
          if (r > 0) times.push(performance.now() - t0);
        }
        served.push({ image: label, ms: Math.round(median(times)) });
      }
    } finally {
      await server.close();
    }
    return { direct: rows, served };
  } finally {
    rmSync(repo, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
  const { direct, served } = await measureOcr(Number(values.runs));
  for (const r of direct)
    console.log(
      `direct: ${r.image} | ${r.threads} thread(s) | ${r.ms} ms (detector ${r.detectMs}, recogniser ${r.recognizeMs}) | ${r.lines} lines`,
    );
  for (const r of served) console.log(`served: ${r.image} | ${r.ms} ms per request`);
}
