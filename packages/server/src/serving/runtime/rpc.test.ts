import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TensorValue } from '@ferry/core';
import { TRANSFER_MIN_BYTES, transferList } from './rpc.js';

const tensor = (data: TensorValue['data']): TensorValue => ({ dtype: 'float32', dims: [data.length], data });

test('transferList moves large whole buffers once; small buffers and views are copied', () => {
  const large = new Float32Array(TRANSFER_MIN_BYTES / 4);
  const small = new Float32Array(256);
  const view = new Float32Array(new ArrayBuffer(TRANSFER_MIN_BYTES * 2), 4, TRANSFER_MIN_BYTES / 4);
  assert.deepEqual(transferList([tensor(large), tensor(large), tensor(small), tensor(view)]), [large.buffer]);
  assert.deepEqual(transferList([tensor(small)]), []);
  assert.deepEqual(transferList([{ dtype: 'string', dims: [1], data: ['a'] }]), []);
});

test('a copied buffer stays usable by the sender; a moved one is detached', () => {
  const small = new Float32Array([1, 2, 3]);
  const large = new Float32Array(TRANSFER_MIN_BYTES / 4).fill(7);
  const { port1, port2 } = new MessageChannel();
  try {
    port1.postMessage({ small, large }, transferList([tensor(small), tensor(large)]));
    assert.deepEqual([...small], [1, 2, 3]);
    assert.equal(large.byteLength, 0);
  } finally {
    port1.close();
    port2.close();
  }
});
