// Trains the `ham-chat` example generative model and exports models/ham-chat/1.0.0/: a one-layer
// byte-level transformer that, given an e-mail's subject as the user's turn, writes a body as the
// assistant's turn, learned from the ham (non-spam) messages of the SpamAssassin public corpus (the
// spam example's loader). It writes badly, but it is trained, and it is served through the same
// KV-cache decoder path as a Hugging Face export: model.onnx in the HF decoder layout, a real
// tokenizer.json (byte-level BPE), tokenizer_config.json and a Jinja chat template.
// Run: node examples/dist/ham-chat/train.js   (or `npm run models`, which skips it when fresh)
import { BUILDER_SOURCES, writeExample, type ArtifactFiles, type ExampleModel } from '../lib/example-model.js';
import { isMain } from '../lib/main.js';
import {
  buildDecoderOnnx,
  byteLevelTokenizerJson,
  randomDecoderWeights,
  seededRandom,
  type DecoderShape,
  type DecoderWeights,
} from '../lib/generation.js';
import { permutation } from '../lib/random.js';
import { toYaml } from '../lib/yaml.js';
import { corpusPackageFile, loadCorpus } from '../spam/data.js';
import { Adam, backward, forward, loss, parameters, zerosLike } from './network.js';

export const NAME = 'ham-chat';
export const VERSION = '1.0.0';
export const SPECIALS = ['<|endoftext|>', '<|user|>', '<|assistant|>', '<|end|>'] as const;
export const [EOT, USER, ASSISTANT, END] = [0, 1, 2, 3] as const;
export const CHAT_TEMPLATE =
  '{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}<|end|>\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}';
const OFFSET = SPECIALS.length;

export const SHAPE: DecoderShape = {
  vocabSize: OFFSET + 256,
  hidden: 32,
  heads: 4,
  layers: 1,
  maxPositions: 128,
  mlpHidden: 96,
  layerNorm: false,
  activation: 'relu',
};

export interface TrainOptions {
  steps?: number;
  batch?: number;
  seed?: number;
  /** Cap on training conversations (all by default). */
  maxDocs?: number;
  log?: (line: string) => void;
}

const bytes = (s: string): number[] => [...new TextEncoder().encode(s)].map((b) => b + OFFSET);

/** A ham message as one chat exchange, in the chat template's tokens: subject as the user, body as the assistant. */
export function conversationIds(text: string, maxLength: number): number[] {
  const split = text.indexOf('\n\n');
  const subject = (split < 0 ? text : text.slice(0, split))
    .replace(/^re:\s*/i, '')
    .trim()
    .slice(0, 80);
  const body = (split < 0 ? '' : text.slice(split + 2))
    .split('\n')
    .filter((l) => !l.startsWith('>'))
    .join('\n') // quoted replies would teach copying, not writing
    .replace(/[ \t]+/g, ' ')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
  const ids = [USER, ...bytes(`\n${subject}`), END, ...bytes('\n'), ASSISTANT, ...bytes(`\n${body}`), END];
  return ids.slice(0, maxLength);
}

export interface Trained {
  weights: DecoderWeights;
  trainLoss: number;
  heldOutLoss: number;
  /** Held-out cross-entropy of the training set's byte frequencies alone: what the attention must beat. */
  unigramLoss: number;
  docs: { train: number; heldOut: number };
  steps: number;
}

function unigramLoss(train: number[][], heldOut: number[][], vocab: number): number {
  const counts = new Float64Array(vocab).fill(1);
  let total = vocab;
  for (const d of train)
    for (const id of d.slice(1)) {
      counts[id]!++;
      total++;
    }
  let ce = 0;
  let n = 0;
  for (const d of heldOut)
    for (const id of d.slice(1)) {
      ce -= Math.log(counts[id]! / total);
      n++;
    }
  return ce / n;
}

export function train(o: TrainOptions = {}): Trained {
  const log = o.log ?? (() => {});
  const seed = o.seed ?? 2002;
  const random = seededRandom(seed);
  const ham = loadCorpus().messages.filter((m) => m.label === 'ham');
  const order = permutation(ham.length, random);
  const docs = [...order].map((i) => conversationIds(ham[i]!.text, SHAPE.maxPositions)).filter((d) => d.length >= 16);
  const heldOutCount = Math.round(docs.length * 0.05);
  const heldOut = docs.slice(0, heldOutCount);
  const trainDocs = docs.slice(heldOutCount, o.maxDocs !== undefined ? heldOutCount + o.maxDocs : undefined);
  const weights = randomDecoderWeights(SHAPE, random, 0.08);
  const grads = zerosLike(weights);
  const params = parameters(weights);
  const gparams = parameters(grads);
  const adam = new Adam(params);
  const steps = o.steps ?? 500;
  const batch = o.batch ?? 8;
  let running = 0;
  for (let step = 0; step < steps; step++) {
    for (const g of gparams) g.fill(0);
    let l = 0;
    for (let b = 0; b < batch; b++) {
      const doc = trainDocs[Math.floor(random() * trainDocs.length)]!;
      l += backward(SHAPE, weights, grads, forward(SHAPE, weights, doc), 1 / batch);
    }
    // Linear warm-up over 30 steps, then linear decay to a tenth.
    const lr = 4e-3 * Math.min(1, (step + 1) / 30) * (1 - 0.9 * (step / steps));
    adam.step(params, gparams, lr, 1);
    running = step === 0 ? l / batch : 0.98 * running + 0.02 * (l / batch);
    if (step % 100 === 0 || step === steps - 1) log(`step ${step}: loss ${running.toFixed(3)}`);
  }
  const evalLoss = (set: number[][]) =>
    set.reduce((a, d) => a + loss(SHAPE, forward(SHAPE, weights, d).logits, d) * (d.length - 1), 0) /
    set.reduce((a, d) => a + d.length - 1, 0);
  return {
    weights,
    trainLoss: running,
    heldOutLoss: evalLoss(heldOut),
    unigramLoss: unigramLoss(trainDocs, heldOut, SHAPE.vocabSize),
    docs: { train: trainDocs.length, heldOut: heldOut.length },
    steps,
  };
}

