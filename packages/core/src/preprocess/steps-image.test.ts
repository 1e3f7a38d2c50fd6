import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileStep } from './registry.js';
import { hwcToChw, imageChannels, normalizeImage, resizeBilinear, type RgbImage } from './steps-image.js';
import './steps.js';

/** An RGB image whose three channels all hold `value(x, y)`. */
function gray(width: number, height: number, value: (x: number, y: number) => number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) data.fill(value(x, y), (y * width + x) * 3, (y * width + x) * 3 + 3);
  return { width, height, data };
}

const channel0 = (img: RgbImage): number[] =>
  Array.from({ length: img.width * img.height }, (_, i) => img.data[i * imageChannels(img)]!);

function close(actual: ArrayLike<number>, expected: readonly number[], tol = 1e-6): void {
  assert.equal(actual.length, expected.length, `lengths ${actual.length} vs ${expected.length}`);
  for (let i = 0; i < expected.length; i++)
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol, `element ${i}: ${actual[i]} vs ${expected[i]}`);
}

test('imageChannels tells RGB from RGBA and refuses other sizes', () => {
  assert.equal(imageChannels({ width: 2, height: 1, data: new Uint8Array(6) }), 3);
  assert.equal(imageChannels({ width: 2, height: 1, data: new Uint8Array(8) }), 4);
  assert.throws(() => imageChannels({ width: 2, height: 1, data: new Uint8Array(7) }), /needs 6 \(RGB\) or 8 \(RGBA\)/);
  assert.throws(() => imageChannels({ width: 0, height: 1, data: new Uint8Array(0) }), /positive integers/);
});

test('resizeBilinear upscales with half-pixel centres: [0, 100] → [0, 25, 75, 100]', () => {
  // Output pixel i samples the input at (i + 0.5)·(2/4) − 0.5 = −0.25, 0.25, 0.75, 1.25, clamped to [0, 1].
  const out = resizeBilinear(
    gray(2, 1, (x) => x * 100),
    4,
    1,
  );
  assert.deepEqual(channel0(out), [0, 25, 75, 100]);
  assert.deepEqual([out.width, out.height, out.data.length], [4, 1, 12]);
});

test('resizeBilinear halving averages each 2×2 block (a plane stays a plane)', () => {
  // v = 10x + 40y; halving samples at input (0.5, 0.5), (2.5, 0.5), ...: the block means.
  const out = resizeBilinear(
    gray(4, 4, (x, y) => 10 * x + 40 * y),
    2,
    2,
  );
  assert.deepEqual(channel0(out), [25, 45, 105, 125]);
});

test('resizeBilinear: 2-D interpolation, rounding, RGBA kept, same size copied', () => {
  // 2×2 → 3×3: centre samples input (0.5, 0.5) = mean of the four = (0 + 10 + 20 + 31) / 4 = 15.25 → 15.
  const img: RgbImage = {
    width: 2,
    height: 2,
    data: Uint8Array.from([0, 0, 0, 255, 10, 10, 10, 255, 20, 20, 20, 255, 31, 31, 31, 255]),
  };
  const out = resizeBilinear(img, 3, 3);
  assert.equal(imageChannels(out), 4);
  assert.equal(out.data[(1 * 3 + 1) * 4], 15);
  assert.equal(out.data[(1 * 3 + 1) * 4 + 3], 255);
  // Corners sample at (−1/6 → 0): the corner pixels exactly.
  assert.deepEqual([out.data[0], out.data[2 * 4], out.data[6 * 4], out.data[8 * 4]], [0, 10, 20, 31]);
  const same = resizeBilinear(img, 2, 2);
  assert.deepEqual(same.data, img.data);
  assert.notEqual(same.data, img.data);
  assert.throws(() => resizeBilinear(img, 0, 3), /positive integers/);
});

