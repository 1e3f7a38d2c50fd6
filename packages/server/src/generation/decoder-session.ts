// One decoder-only ONNX model in the Hugging Face export layout, stepped with its KV cache: the prompt
// runs once (prefill), then each new token runs alone against the cached keys and values that the
// previous step returned as `present.*`. Used by the decode worker, and directly by tests and the bench.
import * as ort from 'onnxruntime-node';
import type { DecoderLayout } from './protocol.js';

const PAST = /^past_key_values\.(\d+)\.(key|value)$/;

/** Reads the layout from the session's own inputs and outputs; refuses a model that is not a KV-cache decoder. */
export function decoderLayout(session: ort.InferenceSession): DecoderLayout {
  const inputs = session.inputNames;
  const outputs = session.outputNames;
  for (const need of ['input_ids', 'attention_mask']) {
    if (!inputs.includes(need))
      throw new Error(`not a decoder export: input "${need}" is missing (inputs: ${inputs.join(', ')})`);
  }
  if (!outputs.includes('logits'))
    throw new Error(`not a decoder export: output "logits" is missing (outputs: ${outputs.join(', ')})`);
  const layers = new Set<number>();
  for (const n of inputs) {
    const m = PAST.exec(n);
    if (m) layers.add(Number(m[1]));
  }
  if (layers.size === 0)
    throw new Error('the model takes no past_key_values.* inputs: export it with the KV cache (with-past)');
  const count = Math.max(...layers) + 1;
  for (let i = 0; i < count; i++) {
    for (const n of [`past_key_values.${i}.key`, `past_key_values.${i}.value`])
      if (!inputs.includes(n)) throw new Error(`input "${n}" is missing`);
    for (const n of [`present.${i}.key`, `present.${i}.value`])
      if (!outputs.includes(n)) throw new Error(`output "${n}" is missing`);
  }
  const meta = session.inputMetadata.find((m) => m.name === 'past_key_values.0.key');
  const shape = meta && meta.isTensor ? meta.shape : [];
  const heads = shape[1];
  const headDim = shape[3];
  if (typeof heads !== 'number' || typeof headDim !== 'number')
    throw new Error('past_key_values.0.key must have fixed head count and head size ([batch, heads, past, head_dim])');
  if (meta && meta.isTensor && meta.type !== 'float32')
    throw new Error(`past_key_values.0.key is ${meta.type}; Ferry's decoder runtime takes float32 caches`);
  const lm = session.outputMetadata.find((m) => m.name === 'logits');
  const vocabSize = lm && lm.isTensor ? lm.shape[2] : undefined;
  return {
    layers: count,
    heads,
    headDim,
    vocabSize: typeof vocabSize === 'number' ? vocabSize : -1,
    positionIds: inputs.includes('position_ids'),
    inputs: [...inputs],
    outputs: [...outputs],
  };
}

/** The generation state of one sequence: its cache and length. `dispose()` frees the cache's native memory. */
export class KvSequence {
  #past: Map<string, ort.Tensor> = new Map();
  #length = 0;

  constructor(
    readonly session: ort.InferenceSession,
    readonly layout: DecoderLayout,
  ) {
    const empty = new Float32Array(0);
    for (let i = 0; i < layout.layers; i++) {
      for (const kind of ['key', 'value']) {
        this.#past.set(
          `past_key_values.${i}.${kind}`,
          new ort.Tensor('float32', empty, [1, layout.heads, 0, layout.headDim]),
        );
      }
    }
  }

  /** Tokens already in the cache. */
  get length(): number {
    return this.#length;
  }

  /**
   * Runs `ids` after what is cached and returns the logits of the last position (a fresh array).
   * With `allLogits`, every position's logits ([ids.length × vocab]), for tests.
   */
  async step(ids: readonly number[], allLogits = false): Promise<Float32Array> {
    const s = ids.length;
    const total = this.#length + s;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor(
        'int64',
        BigInt64Array.from(ids, (i) => BigInt(i)),
        [1, s],
      ),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(total).fill(1n), [1, total]),
      ...Object.fromEntries(this.#past),
    };
    if (this.layout.positionIds) {
      feeds.position_ids = new ort.Tensor(
        'int64',
        BigInt64Array.from({ length: s }, (_, i) => BigInt(this.#length + i)),
        [1, s],
      );
    }
    const out = await this.session.run(feeds);
    const logits = out.logits!;
    const vocab = logits.dims[2]!;
    const data = logits.data as Float32Array;
    const result = allLogits ? data.slice() : data.slice((s - 1) * vocab, s * vocab);
    for (const t of this.#past.values()) if (t.size > 0) t.dispose();
    const next = new Map<string, ort.Tensor>();
    for (let i = 0; i < this.layout.layers; i++) {
      next.set(`past_key_values.${i}.key`, out[`present.${i}.key`]!);
      next.set(`past_key_values.${i}.value`, out[`present.${i}.value`]!);
    }
    for (const [name, t] of Object.entries(out)) if (!name.startsWith('present.')) t.dispose();
    this.#past = next;
    this.#length = total;
    return result;
  }

  dispose(): void {
    for (const t of this.#past.values()) if (t.size > 0) t.dispose();
    this.#past.clear();
  }
}
