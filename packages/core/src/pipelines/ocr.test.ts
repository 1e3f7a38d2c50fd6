import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RgbImage } from '../preprocess/steps-image.js';
import type { TensorValue } from '../tensor.js';
import type { Point, Quad } from './geometry.js';
import {
  cropQuad,
  detectionInput,
  detectionSize,
  OCR_DEFAULTS,
  readingOrder,
  recognitionInput,
  resolveOcrParams,
  rotateQuarterCcw,
  runOcr,
  type OcrRunners,
} from './ocr.js';

const LABELS = ['', 'h', 'i', ' '];
const SPACE = 3;

/** RGB image with pixel (x, y) = [x, y, x + y]. */
function coords(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set([x, y, x + y], (y * width + x) * 3);
  return { width, height, data };
}
const px = (img: RgbImage, x: number, y: number): number[] =>
  Array.from(img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));

test('detectionSize: long side at most maxSideLen, sides rounded to multiples of 32, at least 32', () => {
  assert.deepEqual(detectionSize(400, 100, 960), { width: 416, height: 96 });
  assert.deepEqual(detectionSize(1600, 300, 960), { width: 960, height: 192 });
  assert.deepEqual(detectionSize(10, 10, 960), { width: 32, height: 32 });
  // 3000 · 960/4000 = 720 = 22.5 · 32, rounded half up to 23 · 32 (Python's round, in PaddleOCR, gives 22).
  assert.deepEqual(detectionSize(3000, 4000, 960), { width: 736, height: 960 });
});

test('detectionInput: [1, 3, H, W], BGR planes normalised with the ImageNet mean and std', () => {
  const data = new Uint8Array(50 * 40 * 3);
  for (let i = 0; i < data.length; i += 3) data.set([200, 100, 50], i);
  const p = resolveOcrParams({ labels: LABELS });
  const det = detectionInput({ width: 50, height: 40, data }, p);
  assert.deepEqual(det.tensor.dims, [1, 3, 32, 64]);
  assert.ok(Math.abs(det.scaleX - 50 / 64) < 1e-12 && Math.abs(det.scaleY - 40 / 32) < 1e-12);
  const plane = 32 * 64;
  const d = det.tensor.data as Float32Array;
  // Channel 0 is blue (50), normalised with the first mean and std, as OpenCV-trained PaddleOCR expects.
  assert.ok(Math.abs(d[0]! - (50 / 255 - 0.485) / 0.229) < 1e-5);
  assert.ok(Math.abs(d[plane + 100]! - (100 / 255 - 0.456) / 0.224) < 1e-5);
  assert.ok(Math.abs(d[2 * plane + plane - 1]! - (200 / 255 - 0.406) / 0.225) < 1e-5);
});

test('resolveOcrParams fills defaults, ignores undefined, refuses nonsense', () => {
  const p = resolveOcrParams({ labels: LABELS, maxSideLen: undefined, unclipRatio: 2 });
  assert.equal(p.maxSideLen, OCR_DEFAULTS.maxSideLen);
  assert.equal(p.unclipRatio, 2);
  assert.ok(Object.isFrozen(p));
  assert.throws(() => resolveOcrParams({ labels: [''] }), /labels/);
  assert.throws(() => resolveOcrParams({ labels: LABELS, recHeight: 0 }), /recHeight must be a positive integer/);
});

test('cropQuad: an axis-aligned box is the exact sub-image; a tilted one is straightened', () => {
  const img = coords(20, 10);
  const crop = cropQuad(img, [
    [2, 1],
    [6, 1],
    [6, 4],
    [2, 4],
  ])!;
  assert.deepEqual([crop.width, crop.height], [4, 3]);
  for (let v = 0; v < 3; v++) for (let u = 0; u < 4; u++) assert.deepEqual(px(crop, u, v), [2 + u, 1 + v, 3 + u + v]);
  // A box along the diagonal: (u, v) samples tl + u·(1, 1)/√2·… so the red channel rises along u and v alike.
  const s = Math.SQRT1_2 * 6;
  const tilted = cropQuad(coords(40, 40), [
    [10, 4],
    [10 + s, 4 + s],
    [10 + s - s / 2, 4 + s + s / 2],
    [10 - s / 2, 4 + s / 2],
  ])!;
  assert.deepEqual([tilted.width, tilted.height], [6, 3]);
  assert.deepEqual(px(tilted, 0, 0), [10, 4, 14]);
  const [r, g] = px(tilted, 5, 0);
  assert.ok(
    Math.abs(r! - (10 + 5 * Math.SQRT1_2)) <= 0.51 && Math.abs(g! - (4 + 5 * Math.SQRT1_2)) <= 0.51,
    `${r}, ${g}`,
  );
  // Degenerate boxes give nothing; tall boxes (h ≥ 1.5 w) come back turned a quarter counter-clockwise.
  assert.equal(
    cropQuad(img, [
      [2, 1],
      [2.5, 1],
      [2.5, 4],
      [2, 4],
    ]),
    undefined,
  );
  const tall = cropQuad(img, [
    [2, 1],
    [4, 1],
    [4, 7],
    [2, 7],
  ])!;
  assert.deepEqual([tall.width, tall.height], [6, 2]);
  // The top-right of the upright crop (image pixel (3, 1)) lands at the top-left.
  assert.deepEqual(px(tall, 0, 0), [3, 1, 4]);
});

