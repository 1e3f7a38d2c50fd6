import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileEncoder, type Manifest, type TensorFeature } from '@ferry/core';
import { transformerContract } from './init-transformer.js';

const TOKENIZER = fileURLToPath(
  new URL('../../../../../models/spam-transformer/1.0.0/tokenizer.json', import.meta.url),
);

const ids = (name: string): TensorFeature => ({ name, type: 'tensor', dtype: 'int64', shape: [-1, -1] });

test('a model that declares position_ids gets a text contract whose tokenizer feeds them', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-init-tf-'));
  try {
    copyFileSync(TOKENIZER, join(dir, 'tokenizer.json'));
    const first: Manifest = {
      name: 'tf',
      version: '1.0.0',
      inputs: ['input_ids', 'attention_mask', 'position_ids'].map(ids),
      outputs: [{ name: 'logits', dtype: 'float32', shape: [-1, 2] }],
    };
    const { manifest, files } = transformerContract(join(dir, 'model.onnx'), first);
    assert.deepEqual(files, ['tokenizer.json']);
    assert.deepEqual(
      manifest.inputs.map((f) => f.name),
      ['text'],
    );
    assert.equal(manifest.tokenizer?.positionIds, 'position_ids');
    assert.equal(manifest.tokenizer?.tokenTypeIds, undefined, 'the model takes no token_type_ids');
    assert.equal(manifest.batching?.padding?.values.position_ids, 0);

    const tokenizer = JSON.parse(readFileSync(TOKENIZER, 'utf8')) as unknown;
    const { feeds } = compileEncoder(manifest, { tokenizer }).encodeBatch([{ text: 'free money now' }, { text: 'hi' }]);
    assert.deepEqual(Object.keys(feeds).sort(), ['attention_mask', 'input_ids', 'position_ids']);
    const [, width] = feeds.position_ids!.dims as [number, number];
    const pos = Array.from(feeds.position_ids!.data as BigInt64Array, Number);
    const mask = Array.from(feeds.attention_mask!.data as BigInt64Array, Number);
    assert.deepEqual(
      pos.slice(0, width),
      Array.from({ length: width }, (_, k) => k),
    );
    // The second row: positions over its real tokens, then the pad value 0 where the mask is 0.
    pos.slice(width).forEach((p, k) => assert.equal(p, mask[width + k] ? k : 0));
    assert.ok(mask.slice(width).includes(0), 'the short row is padded');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
