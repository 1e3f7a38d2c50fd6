// Transformer rows of `npm run bench` (issue 17), on models/spam-transformer, every figure a ratio against a
// baseline measured in the same run:
//   - ragged batching on vs off: 32 concurrent clients, texts of 8–128 tokens (the model's limit), through the
//     whole predict path (validation, tokenizer, batcher, worker thread) of an in-process server;
//   - padding overhead (padded tokens ÷ real tokens) of the ragged run, with length-aware grouping;
//   - INT8 (`ferry quantize`) vs FP32: rows/s of ONNX Runtime at batch 1 and at batch 32 of mixed lengths,
//     file size, and held-out accuracy of both.
// Standalone: node bench/dist/transformer.js [--seconds 8]
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { spawnSync } from 'node:child_process';
import * as ort from 'onnxruntime-node';
import { parse, stringify } from 'yaml';
import { compileEncoder, type Manifest, type TensorValue } from '@ferry/core';
import { createServer, loadConfig } from '@ferry/server';
import { corpusRows } from '../../examples/dist/spam-transformer/corpus-export.js';
import { FERRY_CLI, MODELS_DIR } from './paths.js';
import { mulberry32 } from './prng.js';

export interface TransformerBench {
  model: string;
  ragged: { on: Load; off: Load; ratio: number; paddingOverhead: number; bar: string };
  int8: {
    fp32: Speed;
    int8: Speed;
    batch1Ratio: number;
    batch32Ratio: number;
    sizeBytes: { fp32: number; int8: number };
    accuracyDropPoints: number;
    bar: string;
  };
}
interface Load {
  requests: number;
  seconds: number;
  rps: number;
  meanBatchRows: number;
}
interface Speed {
  batch1RowsPerS: number;
  batch32RowsPerS: number;
  accuracy: number;
}

const MODEL = 'spam-transformer';
const VERSION = '1.0.0';

/** Held-out texts cut to a random number of words so they tokenize to 8–128 tokens. */
function mixedTexts(n: number, seed: number): string[] {
  const held = corpusRows().filter((r) => r.split === 'heldOut');
  const rnd = mulberry32(seed);
  return Array.from({ length: n }, (_, i) => {
    const words = held[i % held.length]!.text.split(/\s+/).filter(Boolean);
    return words.slice(0, 6 + Math.floor(rnd() * 110)).join(' ');
  });
}

async function load(repo: string, served: string, texts: string[], seconds: number, clients: number): Promise<Load> {
  const server = await createServer(
    loadConfig({
      env: {},
      overrides: {
        'models.dir': repo,
        'runtime.workers': 1,
        'log.level': 'silent',
        'store.url': 'sqlite::memory:',
        'server.port': 0,
        'server.host': '127.0.0.1',
      },
    }),
    { logger: false },
  );
  try {
    await server.loaded;
    let next = 0;
    let done = 0;
    const end = performance.now() + seconds * 1000;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (performance.now() < end) {
          const text = texts[next++ % texts.length]!;
          const r = await server.app.inject({
            method: 'POST',
            url: `/v1/models/${served}/predict`,
            payload: { instances: [{ text }] },
          });
          if (r.statusCode !== 200) throw new Error(`${served}: ${r.statusCode} ${r.body}`);
          done++;
        }
      }),
    );
    const elapsed = (performance.now() - t0) / 1000;
    const metrics = (await server.app.inject({ method: 'GET', url: '/metrics' })).body;
    const value = (name: string, extra = '') =>
      Number(
        metrics
          .split('\n')
          .find((l) => l.startsWith(`${name}{`) && l.includes(`model="${served}"`) && l.includes(extra))
          ?.split(' ')
          .pop() ?? NaN,
      );
    const meanBatchRows = value('ferry_batch_size_sum') / value('ferry_batch_size_count');
    const padded = value('ferry_batch_tokens_total', 'kind="padded"');
    const real = value('ferry_batch_tokens_total', 'kind="real"');
    return Object.assign(
      { requests: done, seconds: elapsed, rps: done / elapsed, meanBatchRows },
      Number.isFinite(padded) ? { paddingOverhead: padded / real } : {},
    );
  } finally {
    await server.close();
  }
}

