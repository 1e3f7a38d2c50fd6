// The cache key of one validated instance: a SHA-256 over its values in contract order.
//
// Numbers (alone or in arrays of any depth) are hashed as their float64 bytes, not as text: turning 256
// doubles into their shortest decimal spelling (JSON.stringify) costs about 22 µs, writing them into a
// Float64Array and hashing the 2 KB about 3 µs. The bytes are as canonical as the text was: `2`, `2.0` and
// `2e0` parse to the same double (and -0 is folded into 0, as JSON prints it). Anything else (strings,
// booleans, objects, arrays that are not all numbers or all arrays) is hashed as its JSON text.
import { createHash, hash } from 'node:crypto';
import type { Feature, Instance } from '@ferry/core';

// One instance is hashed in three parts, each written once: a stream of int32 (per feature a tag, and for
// numeric arrays every array's length), the float64 values, and the JSON texts of everything else. The tag
// stream says how to read the other two, so no two instances share the bytes.
const ABSENT = 0;
const SCALAR = 1;
const ARRAY = 2;
const JSON_TEXT = 3;

// Scratch buffers reused by every call (the HTTP thread is single-threaded); grown on demand.
let data = new Float64Array(1024);
let shape = new Int32Array(64);
let nData = 0;
let nShape = 0;

function pushData(x: number): void {
  if (nData === data.length) {
    const grown = new Float64Array(data.length * 2);
    grown.set(data);
    data = grown;
  }
  data[nData++] = x === 0 ? 0 : x;
}

function pushShape(n: number): void {
  if (nShape === shape.length) {
    const grown = new Int32Array(shape.length * 2);
    grown.set(shape);
    shape = grown;
  }
  shape[nShape++] = n;
}

/**
 * Flattens a numeric array, depth first, into `data` and records each array's length in `shape`:
 * positive when its elements are numbers, negative when they are arrays (so `[[1],[[2]]]` and
 * `[[[1]],[2]]` differ). False when an array mixes kinds or holds anything but finite numbers and arrays.
 */
function flatten(a: readonly unknown[]): boolean {
  if (a.length === 0) {
    pushShape(0);
    return true;
  }
  if (typeof a[0] === 'number') {
    pushShape(a.length);
    for (let i = 0; i < a.length; i++) {
      const x = a[i];
      if (typeof x !== 'number' || !Number.isFinite(x)) return false;
      pushData(x);
    }
    return true;
  }
  if (!Array.isArray(a[0])) return false;
  pushShape(-a.length);
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    if (!Array.isArray(x) || !flatten(x)) return false;
  }
  return true;
}

/** SHA-256 (base64url) of one instance's values in contract order; absent and null are the same. */
export function instanceDigest(inputs: readonly Feature[], instance: Instance): string {
  nData = 0;
  nShape = 0;
  let text = '';
  for (const f of inputs) {
    const v = instance[f.name];
    if (v === undefined || v === null) pushShape(ABSENT);
    else if (typeof v === 'number' && Number.isFinite(v)) {
      pushShape(SCALAR);
      pushData(v);
    } else {
      const shapeAt = nShape;
      const dataAt = nData;
      pushShape(ARRAY);
      if (!Array.isArray(v) || !flatten(v)) {
        nShape = shapeAt;
        nData = dataAt;
        pushShape(JSON_TEXT);
        // JSON text never holds a raw U+0000 (JSON.stringify escapes it), so the end marker cannot be forged.
        text += `${JSON.stringify(v) ?? 'null'}\u0000`;
      }
    }
  }
  // The int32 and float64 parts laid end to end in one scratch buffer: numbers only (every tensor
  // model) hash in one call, without a Hash object per request; JSON text, when there is any, follows.
  const shapeBytes = nShape * 4;
  const size = shapeBytes + nData * 8;
  if (joined.length < size) joined = new Uint8Array(Math.max(size, joined.length * 2));
  joined.set(new Uint8Array(shape.buffer, 0, shapeBytes), 0);
  joined.set(new Uint8Array(data.buffer, 0, nData * 8), shapeBytes);
  const bytes = joined.subarray(0, size);
  if (text === '') return hash('sha256', bytes, 'base64url');
  return createHash('sha256').update(bytes).update(text).digest('base64url');
}

let joined = new Uint8Array(8192);
