// Transformer rows of `npm run bench` (issue 17), on models/spam-transformer, every figure a ratio against a
// baseline measured in the same run:
//   - ragged batching on vs off: 32 concurrent clients, texts of 8–128 tokens (the model's limit), through the
//     whole predict path (validation, tokenizer, batcher, worker thread) of an in-process server;
//   - padding overhead (padded tokens ÷ real tokens) of the ragged run, with length-aware grouping;
//   - INT8 (`ferry quantize`) vs FP32: rows/s of ONNX Runtime at batch 1 and at batch 32 of mixed lengths,
//     by the wall clock and by CPU time (the machine is shared: CPU time is what a run cost, whatever else
//     ran), file size, held-out accuracy of both (and the delta `ferry quantize --validate` reported), the
//     nodes ONNX Runtime fused the INT8 graph into, and an ONNX Runtime profile of both builds that splits
//     FP32 time into the nodes the quantiser replaces and the rest, which bounds what INT8 can gain;
//   - the same quantiser on random-weight 2-layer transformer stacks 96 and 768 wide (batch 32 × 128 tokens),
//     to show how the INT8 gain grows with the width of the weight matrices;
//   - the INT8 rows again on models/spam-transformer-wide (the same recipe at 512 wide), where they pay;
//   - the ceiling of ragged batching: ONNX Runtime alone, texts one at a time vs length-sorted batches.
// Standalone: node bench/dist/transformer.js [--seconds 8]
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
import { buildDecoderOnnx, readModel, randomDecoderWeights } from '@ferry/tools/onnx';
import { quantizeModel, type QuantizeReport, type ValidationReport } from '@ferry/tools/quantize';
import { corpusRows } from '../../examples/dist/spam-transformer/corpus-export.js';
import { FERRY_CLI, MODELS_DIR } from './paths.js';
import { mulberry32 } from './prng.js';

export interface TransformerBench {
  model: string;
  ragged: {
    on: Load;
    off: Load;
    ratio: number;
    paddingOverhead: number;
    /** What any batching could gain here: ONNX Runtime alone, texts one at a time vs length-sorted batches. */
    ceiling: BatchingCeiling;
    bar: string;
  };
  int8: Int8Result & {
    /** INT8 ÷ FP32 on random-weight stacks of other widths. */
    widths: WidthCheck[];
    /** The CPU, and which of its instructions speed up int8 dot products (INT8's gain depends on them). */
    cpu: CpuInt8;
  };
  /** The same INT8 rows on `spam-transformer-wide` (the recipe at 512 wide), when the repository has it. */
  int8Wide?: Int8Result & { model: string };
}
/** FP32 vs INT8 (`ferry quantize`) of one trained transformer, measured in one run. */
interface Int8Result {
  fp32: Speed;
  int8: Speed;
  batch1Ratio: number;
  batch32Ratio: number;
  /** The same ratios by CPU time per row. */
  cpuBatch1Ratio: number;
  cpuBatch32Ratio: number;
  sizeBytes: { fp32: number; int8: number };
  accuracyDropPoints: number;
  /** fp32 − int8 accuracy in points as `ferry quantize --validate` reported it (batches of 32). */
  quantizeReportedDropPoints: number;
  /** What the quantiser replaced: `opType shape` per node. */
  quantized: string[];
  /** Operator counts of the INT8 graph after ONNX Runtime's optimisations (level all). */
  fusedOps: Record<string, number>;
  profile: ProfileSplit;
  bar: string;
}
/**
 * ONNX Runtime alone (FP32, one thread, no server) on the bench's texts: rows/s run one at a time against
 * rows/s in batches of the served run's mean size after sorting by length (so a batch pads little). The ratio
 * bounds what ragged batching can buy through the server, whatever its scheduling.
 */
