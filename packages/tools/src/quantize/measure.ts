// Measures what INT8 quantisation buys and costs here, in one process: rows/s of the float and the
// quantised model on the same input, interleaved round by round so that a noisy machine slows both
// alike; file sizes; the output difference; a tiny model where quantisation does not pay; and, when
// the spam example is built, its accuracy before and after. Ratios, never absolute-time assertions.
// Run: node packages/server/dist/quantize/measure.js [--json] [--duration-ms 4000]
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as ort from 'onnxruntime-node';
import type { Instance, TensorValue } from '@ferry/core';
import { describeModel, GraphBuilder } from '../onnx/index.js';
import { readManifest } from '@ferry/server';
import { buildMlp, gaussian, seededRandom } from './mlp-model.js';
import { quantizeModel, type QuantFormat, type QuantizeOptions } from './quantize-model.js';
import { instancesSource, parseValidationData } from './validation-data.js';
import { validate } from './validate.js';

export interface MeasureOptions {
  /** Repository root holding `models/`. Default: the checkout this file was built in. */
  repoRoot?: string;
  /** Batch sizes to time mlp-bench at. Default [32, 1]. */
  batchSizes?: readonly number[];
  /** Time per model per batch size, split over interleaved rounds. Default 3000 ms. */
  durationMs?: number;
  /** Rounds the time is split into. Default 10. */
  rounds?: number;
  /** Also time the `contrib` and `qdq` forms at the first batch size. Default true. */
  compareFormats?: boolean;
  /** Quantisation options for the main figures. Default: the quantiser's defaults. */
  quantize?: QuantizeOptions;
  sessionOptions?: ort.InferenceSession.SessionOptions;
  /** Time one n×n MatMul per size, float against int8, to show where quantisation starts to pay. Default [64, 128, 256,
   * 512, 1024]; [] to skip.
   */
  sweepSizes?: readonly number[];
  /** Rows of spam validation data to use at most. Default 5000. */
  spamRows?: number;
  /** Progress lines; default silent. */
  log?: (line: string) => void;
}

export interface ThroughputFigure {
  batchSize: number;
  fp32RowsPerS: number;
  int8RowsPerS: number;
  /**
   * Median over rounds of (int8 rows/s ÷ fp32 rows/s in that round). The median, because a burst of
   * load from other processes lands on one round's pair, not on the whole run.
   */
  speedup: number;
  /** Smallest and largest per-round ratio: how much the machine's noise moved it. */
  speedupRange: [number, number];
}

export interface QuantizationMeasurement {
  environment: { node: string; onnxruntime: string; cpus: number; cpuModel: string };
  mlpBench: {
    source: 'models/mlp-bench/1.0.0/model.onnx' | 'built in process (seeded, same shape)';
    format: QuantFormat;
    perChannel: boolean;
    fp32Bytes: number;
    int8Bytes: number;
    sizeRatio: number;
    quantizedNodes: string[];
    floatNodes: string[];
    throughput: ThroughputFigure[];
    /** Other graph forms at the first batch size, each against fp32 in its own interleaved run. */
    formats: Array<{ format: QuantFormat; speedup: number }>;
    /** On 1024 random rows (its outputs mean nothing, so no accuracy). */
    maxAbsDiff: number;
    top1Agreement: number;
  };
  /** A 64→128→10 MLP with every layer forced to INT8: where quantisation does not pay. */
  tinyModel: { sizes: number[]; fp32Bytes: number; int8Bytes: number; throughput: ThroughputFigure[] };
  /** One n×n MatMul, every size forced to INT8: speedup at batch 1 and 32. */
  sweep: Array<{ n: number; elements: number; speedupAt1: number; speedupAt32: number }>;
  spam:
    | null
    | {
        rows: number;
        /** Where the labelled rows came from. */
        dataFile: string;
        batchSize: number;
        fp32Accuracy: number;
        int8Accuracy: number;
        accuracyDelta: number;
        top1Agreement: number;
        /** Largest |Δ probability|. */
        maxAbsDiff: number;
        sizeRatio: number;
        quantizedNodes: number;
        /** On encoded feature tensors (the text preprocessing, which runs before, is not timed). */
        throughput: ThroughputFigure[];
      }
    | { skipped: string };
  /** The issue's bars: speedup ≥ 1.5× at batch 32, file ≥ 3× smaller, spam accuracy delta ≤ 0.005. */
  bars: { speedupAt32: boolean | null; sizeRatio: boolean; spamDelta: boolean | null };
}

const DEFAULT_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

