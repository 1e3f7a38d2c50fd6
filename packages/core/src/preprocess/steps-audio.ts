// Audio preprocessing in pure TypeScript: 16-bit PCM bytes (raw or base64) to float samples,
// resampling to the model's rate, and framing into fixed windows — what a speech model such as
// Silero VAD (16 kHz, 512-sample windows) takes. Registered as the `pcm16-decode`, `resample` and
// `frame` steps; the functions are exported for callers that hold audio outside a manifest.
import { Type } from '@sinclair/typebox';
import { ContractError } from '../errors.js';
import { defineStep } from './registry.js';

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const BASE64_VALUE = (() => {
  const t = new Int8Array(128).fill(-1);
  for (let i = 0; i < BASE64.length; i++) t[BASE64.charCodeAt(i)] = i;
  t['-'.charCodeAt(0)] = 62; // the URL-safe alphabet too
  t['_'.charCodeAt(0)] = 63;
  return t;
})();

/** Decodes base64 (standard or URL-safe alphabet; padding optional; whitespace ignored). */
export function decodeBase64(text: string): Uint8Array {
  const out = new Uint8Array(Math.floor((text.length * 3) / 4) + 3);
  let bits = 0;
  let nbits = 0;
  let n = 0;
  let end = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x20 || ch === 0x0a || ch === 0x0d || ch === 0x09) continue;
    if (ch === 0x3d) {
      end = true;
      continue;
    } // '=' padding: only more padding may follow
    const v = ch < 128 ? BASE64_VALUE[ch]! : -1;
    if (v < 0 || end) throw new RangeError(`invalid base64 at character ${i}`);
    bits = (bits << 6) | v;
    nbits += 6;
    if (nbits >= 8) {
      nbits -= 8;
      out[n++] = (bits >> nbits) & 0xff;
    }
  }
  if (nbits >= 6) throw new RangeError('invalid base64: truncated final group');
  return out.subarray(0, n);
}

export interface Pcm16Options {
  /** Byte order of each sample. Default little-endian (WAV's). */
  readonly bigEndian?: boolean;
}

/**
 * Signed 16-bit PCM samples to floats in [-1, 1): each sample divided by 32768. Takes raw bytes or
 * their base64 text. Interleaved channels stay interleaved.
 * @example decodePcm16(new Uint8Array([0x00, 0x40])) // Float32Array [0.5]
 */