test('normalizeImage: (byte/255 − mean)/std per channel, CHW planes, RGB or BGR, HWC, padding', () => {
  const img: RgbImage = { width: 2, height: 1, data: Uint8Array.from([10, 20, 30, 40, 50, 60]) };
  const mean = [0.1, 0.2, 0.3] as const;
  const std = [0.5, 0.25, 0.125] as const;
  const f = (byte: number, c: number): number => (byte / 255 - mean[c]!) / std[c]!;
  close(normalizeImage(img, { mean, std }), [f(10, 0), f(40, 0), f(20, 1), f(50, 1), f(30, 2), f(60, 2)], 1e-5);
  // BGR: output channel 0 is blue, normalised with mean[0]/std[0].
  close(
    normalizeImage(img, { mean, std, channelOrder: 'bgr' }),
    [f(30, 0), f(60, 0), f(20, 1), f(50, 1), f(10, 2), f(40, 2)],
    1e-5,
  );
  close(
    normalizeImage(img, { mean, std, layout: 'hwc' }),
    [f(10, 0), f(20, 1), f(30, 2), f(40, 0), f(50, 1), f(60, 2)],
    1e-5,
  );
  // Defaults: bytes onto [0, 1]; padWidth 3 leaves one padded element per row of each plane.
  close(
    normalizeImage(img, { padWidth: 3, padValue: -1 }),
    [10 / 255, 40 / 255, -1, 20 / 255, 50 / 255, -1, 30 / 255, 60 / 255, -1],
    1e-6,
  );
  assert.throws(() => normalizeImage(img, { padWidth: 1 }), /smaller than the image width/);
  // RGBA: alpha is dropped.
  const rgba: RgbImage = { width: 1, height: 1, data: Uint8Array.from([255, 0, 51, 7]) };
  close(normalizeImage(rgba), [1, 0, 0.2], 1e-6);
  // Into a caller's buffer (a slice of a batch).
  const batch = new Float32Array(12).fill(9);
  normalizeImage(img, {}, batch.subarray(6));
  close(batch.subarray(0, 6), [9, 9, 9, 9, 9, 9]);
  close(batch.subarray(6), [10 / 255, 40 / 255, 20 / 255, 50 / 255, 30 / 255, 60 / 255]);
});

test('hwcToChw regroups interleaved channels into planes', () => {
  // 2 pixels × 3 channels: [r0 g0 b0 r1 g1 b1] → [r0 r1 g0 g1 b0 b1].
  assert.deepEqual(Array.from(hwcToChw([1, 2, 3, 4, 5, 6], 2, 1, 3)), [1, 4, 2, 5, 3, 6]);
  assert.throws(() => hwcToChw([1, 2, 3], 2, 1, 3), /expected 6 elements/);
});

test('the image-resize and image-to-tensor steps', () => {
  const ctx = { feature: { name: 'image', type: 'string' } as const, path: '/preprocess/0/columns/0/steps/0' };
  const resize = compileStep({ op: 'image-resize', width: 4, height: 1 }, { kind: 'any' }, ctx);
  assert.deepEqual(channel0(resize.apply(gray(2, 1, (x) => x * 100)) as RgbImage), [0, 25, 75, 100]);
  const toTensor = compileStep(
    { op: 'image-to-tensor', width: 2, height: 2, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
    { kind: 'any' },
    ctx,
  );
  assert.deepEqual(toTensor.output, { kind: 'vector', width: 12 });
  // A 4×4 plane is resized to 2×2 first (block means 25, 45, 105, 125), then mapped onto [-1, 1].
  const v = toTensor.apply(gray(4, 4, (x, y) => 10 * x + 40 * y)) as Float32Array;
  close(
    v.subarray(0, 4),
    [25, 45, 105, 125].map((b) => (b / 255 - 0.5) / 0.5),
    1e-6,
  );
  assert.throws(() => toTensor.apply('not an image'), /takes a decoded image/);
  assert.throws(
    () => compileStep({ op: 'image-to-tensor', width: 2, height: 2, std: [1, 0, 1] }, { kind: 'any' }, ctx),
    /std values must be > 0/,
  );
  assert.throws(() => compileStep({ op: 'image-resize', width: 0, height: 2 }, { kind: 'any' }, ctx), /bad parameters/);
});
