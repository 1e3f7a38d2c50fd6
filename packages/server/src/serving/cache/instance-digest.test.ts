import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { Feature } from '@ferry/core';
import { instanceDigest } from './instance-digest.js';

const features = (...names: string[]) => names.map((name) => ({ name, type: 'number' }) as Feature);
const one = features('x');
const d = (x: unknown) => instanceDigest(one, { x });

test('the digest is SHA-256 over the tag stream, the float64 values and the JSON texts, as documented', () => {
  const sha = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest('base64url');
  const i32 = (...xs: number[]) => Buffer.from(new Int32Array(xs).buffer);
  const f64 = (...xs: number[]) => Buffer.from(new Float64Array(xs).buffer);
  assert.equal(d([0.5, -3]), sha(i32(2, 2), f64(0.5, -3)));
  assert.equal(d('hé'), sha(i32(3), Buffer.from('"hé"\u0000')));
  const three = features('a', 'b', 'c', 'd');
  assert.equal(
    instanceDigest(three, { a: 1.5, b: 'x', c: [[1], [2, 3]] }),
    sha(i32(1, 3, 2, -2, 1, 2, 0), f64(1.5, 1, 2, 3), Buffer.from('"x"\u0000')),
  );
});

test('feature order and number spelling do not change the digest; values do', () => {
  const inputs = features('amount', 'items', 'v');
  const a = JSON.parse('{"amount": 72.5, "items": 2, "v": [1, 0, 3]}');
  const b = JSON.parse('{"v": [1e0, -0, 3.0], "items": 2.0, "amount": 7.25e1}');
  assert.equal(instanceDigest(inputs, a), instanceDigest(inputs, b));
  assert.notEqual(instanceDigest(inputs, a), instanceDigest(inputs, { ...a, amount: 72.50001 }));
  assert.notEqual(instanceDigest(inputs, a), instanceDigest(inputs, { ...a, v: [1, 0, 3.0000000001] }));
  assert.equal(instanceDigest(inputs, { ...a, items: undefined }), instanceDigest(inputs, { ...a, items: null }));
  assert.notEqual(instanceDigest(inputs, { ...a, items: null }), instanceDigest(inputs, { ...a, items: 0 }));
});

test('structure is part of the digest: nesting, scalars and arrays, value boundaries between features', () => {
  const distinct = [
    5,
    [5],
    [[5]],
    [],
    [[]],
    null,
    [1, 2, 3],
    [[1, 2], [3]],
    [[1], [2, 3]],
    [[1], [[2]]],
    [[[1]], [2]],
    '5',
    ['5'],
    true,
    [true],
    [1, 'a'],
    [1, 'b'],
    { a: 1 },
  ];
  const digests = distinct.map(d);
  assert.equal(new Set(digests).size, distinct.length, JSON.stringify(distinct));
  const two = features('a', 'b');
  assert.notEqual(instanceDigest(two, { a: 'ab', b: 'c' }), instanceDigest(two, { a: 'a', b: 'bc' }));
  assert.notEqual(instanceDigest(two, { a: [1, 2], b: [3] }), instanceDigest(two, { a: [1], b: [2, 3] }));
  assert.notEqual(instanceDigest(two, { a: 'x\u0000', b: 'y' }), instanceDigest(two, { a: 'x', b: '\u0000y' }));
});

test('large arrays grow the scratch buffers without leaking one call into the next', () => {
  const big = Array.from({ length: 5000 }, (_, i) => Math.sin(i));
  const nested = Array.from({ length: 300 }, (_, i) => [i, -i]);
  const first = d(big);
  assert.notEqual(d([1, 2]), first);
  assert.equal(d(big), first);
  const changed = big.slice();
  changed[4999] = changed[4999]! + 1e-12;
  assert.notEqual(d(changed), first);
  const n1 = d(nested);
  assert.equal(d(nested.map((r) => r.slice())), n1);
  assert.equal(d(big), first);
});