function randomRows(rows: number, width: number, seed: number): Float32Array {
  const normal = gaussian(seededRandom(seed));
  return Float32Array.from({ length: rows * width }, () => normal());
}

async function timeInterleaved(
  a: ort.InferenceSession,
  b: ort.InferenceSession,
  feeds: Record<string, ort.Tensor>,
  rowsPerRun: number,
  durationMs: number,
  rounds: number,
): Promise<ThroughputFigure> {
  for (let i = 0; i < 5; i++) {
    await a.run(feeds);
    await b.run(feeds);
  }
  const slice = durationMs / rounds;
  const total = { a: { rows: 0, ms: 0 }, b: { rows: 0, ms: 0 } };
  const ratios: number[] = [];
  const timeOne = async (s: ort.InferenceSession): Promise<{ rows: number; ms: number }> => {
    const t0 = performance.now();
    let runs = 0;
    do {
      await s.run(feeds);
      runs++;
    } while (performance.now() - t0 < slice);
    return { rows: runs * rowsPerRun, ms: performance.now() - t0 };
  };
  for (let r = 0; r < rounds; r++) {
    // Alternate which goes first so that neither always follows the other's cache state.
    const [ra, rb] =
      r % 2 === 0 ? [await timeOne(a), await timeOne(b)] : (([y, x]) => [x, y])([await timeOne(b), await timeOne(a)]);
    total.a.rows += ra!.rows;
    total.a.ms += ra!.ms;
    total.b.rows += rb!.rows;
    total.b.ms += rb!.ms;
    ratios.push(rb!.rows / rb!.ms / (ra!.rows / ra!.ms));
  }
  const fp32 = (total.a.rows / total.a.ms) * 1000;
  const int8 = (total.b.rows / total.b.ms) * 1000;
  const sorted = [...ratios].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return {
    batchSize: rowsPerRun,
    fp32RowsPerS: fp32,
    int8RowsPerS: int8,
    speedup: median,
    speedupRange: [Math.min(...ratios), Math.max(...ratios)],
  };
}

async function throughput(
  fp32Bytes: Uint8Array,
  int8Bytes: Uint8Array,
  batchSizes: readonly number[],
  o: Required<Pick<MeasureOptions, 'durationMs' | 'rounds'>> & {
    sessionOptions: ort.InferenceSession.SessionOptions;
    /** Input tensors for n rows; default random normal rows for the model's single float input. */
    feeds?: (rows: number) => Record<string, TensorValue>;
  },
): Promise<ThroughputFigure[]> {
  const input = describeModel(fp32Bytes).inputs[0]!;
  const a = await ort.InferenceSession.create(fp32Bytes, o.sessionOptions);
  const b = await ort.InferenceSession.create(int8Bytes, o.sessionOptions);
  try {
    const out: ThroughputFigure[] = [];
    for (const n of batchSizes) {
      const feeds: Record<string, ort.Tensor> = {};
      if (o.feeds) {
        for (const [name, t] of Object.entries(o.feeds(n)))
          feeds[name] = new ort.Tensor(t.dtype as ort.Tensor.Type, t.data as Float32Array, t.dims);
      } else {
        const width = input.shape![1]!;
        feeds[input.name] = new ort.Tensor('float32', randomRows(n, width, 7), [n, width]);
      }
      const rows = Object.values(feeds)[0]!.dims[0]!;
      out.push(await timeInterleaved(a, b, feeds, rows, o.durationMs, o.rounds));
    }
    return out;
  } finally {
    await a.release();
    await b.release();
  }
}

async function sweep(
  sizes: readonly number[],
  timing: Required<Pick<MeasureOptions, 'durationMs' | 'rounds'>> & {
    sessionOptions: ort.InferenceSession.SessionOptions;
  },
  q: QuantizeOptions,
): Promise<QuantizationMeasurement['sweep']> {
  const out: QuantizationMeasurement['sweep'] = [];
  for (const n of sizes) {
    const g = new GraphBuilder({ name: `matmul-${n}` });
    g.input('x', 'float32', ['batch', n])
      .output('y', 'float32', ['batch', n])
      .floatInitializer(
        'w',
        randomRows(n, n, n).map((v) => v / Math.sqrt(n)),
        [n, n],
      );
    g.node('MatMul', ['x', 'w'], ['y']);
    const fp32 = g.toBytes();
    const [one, many] = await throughput(fp32, quantizeModel(fp32, { ...q, minElements: 0 }).bytes, [1, 32], timing);
    out.push({ n, elements: n * n, speedupAt1: one!.speedup, speedupAt32: many!.speedup });
  }
  return out;
}

