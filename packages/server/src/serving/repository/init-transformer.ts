// `ferry init` for transformer exports: recognises Hugging Face input names (input_ids, attention_mask,
// token_type_ids, position_ids) and the files an export leaves beside the ONNX file (tokenizer.json, config.json
// with id2label, tokenizer_config.json), and turns the tensor-only first contract into one that takes text,
// pads ragged batches and answers labels — with no hand editing.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { TextTokenizer, type Manifest, type TensorFeature } from '@ferry/core';

/** Hugging Face's encoder input names and the pad value each takes. */
const HF_INPUTS = ['input_ids', 'attention_mask', 'token_type_ids', 'position_ids'] as const;

/** Files beside the ONNX file that the contract written by init refers to (copied into the version folder). */
export const TRANSFORMER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'config.json'] as const;

interface HfConfig {
  id2label?: Record<string, string>;
  vocab_size?: number;
  pad_token_id?: number;
  max_position_embeddings?: number;
}

function readJson(path: string): Record<string, unknown> | undefined {
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${path} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Labels in id order from config.json's `id2label`, or undefined when absent or generic (LABEL_0, ...). */
function labelsOf(config: HfConfig | undefined): string[] | undefined {
  const map = config?.id2label;
  if (!map || typeof map !== 'object') return undefined;
  const entries = Object.entries(map)
    .map(([k, v]) => [Number(k), String(v)] as const)
    .sort((a, b) => a[0] - b[0]);
  if (entries.length === 0 || entries.some(([k], i) => k !== i)) return undefined;
  return entries.map(([, v]) => v);
}

/**
 * Rewrites a tensor-only manifest written from ONNX metadata when the model takes Hugging Face inputs.
 * Returns the manifest unchanged for any other model.
 */
export function transformerContract(onnxPath: string, m: Manifest): { manifest: Manifest; files: string[] } {
  const tensors = m.inputs.filter((f): f is TensorFeature => f.type === 'tensor');
  const hf = tensors.filter((f) => (HF_INPUTS as readonly string[]).includes(f.name));
  const ids = hf.find((f) => f.name === 'input_ids');
  if (!ids || hf.length !== m.inputs.length) return { manifest: m, files: [] };
  const ragged = hf.every((f) => f.shape.length === 2 && f.shape[0] === -1 && f.shape[1] === -1);
  if (!ragged) return { manifest: m, files: [] };

  const dir = dirname(onnxPath);
  const config = readJson(join(dir, 'config.json')) as HfConfig | undefined;
  const tokenizerConfig = readJson(join(dir, 'tokenizer_config.json'));
  const tokenizerJson = readJson(join(dir, 'tokenizer.json'));
  const files = TRANSFORMER_FILES.filter((f) => existsSync(join(dir, f)));
  const labels = labelsOf(config);

  let padId = config?.pad_token_id;
  let vocabSize = config?.vocab_size;
  let maxLength =
    (tokenizerJson?.truncation as { max_length?: number } | null | undefined)?.max_length ??
    config?.max_position_embeddings;
  const modelMax = tokenizerConfig?.model_max_length;
  if (typeof modelMax === 'number' && modelMax < 1e9) maxLength = Math.min(maxLength ?? modelMax, modelMax);
  if (tokenizerJson) {
    const tok = new TextTokenizer(tokenizerJson, { maxLength: Math.max(maxLength ?? 512, 4) });
    padId ??= tok.padId;
    vocabSize ??= tok.vocabSize;
  }
  const padValues: Record<string, number> = {};
  for (const f of hf) padValues[f.name] = f.name === 'input_ids' ? (padId ?? 0) : 0;

  const out: Manifest = { ...m };
  const has = (n: string) => hf.some((f) => f.name === n);
  if (tokenizerJson) {
    out.inputs = [
      {
        name: 'text',
        type: 'string',
        maxLength: 100_000,
        description: `Text to classify; tokenized with tokenizer.json and cut to ${maxLength ?? 512} tokens.`,
      },
    ];
    out.tokenizer = {
      file: 'tokenizer.json',
      text: 'text',
      maxLength: maxLength ?? 512,
      truncation: 'longest_first',
      inputIds: 'input_ids',
      ...(has('attention_mask') && { attentionMask: 'attention_mask' }),
      ...(has('token_type_ids') && { tokenTypeIds: 'token_type_ids' }),
      ...(has('position_ids') && { positionIds: 'position_ids' }),
    };
  } else {
    // Token ids in tensor form: still padded and batched; ids outside the vocabulary are refused with a 400.
    out.inputs = m.inputs.map((f) =>
      f.type === 'tensor' && f.name === 'input_ids' && vocabSize !== undefined
        ? { ...f, min: 0, max: vocabSize - 1 }
        : f.type === 'tensor' && f.name === 'attention_mask'
          ? { ...f, min: 0, max: 1 }
          : f,
    );
  }
  out.batching = {
    maxBatchSize: 32,
    maxQueueDelayUs: 2000,
    padding: { values: padValues, maxTokensPerBatch: 32 * (maxLength ?? 512), lengthAware: true },
  };

  const logits = m.outputs.find((o) => o.name === 'logits') ?? m.outputs[0]!;
  const perLabel = logits.shape?.[logits.shape.length - 1];
  if (labels && logits.shape?.length === 2 && (perLabel === -1 || perLabel === labels.length)) {
    out.postprocess = { kind: 'classification', output: logits.name, labels, activation: 'softmax' };
  } else if (labels && tokenizerJson && logits.shape?.length === 3) {
    out.postprocess = {
      kind: 'token-classification',
      output: logits.name,
      labels,
      aggregation: 'simple',
    };
  } else if (!labels && logits.shape?.length === 3) {
    out.postprocess = { kind: 'embedding', output: logits.name, pooling: 'mean', normalize: true };
  }
  out.description = `${m.name} ${m.version}, a transformer imported by ferry init${tokenizerJson ? ' with its tokenizer.json' : ''}${labels ? ` (labels from config.json: ${labels.join(', ')})` : ''}.`;
  return { manifest: out, files };
}
