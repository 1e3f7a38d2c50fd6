// Reading a plain tensor body straight into the batch's typed array. For a contract whose one input
// is a float32 tensor of shape [-1, N] fed to the model as sent (no preprocessing, no range), the
// body `{"instances": [{"x": [n, n, ...]}, ...]}` is read byte by byte: each number goes into a
// Float32Array as it is read, with no JSON.parse, no heap number per element, no instance objects,
// no schema walk and no encoding pass. Parsing, validation and encoding in one pass, for the shape a
// numeric model's clients send most.
//
// The reader accepts a strict subset of what the ordinary path (JSON.parse, instancesFromBody, the
// contract's validator, the encoder) accepts, and gives the same tensor bit for bit; anything else
// (another member, an escape in a key, an exponent, a number with more than 22 significant digits or
// more than 22 decimals, a row of the wrong length, too many rows) makes it step aside, and the
// ordinary path answers, with its own errors. Numbers: a decimal with at most 15 significant digits
// is an integer below 2^53 divided by a power of ten up to 10^22, both exact in a double, so one
// division is correctly rounded, as JSON.parse's own conversion is; the Float32Array then rounds both
// the same way. A longer one (16 to 22 digits: what a client prints for a float32 value held as a
// double, 0.10000000149011612, has 17) is read into a double within 2^-48 of JSON.parse's, which can
// round to a different float32 only when it lies that close to a point halfway between two float32
// values; such a number steps aside, and every other one gets the float32 JSON.parse's double gets.
import type { Manifest, TensorValue } from '@ferry/core';

/** The rows read from a body: `rows` instances of the input `input`, as one [rows, N] tensor. */
export interface ReadTensorBody {
  rows: number;
  feeds: Record<string, TensorValue>;
}

export interface TensorBodyReader {
  /** The feed it fills (the contract's one tensor input). */
  readonly input: string;
  /** N: the numbers in one row. */
  readonly width: number;
  /** The body's tensor, or undefined when the body is not the plain form: the ordinary path reads it. */
  read(body: Uint8Array): ReadTensorBody | undefined;
}

const COMMA = 0x2c;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const COLON = 0x3a;
const OPEN_SQUARE = 0x5b;
const CLOSE_SQUARE = 0x5d;
const OPEN_CURLY = 0x7b;
const CLOSE_CURLY = 0x7d;

/** The most significant digits a number may have and still convert exactly (see the header). */
const MAX_DIGITS = 15;
/**
 * The most significant digits a number may have and still be read, through `float32Near`, and the
 * most decimals any number may have (see the header).
 */
const MAX_LONG_DIGITS = 22;
/** Powers of ten up to 10^22, each exact in a double. */
const POW10: readonly number[] = Array.from({ length: MAX_LONG_DIGITS + 1 }, (_, i) => 10 ** i);
/** The smallest normal float32: below it (subnormals) a long number steps aside. */
const MIN_NORMAL_F32 = 2 ** -126;
const f32 = new Float32Array(1);
const f32Bits = new Int32Array(f32.buffer);

/**
 * The float32 of a positive double `d` known only to within 2^-48 of itself (a long number's reading),
 * or NaN when that is not enough to tell: `d` lies within the error of a point halfway between two
 * float32 values, or outside the normal float32 range.
 */
function float32Near(d: number): number {
  const f = Math.fround(d);
  if (f === d) return f;
  if (!(f >= MIN_NORMAL_F32 && f < Infinity)) return NaN;
  // The float32 neighbour on d's side of f, and the halfway point between them (exact in a double).
  f32[0] = f;
  f32Bits[0]! += d > f ? 1 : -1;
  const halfway = (f + f32[0]!) / 2;
  return Math.abs(d - halfway) > d * 2 ** -47 ? f : NaN;
}

/** JSON's insignificant whitespace: space, tab, line feed, carriage return. */
const isSpace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/** Names a key may have to be matched as bytes (no escapes, nothing secure-json-parse refuses). */
const PLAIN_NAME = /^[A-Za-z0-9_.:-]{1,200}$/;
const RESERVED = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Why a contract's bodies cannot be read this way (undefined: they can). Only a single float32
 * tensor input of shape [-1, N], required, without a range, fed to the model as sent.
 */
export function tensorBodyRefusal(m: Manifest): string | undefined {
  if (m.inputs.length !== 1) return 'more than one input';
  const f = m.inputs[0]!;
  if (f.type !== 'tensor') return 'the input is not a tensor';
  if (f.dtype !== 'float32') return 'the tensor is not float32';
  if (f.shape.length !== 2 || f.shape[0] !== -1 || !(f.shape[1]! >= 1)) return 'the shape is not [-1, N]';
  if (f.min !== undefined || f.max !== undefined || f.optional) return 'the input has a range or is optional';
  if (m.preprocess || m.tokenizer || m.pipeline || m.generation || m.handler) return 'the contract transforms it';
  if (m.batching?.padding) return 'the input is padded';
  if (!PLAIN_NAME.test(f.name) || RESERVED.has(f.name)) return 'the input name needs escaping';
  return undefined;
}