function findSpamData(dir: string): string | null {
  const files = readdirSync(dir).filter((f) => /\.(jsonl|ndjson)$/.test(f));
  // Prefer held-out data over the drift reference, which may be training rows.
  const rank = (f: string): number => (/test|held|valid|eval/.test(f) ? 0 : /reference/.test(f) ? 2 : 1);
  for (const f of files.sort((x, y) => rank(x) - rank(y))) {
    const first = readFileSync(join(dir, f), 'utf8').split('\n', 1)[0] ?? '';
    try {
      if ((JSON.parse(first) as Record<string, unknown>).label !== undefined) return join(dir, f);
    } catch {
      /* not JSON Lines */
    }
  }
  return null;
}

interface Labelled {
  text: string;
  label: string;
}

/**
 * Labelled spam rows: a labelled JSON Lines file in the version folder when there is one, otherwise the
 * held-out split the example trained without (examples/src/spam: seeded stratified 20%, seed 2002),
 * rebuilt from the corpus package by the built examples. Neither exists before `npm run build`.
 */
async function spamRows(root: string, dir: string): Promise<{ rows: Labelled[] | null; from: string }> {
  const file = findSpamData(dir);
  if (file) return { rows: null, from: file };
  const data = join(root, 'examples', 'dist', 'spam', 'data.js');
  if (!existsSync(data)) return { rows: null, from: '' };
  const m = (await import(pathToFileURL(data).href)) as {
    loadCorpus(): { messages: Labelled[] };
    stratifiedSplit(items: readonly Labelled[], share: number, seed: number): { heldOut: number[] };
  };
  const { messages } = m.loadCorpus();
  const heldOut = m
    .stratifiedSplit(messages, 0.2, 2002)
    .heldOut.map((i) => ({ text: messages[i]!.text, label: messages[i]!.label }));
  return { rows: heldOut, from: 'held-out split of examples/src/spam (seed 2002, 20%)' };
}

async function measureSpam(root: string, o: MeasureOptions): Promise<QuantizationMeasurement['spam']> {
  const dir = join(root, 'models', 'spam', '1.0.0');
  const modelFile = join(dir, 'model.onnx');
  if (!existsSync(modelFile)) return { skipped: `${modelFile} does not exist (build the examples first)` };
  if (!existsSync(join(dir, 'ferry.yaml'))) return { skipped: `${dir}/ferry.yaml does not exist` };
  const found = await spamRows(root, dir);
  if (!found.from)
    return {
      skipped: `no labelled JSON Lines file in ${dir} and no built examples/dist/spam to rebuild the held-out split`,
    };
  const manifest = readManifest(join(dir, 'ferry.yaml'));
  const fp32 = new Uint8Array(readFileSync(modelFile));
  const { bytes, report } = quantizeModel(fp32, o.quantize ?? {});
  const limit = o.spamRows ?? 5000;
  const source = found.rows
    ? instancesSource(found.rows as unknown as Instance[], { model: fp32, manifest, limit })
    : parseValidationData(readFileSync(found.from, 'utf8'), { model: fp32, manifest, limit }, found.from);
  const post = manifest.postprocess;
  const classifier =
    post?.kind === 'classification'
      ? {
          output: post.output,
          threshold:
            post.activation === 'sigmoid'
              ? Math.log((post.threshold ?? 0.5) / (1 - (post.threshold ?? 0.5)))
              : (post.threshold ?? 0.5),
        }
      : undefined;
  // The largest batch the contract lets the server form: one activation scale spans the whole batch.
  const batchSize = manifest.batching?.maxBatchSize ?? 32;
  const v = await validate(fp32, bytes, source, {
    batchSize,
    ...(classifier && { classifier }),
    ...(o.sessionOptions && { sessionOptions: o.sessionOptions }),
  });
  const c = v.classification!;
  const tp = await throughput(fp32, bytes, [1, batchSize], {
    durationMs: (o.durationMs ?? 3000) / 2,
    rounds: o.rounds ?? 10,
    sessionOptions: o.sessionOptions ?? { graphOptimizationLevel: 'all' },
    feeds: (n) => source.slice(0, Math.min(n, source.rows)),
  });
  return {
    throughput: tp,
    rows: v.rows,
    dataFile: found.from.startsWith(root) ? found.from.slice(root.length) : found.from,
    batchSize,
    fp32Accuracy: c.fp32Accuracy!,
    int8Accuracy: c.int8Accuracy!,
    accuracyDelta: c.accuracyDelta!,
    top1Agreement: c.agreement,
    maxAbsDiff: Math.max(...v.outputs.map((x) => x.maxAbsDiff)),
    sizeRatio: report.sizeRatio,
    quantizedNodes: report.quantized.length,
  };
}