test('rotateQuarterCcw moves the right column to the top row', () => {
  // 3×2: rows [a b c] / [d e f] → 2×3: rows [c f] / [b e] / [a d].
  const img: RgbImage = {
    width: 3,
    height: 2,
    data: Uint8Array.from([1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6]),
  };
  const r = rotateQuarterCcw(img);
  assert.deepEqual([r.width, r.height], [2, 3]);
  assert.deepEqual(
    Array.from({ length: 6 }, (_, i) => r.data[i * 3]),
    [3, 6, 2, 5, 1, 4],
  );
});

test('recognitionInput: height 48 keeping aspect, padded to the widest crop and at least 320', () => {
  const p = resolveOcrParams({ labels: LABELS });
  const white = (w: number, h: number): RgbImage => ({
    width: w,
    height: h,
    data: new Uint8Array(w * h * 3).fill(255),
  });
  const t = recognitionInput([white(100, 20), white(10, 20)], p);
  // 100×20 → 240×48, 10×20 → 24×48; the batch is padded to 320.
  assert.deepEqual(t.dims, [2, 3, 48, 320]);
  const d = t.data as Float32Array;
  const at = (n: number, c: number, y: number, x: number): number => d[((n * 3 + c) * 48 + y) * 320 + x]!;
  assert.equal(at(0, 0, 0, 239), 1); // white → (1 − 0.5)/0.5
  assert.equal(at(0, 0, 0, 240), 0); // padding
  assert.equal(at(1, 2, 47, 23), 1);
  assert.equal(at(1, 2, 47, 24), 0);
  const wide = recognitionInput([white(400, 20)], p);
  assert.deepEqual(wide.dims, [1, 3, 48, 960]);
  assert.deepEqual(recognitionInput([white(4000, 20)], p).dims, [1, 3, 48, OCR_DEFAULTS.recMaxWidth]);
});

test('readingOrder: lines top to bottom, each left to right, slightly uneven baselines still one line', () => {
  const box = (x: number, y: number, w = 40, h = 20): Quad => [
    [x, y],
    [x + w, y],
    [x + w, y + h],
    [x, y + h],
  ];
  const items = [
    { id: 'line2-right', box: box(200, 62) },
    { id: 'line1-right', box: box(150, 14) },
    { id: 'line2-left', box: box(10, 60) },
    { id: 'line1-left', box: box(10, 10) },
    { id: 'line3', box: box(10, 120) },
  ];
  assert.deepEqual(
    readingOrder(items).map((i) => i.id),
    ['line1-left', 'line1-right', 'line2-left', 'line2-right', 'line3'],
  );
});

/**
 * Recogniser output rows for the given class sequences, each step's winner at probability p and the rest
 * shared by the other non-space classes (a space that does not win scores 0, as inside a real word).
 */
function recOutput(sequences: number[][], p = 0.9): TensorValue {
  const steps = Math.max(...sequences.map((s) => s.length));
  const data = new Float32Array(sequences.length * steps * LABELS.length);
  sequences.forEach((seq, n) => {
    for (let t = 0; t < steps; t++) {
      const cls = seq[t] ?? 0;
      for (let c = 0; c < LABELS.length; c++)
        data[(n * steps + t) * LABELS.length + c] =
          c === cls ? p : c === SPACE ? 0 : (1 - p) / (LABELS.length - (cls === SPACE ? 1 : 2));
    }
  });
  return { dtype: 'float32', dims: [sequences.length, steps, LABELS.length], data };
}