interface BatchingCeiling {
  batchRows: number;
  singleRowsPerS: number;
  batchedRowsPerS: number;
  /** Padded ÷ real tokens of the sorted batches. */
  paddingOverhead: number;
  ratio: number;
}
interface WidthCheck {
  hidden: number;
  sizeBytes: { fp32: number; int8: number };
  /** Time per batch of 32 × 128 tokens, medians of five alternating runs. */
  fp32Ms: number;
  int8Ms: number;
  ratio: number;
  cpuRatio: number;
}
/** ONNX Runtime kernel times per batch of 32 (ms), alternating FP32 and INT8 runs. */
interface ProfileSplit {
  fp32Ms: number;
  /** FP32 time in the nodes the quantiser replaces: weight MatMuls with their bias Adds, embedding Gathers. */
  fp32ReplacedMs: number;
  int8Ms: number;
  /** INT8 time in the replacements. */
  int8ReplacedMs: number;
  /** fp32Ms / (fp32Ms − fp32ReplacedMs): the INT8 speed-up if the replaced nodes took no time at all. */
  boundRatio: number;
  /** Where the rest of the INT8 time goes, by operator type (ms). */
  int8RestByOp: Record<string, number>;
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
  /** Rows per second of process CPU time (ONNX Runtime's thread and ours). */
  cpuBatch1RowsPerS: number;
  cpuBatch32RowsPerS: number;
  accuracy: number;
}

const MODEL = 'spam-transformer';
const WIDE = 'spam-transformer-wide';
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

const SESSION = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
} as const satisfies ort.InferenceSession.SessionOptions;

/** Ferry's encoded int64 tensors as ONNX Runtime feeds. */
function ortFeeds(f: Record<string, TensorValue>): Record<string, ort.Tensor> {
  return Object.fromEntries(
    Object.entries(f).map(([n, t]) => [n, new ort.Tensor(t.dtype as 'int64', t.data as BigInt64Array, t.dims)]),
  );
}

