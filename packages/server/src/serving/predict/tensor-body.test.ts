// Reading a plain tensor body straight into its tensor: the same float32 bits as the ordinary path
// (JSON.parse, the contract's validator, the encoder) for every body it reads, and a step aside
// (undefined) for every body it does not, valid or not, so the ordinary path answers with its errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileEncoder, seededRandom, type Manifest } from '@ferry/core';
import { tensorBodyReader, tensorBodyRefusal } from './tensor-body.js';
import { compileRequestValidator } from './validation.js';
import { instancesFromBody } from './request-body.js';

const WIDTH = 5;
const manifest = (over: Partial<Manifest> = {}, input: Record<string, unknown> = {}): Manifest =>
  ({
    name: 'm',
    version: '1.0.0',
    inputs: [{ name: 'x', type: 'tensor', dtype: 'float32', shape: [-1, WIDTH], ...input }],
    outputs: [{ name: 'y', dtype: 'float32', shape: [-1, 2] }],
    ...over,
  }) as Manifest;
const limits = { maxInstances: 4, maxTensorElements: 1000, maxStringLength: 100 };
const reader = tensorBodyReader(manifest(), limits)!;
const ordinary = (text: string): Float32Array => {
  const m = manifest();
  const b = instancesFromBody(JSON.parse(text));
  const instances = compileRequestValidator(m, limits).check(b.instances, b.base);
  return compileEncoder(m).encode(instances).x!.data as Float32Array;
};
const bits = (a: Float32Array): number[] => [...new Uint32Array(a.buffer, a.byteOffset, a.length)];
const read = (text: string) => reader.read(Buffer.from(text));

test('reads the same float32 bits as JSON.parse, validation and encoding, for random bodies', () => {
  const rand = seededRandom(7);
  const number = (): string => {
    const digits = 1 + Math.floor(rand() * 14);
    const scale = Math.floor(rand() * (digits + 1));
    let s = String(Math.floor(rand() * 10 ** digits)).padStart(scale + 1, '0');
    if (scale > 0) s = `${s.slice(0, -scale)}.${s.slice(-scale)}`;
    return (rand() < 0.5 ? '-' : '') + s;
  };
  const ws = (): string => [' ', '', '\n', '\t', '\r\n '][Math.floor(rand() * 5)]!;
  for (let n = 0; n < 500; n++) {
    const rows = 1 + Math.floor(rand() * 4);
    const body =
      `${ws()}{${ws()}"instances"${ws()}:${ws()}[` +
      Array.from(
        { length: rows },
        () =>
          `${ws()}{${ws()}"x"${ws()}:${ws()}[${Array.from({ length: WIDTH }, () => `${ws()}${number()}${ws()}`).join(',')}]${ws()}}${ws()}`,
      ).join(',') +
      `]${ws()}}${ws()}`;
    const got = read(body);
    assert.ok(got, body);
    assert.equal(got.rows, rows);
    assert.deepEqual(got.feeds.x!.dims, [rows, WIDTH]);
    assert.deepEqual(bits(got.feeds.x!.data as Float32Array), bits(ordinary(body)), body);
  }
});

test('edge numbers: zeros, negative zero, 15 digits, values past float32 precision', () => {
  const body = '{"instances":[{"x":[0,-0,-0.0,123456789012345,0.12345678901234]}]}';
  const got = read(body)!;
  assert.deepEqual(bits(got.feeds.x!.data as Float32Array), bits(ordinary(body)));
  assert.ok(Object.is((got.feeds.x!.data as Float32Array)[1], -0));
});

test('16 to 22 digits: the float32 JSON.parse gives, or a step aside next to a halfway point', () => {
  const rand = seededRandom(11);
  const one = (n: string) => `{"instances":[{"x":[1,2,3,4,${n}]}]}`;
  let readCount = 0;
  const check = (n: string) => {
    const got = read(one(n));
    if (got === undefined) return false;
    readCount++;
    assert.deepEqual(bits(got.feeds.x!.data as Float32Array), bits(ordinary(one(n))), n);
    return true;
  };
  for (let k = 0; k < 3000; k++) {
    // What clients print for float32 data held in doubles (numpy's tolist(), a Float32Array spread):
    // up to 17 digits, and exactly a float32, so always read.
    const f = Math.fround((rand() - 0.5) * 10 ** Math.floor(rand() * 12 - 6));
    assert.ok(check(String(f)) || /e/.test(String(f)) || Math.abs(f) < 2 ** -126, String(f));
    // Any decimal of 16 to 22 digits.
    const digits = 16 + Math.floor(rand() * 7);
    const scale = Math.floor(rand() * (digits + 1));
    let d = Array.from({ length: digits }, () => Math.floor(rand() * 10))
      .join('')
      .replace(/^0+(?=\d)/, '');
    d = d.padStart(scale + 1, '0');
    if (scale > 0) d = `${d.slice(0, -scale)}.${d.slice(-scale)}`;
    check((rand() < 0.5 ? '-' : '') + d);
  }
  assert.ok(readCount > 5000, `${readCount} of 6000 read`);
  // Halfway between two float32 values (1 + 2^-24 between 1 and 1 + 2^-23), and a hair either side:
  // JSON.parse's double rounds to even, or to the nearer; the reader cannot tell from its own reading.
  for (const n of ['1.0000000596046447753906', '1.000000059604644775390', '1.000000059604644775391'])
    assert.equal(read(one(n)), undefined, n);
  // 17 digits of 0.1 as a float32, 0.1 itself, and a long run of zeros.
  for (const n of ['0.10000000149011612', '0.1000000000000000', '0.0000000000000000000000', '-1234567.8901234567'])
    assert.ok(check(n), n);
});