test('runOcr wires detector, post-processing, crops and recogniser, and maps boxes to image pixels', async () => {
  // 100×50 image → detector input 96×64; the fake map has two text blocks.
  const image: RgbImage = { width: 100, height: 50, data: new Uint8Array(100 * 50 * 3).fill(255) };
  const seen: { det?: number[]; rec: number[][] } = { rec: [] };
  const runners: OcrRunners = {
    async detect(t) {
      seen.det = t.dims;
      const [, , h, w] = t.dims as [number, number, number, number];
      const m = new Float32Array(h * w);
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          if ((x >= 10 && x <= 49 && y >= 40 && y <= 49) || (x >= 10 && x <= 69 && y >= 10 && y <= 19))
            m[y * w + x] = 0.9;
        }
      return { dtype: 'float32', dims: [1, 1, h, w], data: m };
    },
    async recognize(t) {
      seen.rec.push(t.dims);
      // Crops come sorted by aspect ratio: the shorter (lower) block first. It reads "hi", the other "h i".
      return recOutput(
        [
          [1, 0, 2],
          [1, 3, 2],
        ].slice(0, t.dims[0]),
      );
    },
  };
  const lines = await runOcr(image, runners, { labels: LABELS });
  assert.deepEqual(seen.det, [1, 3, 64, 96]);
  assert.deepEqual(
    seen.rec.map((d) => [d[0], d[1], d[2]]),
    [[2, 3, 48]],
  );
  assert.deepEqual(
    lines.map((l) => l.text),
    ['h i', 'hi'],
  );
  assert.ok(Math.abs(lines[0]!.confidence - 0.9) < 1e-6);
  // The upper block: map rectangle x 10..69, y 10..19 (59 × 9), grown by d, scaled by 100/96 and 50/64, rounded.
  const d = (59 * 9 * 1.5) / (2 * (59 + 9));
  const sx = 100 / 96,
    sy = 50 / 64;
  const expected: Point[] = [
    [10 - d, 10 - d],
    [69 + d, 10 - d],
    [69 + d, 19 + d],
    [10 - d, 19 + d],
  ].map(([x, y]) => [Math.round(x! * sx), Math.round(y! * sy)]);
  assert.deepEqual(lines[0]!.box, expected);
});

test('runOcr drops empty and low-confidence reads, batches by recBatchSize, refuses malformed runner answers', async () => {
  const image: RgbImage = { width: 64, height: 64, data: new Uint8Array(64 * 64 * 3) };
  const blocks = (t: TensorValue): TensorValue => {
    const m = new Float32Array(64 * 64);
    for (const y0 of [5, 25, 45]) for (let y = y0; y < y0 + 8; y++) for (let x = 5; x < 50; x++) m[y * 64 + x] = 0.9;
    return { dtype: 'float32', dims: [1, 1, t.dims[2]!, t.dims[3]!], data: m };
  };
  const batches: number[] = [];
  // The three crops are alike, so they reach the recogniser in detection order: a blank read, a read
  // at probability 0.3 (under minConfidence 0.5), and "ih".
  const reads = [
    { seq: [0, 0], p: 0.9 },
    { seq: [1, 2], p: 0.3 },
    { seq: [2, 1], p: 0.9 },
  ];
  let next = 0;
  const lines = await runOcr(
    image,
    {
      detect: async (t) => blocks(t),
      async recognize(t) {
        const n = t.dims[0]!;
        batches.push(n);
        const rows = reads.slice(next, next + n).map((r) => recOutput([r.seq], r.p).data as Float32Array);
        next += n;
        const data = new Float32Array(rows.reduce((a, r) => a + r.length, 0));
        rows.forEach((r, i) => data.set(r, i * r.length));
        return { dtype: 'float32', dims: [n, 2, LABELS.length], data };
      },
    },
    { labels: LABELS, recBatchSize: 2 },
  );
  assert.deepEqual(batches, [2, 1]);
  assert.deepEqual(
    lines.map((l) => l.text),
    ['ih'],
  );
  assert.ok(Math.abs(lines[0]!.confidence - 0.9) < 1e-6);

  await assert.rejects(
    runOcr(
      image,
      {
        detect: async () => ({ dtype: 'float32', dims: [1, 64, 64], data: new Float32Array(64 * 64) }),
        recognize: async (t) => t,
      },
      { labels: LABELS },
    ),
    /\[1, 1, H, W\] float32 map/,
  );
  await assert.rejects(
    runOcr(image, { detect: async (t) => blocks(t), recognize: async () => recOutput([[1]]) }, { labels: LABELS }),
    /answered 1 rows for 3 crops/,
  );
  await assert.rejects(
    runOcr(
      { width: 2, height: 2, data: new Uint8Array(5) },
      { detect: async (t) => t, recognize: async (t) => t },
      { labels: LABELS },
    ),
    /image data has 5 bytes/,
  );
});