/** An ONNX Runtime session of one build, fed batches encoded by Ferry's own encoder. */
async function openBuild(path: string, manifest: Manifest, tokenizer: unknown, texts: string[]) {
  const session = await ort.InferenceSession.create(path, SESSION);
  const encoder = compileEncoder(manifest, { tokenizer });
  const batches = new Map<number, Array<Record<string, ort.Tensor>>>();
  for (const size of [1, 32]) {
    const out: Array<Record<string, ort.Tensor>> = [];
    for (let i = 0; i + size <= texts.length; i += size)
      out.push(ortFeeds(encoder.encode(texts.slice(i, i + size).map((text) => ({ text })))));
    batches.set(size, out);
  }
  return {
    batches,
    /** Rows/s over every batch of `size` (after two warm-up runs), by the wall clock and by CPU time. */
    async rate(size: number): Promise<{ wall: number; cpu: number }> {
      const bs = batches.get(size)!;
      for (const b of bs.slice(0, 2)) await session.run(b, ['logits']);
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      for (const b of bs) await session.run(b, ['logits']);
      const wallS = (performance.now() - t0) / 1000;
      const c = process.cpuUsage(c0);
      return { wall: (bs.length * size) / wallS, cpu: (bs.length * size) / ((c.user + c.system) / 1e6) };
    },
    /** Accuracy on the held-out messages (full texts, cut by the tokenizer), in batches of 32. */
    async accuracy(held: ReadonlyArray<{ text: string }>, labels: readonly number[]): Promise<number> {
      let correct = 0;
      for (let i = 0; i < held.length; i += 32) {
        const part = held.slice(i, i + 32);
        const out = await session.run(ortFeeds(encoder.encode(part.map((r) => ({ text: r.text })))), ['logits']);
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
  type Rate = { wall: number; cpu: number };
  const r = { a1: [] as Rate[], b1: [] as Rate[], a32: [] as Rate[], b32: [] as Rate[] };
  for (let round = 0; round < 5; round++) {
    r.a1.push(await a.rate(1));
    r.b1.push(await b.rate(1));
    r.a32.push(await a.rate(32));
    r.b32.push(await b.rate(32));
  }
  const speed = async (x: typeof a, one: Rate[], many: Rate[]): Promise<Speed> => ({
    batch1RowsPerS: median(one.map((v) => v.wall)),
    batch32RowsPerS: median(many.map((v) => v.wall)),
    cpuBatch1RowsPerS: median(one.map((v) => v.cpu)),
    cpuBatch32RowsPerS: median(many.map((v) => v.cpu)),
    accuracy: await x.accuracy(held, labels),
  });
  const out = { fp32: await speed(a, r.a1, r.a32), int8: await speed(b, r.b1, r.b32) };
  await a.release();
  await b.release();
  return out;
}

/** Kernel time (µs) per node name over `runs` batches, from an ONNX Runtime profile of one session. */
async function kernelTimes(
  session: ort.InferenceSession,
  prefix: string,
): Promise<{ byNode: Map<string, { op: string; us: number }> }> {
  session.endProfiling();
  await session.release();
  const dir = join(prefix, '..');
  const base = prefix.slice(dir.length + 1);
  const file = readdirSync(dir)
    .filter((f) => f.startsWith(`${base}_`) && f.endsWith('.json'))
    .sort()
    .pop();
  if (!file) throw new Error(`no ONNX Runtime profile ${prefix}_*.json`);
  const events = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Array<{
    cat: string;
    name: string;
    dur: number;
    args?: { op_name?: string };
  }>;
  const byNode = new Map<string, { op: string; us: number }>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const name = e.name.slice(0, -'_kernel_time'.length);
    const cur = byNode.get(name) ?? { op: e.args?.op_name ?? '?', us: 0 };
    cur.us += e.dur;
    byNode.set(name, cur);
  }
  return { byNode };
}

/**
 * Profiles both builds on the same batches of 32 (alternating, three rounds) and splits the time into the
 * nodes `ferry quantize` replaced and the rest. FP32: the replaced MatMul/Gather nodes plus the bias Adds
 * after those MatMuls (ONNX Runtime folds them into DynamicQuantizeMatMul in the INT8 graph); INT8: every
 * node whose name starts with a replaced node's name (the quantiser names its nodes so).
 */
async function profileSplit(
  work: string,
  fp32Path: string,
  int8Path: string,
  batches: Array<Record<string, ort.Tensor>>,
  replaced: readonly string[],
): Promise<ProfileSplit> {
  const fp32Model = readModel(new Uint8Array(readFileSync(fp32Path))).graph!;
  const producedBy = new Map<string, string>();
  for (const n of fp32Model.node ?? []) for (const o of n.output ?? []) producedBy.set(o, n.name ?? '');
  const initializers = new Set((fp32Model.initializer ?? []).map((t) => t.name ?? ''));
  const fp32Replaced = new Set(replaced);
  for (const n of fp32Model.node ?? []) {
    if (n.opType !== 'Add') continue;
    const [x, y] = n.input ?? [];
    const fromReplaced = [x, y].some((i) => fp32Replaced.has(producedBy.get(i ?? '') ?? ''));
    if (fromReplaced && [x, y].some((i) => initializers.has(i ?? ''))) fp32Replaced.add(n.name ?? '');
  }
  const open = (path: string, prefix: string) =>
    ort.InferenceSession.create(path, { ...SESSION, enableProfiling: true, profileFilePrefix: prefix });
  const pa = join(work, 'profile-fp32');
  const pb = join(work, 'profile-int8');
  const a = await open(fp32Path, pa);
  const b = await open(int8Path, pb);
  const rounds = 3;
  for (let round = 0; round < rounds; round++) {
    for (const x of batches) await a.run(x, ['logits']);
    for (const x of batches) await b.run(x, ['logits']);
  }
  const perBatchMs = (us: number) => us / 1000 / (rounds * batches.length);
  const ta = await kernelTimes(a, pa);
  const tb = await kernelTimes(b, pb);
  let fp32Us = 0;
  let fp32ReplacedUs = 0;
  for (const [name, t] of ta.byNode) {
    fp32Us += t.us;
    if (fp32Replaced.has(name)) fp32ReplacedUs += t.us;
  }
  let int8Us = 0;
  let int8ReplacedUs = 0;
  const rest: Record<string, number> = {};
  for (const [name, t] of tb.byNode) {
    int8Us += t.us;
    if (replaced.some((r) => name.startsWith(`${r}_`))) int8ReplacedUs += t.us;
    else rest[t.op] = (rest[t.op] ?? 0) + perBatchMs(t.us);
  }
  return {
    fp32Ms: perBatchMs(fp32Us),
    fp32ReplacedMs: perBatchMs(fp32ReplacedUs),
    int8Ms: perBatchMs(int8Us),
    int8ReplacedMs: perBatchMs(int8ReplacedUs),
    boundRatio: fp32Us / (fp32Us - fp32ReplacedUs),
    int8RestByOp: Object.fromEntries(Object.entries(rest).sort((x, y) => y[1] - x[1])),
  };
}

interface CpuInt8 {
  model: string;
  /** avx512_vnni / avx_vnni / amx_int8 from /proc/cpuinfo; empty: int8 GEMMs use plain AVX2 (vpmaddubsw). */
  int8DotProduct: string[];
}

/**
 * ONNX Runtime's int8 GEMMs are fastest with VNNI (one instruction per 4-byte dot product) or AMX; on an
 * AVX2-only CPU they gain far less over FP32 (seen: 2.8–3.0× at 768 wide on one machine, 1.23× on an AMD
 * Zen 2 without VNNI). Read so that every INT8 figure says which kind of CPU made it.
 */
function cpuInt8(): CpuInt8 {
  let info = '';
  try {
    info = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return { model: 'unknown', int8DotProduct: [] };
  }
  const flags = new Set(/^flags\s*:\s*(.*)$/m.exec(info)?.[1]?.split(/\s+/) ?? []);
  return {
    model: /^model name\s*:\s*(.*)$/m.exec(info)?.[1]?.trim() ?? 'unknown',
    int8DotProduct: ['avx512_vnni', 'avx_vnni', 'amx_int8'].filter((f) => flags.has(f)),
  };
}

/**
 * FP32 vs INT8 (default `ferry quantize` options, except 1024 as minElements for the narrow one) on a
 * random-weight 2-layer transformer (GPT-2 layout from the ONNX toolkit: separate Q/K/V, causal attention,
 * GELU feed-forward 4× wide) at batch 32 × 128 tokens: how the gain depends on the width of the weight
 * matrices. Random weights say nothing about accuracy, only about speed.
 */
async function widthCheck(hidden: number): Promise<WidthCheck> {
  const rows = 32;
  const tokens = 128;
  // spam-transformer's 4 heads of 24 at width 96; DistilBERT's 12 heads of 64 at 768.
  const heads = hidden < 256 ? 4 : 12;
  const shape = {
    vocabSize: 1000,
    hidden,
    heads,
    layers: 2,
    maxPositions: tokens,
    mlpHidden: 4 * hidden,
    layerNorm: true,
    activation: 'gelu' as const,
  };
  const fp32 = buildDecoderOnnx(shape, randomDecoderWeights(shape, mulberry32(hidden)));
  const int8 = quantizeModel(fp32, { minElements: hidden < 256 ? 1024 : 65536 }).bytes;
  const n = rows * tokens;
  const feeds: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor(
      'int64',
      BigInt64Array.from({ length: n }, (_, i) => BigInt((i * 7919) % 1000)),
      [rows, tokens],
    ),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [rows, tokens]),
    position_ids: new ort.Tensor(
      'int64',
      BigInt64Array.from({ length: n }, (_, i) => BigInt(i % tokens)),
      [rows, tokens],
    ),
  };
  for (let i = 0; i < shape.layers; i++)
    for (const kind of ['key', 'value'])
      feeds[`past_key_values.${i}.${kind}`] = new ort.Tensor('float32', new Float32Array(0), [
        rows,
        heads,
        0,
        hidden / heads,
      ]);
  const a = await ort.InferenceSession.create(fp32, SESSION);
  const b = await ort.InferenceSession.create(int8, SESSION);
  const time = async (x: ort.InferenceSession): Promise<{ wall: number; cpu: number }> => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await x.run(feeds, ['logits']);
    const c = process.cpuUsage(c0);
    return { wall: performance.now() - t0, cpu: (c.user + c.system) / 1000 };
  };
  await time(a);
  await time(b);
  const ra: Array<{ wall: number; cpu: number }> = [];
  const rb: Array<{ wall: number; cpu: number }> = [];
  for (let round = 0; round < 5; round++) {
    ra.push(await time(a));
    rb.push(await time(b));
  }
  await a.release();
  await b.release();
  const wall = (xs: typeof ra) => median(xs.map((x) => x.wall));
  const cpu = (xs: typeof ra) => median(xs.map((x) => x.cpu));
  return {
    hidden,
    sizeBytes: { fp32: fp32.length, int8: int8.length },
    fp32Ms: wall(ra),
    int8Ms: wall(rb),
    ratio: wall(ra) / wall(rb),
    cpuRatio: cpu(ra) / cpu(rb),
  };
}