/** Runs every measurement (about a minute with the defaults on a 2-CPU machine) and returns the figures. */
export async function measureQuantization(options: MeasureOptions = {}): Promise<QuantizationMeasurement> {
  const root = options.repoRoot ?? DEFAULT_ROOT;
  const log = options.log ?? (() => {});
  const timing = {
    durationMs: options.durationMs ?? 3000,
    rounds: options.rounds ?? 10,
    sessionOptions: options.sessionOptions ?? { graphOptimizationLevel: 'all' as const },
  };
  const batchSizes = options.batchSizes ?? [32, 1];

  const benchFile = join(root, 'models', 'mlp-bench', '1.0.0', 'model.onnx');
  const fromFile = existsSync(benchFile);
  const fp32 = fromFile
    ? new Uint8Array(readFileSync(benchFile))
    : buildMlp({ sizes: [256, 1024, 1024, 10], seed: 0x5eed }).bytes;
  log(`mlp-bench: ${fromFile ? benchFile : 'built in process'}`);
  const q = quantizeModel(fp32, options.quantize ?? {});
  log(
    `quantised ${q.report.quantized.length} nodes (${q.report.format}), ${q.report.sizeRatio.toFixed(2)}× smaller; timing ${batchSizes.join(', ')}`,
  );
  const tp = await throughput(fp32, q.bytes, batchSizes, timing);

  const formats: QuantizationMeasurement['mlpBench']['formats'] = [];
  if (options.compareFormats ?? true) {
    for (const format of ['integer-ops', 'contrib', 'qdq'] as const) {
      if (format === q.report.format) {
        formats.push({ format, speedup: tp[0]!.speedup });
        continue;
      }
      log(`timing format ${format}`);
      const alt = quantizeModel(fp32, { ...options.quantize, format });
      const [f] = await throughput(fp32, alt.bytes, [batchSizes[0]!], { ...timing, durationMs: timing.durationMs / 2 });
      formats.push({ format, speedup: f!.speedup });
    }
  }

  const input = describeModel(fp32).inputs[0]!;
  const width = input.shape![1]!;
  const rows = 1024;
  const diff = await validate(
    fp32,
    q.bytes,
    { inputs: { [input.name]: { dtype: 'float32', dims: [rows, width], data: randomRows(rows, width, 11) } } },
    {
      batchSize: batchSizes[0]!,
      sessionOptions: timing.sessionOptions,
      classifier: { output: describeModel(fp32).outputs[0]!.name },
    },
  );

  log('tiny model');
  const tinySizes = [64, 128, 10];
  const tiny = buildMlp({ sizes: tinySizes, seed: 3 }).bytes;
  const tinyQ = quantizeModel(tiny, { ...options.quantize, minElements: 0 });
  const tinyTp = await throughput(tiny, tinyQ.bytes, [1, 32], { ...timing, durationMs: timing.durationMs / 2 });

  const sweepSizes = options.sweepSizes ?? [64, 128, 256, 512, 1024];
  if (sweepSizes.length) log(`MatMul sweep ${sweepSizes.join(', ')}`);
  const sweepFigures = await sweep(
    sweepSizes,
    { ...timing, durationMs: timing.durationMs / 3 },
    options.quantize ?? {},
  );

  log('spam');
  let spam: QuantizationMeasurement['spam'];
  try {
    spam = await measureSpam(root, options);
  } catch (e) {
    spam = { skipped: `spam measurement failed: ${(e as Error).message}` };
  }

  const at32 = tp.find((t) => t.batchSize === 32);
  return {
    environment: {
      node: process.version,
      onnxruntime: ort.env.versions.common,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
    },
    mlpBench: {
      source: fromFile ? 'models/mlp-bench/1.0.0/model.onnx' : 'built in process (seeded, same shape)',
      format: q.report.format,
      perChannel: q.report.perChannel,
      fp32Bytes: q.report.bytesBefore,
      int8Bytes: q.report.bytesAfter,
      sizeRatio: q.report.sizeRatio,
      quantizedNodes: q.report.quantized.map((n) => n.name),
      floatNodes: q.report.skipped.map((n) => n.name),
      throughput: tp,
      formats,
      maxAbsDiff: Math.max(...diff.outputs.map((o) => o.maxAbsDiff)),
      top1Agreement: diff.classification?.agreement ?? NaN,
    },
    tinyModel: { sizes: tinySizes, fp32Bytes: tiny.length, int8Bytes: tinyQ.bytes.length, throughput: tinyTp },
    sweep: sweepFigures,
    spam,
    bars: {
      speedupAt32: at32 ? at32.speedup >= 1.5 : null,
      sizeRatio: q.report.sizeRatio >= 3,
      spamDelta: spam && 'accuracyDelta' in spam ? spam.accuracyDelta <= 0.005 : null,
    },
  };
}