test('steps aside for every body outside the plain form, valid or not', () => {
  const row = '[1,2,3,4,5]';
  const refused = [
    '', // empty
    '[]',
    '{"instances":[]}', // no rows: the validator's error
    `{"inputs":{"x":[${row}]}}`, // the columnar form
    `{"instances":[{"x":${row}}],"extra":1}`, // another member
    `{"extra":1,"instances":[{"x":${row}}]}`,
    `{"instances":[{"x":${row},"y":1}]}`, // another feature
    `{"instances":[{"\\u0078":${row}}]}`, // an escaped key
    `{"instances":[{"x":[1,2,3,4]}]}`, // too short
    `{"instances":[{"x":[1,2,3,4,5,6]}]}`, // too long
    `{"instances":[{"x":[1,2,3,4,1e3]}]}`, // exponent
    `{"instances":[{"x":[1,2,3,4,1E3]}]}`,
    `{"instances":[{"x":[1,2,3,4,0.12345678901234567890123]}]}`, // 23 digits
    `{"instances":[{"x":[1,2,3,4,1.00000000000000000000001e0]}]}`, // long, with an exponent
    `{"instances":[{"x":[1,2,3,4,01]}]}`, // leading zero: not JSON
    `{"instances":[{"x":[1,2,3,4,1.]}]}`,
    `{"instances":[{"x":[1,2,3,4,.5]}]}`,
    `{"instances":[{"x":[1,2,3,4,-]}]}`,
    `{"instances":[{"x":[1,2,3,4,+5]}]}`,
    `{"instances":[{"x":[1,2,3,4,NaN]}]}`,
    `{"instances":[{"x":[1,2,3,4,null]}]}`,
    `{"instances":[{"x":[1,2,3,4,"5"]}]}`,
    `{"instances":[{"x":[1,2,3,4,[5]]}]}`,
    `{"instances":[{"x":[1,2,3,4,5,]}]}`, // trailing comma
    `{"instances":[{"x":${row}},]}`,
    `{"instances":[{"x":${row}}]}x`, // trailing bytes
    `{"instances":[{"x":${row}}]`, // cut short
    `{"instances":[{"x":[1,2,3`,
    `\uFEFF{"instances":[{"x":${row}}]}`, // a byte-order mark
    `{"instances":[${Array.from({ length: 5 }, () => `{"x":${row}}`).join(',')}]}`, // past maxInstances (4)
  ];
  for (const body of refused) assert.equal(read(body), undefined, body);
  assert.ok(read(`{"instances":[${Array.from({ length: 4 }, () => `{"x":${row}}`).join(',')}]}`));
});

test('rows past limits.maxTensorElements step aside, so the ordinary path splits them', () => {
  const small = tensorBodyReader(manifest(), { maxInstances: 64, maxTensorElements: 2 * WIDTH })!;
  const body = (n: number) => `{"instances":[${Array.from({ length: n }, () => '{"x":[1,2,3,4,5]}').join(',')}]}`;
  assert.equal(small.read(Buffer.from(body(2)))?.rows, 2);
  assert.equal(small.read(Buffer.from(body(3))), undefined);
});

test('only a single float32 [-1, N] tensor fed as sent gets a reader', () => {
  assert.equal(tensorBodyRefusal(manifest()), undefined);
  const refusals: Array<[Partial<Manifest>, Record<string, unknown>]> = [
    [{}, { dtype: 'float64' }],
    [{}, { dtype: 'int64' }],
    [{}, { shape: [-1, 2, 3] }],
    [{}, { shape: [1, 5] }],
    [{}, { shape: [-1, -1] }],
    [{}, { min: 0 }],
    [{}, { optional: true }],
    [{}, { name: '__proto__' }],
    [{}, { name: 'a"b' }],
    [{ handler: 'handler.ts' } as Partial<Manifest>, {}],
    [{ preprocess: [{ input: 'x', dtype: 'float32', columns: [] }] } as unknown as Partial<Manifest>, {}],
  ];
  for (const [over, input] of refusals) {
    assert.notEqual(tensorBodyRefusal(manifest(over, input)), undefined, JSON.stringify([over, input]));
    assert.equal(tensorBodyReader(manifest(over, input), limits), undefined);
  }
  const twoInputs = manifest();
  twoInputs.inputs.push({ name: 'z', type: 'number' } as Manifest['inputs'][number]);
  assert.equal(tensorBodyReader(twoInputs, limits), undefined);
});
