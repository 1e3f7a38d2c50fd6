import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { stringify } from 'yaml';
import { GraphBuilder } from '../onnx/index.js';
import { tinyClassifier } from '@ferry/test-kit';
import {
  runCli,
  COST_PATTERNS,
  QUANT_FORMATS as SERVER_QUANT_FORMATS,
  QUANTIZE_MIN_ELEMENTS_DEFAULT,
  type CliIo,
} from '@ferry/server/cli';
import { QUANTIZE_EXIT } from './run-quantize.js';
import { QUANT_FORMATS, QUANTIZE_DEFAULTS } from './quantize-model.js';
import { PATTERNS } from '../capacity/cost.js';
import { DEFAULT_PRICES_PATH } from '../capacity/prices.js';

// Where the CLI finds the shipped price table for its help text: the package export of prices.yaml.
const shippedPricesPathForTest = (): string => fileURLToPath(import.meta.resolve('@ferry/tools/prices.yaml'));
import { buildMlp, gaussian, seededRandom } from './mlp-model.js';

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-quantize-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = {
    stdout: (t) => {
      out += t;
    },
    stderr: (t) => {
      err += t;
    },
  };
  const code = await runCli(['quantize', ...argv], io);
  return { code, out, err };
}

function rows(n: number, width: number, seed: number): number[][] {
  const normal = gaussian(seededRandom(seed));
  return Array.from({ length: n }, () => Array.from({ length: width }, () => normal()));
}

/** JSON Lines whose labels are the float model's own choices: float accuracy 1, so the delta is the int8 loss. */
async function labelledByModel(model: Uint8Array, xs: number[][], file: string): Promise<void> {
  const s = await ort.InferenceSession.create(model);
  const y = (await s.run({ x: new ort.Tensor('float32', Float32Array.from(xs.flat()), [xs.length, xs[0]!.length]) }))
    .y!;
  await s.release();
  const classes = y.dims[1]!;
  const d = y.data as Float32Array;
  const lines = xs.map((x, r) => {
    let best = 0;
    for (let j = 1; j < classes; j++) if (d[r * classes + j]! > d[r * classes + best]!) best = j;
    return JSON.stringify({ x, label: best });
  });
  await writeFile(file, `${lines.join('\n')}\n`);
}