function print(m: QuantizationMeasurement): string {
  const f = (x: number): string => Math.round(x).toLocaleString('en-US');
  const tpLines = (t: ThroughputFigure[]): string[] =>
    t.map(
      (x) =>
        `  batch ${String(x.batchSize).padStart(2)}: fp32 ${f(x.fp32RowsPerS).padStart(9)} rows/s   int8 ${f(x.int8RowsPerS).padStart(9)} rows/s   ${x.speedup.toFixed(2)}× (median of rounds; ${x.speedupRange[0].toFixed(2)}–${x.speedupRange[1].toFixed(2)})`,
    );
  const b = m.mlpBench;
  const lines = [
    `machine: ${m.environment.cpuModel}, ${m.environment.cpus} CPUs; node ${m.environment.node}; onnxruntime ${m.environment.onnxruntime}`,
    `mlp-bench (${b.source}), ${b.format}, ${b.perChannel ? 'per-channel' : 'per-tensor'}:`,
    `  size ${f(b.fp32Bytes)} → ${f(b.int8Bytes)} bytes (${b.sizeRatio.toFixed(2)}× smaller); int8: ${b.quantizedNodes.join(', ')}; float: ${b.floatNodes.join(', ') || 'none'}`,
    ...tpLines(b.throughput),
    ...(b.formats.length
      ? [
          `  graph forms at batch ${b.throughput[0]!.batchSize}: ${b.formats.map((x) => `${x.format} ${x.speedup.toFixed(2)}×`).join(', ')}`,
        ]
      : []),
    `  1024 random rows: max |Δ probability| ${b.maxAbsDiff.toPrecision(3)}, top-1 agreement ${(b.top1Agreement * 100).toFixed(1)}%`,
    `tiny ${m.tinyModel.sizes.join('→')} MLP, all layers int8 (${f(m.tinyModel.fp32Bytes)} → ${f(m.tinyModel.int8Bytes)} bytes):`,
    ...tpLines(m.tinyModel.throughput),
    ...(m.sweep.length
      ? [
          'one n×n MatMul, int8 ÷ fp32 rows/s:',
          ...m.sweep.map(
            (x) =>
              `  ${`${x.n}×${x.n}`.padStart(9)} (${f(x.elements).padStart(9)} weights): batch 1 ${x.speedupAt1.toFixed(2)}×, batch 32 ${x.speedupAt32.toFixed(2)}×`,
          ),
        ]
      : []),
    m.spam === null
      ? 'spam: not measured'
      : 'skipped' in m.spam
        ? `spam: skipped (${m.spam.skipped})`
        : [
            `spam (${m.spam.rows} rows, ${m.spam.dataFile}, batch ${m.spam.batchSize}): max |Δ probability| ${m.spam.maxAbsDiff.toPrecision(3)}; accuracy fp32 ${(m.spam.fp32Accuracy * 100).toFixed(2)}%, int8 ${(m.spam.int8Accuracy * 100).toFixed(2)}%, delta ${m.spam.accuracyDelta.toFixed(4)}; top-1 agreement ${(m.spam.top1Agreement * 100).toFixed(2)}%; ${m.spam.sizeRatio.toFixed(2)}× smaller`,
            ...tpLines(m.spam.throughput),
          ].join('\n'),
    `bars: speedup ≥ 1.5× at batch 32: ${m.bars.speedupAt32}; size ≥ 3×: ${m.bars.sizeRatio}; spam delta ≤ 0.005: ${m.bars.spamDelta ?? 'not measured'}`,
  ];
  return `${lines.join('\n')}\n`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const durationAt = args.indexOf('--duration-ms');
  const m = await measureQuantization({
    log: (l) => process.stderr.write(`… ${l}\n`),
    ...(durationAt >= 0 && { durationMs: Number(args[durationAt + 1]) }),
  });
  process.stdout.write(args.includes('--json') ? `${JSON.stringify(m, null, 2)}\n` : print(m));
}
