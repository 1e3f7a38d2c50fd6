import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dbPostprocess } from './db-postprocess.js';
import {
  convexHull,
  insideConvexQuad,
  minAreaRect,
  orderCorners,
  rectCorners,
  type Point,
  type Quad,
} from './geometry.js';

function closeQuad(actual: Quad, expected: readonly Point[], tol = 1e-6): void {
  actual.forEach((p, i) => {
    assert.ok(
      Math.abs(p[0] - expected[i]![0]) <= tol && Math.abs(p[1] - expected[i]![1]) <= tol,
      `corner ${i}: ${p} vs ${expected[i]}`,
    );
  });
}

/** A width×height map with `value` on the pixels for which `inside(x, y)` holds. */
function map(
  width: number,
  height: number,
  ...regions: Array<[(x: number, y: number) => boolean, number]>
): Float32Array {
  const m = new Float32Array(width * height);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) for (const [inside, v] of regions) if (inside(x, y)) m[y * width + x] = v;
  return m;
}

const block = (x0: number, y0: number, x1: number, y1: number) => (x: number, y: number) =>
  x >= x0 && x <= x1 && y >= y0 && y <= y1;

test('convexHull drops interior and collinear points', () => {
  const hull = convexHull([
    [0, 0],
    [2, 0],
    [4, 0],
    [4, 3],
    [0, 3],
    [2, 1],
    [1, 2],
    [0, 3],
  ]);
  assert.deepEqual(
    hull.sort((a, b) => a[0] - b[0] || a[1] - b[1]),
    [
      [0, 0],
      [0, 3],
      [4, 0],
      [4, 3],
    ],
  );
  assert.deepEqual(
    convexHull([
      [1, 1],
      [1, 1],
    ]),
    [[1, 1]],
  );
});

test('minAreaRect finds a rotated rectangle from its corners and inside points', () => {
  // A 10×4 rectangle turned 30° about (20, 20), with some points inside.
  const a = Math.PI / 6;
  const u: Point = [Math.cos(a), Math.sin(a)];
  const v: Point = [-Math.sin(a), Math.cos(a)];
  const at = (s: number, t: number): Point => [20 + s * u[0] + t * v[0], 20 + s * u[1] + t * v[1]];
  const pts = [at(-5, -2), at(5, -2), at(5, 2), at(-5, 2), at(0, 0), at(3, 1), at(-4, -1.5)];
  const r = minAreaRect(pts);
  const [w, h] = r.width >= r.height ? [r.width, r.height] : [r.height, r.width];
  assert.ok(Math.abs(w - 10) < 1e-9 && Math.abs(h - 4) < 1e-9, `${r.width}×${r.height}`);
  assert.ok(Math.abs(r.center[0] - 20) < 1e-9 && Math.abs(r.center[1] - 20) < 1e-9);
  // Corners in reading order: top-left, top-right, bottom-right, bottom-left.
  closeQuad(rectCorners(r), [at(-5, -2), at(5, -2), at(5, 2), at(-5, 2)], 1e-9);
});

test('orderCorners and insideConvexQuad', () => {
  assert.deepEqual(
    orderCorners([
      [10, 5],
      [0, 5],
      [10, 0],
      [0, 0],
    ]),
    [
      [0, 0],
      [10, 0],
      [10, 5],
      [0, 5],
    ],
  );
  const q: Quad = [
    [0, 0],
    [10, 0],
    [10, 5],
    [0, 5],
  ];
  assert.ok(insideConvexQuad(q, 5, 2));
  assert.ok(insideConvexQuad(q, 10, 5));
  assert.ok(!insideConvexQuad(q, 10.01, 2));
  assert.ok(insideConvexQuad([...q].reverse(), 5, 2));
});

test('a solid block becomes one box: its pixel-centre rectangle grown by area·ratio/perimeter', () => {
  // Pixels x 10..39, y 10..17: the rectangle through their centres is 29 × 7.
  const m = map(60, 30, [block(10, 10, 39, 17), 0.9]);
  const boxes = dbPostprocess(m, 60, 30);
  assert.equal(boxes.length, 1);
  assert.ok(Math.abs(boxes[0]!.score - 0.9) < 1e-6, `score ${boxes[0]!.score}`);
  const d = (29 * 7 * 1.5) / (2 * (29 + 7));
  closeQuad(boxes[0]!.box, [
    [10 - d, 10 - d],
    [39 + d, 10 - d],
    [39 + d, 17 + d],
    [10 - d, 17 + d],
  ]);
  // A bigger unclip ratio grows it further.
  const d2 = (29 * 7 * 2) / (2 * (29 + 7));
  closeQuad(dbPostprocess(m, 60, 30, { unclipRatio: 2 })[0]!.box, [
    [10 - d2, 10 - d2],
    [39 + d2, 10 - d2],
    [39 + d2, 17 + d2],
    [10 - d2, 17 + d2],
  ]);
});