/** A reader for the contract's bodies, or undefined when `tensorBodyRefusal` says why not. */
export function tensorBodyReader(
  m: Manifest,
  limits: { maxInstances: number; maxTensorElements: number },
): TensorBodyReader | undefined {
  if (tensorBodyRefusal(m) !== undefined) return undefined;
  const name = m.inputs[0]!.name;
  const width = (m.inputs[0] as { shape: number[] }).shape[1]!;
  const maxRows = Math.min(limits.maxInstances, Math.floor(limits.maxTensorElements / width));
  const instancesKey = Buffer.from('"instances"');
  const featureKey = Buffer.from(`"${name}"`);

  return {
    input: name,
    width,
    read: (b) => readBody(b, instancesKey, featureKey, name, width, maxRows),
  };
}

/** Past whitespace from `i`. */
function skip(b: Uint8Array, i: number): number {
  while (i < b.length && isSpace(b[i]!)) i++;
  return i;
}

/** Past `"key"` and its colon (whitespace around them) from `i`, or -1. */
function pastKey(b: Uint8Array, i: number, k: Uint8Array): number {
  i = skip(b, i);
  if (i + k.length > b.length) return -1;
  for (let j = 0; j < k.length; j++) if (b[i + j] !== k[j]) return -1;
  i = skip(b, i + k.length);
  return b[i] === COLON ? i + 1 : -1;
}

/** Past the byte `c` (whitespace before it) from `i`, or -1. */
function past(b: Uint8Array, i: number, c: number): number {
  i = skip(b, i);
  return b[i] === c ? i + 1 : -1;
}

// One function with the position in a local, not a closure over it: a captured, reassigned position
// lives in a context object and made the loop about twice as slow.
function readBody(
  b: Uint8Array,
  instancesKey: Uint8Array,
  featureKey: Uint8Array,
  name: string,
  width: number,
  maxRows: number,
): ReadTensorBody | undefined {
  const n = b.length;
  let i = past(b, 0, OPEN_CURLY);
  if (i < 0 || (i = pastKey(b, i, instancesKey)) < 0 || (i = past(b, i, OPEN_SQUARE)) < 0) return undefined;
  let data = new Float32Array(width);
  let rows = 0;
  for (;;) {
    if (rows === maxRows) return undefined;
    if ((i = past(b, i, OPEN_CURLY)) < 0 || (i = pastKey(b, i, featureKey)) < 0 || (i = past(b, i, OPEN_SQUARE)) < 0)
      return undefined;
    if ((rows + 1) * width > data.length) {
      const grown = new Float32Array(Math.min(maxRows, rows * 2) * width);
      grown.set(data);
      data = grown;
    }
    let at = rows * width;
    for (let k = 0; k < width; k++) {
      while (i < n && isSpace(b[i]!)) i++;
      if (k > 0) {
        if (b[i] !== COMMA) return undefined;
        i++;
        while (i < n && isSpace(b[i]!)) i++;
      }
      // -?(0|[1-9][0-9]*)(\.[0-9]+)?, at most MAX_DIGITS digits, no exponent.
      let c = i < n ? b[i]! : -1;
      const negative = c === MINUS;
      if (negative) c = ++i < n ? b[i]! : -1;
      if (c < ZERO || c > NINE) return undefined;
      let mantissa = 0;
      // Significant digits: leading zeros do not count (they only raise the scale).
      let digits = 0;
      if (c === ZERO) {
        c = ++i < n ? b[i]! : -1;
      } else {
        while (c >= ZERO && c <= NINE) {
          mantissa = mantissa * 10 + (c - ZERO);
          digits++;
          c = ++i < n ? b[i]! : -1;
        }
      }
      let scale = 0;
      if (c === DOT) {
        c = ++i < n ? b[i]! : -1;
        if (c < ZERO || c > NINE) return undefined;
        while (c >= ZERO && c <= NINE) {
          if (mantissa !== 0 || c !== ZERO) digits++;
          mantissa = mantissa * 10 + (c - ZERO);
          scale++;
          c = ++i < n ? b[i]! : -1;
        }
      }
      // An exponent, a leading zero followed by digits, or too many digits: the ordinary path decides.
      if (digits > MAX_LONG_DIGITS || scale > MAX_LONG_DIGITS || (c >= ZERO && c <= NINE) || (c | 0x20) === 0x65)
        return undefined;
      let value = mantissa / POW10[scale]!;
      // Past 15 digits the mantissa was rounded on the way: exact only as a float32, and only if unambiguous.
      if (digits > MAX_DIGITS && mantissa !== 0 && (value = float32Near(value)) !== value) return undefined;
      data[at++] = negative ? -value : value;
    }
    if ((i = past(b, i, CLOSE_SQUARE)) < 0 || (i = past(b, i, CLOSE_CURLY)) < 0) return undefined;
    rows++;
    i = skip(b, i);
    if (b[i] === COMMA) {
      i++;
      continue;
    }
    break;
  }
  if ((i = past(b, i, CLOSE_SQUARE)) < 0 || (i = past(b, i, CLOSE_CURLY)) < 0 || skip(b, i) !== n) return undefined;
  const used = rows * width;
  return {
    rows,
    feeds: {
      [name]: { dtype: 'float32', dims: [rows, width], data: used === data.length ? data : data.slice(0, used) },
    },
  };
}
