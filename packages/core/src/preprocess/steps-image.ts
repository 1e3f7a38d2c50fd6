// Image preprocessing in pure TypeScript: bilinear resize, normalisation and the HWC→CHW layout that
// vision models take. Decoding (PNG/JPEG bytes → pixels) is platform-specific and happens before this
// module (sharp in Node, createImageBitmap/canvas in the browser): everything here takes an
// already-decoded `RgbImage`. The `image-resize` and `image-to-tensor` steps expose the same helpers
// to manifests, for a feature whose value is a decoded image.
import { Type } from '@sinclair/typebox';
import { ContractError } from '../errors.js';
import { defineStep } from './registry.js';

/** Decoded 8-bit pixels, row-major, interleaved: RGB (3 bytes per pixel) or RGBA (4). */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array | Uint8ClampedArray;
}

/** Bytes per pixel of an image (3 or 4), from its size. Throws on anything else. */
export function imageChannels(image: RgbImage): 3 | 4 {
  const { width, height, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`image size must be positive integers, got ${width}x${height}`);
  }
  const pixels = width * height;
  if (data.length === pixels * 3) return 3;
  if (data.length === pixels * 4) return 4;
  throw new RangeError(
    `image data has ${data.length} bytes; a ${width}x${height} image needs ${pixels * 3} (RGB) or ${pixels * 4} (RGBA)`,
  );
}

/** Whether `v` looks like an RgbImage (for steps, whose values are unknown). */
export function isRgbImage(v: unknown): v is RgbImage {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as RgbImage;
  return (
    typeof o.width === 'number' &&
    typeof o.height === 'number' &&
    (o.data instanceof Uint8Array || o.data instanceof Uint8ClampedArray)
  );
}

/**
 * Source positions and weights of a bilinear resize along one axis, with half-pixel centres
 * (output pixel i samples the input at (i + 0.5) · in/out − 0.5, clamped to the edge pixels) — the
 * convention of OpenCV's INTER_LINEAR, which the PaddleOCR models were trained with.
 */
function axisWeights(inSize: number, outSize: number): { i0: Int32Array; i1: Int32Array; w1: Float32Array } {
  const i0 = new Int32Array(outSize);
  const i1 = new Int32Array(outSize);
  const w1 = new Float32Array(outSize);
  const scale = inSize / outSize;
  for (let i = 0; i < outSize; i++) {
    const x = Math.min(Math.max((i + 0.5) * scale - 0.5, 0), inSize - 1);
    const f = Math.floor(x);
    i0[i] = f;
    i1[i] = Math.min(f + 1, inSize - 1);
    w1[i] = x - f;
  }
  return { i0, i1, w1 };
}

/**
 * Resizes with bilinear interpolation (half-pixel centres, no antialiasing, results rounded to
 * bytes). Keeps the channel count (RGB stays RGB, RGBA stays RGBA).
 * @example resizeBilinear({ width: 640, height: 480, data }, 320, 240)
 */
export function resizeBilinear(image: RgbImage, width: number, height: number): RgbImage {
  const channels = imageChannels(image);
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`target size must be positive integers, got ${width}x${height}`);
  }
  if (width === image.width && height === image.height) return { width, height, data: image.data.slice() };
  const src = image.data;
  const xs = axisWeights(image.width, width);
  const ys = axisWeights(image.height, height);
  const out = new Uint8Array(width * height * channels);
  const rowStride = image.width * channels;
  for (let y = 0; y < height; y++) {
    const r0 = ys.i0[y]! * rowStride;
    const r1 = ys.i1[y]! * rowStride;
    const wy = ys.w1[y]!;
    for (let x = 0; x < width; x++) {
      const c0 = xs.i0[x]! * channels;
      const c1 = xs.i1[x]! * channels;
      const wx = xs.w1[x]!;
      const o = (y * width + x) * channels;
      for (let c = 0; c < channels; c++) {
        const top = src[r0 + c0 + c]! + (src[r0 + c1 + c]! - src[r0 + c0 + c]!) * wx;
        const bottom = src[r1 + c0 + c]! + (src[r1 + c1 + c]! - src[r1 + c0 + c]!) * wx;
        out[o + c] = Math.round(top + (bottom - top) * wy);
      }
    }
  }
  return { width, height, data: out };
}

export interface NormalizeOptions {
  /** Per output channel, subtracted after scaling. Default [0, 0, 0]. */
  readonly mean?: readonly [number, number, number];
  /** Per output channel, divides after subtracting the mean. Default [1, 1, 1]. */
  readonly std?: readonly [number, number, number];
  /** Multiplies each byte first. Default 1/255 (bytes become [0, 1]). */
  readonly scale?: number;
  /** `chw` (planar: all of channel 0, then channel 1, ...; what ONNX vision models take) or `hwc`. Default `chw`. */
  readonly layout?: 'chw' | 'hwc';
  /** Order of the output channels. `bgr` for models trained on OpenCV-decoded images. Default `rgb`. */
  readonly channelOrder?: 'rgb' | 'bgr';
  /** Width of each output row: the image is written at the left and the rest is `padValue`. Default: the image width.
   */
  readonly padWidth?: number;
  /** Value of padded elements (already normalised). Default 0. */
  readonly padValue?: number;
}