test('regions are kept by mean score and size; the binarisation threshold decides the region', () => {
  // 0.5 is text at threshold 0.3 but its mean is under boxThreshold 0.6.
  const weak = map(60, 30, [block(10, 10, 39, 17), 0.5]);
  assert.equal(dbPostprocess(weak, 60, 30).length, 0);
  assert.equal(dbPostprocess(weak, 60, 30, { boxThreshold: 0.45 }).length, 1);
  assert.equal(dbPostprocess(weak, 60, 30, { threshold: 0.5 }).length, 0);
  // A 3-pixel-high stroke has a short side of 2 < minSize 3. At minSize 2 it passes, and grown by
  // d = 29·2·1.5/(2·31) ≈ 1.4 its short side (≈ 4.8) passes minSize + 2 too.
  const stroke = map(60, 30, [block(10, 10, 39, 12), 0.9]);
  assert.equal(dbPostprocess(stroke, 60, 30).length, 0);
  assert.equal(dbPostprocess(stroke, 60, 30, { minSize: 2 }).length, 1);
  // A 2-pixel-high one at minSize 1: grown by 29·1·1.5/(2·30) ≈ 0.7 it stays under 1 + 2.
  assert.equal(dbPostprocess(map(60, 30, [block(10, 10, 39, 11), 0.9]), 60, 30, { minSize: 1 }).length, 0);
  // A block with a weak half: the mean over the rectangle counts both halves.
  const mixed = map(60, 30, [block(10, 10, 39, 17), 0.9], [block(25, 10, 39, 17), 0.35]);
  const [b] = dbPostprocess(mixed, 60, 30, { boxThreshold: 0.5 });
  assert.ok(b && Math.abs(b.score - (15 * 0.9 + 15 * 0.35) / 30) < 1e-6, `score ${b?.score}`);
});

test('separate regions give separate boxes, in scan order, at most maxCandidates; diagonal pixels connect', () => {
  const m = map(80, 40, [block(5, 25, 30, 32), 0.95], [block(40, 5, 70, 12), 0.8]);
  const boxes = dbPostprocess(m, 80, 40);
  assert.equal(boxes.length, 2);
  assert.ok(boxes[0]!.box[0][1] < boxes[1]!.box[0][1], 'the upper region is found first');
  assert.equal(dbPostprocess(m, 80, 40, { maxCandidates: 1 }).length, 1);
  // Two blocks touching only at a corner are one region.
  const diag = map(40, 40, [block(5, 5, 14, 14), 0.9], [block(15, 15, 24, 24), 0.9]);
  assert.equal(dbPostprocess(diag, 40, 40, { boxThreshold: 0.3 }).length, 1);
  assert.throws(() => dbPostprocess(new Float32Array(10), 4, 4), /needs 16 values/);
});

test('a rotated bar gives a rotated box along it', () => {
  // Pixels whose centres lie within 4 px of a line through (50, 50) at −20° (rising to the right), 60 px long.
  const a = (-20 * Math.PI) / 180;
  const [ux, uy] = [Math.cos(a), Math.sin(a)];
  const inside = (x: number, y: number): boolean => {
    const s = (x - 50) * ux + (y - 50) * uy;
    const t = -(x - 50) * uy + (y - 50) * ux;
    return Math.abs(s) <= 30 && Math.abs(t) <= 4;
  };
  const [b] = dbPostprocess(map(100, 100, [inside, 0.9]), 100, 100);
  assert.ok(b, 'a box');
  const [tl, tr, , bl] = b.box;
  const angle = (Math.atan2(tr[1] - tl[1], tr[0] - tl[0]) * 180) / Math.PI;
  assert.ok(Math.abs(angle + 20) < 2, `angle ${angle}`);
  const length = Math.hypot(tr[0] - tl[0], tr[1] - tl[1]);
  const thickness = Math.hypot(bl[0] - tl[0], bl[1] - tl[1]);
  // Before growing about 60 × 8; the growth d = 60·8·1.5/(2·68) ≈ 5.3 on each side.
  const d = (60 * 8 * 1.5) / (2 * 68);
  assert.ok(Math.abs(length - (60 + 2 * d)) < 2.5, `length ${length}`);
  assert.ok(Math.abs(thickness - (8 + 2 * d)) < 2.5, `thickness ${thickness}`);
});