/** Operator counts of a model after ONNX Runtime's graph optimisations (what it fused the graph into). */
async function fusedOps(work: string, path: string): Promise<Record<string, number>> {
  const out = join(work, 'int8.optimized.onnx');
  // Level all also runs layout transforms whose saved form is machine-specific; only the counts are kept.
  const s = await ort.InferenceSession.create(path, { ...SESSION, optimizedModelFilePath: out, logSeverityLevel: 3 });
  await s.release();
  const counts: Record<string, number> = {};
  for (const n of readModel(new Uint8Array(readFileSync(out))).graph!.node ?? []) {
    const k = n.domain ? `${n.domain}.${n.opType}` : (n.opType ?? '');
    counts[k] = (counts[k] ?? 0) + 1;
  }
  return counts;
}

/**
 * `ferry quantize` on one trained transformer (validated on the held-out texts), then FP32 vs INT8 in ONNX
 * Runtime on the same batches (alternating rounds), both builds' held-out accuracy, and the profile split.
 */
async function measureInt8(
  work: string,
  src: string,
  manifest: Manifest,
  texts: string[],
  held: ReadonlyArray<{ text: string; label: string }>,
  heldPath: string,
  quantizeArgs: readonly string[],
  log: (line: string) => void,
): Promise<Int8Result> {
  const q = join(work, `${manifest.name}.int8.onnx`);
  log(`transformer: ferry quantize ${manifest.name}`);
  const qr = spawnSync(
    process.execPath,
    [FERRY_CLI, 'quantize', join(src, 'model.onnx'), q, ...quantizeArgs, '--validate', heldPath, '--json'],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  if (qr.status !== 0) throw new Error(`ferry quantize failed: ${qr.stderr}`);
  const cli = JSON.parse(qr.stdout) as { quantization: QuantizeReport; validation: ValidationReport };
  const tokenizer = JSON.parse(readFileSync(join(src, 'tokenizer.json'), 'utf8')) as unknown;
  const labels = held.map((r) => (r.label === 'spam' ? 1 : 0));
  log(`transformer: ${manifest.name} FP32 vs INT8 in ONNX Runtime`);
  const { fp32, int8 } = await compareBuilds(
    join(src, 'model.onnx'),
    q,
    manifest,
    tokenizer,
    texts.slice(0, 128),
    held,
    labels,
  );
  log(`transformer: ONNX Runtime profile of both builds of ${manifest.name}`);
  const encoder = compileEncoder(manifest, { tokenizer });
  const batches32 = [];
  for (let i = 0; i + 32 <= 128; i += 32)
    batches32.push(ortFeeds(encoder.encode(texts.slice(i, i + 32).map((text) => ({ text })))));
  const replacedNames = cli.quantization.quantized.map((n) => n.name);
  const profile = await profileSplit(work, join(src, 'model.onnx'), q, batches32, replacedNames);
  const fused = await fusedOps(work, q);
  const b32 = int8.batch32RowsPerS / fp32.batch32RowsPerS;
  const drop = (fp32.accuracy - int8.accuracy) * 100;
  return {
    fp32,
    int8,
    batch1Ratio: int8.batch1RowsPerS / fp32.batch1RowsPerS,
    batch32Ratio: b32,
    cpuBatch1Ratio: int8.cpuBatch1RowsPerS / fp32.cpuBatch1RowsPerS,
    cpuBatch32Ratio: int8.cpuBatch32RowsPerS / fp32.cpuBatch32RowsPerS,
    sizeBytes: { fp32: statSync(join(src, 'model.onnx')).size, int8: statSync(q).size },
    accuracyDropPoints: drop,
    quantizeReportedDropPoints: (cli.validation.classification?.accuracyDelta ?? NaN) * 100,
    quantized: cli.quantization.quantized.map((n) => `${n.opType} ${n.shape.join('×')}`),
    fusedOps: fused,
    profile,
    bar: `INT8/FP32 at batch 32 ≥ 2×: ${b32 >= 2 ? 'met' : 'NOT met'} (bound from the profile ${profile.boundRatio.toFixed(2)}×); accuracy drop ≤ 0.5 pt: ${drop <= 0.5 ? 'met' : 'NOT met'}`,
  };
}

/** See BatchingCeiling. Alternating rounds, medians of five; CPU time, so other load counts less. */
async function batchingCeiling(
  src: string,
  manifest: Manifest,
  texts: string[],
  batchRows: number,
): Promise<BatchingCeiling> {
  const tokenizer = JSON.parse(readFileSync(join(src, 'tokenizer.json'), 'utf8')) as unknown;
  const encoder = compileEncoder(manifest, { tokenizer });
  const session = await ort.InferenceSession.create(join(src, 'model.onnx'), SESSION);
  // Each text encoded alone once: its feeds for the single runs, its token count for the sort.
  const sorted = texts
    .slice(0, 256)
    .map((text) => {
      const one = ortFeeds(encoder.encode([{ text }]));
      return { text, one, n: one.input_ids!.dims[1]! };
    })
    .sort((a, b) => a.n - b.n);
  const singles = sorted.map((t) => t.one);
  const batches: Array<Record<string, ort.Tensor>> = [];
  let padded = 0;
  let real = 0;
  for (let i = 0; i + batchRows <= sorted.length; i += batchRows) {
    const part = sorted.slice(i, i + batchRows);
    const f = ortFeeds(encoder.encode(part.map((t) => ({ text: t.text }))));
    padded += f.input_ids!.dims[0]! * f.input_ids!.dims[1]!;
    real += part.reduce((s, t) => s + t.n, 0);
    batches.push(f);
  }
  const rowsIn = batches.length * batchRows;
  const time = async (runs: Array<Record<string, ort.Tensor>>, rows: number) => {
    const c0 = process.cpuUsage();
    for (const r of runs) await session.run(r, ['logits']);
    const c = process.cpuUsage(c0);
    return rows / ((c.user + c.system) / 1e6);
  };
  await time(singles.slice(0, 16), 16);
  await time(batches.slice(0, 2), 2 * batchRows);
  const one: number[] = [];
  const many: number[] = [];
  for (let round = 0; round < 5; round++) {
    one.push(await time(singles, singles.length));
    many.push(await time(batches, rowsIn));
  }
  await session.release();
  const singleRowsPerS = median(one);
  const batchedRowsPerS = median(many);
  return {
    batchRows,
    singleRowsPerS,
    batchedRowsPerS,
    paddingOverhead: padded / real,
    ratio: batchedRowsPerS / singleRowsPerS,
  };
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

    const held = corpusRows().filter((r) => r.split === 'heldOut');
    const heldPath = join(work, 'held-out.jsonl');
    writeFileSync(heldPath, held.map((r) => JSON.stringify({ text: r.text, label: r.label })).join('\n'));
    // The model's 96×96 to 96×288 weights are below the default --min-elements, hence 1024.
    const int8Base = await measureInt8(work, src, manifest, texts, held, heldPath, ['--min-elements', '1024'], log);
    const wideSrc = join(MODELS_DIR, WIDE, VERSION);
    let int8Wide: TransformerBench['int8Wide'];
    if (existsSync(wideSrc)) {
      const wideManifest = parse(readFileSync(join(wideSrc, 'ferry.yaml'), 'utf8')) as Manifest;
      // Default ferry quantize options: every 512-wide weight is above --min-elements.
      const r = await measureInt8(work, wideSrc, wideManifest, texts, held, heldPath, [], log);
      int8Wide = { model: `${WIDE}@${VERSION}`, ...r };
    }
    log('transformer: INT8 vs FP32 on random-weight stacks 96 and 768 wide');
    const widths = [await widthCheck(96), await widthCheck(768)];
    const ratio = on.rps / offLoad.rps;
    const overhead = on.paddingOverhead ?? NaN;
    log('transformer: ONNX Runtime alone, one text at a time vs length-sorted batches');
    const ceiling = await batchingCeiling(src, manifest, texts, Math.max(2, Math.round(on.meanBatchRows)));
    return {
      model: `${MODEL}@${VERSION}`,
      ragged: {
        on,
        off: offLoad,
        ratio,
        paddingOverhead: overhead,
        ceiling,
        bar: `ragged on/off ≥ 2×: ${ratio >= 2 ? 'met' : 'NOT met'}; padding overhead ≤ 1.3: ${overhead <= 1.3 ? 'met' : 'NOT met'}`,
      },
      int8: { ...int8Base, widths, cpu: cpuInt8() },
      ...(int8Wide && { int8Wide }),
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

const f = (x: number, d = 1) => x.toFixed(d);

function formatInt8(label: string, i: Int8Result): string[] {
  const p = i.profile;
  return [
    `  INT8 vs FP32, ${label} (ONNX Runtime, 1 thread): batch 1 ${f(i.int8.batch1RowsPerS)} vs ${f(i.fp32.batch1RowsPerS)} rows/s → ${f(i.batch1Ratio, 2)}×; batch 32 ${f(i.int8.batch32RowsPerS)} vs ${f(i.fp32.batch32RowsPerS)} rows/s → ${f(i.batch32Ratio, 2)}×`,
    `    by CPU time: batch 1 ${f(i.int8.cpuBatch1RowsPerS)} vs ${f(i.fp32.cpuBatch1RowsPerS)} rows/CPU-s → ${f(i.cpuBatch1Ratio, 2)}×; batch 32 ${f(i.int8.cpuBatch32RowsPerS)} vs ${f(i.fp32.cpuBatch32RowsPerS)} → ${f(i.cpuBatch32Ratio, 2)}×`,
    `    quantised: ${i.quantized.join(', ')}; ONNX Runtime runs it as ${Object.entries(i.fusedOps)
      .filter(([k]) => /Quant|Integer|Gather|Cast/.test(k))
      .map(([k, n]) => `${k} ×${n}`)
      .join(', ')}`,
    `    profile per batch of 32: FP32 ${f(p.fp32Ms)} ms, of which ${f(p.fp32ReplacedMs)} ms (${f((100 * p.fp32ReplacedMs) / p.fp32Ms, 0)}%) in the nodes INT8 replaces; INT8 ${f(p.int8Ms)} ms, ${f(p.int8ReplacedMs)} ms in the replacements (${f(p.fp32ReplacedMs / p.int8ReplacedMs, 2)}× faster there)`,
    `    bound: even at zero cost for the replaced nodes INT8 would be ${f(p.boundRatio, 2)}× FP32; the rest of INT8: ${Object.entries(
      p.int8RestByOp,
    )
      .slice(0, 6)
      .map(([k, ms]) => `${k} ${f(ms)}`)
      .join(', ')} ms`,
    `    size ${f(i.sizeBytes.fp32 / 1e6, 2)} MB → ${f(i.sizeBytes.int8 / 1e6, 2)} MB; held-out accuracy ${f(i.fp32.accuracy * 100, 2)}% → ${f(i.int8.accuracy * 100, 2)}% (drop ${f(i.accuracyDropPoints, 2)} pt; ferry quantize --validate reported ${f(i.quantizeReportedDropPoints, 2)} pt)`,
    `    bars: ${i.bar}`,
  ];
}

export function formatTransformerBench(b: TransformerBench): string {
  const r = b.ragged;
  const i = b.int8;
  return [
    `transformer (${b.model}, texts of 8–128 tokens)`,
    `  ragged batching, 32 clients: on ${f(r.on.rps)} req/s (mean batch ${f(r.on.meanBatchRows)} rows), off ${f(r.off.rps)} req/s (mean batch ${f(r.off.meanBatchRows)}) → ${f(r.ratio, 2)}×`,
    `  padding overhead with length-aware grouping: ${f(r.paddingOverhead, 3)} padded ÷ real tokens`,
    `  the ceiling, ONNX Runtime alone by CPU time: batches of ${r.ceiling.batchRows} length-sorted texts ${f(r.ceiling.batchedRowsPerS)} rows/s (padding ${f(r.ceiling.paddingOverhead, 3)}) vs one at a time ${f(r.ceiling.singleRowsPerS)} → ${f(r.ceiling.ratio, 2)}×: no batching policy can gain more than that through the server`,
    `    bars: ${r.bar}`,
    ...formatInt8(b.model, i),
    ...i.widths.map(
      (w) =>
        `    random-weight 2-layer stack ${w.hidden} wide, batch 32 × 128 tokens: FP32 ${f(w.fp32Ms, 0)} ms, INT8 ${f(w.int8Ms, 0)} ms → ${f(w.ratio, 2)}× (CPU time ${f(w.cpuRatio, 2)}×), ${f(w.sizeBytes.fp32 / 1e6, 1)} → ${f(w.sizeBytes.int8 / 1e6, 1)} MB`,
    ),
    ...(b.int8Wide ? formatInt8(b.int8Wide.model, b.int8Wide) : []),
    `  CPU: ${i.cpu.model}; int8 dot-product instructions: ${i.cpu.int8DotProduct.join(', ') || 'none (AVX2 only: INT8 gains little here)'}`,
  ].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '8' }, out: { type: 'string' } } });
  const b = await runTransformerBench({ seconds: Number(values.seconds) }, (l) => process.stderr.write(`${l}\n`));
  process.stdout.write(`${formatTransformerBench(b)}\n`);
  if (values.out) writeFileSync(values.out, `${JSON.stringify(b, null, 2)}\n`);
}