/**
 * Turns 8-bit pixels into a float tensor body of 3 channels: `(byte · scale − mean[c]) / std[c]`, in
 * the chosen layout and channel order; alpha is dropped. Output length: 3 · height · (padWidth ?? width).
 * @example normalizeImage(img, { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] })
 */
export function normalizeImage(image: RgbImage, options: NormalizeOptions = {}, out?: Float32Array): Float32Array {
  const channels = imageChannels(image);
  const { width, height, data } = image;
  const mean = options.mean ?? [0, 0, 0];
  const std = options.std ?? [1, 1, 1];
  const scale = options.scale ?? 1 / 255;
  const rowWidth = options.padWidth ?? width;
  if (rowWidth < width) throw new RangeError(`padWidth ${rowWidth} is smaller than the image width ${width}`);
  const size = 3 * height * rowWidth;
  const target = out ?? new Float32Array(size);
  if (target.length < size) throw new RangeError(`output buffer holds ${target.length} elements; ${size} are needed`);
  const source = options.channelOrder === 'bgr' ? [2, 1, 0] : [0, 1, 2];
  const chw = (options.layout ?? 'chw') === 'chw';
  // Folding scale, mean and std into one multiply-add per element.
  const mul = source.map((_, c) => scale / std[c]!);
  const add = source.map((_, c) => -mean[c]! / std[c]!);
  if (rowWidth > width) target.fill(options.padValue ?? 0, 0, size);
  const plane = height * rowWidth;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = (y * width + x) * channels;
      for (let c = 0; c < 3; c++) {
        const v = data[p + source[c]!]! * mul[c]! + add[c]!;
        target[chw ? c * plane + y * rowWidth + x : (y * rowWidth + x) * 3 + c] = v;
      }
    }
  }
  return target;
}

/** Reorders interleaved pixels `[height, width, channels]` into planes `[channels, height, width]`. */
export function hwcToChw(data: ArrayLike<number>, width: number, height: number, channels: number): Float32Array {
  const plane = width * height;
  if (data.length !== plane * channels)
    throw new RangeError(
      `expected ${plane * channels} elements for ${height}x${width}x${channels}, got ${data.length}`,
    );
  const out = new Float32Array(data.length);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < channels; c++) out[c * plane + i] = data[i * channels + c]!;
  }
  return out;
}

function requireImage(v: unknown, op: string): RgbImage {
  if (!isRgbImage(v)) throw new TypeError(`step "${op}" takes a decoded image ({width, height, data})`);
  return v;
}

const Size = Type.Integer({ minimum: 1, maximum: 16384 });
const Triple = Type.Tuple([Type.Number(), Type.Number(), Type.Number()]);

export const imageResize = defineStep({
  op: 'image-resize',
  description: 'Resizes a decoded image to `width`×`height` (bilinear, half-pixel centres).',
  params: Type.Object({ width: Size, height: Size }),
  accepts: ['any'],
  compile: (p) => ({
    output: { kind: 'any' },
    apply: (v) => resizeBilinear(requireImage(v, 'image-resize'), p.width, p.height),
  }),
});

export const imageToTensor = defineStep({
  op: 'image-to-tensor',
  description:
    'Resizes a decoded image to `width`×`height` if needed, then normalises it into 3·height·width floats ((byte·scale − mean)/std, CHW or HWC, RGB or BGR).',
  params: Type.Object({
    width: Size,
    height: Size,
    mean: Type.Optional(Triple),
    std: Type.Optional(Triple),
    scale: Type.Optional(Type.Number()),
    layout: Type.Optional(Type.Union([Type.Literal('chw'), Type.Literal('hwc')])),
    channelOrder: Type.Optional(Type.Union([Type.Literal('rgb'), Type.Literal('bgr')])),
  }),
  accepts: ['any'],
  compile: (p, _in, ctx) => {
    if (p.std?.some((s) => !(s > 0))) throw new ContractError(`${ctx.path}/std`, 'std values must be > 0');
    const options: NormalizeOptions = {
      ...(p.mean && { mean: p.mean }),
      ...(p.std && { std: p.std }),
      ...(p.scale !== undefined && { scale: p.scale }),
      ...(p.layout && { layout: p.layout }),
      ...(p.channelOrder && { channelOrder: p.channelOrder }),
    };
    return {
      output: { kind: 'vector', width: 3 * p.width * p.height },
      apply: (v) => {
        const img = requireImage(v, 'image-to-tensor');
        const sized = img.width === p.width && img.height === p.height ? img : resizeBilinear(img, p.width, p.height);
        return normalizeImage(sized, options);
      },
    };
  },
});