export function exportFiles(t: Trained): ArtifactFiles {
  const manifest = {
    name: NAME,
    version: VERSION,
    description:
      'Writes an e-mail body for a subject line: a 1-layer byte-level transformer trained on the SpamAssassin ham corpus. Served at /openai/v1.',
    inputs: [
      {
        name: 'prompt',
        type: 'string',
        description: 'Documents the model: requests go to /openai/v1/chat/completions or /completions.',
      },
    ],
    outputs: [{ name: 'logits', dtype: 'float32', shape: [-1, -1, SHAPE.vocabSize] }],
    generation: {
      contextLength: SHAPE.maxPositions,
      eosTokens: ['<|end|>', '<|endoftext|>'],
      defaults: { maxTokens: 96, temperature: 0.8, topP: 0.95 },
    },
    runtime: { placement: 'worker' },
  };
  const nats = (x: number) => x.toFixed(3);
  const card = `# ham-chat ${VERSION}

A small generative model for trying Ferry's OpenAI-compatible API (\`/openai/v1\`) and \`ferry chat\`:
give it an e-mail subject as the user's message and it writes a body, byte by byte, in the manner of
the SpamAssassin corpus's ham messages (mailing lists and personal mail, 2002). It writes badly.

- Network: decoder-only transformer, ${SHAPE.layers} layer, width ${SHAPE.hidden}, ${SHAPE.heads} heads, feed-forward ${SHAPE.mlpHidden}, learned positions up to ${SHAPE.maxPositions} tokens.
- Tokenizer: byte-level BPE without merges (every UTF-8 byte is a token) plus ${SPECIALS.length} special tokens, as \`tokenizer.json\`.
- Chat template (\`chat_template.jinja\`): \`<|user|>\\n{subject}<|end|>\\n<|assistant|>\\n\`; generation ends at \`<|end|>\`.
- ONNX: Hugging Face decoder export layout (\`input_ids\`, \`attention_mask\`, \`position_ids\`, \`past_key_values.0.key/value\` → \`logits\`, \`present.0.key/value\`).
- Training: ${t.docs.train} ham messages (subject + body, quoted lines dropped, cut at ${SHAPE.maxPositions} tokens), ${t.steps} Adam steps of 8 conversations, in TypeScript by \`examples/src/ham-chat/train.ts\`.

| held-out messages | cross-entropy (nats/token) |
| --- | --- |
| this model | ${nats(t.heldOutLoss)} |
| byte frequencies alone (unigram) | ${nats(t.unigramLoss)} |
| uniform over ${SHAPE.vocabSize} tokens | ${nats(Math.log(SHAPE.vocabSize))} |

(${t.docs.heldOut} held-out messages; the training loss at the end was ${nats(t.trainLoss)}.)
`;
  return {
    'model.onnx': buildDecoderOnnx(SHAPE, t.weights, { 'ferry.example': NAME }),
    'ferry.yaml': toYaml(manifest),
    'tokenizer.json': `${JSON.stringify(byteLevelTokenizerJson(SPECIALS))}\n`,
    'tokenizer_config.json': `${JSON.stringify({ bos_token: '<|endoftext|>', eos_token: '<|end|>', unk_token: null, model_max_length: SHAPE.maxPositions, tokenizer_class: 'PreTrainedTokenizerFast' }, null, 2)}\n`,
    'chat_template.jinja': CHAT_TEMPLATE,
    'card.md': card,
  };
}

export const hamChat: ExampleModel = {
  name: NAME,
  version: VERSION,
  inputs: [
    'examples/src/ham-chat',
    'examples/src/spam/data.ts',
    'examples/src/spam/email.ts',
    'examples/src/lib/random.ts',
    'examples/src/lib/yaml.ts',
    ...BUILDER_SOURCES,
    'packages/tools/src/onnx/decoder-graph.ts',
    'packages/server/src/generation/byte-tokenizer.ts',
    'packages/server/src/generation/sampler.ts',
    corpusPackageFile(),
  ],
  async build() {
    return exportFiles(train({ log: (l) => console.log(`ham-chat: ${l}`) }));
  },
};

if (isMain(import.meta.url)) {
  const files = await writeExample(hamChat);
  console.log(`wrote ${files.join(', ')}`);
}