/** An ONNX Runtime session of one build, fed batches encoded by Ferry's own encoder. */
async function openBuild(path: string, manifest: Manifest, tokenizer: unknown, texts: string[]) {
  const session = await ort.InferenceSession.create(path, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const encoder = compileEncoder(manifest, { tokenizer });
  const feeds = (f: Record<string, TensorValue>) =>
    Object.fromEntries(
      Object.entries(f).map(([n, t]) => [n, new ort.Tensor(t.dtype as 'int64', t.data as BigInt64Array, t.dims)]),
    );
  const batches = new Map<number, Array<Record<string, ort.Tensor>>>();
  for (const size of [1, 32]) {
    const out: Array<Record<string, ort.Tensor>> = [];
    for (let i = 0; i + size <= texts.length; i += size)
      out.push(feeds(encoder.encode(texts.slice(i, i + size).map((text) => ({ text })))));
    batches.set(size, out);
  }
  return {
    /** Rows/s over every batch of `size` (after two warm-up runs). */
    async rate(size: number): Promise<number> {
      const bs = batches.get(size)!;
      for (const b of bs.slice(0, 2)) await session.run(b, ['logits']);
      const t0 = performance.now();
      for (const b of bs) await session.run(b, ['logits']);
      return (bs.length * size) / ((performance.now() - t0) / 1000);
    },
    /** Accuracy on the held-out messages (full texts, cut by the tokenizer), in batches of 32. */
    async accuracy(held: ReadonlyArray<{ text: string }>, labels: readonly number[]): Promise<number> {
      let correct = 0;
      for (let i = 0; i < held.length; i += 32) {
        const part = held.slice(i, i + 32);
        const out = await session.run(feeds(encoder.encode(part.map((r) => ({ text: r.text })))), ['logits']);
        const l = out.logits!.data as Float32Array;
        part.forEach((_, k) => {
          if ((l[k * 2 + 1]! > l[k * 2]! ? 1 : 0) === labels[i + k]) correct++;
        });
      }
      return correct / held.length;
    },
    release: () => session.release(),
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** FP32 and INT8 measured in alternating rounds (the machine's load changes; alternation keeps the ratio fair). */
async function compareBuilds(
  fp32Path: string,
  int8Path: string,
  manifest: Manifest,
  tokenizer: unknown,
  texts: string[],
  held: ReadonlyArray<{ text: string }>,
  labels: readonly number[],
): Promise<{ fp32: Speed; int8: Speed }> {
  const a = await openBuild(fp32Path, manifest, tokenizer, texts);
  const b = await openBuild(int8Path, manifest, tokenizer, texts);
  const r = { a1: [] as number[], b1: [] as number[], a32: [] as number[], b32: [] as number[] };
  for (let round = 0; round < 3; round++) {
    r.a1.push(await a.rate(1));
    r.b1.push(await b.rate(1));
    r.a32.push(await a.rate(32));
    r.b32.push(await b.rate(32));
  }
  const out = {
    fp32: { batch1RowsPerS: median(r.a1), batch32RowsPerS: median(r.a32), accuracy: await a.accuracy(held, labels) },
    int8: { batch1RowsPerS: median(r.b1), batch32RowsPerS: median(r.b32), accuracy: await b.accuracy(held, labels) },
  };
  await a.release();
  await b.release();
  return out;
}

export async function runTransformerBench(
  opts: { seconds: number },
  log: (line: string) => void = () => {},
): Promise<TransformerBench> {
  const work = mkdtempSync(join(tmpdir(), 'ferry-bench-tf-'));
  try {
    const src = join(MODELS_DIR, MODEL, VERSION);
    const repo = join(work, 'models');
    // The model as shipped (ragged batching on) and a copy without `batching.padding` (ragged batching off:
    // only requests of the same token length share a batch).
    cpSync(src, join(repo, MODEL, VERSION), { recursive: true });
    const manifest = parse(readFileSync(join(src, 'ferry.yaml'), 'utf8')) as Manifest;
    const off = { ...manifest, name: `${MODEL}-off`, batching: { ...manifest.batching, padding: undefined } };
    delete (off.batching as { padding?: unknown }).padding;
    cpSync(src, join(repo, `${MODEL}-off`, VERSION), { recursive: true });
    writeFileSync(join(repo, `${MODEL}-off`, VERSION, 'ferry.yaml'), stringify(off));
    const texts = mixedTexts(512, 17);

    log(`transformer: ragged batching on, 32 clients, ${opts.seconds} s`);
    const on = (await load(repo, MODEL, texts, opts.seconds, 32)) as Load & { paddingOverhead?: number };
    log(`transformer: ragged batching off, 32 clients, ${opts.seconds} s`);
    const offLoad = await load(repo, `${MODEL}-off`, texts, opts.seconds, 32);

    // INT8 with `ferry quantize` (MatMul weights, per channel), validated on the held-out texts.
    const q = join(work, 'model.int8.onnx');
    const heldPath = join(work, 'held-out.jsonl');
    const held = corpusRows().filter((r) => r.split === 'heldOut');
    writeFileSync(heldPath, held.map((r) => JSON.stringify({ text: r.text, label: r.label })).join('\n'));
    log('transformer: ferry quantize');
    const qr = spawnSync(
      process.execPath,
      [FERRY_CLI, 'quantize', join(src, 'model.onnx'), q, '--min-elements', '1024', '--json'],
      { encoding: 'utf8' },
    );
    if (qr.status !== 0) throw new Error(`ferry quantize failed: ${qr.stderr}`);
    const tokenizer = JSON.parse(readFileSync(join(src, 'tokenizer.json'), 'utf8')) as unknown;
    const labels = held.map((r) => (r.label === 'spam' ? 1 : 0));
    log('transformer: FP32 vs INT8 in ONNX Runtime');
    const { fp32, int8 } = await compareBuilds(
      join(src, 'model.onnx'),
      q,
      manifest,
      tokenizer,
      texts.slice(0, 128),
      held,
      labels,
    );
    const ratio = on.rps / offLoad.rps;
    const overhead = on.paddingOverhead ?? NaN;
    const b32 = int8.batch32RowsPerS / fp32.batch32RowsPerS;
    const drop = (fp32.accuracy - int8.accuracy) * 100;
    return {
      model: `${MODEL}@${VERSION}`,
      ragged: {
        on,
        off: offLoad,
        ratio,
        paddingOverhead: overhead,
        bar: `ragged on/off ≥ 2×: ${ratio >= 2 ? 'met' : 'NOT met'}; padding overhead ≤ 1.3: ${overhead <= 1.3 ? 'met' : 'NOT met'}`,
      },
      int8: {
        fp32,
        int8,
        batch1Ratio: int8.batch1RowsPerS / fp32.batch1RowsPerS,
        batch32Ratio: b32,
        sizeBytes: { fp32: statSync(join(src, 'model.onnx')).size, int8: statSync(q).size },
        accuracyDropPoints: drop,
        bar: `INT8/FP32 at batch 32 ≥ 2×: ${b32 >= 2 ? 'met' : 'NOT met'}; accuracy drop ≤ 0.5 pt: ${drop <= 0.5 ? 'met' : 'NOT met'}`,
      },
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export function formatTransformerBench(b: TransformerBench): string {
  const r = b.ragged;
  const i = b.int8;
  const f = (x: number, d = 1) => x.toFixed(d);
  return [
    `transformer (${b.model}, texts of 8–128 tokens)`,
    `  ragged batching, 32 clients: on ${f(r.on.rps)} req/s (mean batch ${f(r.on.meanBatchRows)} rows), off ${f(r.off.rps)} req/s (mean batch ${f(r.off.meanBatchRows)}) → ${f(r.ratio, 2)}×`,
    `  padding overhead with length-aware grouping: ${f(r.paddingOverhead, 3)} padded ÷ real tokens`,
    `  INT8 vs FP32 (ONNX Runtime, 1 thread): batch 1 ${f(i.int8.batch1RowsPerS)} vs ${f(i.fp32.batch1RowsPerS)} rows/s → ${f(i.batch1Ratio, 2)}×; batch 32 ${f(i.int8.batch32RowsPerS)} vs ${f(i.fp32.batch32RowsPerS)} rows/s → ${f(i.batch32Ratio, 2)}×`,
    `  size ${f(i.sizeBytes.fp32 / 1e6, 2)} MB → ${f(i.sizeBytes.int8 / 1e6, 2)} MB; held-out accuracy ${f(i.fp32.accuracy * 100, 2)}% → ${f(i.int8.accuracy * 100, 2)}% (drop ${f(i.accuracyDropPoints, 2)} pt)`,
    `  bars: ${r.bar}; ${i.bar}`,
  ].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '8' }, out: { type: 'string' } } });
  const b = await runTransformerBench({ seconds: Number(values.seconds) }, (l) => process.stderr.write(`${l}\n`));
  process.stdout.write(`${formatTransformerBench(b)}\n`);
  if (values.out) writeFileSync(values.out, `${JSON.stringify(b, null, 2)}\n`);
}