test('quantises a file, prints what it did, and reminds to validate', async () => {
  const input = join(dir, 'mlp.onnx');
  const output = join(dir, 'mlp-int8.onnx');
  await writeFile(input, buildMlp({ sizes: [256, 512, 10], seed: 4 }).bytes);
  const r = await cli(input, output);
  assert.equal(r.code, QUANTIZE_EXIT.ok, r.err);
  assert.match(r.out, /quantised 1 node\(s\) \(per-channel int8 weights, integer-ops\)/);
  assert.match(r.out, /fc1 {2}MatMul w1 256×512/);
  assert.match(r.out, /left in float:\n {2}fc2 {2}MatMul: the weight has 5120 elements, fewer than minElements 65536/);
  assert.match(r.out, /not validated: measure the accuracy delta before shipping/);
  assert.match(r.out, new RegExp(`wrote ${output.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  const written = await readFile(output);
  assert.ok(written.length < (await readFile(input)).length / 2);
  await (await ort.InferenceSession.create(written)).release();
});

test('--validate with --max-delta passes when the delta is small, and says so', async () => {
  const input = join(dir, 'pass.onnx');
  const output = join(dir, 'pass-int8.onnx');
  const data = join(dir, 'pass.jsonl');
  const model = buildMlp({ sizes: [64, 256, 10], seed: 8 }).bytes;
  await writeFile(input, model);
  await labelledByModel(model, rows(100, 64, 1), data);
  const r = await cli(
    input,
    output,
    '--validate',
    data,
    '--max-delta',
    '0.05',
    '--min-elements',
    '0',
    '--format',
    'contrib',
  );
  assert.equal(r.code, QUANTIZE_EXIT.ok, r.err);
  assert.match(r.out, /validation on 100 rows, 32 per run/);
  assert.match(r.out, /accuracy: fp32 100.00%, int8 \d+\.\d\d%, delta \d+\.\d\d points/);
  assert.match(r.out, /PASS: accuracy delta \(fp32 - int8\) \S+ ≤ --max-delta 0.05/);
  assert.ok(existsSync(output));
});

test('--max-delta fails with a non-zero exit, says why, and does not write OUT', async () => {
  // Class scores come from tiny weights; a fifth, unused column holds one huge weight. One scale per
  // tensor rounds every tiny weight to zero, so the quantised model's choices collapse; per channel, the
  // class columns keep scales of their own.
  const k = 64;
  const n = 4;
  const normal = gaussian(seededRandom(3));
  const w = Float32Array.from({ length: k * (n + 1) }, (_, i) => (i % (n + 1) === n ? 0 : normal() * 1e-3));
  w[n] = 1000;
  const g = new GraphBuilder();
  g.input('x', 'float32', ['batch', k])
    .output('y', 'float32', ['batch', n])
    .floatInitializer('w', w, [k, n + 1]);
  g.intInitializer('starts', [0]).intInitializer('ends', [n]).intInitializer('axes', [1]);
  g.node('Slice', [g.op('MatMul', ['x', 'w']), 'starts', 'ends', 'axes'], ['y']);
  const input = join(dir, 'fail.onnx');
  const output = join(dir, 'fail-int8.onnx');
  const data = join(dir, 'fail.jsonl');
  await writeFile(input, g.toBytes());
  const xs = rows(80, k, 2);
  await labelledByModel(g.toBytes(), xs, data);

  const r = await cli(input, output, '--validate', data, '--max-delta', '0.01', '--per-tensor', '--min-elements', '0');
  assert.equal(r.code, QUANTIZE_EXIT.deltaExceeded);
  assert.match(r.err, /FAIL: accuracy delta \(fp32 - int8\) 0\.[1-9]\d* exceeds --max-delta 0.01/);
  assert.match(r.err, /was not written/);
  assert.match(r.err, /measure the accuracy delta before shipping/);
  assert.equal(existsSync(output), false);

  // Per channel, the same weights quantise well (a row near a tie may still flip).
  const ok = await cli(input, output, '--validate', data, '--max-delta', '0.05', '--min-elements', '0');
  assert.equal(ok.code, QUANTIZE_EXIT.ok, ok.err);

  // Without labels the gate is the top-1 disagreement rate.
  const unlabelled = join(dir, 'fail-unlabelled.jsonl');
  await writeFile(unlabelled, xs.map((x) => JSON.stringify({ x })).join('\n'));
  const r2 = await cli(
    input,
    output,
    '--validate',
    unlabelled,
    '--max-delta',
    '0.01',
    '--per-tensor',
    '--min-elements',
    '0',
    '--classifier-output',
    'y',
  );
  assert.equal(r2.code, QUANTIZE_EXIT.deltaExceeded);
  assert.match(r2.err, /FAIL: top-1 disagreement rate/);
});

test('a ferry.yaml beside IN encodes feature instances and names the classes', async () => {
  const fx = tinyClassifier();
  const vdir = join(dir, 'tiny-classifier', '1.0.0');
  await import('node:fs/promises').then((fs) => fs.mkdir(vdir, { recursive: true }));
  await writeFile(join(vdir, 'model.onnx'), fx.onnx);
  await writeFile(join(vdir, 'ferry.yaml'), stringify({ name: 'tiny-classifier', version: '1.0.0', ...fx.manifest }));
  const data = join(dir, 'tiny.jsonl');
  const instances = [
    { amount: 72.5, items: 2, member: true, color: 'green' },
    { amount: 10, items: 0, member: false, color: 'red' },
    { amount: 95, items: 3, member: true, color: 'blue' },
  ];
  await writeFile(
    data,
    instances
      .map((i) => {
        const p = fx.reference(i);
        return JSON.stringify({ ...i, label: p[1]! > p[0]! ? 'yes' : 'no' });
      })
      .join('\n'),
  );
  const r = await cli(
    join(vdir, 'model.onnx'),
    join(dir, 'tiny-int8.onnx'),
    '--validate',
    data,
    '--max-delta',
    '0.34',
    '--min-elements',
    '0',
    '--json',
  );
  assert.equal(r.code, QUANTIZE_EXIT.ok, r.err);
  const report = JSON.parse(r.out) as {
    quantization: { quantized: unknown[] };
    validation: { classification: { output: string; fp32Accuracy: number } };
    verdict: { passed: boolean };
  };
  assert.equal(report.quantization.quantized.length, 1);
  assert.equal(report.validation.classification.output, 'probabilities');
  assert.equal(report.validation.classification.fp32Accuracy, 1);
  assert.equal(report.verdict.passed, true);
});

test('bad input and bad usage exit 2 with a one-line reason', async () => {
  const notOnnx = join(dir, 'not.onnx');
  await writeFile(notOnnx, 'hello, I am a text file');
  const a = await cli(notOnnx, join(dir, 'x.onnx'));
  assert.equal(a.code, QUANTIZE_EXIT.error);
  assert.match(a.err, /^ferry quantize: not an ONNX model.*\[quantize-invalid-model\]\n$/);

  const truncated = join(dir, 'truncated.onnx');
  const whole = buildMlp({ sizes: [64, 128, 10] }).bytes;
  await writeFile(truncated, whole.subarray(0, Math.floor(whole.length * 0.6)));
  const b = await cli(truncated, join(dir, 'x.onnx'));
  assert.equal(b.code, QUANTIZE_EXIT.error);
  assert.match(b.err, /truncated/);

  const c = await cli(join(dir, 'missing.onnx'), join(dir, 'x.onnx'));
  assert.equal(c.code, QUANTIZE_EXIT.error);
  assert.match(c.err, /cannot read .*missing.onnx/);

  const d = await cli(notOnnx, join(dir, 'x.onnx'), '--max-delta', '0.01');
  assert.equal(d.code, QUANTIZE_EXIT.error);
  assert.match(d.err, /--max-delta needs --validate DATA: measure the accuracy delta before shipping/);

  const e = await cli(notOnnx);
  assert.equal(e.code, QUANTIZE_EXIT.error);
  assert.match(e.err, /missing required argument 'out'/);

  const f = await cli(notOnnx, 'o.onnx', '--format', 'int4');
  assert.equal(f.code, QUANTIZE_EXIT.error);
  assert.match(f.err, /Allowed choices are integer-ops, qdq, contrib/);

  const g = await cli(notOnnx, 'o.onnx', '--per-channel', '--per-tensor');
  assert.equal(g.code, QUANTIZE_EXIT.error);

  const h = await cli('--help');
  assert.equal(h.code, QUANTIZE_EXIT.ok);
  assert.match(h.out, /--validate <data>/);
  assert.ok(!existsSync(join(dir, 'x.onnx')));
});

test('the CLI declares the formats, defaults and patterns the tools implement', () => {
  assert.deepEqual([...QUANT_FORMATS], [...SERVER_QUANT_FORMATS]);
  assert.equal(QUANTIZE_DEFAULTS.minElements, QUANTIZE_MIN_ELEMENTS_DEFAULT);
  assert.deepEqual([...PATTERNS], [...COST_PATTERNS]);
  assert.equal(shippedPricesPathForTest(), DEFAULT_PRICES_PATH);
});
