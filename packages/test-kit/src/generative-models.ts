// A tiny GPT-2-shaped generative model for tests: random weights (seeded), LayerNorm and GELU, the
// Hugging Face export layout, a byte-level tokenizer.json and a chat template. The end-of-text token is
// made unreachable (a constant LayerNorm channel gives it a logit of -100), so a completion always runs
// to max_tokens or a stop sequence: tests decide how long a stream is.
import type { TestModel } from './test-server.js';
import { byteLevelTokenizerJson } from '../../server/dist/generation/byte-tokenizer.js';
import { buildDecoderOnnx, randomDecoderWeights, type DecoderShape, type DecoderWeights } from '@ferry/tools/onnx';
import { seededRandom } from '../../server/dist/generation/sampler.js';

export const TINY_SPECIALS = ['<|endoftext|>', '<|user|>', '<|assistant|>', '<|end|>'] as const;
export const TINY_CHAT_TEMPLATE =
  '{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}<|end|>\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}';

export interface TinyDecoderOptions {
  seed?: number;
  layers?: number;
  hidden?: number;
  heads?: number;
  contextLength?: number;
}

export function tinyDecoder(o: TinyDecoderOptions = {}): {
  shape: DecoderShape;
  weights: DecoderWeights;
  onnx: Uint8Array;
} {
  const shape: DecoderShape = {
    vocabSize: TINY_SPECIALS.length + 256,
    hidden: o.hidden ?? 16,
    heads: o.heads ?? 2,
    layers: o.layers ?? 2,
    maxPositions: o.contextLength ?? 128,
    mlpHidden: 4 * (o.hidden ?? 16),
    layerNorm: true,
    activation: 'gelu',
  };
  // Larger than GPT-2's 0.02 so that the logits differ clearly between tokens and positions.
  const weights = randomDecoderWeights(shape, seededRandom(o.seed ?? 7), 0.3);
  weights.lnfg![0] = 0;
  weights.lnfb![0] = 1;
  for (let t = 0; t < shape.vocabSize; t++) weights.head[t] = t === 0 ? -100 : 0;
  return { shape, weights, onnx: buildDecoderOnnx(shape, weights) };
}

/** The tiny decoder as a repository version ready for startTestServer. */
export function tinyGenerativeModel(name = 'tiny-gpt', o: TinyDecoderOptions = {}): TestModel {
  const { onnx, shape } = tinyDecoder(o);
  return {
    name,
    version: '1.0.0',
    files: {
      onnx,
      manifest: {
        description: 'tiny random GPT-2-shaped decoder for tests',
        inputs: [{ name: 'prompt', type: 'string' }],
        outputs: [{ name: 'logits', dtype: 'float32' }],
        generation: { contextLength: shape.maxPositions, eosTokens: ['<|endoftext|>'] },
      },
      files: {
        'tokenizer.json': JSON.stringify(byteLevelTokenizerJson(TINY_SPECIALS)),
        'chat_template.jinja': TINY_CHAT_TEMPLATE,
      },
    },
  };
}