export function decodePcm16(input: Uint8Array | ArrayBuffer | string, options: Pcm16Options = {}): Float32Array {
  const bytes =
    typeof input === 'string' ? decodeBase64(input) : input instanceof Uint8Array ? input : new Uint8Array(input);
  if (bytes.length % 2 !== 0) throw new RangeError(`16-bit PCM needs an even number of bytes, got ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const little = !options.bigEndian;
  const out = new Float32Array(bytes.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = view.getInt16(2 * i, little) / 32768;
  return out;
}

export interface ResampleOptions {
  /**
   * `sinc` (default): windowed-sinc interpolation with a low-pass at the lower rate's Nyquist
   * frequency, so downsampling does not alias. `linear`: straight lines between neighbouring samples;
   * cheap, but downsampling folds content above the new Nyquist frequency back into the band.
   */
  readonly method?: 'linear' | 'sinc';
  /** Sinc only: zero crossings of the kernel on each side (its length). Default 16. */
  readonly zeroCrossings?: number;
  /** Sinc only: cutoff as a fraction of the lower Nyquist frequency. Default 0.95. */
  readonly rolloff?: number;
}

/** Number of output samples: those whose time falls within the input's span [0, (n−1)/fromHz]. */
export function resampledLength(n: number, fromHz: number, toHz: number): number {
  if (n === 0) return 0;
  // The epsilon keeps exact ratios (e.g. 48000 → 16000) from losing their last sample to rounding.
  return Math.floor(((n - 1) * toHz) / fromHz + 1e-9) + 1;
}

const sinc = (x: number): number => (x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x));
const blackman = (x: number): number => 0.42 + 0.5 * Math.cos(Math.PI * x) + 0.08 * Math.cos(2 * Math.PI * x);

/**
 * Resamples a mono signal from `fromHz` to `toHz`. Output sample k is the signal at time k/toHz.
 * @example resample(samples22k, 22050, 16000)
 */
export function resample(
  signal: ArrayLike<number>,
  fromHz: number,
  toHz: number,
  options: ResampleOptions = {},
): Float32Array {
  if (!(fromHz > 0) || !(toHz > 0)) throw new RangeError(`sample rates must be > 0, got ${fromHz} → ${toHz}`);
  const n = signal.length;
  const out = new Float32Array(resampledLength(n, fromHz, toHz));
  const step = fromHz / toHz;
  if (fromHz === toHz) {
    for (let i = 0; i < n; i++) out[i] = signal[i]!;
    return out;
  }
  if ((options.method ?? 'sinc') === 'linear') {
    for (let k = 0; k < out.length; k++) {
      const x = k * step;
      const i = Math.floor(x);
      const f = x - i;
      out[k] = f === 0 || i + 1 >= n ? signal[Math.min(i, n - 1)]! : signal[i]! * (1 - f) + signal[i + 1]! * f;
    }
    return out;
  }
  const zeroCrossings = options.zeroCrossings ?? 16;
  const rolloff = options.rolloff ?? 0.95;
  if (!(zeroCrossings >= 1) || !(rolloff > 0 && rolloff <= 1))
    throw new RangeError('zeroCrossings must be >= 1 and rolloff in (0, 1]');
  // Cutoff in cycles per input sample; the kernel is the ideal low-pass 2fc·sinc(2fc·t), Blackman-windowed.
  const fc = 0.5 * Math.min(1, toHz / fromHz) * rolloff;
  const halfWidth = zeroCrossings / (2 * fc);
  for (let k = 0; k < out.length; k++) {
    const x = k * step;
    const lo = Math.ceil(x - halfWidth);
    const hi = Math.floor(x + halfWidth);
    let acc = 0;
    let norm = 0;
    for (let j = lo; j <= hi; j++) {
      const t = x - j;
      const h = 2 * fc * sinc(2 * fc * t) * blackman(t / halfWidth);
      norm += h;
      // Samples beyond either end are taken as silence.
      if (j >= 0 && j < n) acc += signal[j]! * h;
    }
    // Dividing by the full kernel's sum gives exactly unit gain at DC despite the window.
    out[k] = acc / norm;
  }
  return out;
}

export interface FrameOptions {
  /** Samples between the starts of consecutive frames. Default: `size` (no overlap). */
  readonly hop?: number;
  /** What happens to a last, partial frame: `zeros` pads it (default), `drop` leaves it out. */
  readonly pad?: 'zeros' | 'drop';
}

/**
 * Splits a signal into frames of `size` samples, `hop` apart.
 * @example frameSignal(samples16k, 512) // Silero VAD windows
 */
export function frameSignal(signal: ArrayLike<number>, size: number, options: FrameOptions = {}): Float32Array[] {
  const hop = options.hop ?? size;
  if (!Number.isInteger(size) || size < 1 || !Number.isInteger(hop) || hop < 1)
    throw new RangeError(`frame size and hop must be positive integers, got ${size}, ${hop}`);
  const n = signal.length;
  const frames: Float32Array[] = [];
  for (let start = 0; start < n; start += hop) {
    if (start + size > n && options.pad === 'drop') break;
    const f = new Float32Array(size);
    const end = Math.min(start + size, n);
    for (let i = start; i < end; i++) f[i - start] = signal[i]!;
    frames.push(f);
    if (start + size >= n) break;
  }
  return frames;
}

// ---- steps -------------------------------------------------------------------------------------

function signalOf(v: unknown, op: string): ArrayLike<number> {
  if (v instanceof Float32Array || v instanceof Float64Array || Array.isArray(v)) return v as ArrayLike<number>;
  throw new TypeError(`step "${op}" takes an audio signal (an array of samples)`);
}

export const pcm16Decode = defineStep({
  op: 'pcm16-decode',
  description: 'Signed 16-bit PCM (base64 text, or bytes) to float samples in [-1, 1).',
  params: Type.Object({ bigEndian: Type.Optional(Type.Boolean()) }),
  accepts: ['string', 'any'],
  compile: (p) => ({
    output: { kind: 'any' },
    apply: (v) => {
      if (typeof v === 'string' || v instanceof Uint8Array || v instanceof ArrayBuffer) return decodePcm16(v, p);
      throw new TypeError('step "pcm16-decode" takes base64 text or bytes');
    },
  }),
});

const Rate = Type.Number({ exclusiveMinimum: 0, maximum: 1_000_000, description: 'Hz' });

export const resampleStep = defineStep({
  op: 'resample',
  description: 'Resamples audio from `from` Hz to `to` Hz (windowed sinc by default, or `method: linear`).',
  params: Type.Object({
    from: Rate,
    to: Rate,
    method: Type.Optional(Type.Union([Type.Literal('linear'), Type.Literal('sinc')])),
    zeroCrossings: Type.Optional(Type.Integer({ minimum: 1, maximum: 256 })),
    rolloff: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1 })),
  }),
  accepts: ['any'],
  compile: (p) => {
    const { from, to, ...options } = p;
    return { output: { kind: 'any' }, apply: (v) => resample(signalOf(v, 'resample'), from, to, options) };
  },
});

export const frameStep = defineStep({
  op: 'frame',
  description:
    'Splits audio into windows of `size` samples, `hop` apart. With `frames`, the result is one vector of exactly `frames`·`size` values (zero-padded or cut).',
  params: Type.Object({
    size: Type.Integer({ minimum: 1, maximum: 1_048_576 }),
    hop: Type.Optional(Type.Integer({ minimum: 1 })),
    pad: Type.Optional(Type.Union([Type.Literal('zeros'), Type.Literal('drop')])),
    frames: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_048_576 })),
  }),
  accepts: ['any'],
  compile: (p, _in, ctx) => {
    const { size, frames, ...options } = p;
    if (frames === undefined)
      return { output: { kind: 'any' }, apply: (v) => frameSignal(signalOf(v, 'frame'), size, options) };
    const width = frames * size;
    if (width > 16_777_216)
      throw new ContractError(ctx.path, `frames·size is ${width}; at most 16777216 values fit one vector`);
    return {
      output: { kind: 'vector', width },
      apply: (v) => {
        const out = new Float32Array(width);
        frameSignal(signalOf(v, 'frame'), size, options)
          .slice(0, frames)
          .forEach((f, i) => out.set(f, i * size));
        return out;
      },
    };
  },
});
