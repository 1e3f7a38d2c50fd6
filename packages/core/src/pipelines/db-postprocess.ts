// Post-processing of a Differentiable Binarization (DB) text detector's probability map, as the
// PaddleOCR detectors need: binarise at `threshold`, take each connected region of text pixels, fit
// its minimum-area rectangle, keep it when the mean probability inside is at least `boxThreshold`,
// and grow it by the DB "unclip" distance (area · unclipRatio / perimeter), since the model is
// trained to predict a shrunk core of each text region.
import { expandRect, insideConvexQuad, minAreaRect, rectCorners, type Point, type Quad } from './geometry.js';

export interface DbOptions {
  /** Probability above which a pixel is text. Default 0.3. */
  readonly threshold?: number;
  /** Least mean probability inside a region's rectangle for it to count. Default 0.6. */
  readonly boxThreshold?: number;
  /** How far the rectangle grows: by area · unclipRatio / perimeter on each side. Default 1.5. */
  readonly unclipRatio?: number;
  /** Least short side (map pixels) of a region before growing; after growing it must reach minSize + 2. Default 3. */
  readonly minSize?: number;
  /** At most this many regions are considered, in scan order. Default 1000. */
  readonly maxCandidates?: number;
}

export const DB_DEFAULTS = {
  threshold: 0.3,
  boxThreshold: 0.6,
  unclipRatio: 1.5,
  minSize: 3,
  maxCandidates: 1000,
} as const satisfies Required<DbOptions>;

export interface DetectedBox {
  /** Corners in map pixel coordinates, top-left first, clockwise on screen. */
  readonly box: Quad;
  /** Mean probability inside the region's rectangle before growing. */
  readonly score: number;
}

/**
 * Labels the 8-connected regions of `mask` (non-zero pixels) in scan order and calls `visit` with
 * the pixel indices of each, until it returns false.
 */
function forEachRegion(
  mask: Uint8Array,
  width: number,
  height: number,
  visit: (pixels: Int32Array, count: number) => boolean,
): void {
  const seen = new Uint8Array(mask.length);
  const stack = new Int32Array(mask.length);
  const region = new Int32Array(mask.length);
  for (let start = 0; start < mask.length; start++) {
    if (!mask[start] || seen[start]) continue;
    let top = 0;
    let count = 0;
    stack[top++] = start;
    seen[start] = 1;
    while (top > 0) {
      const i = stack[--top]!;
      region[count++] = i;
      const x = i % width;
      const y = (i - x) / width;
      for (let dy = -1; dy <= 1; dy++) {
        const ny = y + dy;
        if (ny < 0 || ny >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          if (nx < 0 || nx >= width || (dx === 0 && dy === 0)) continue;
          const j = ny * width + nx;
          if (mask[j] && !seen[j]) {
            seen[j] = 1;
            stack[top++] = j;
          }
        }
      }
    }
    if (!visit(region, count)) return;
  }
}

/** Mean of `map` over the pixels whose centres lie inside the quad (its border included). */
function meanInside(map: ArrayLike<number>, width: number, height: number, quad: Quad): number {
  const xs = quad.map((p) => p[0]);
  const ys = quad.map((p) => p[1]);
  const x0 = Math.max(0, Math.floor(Math.min(...xs)));
  const x1 = Math.min(width - 1, Math.ceil(Math.max(...xs)));
  const y0 = Math.max(0, Math.floor(Math.min(...ys)));
  const y1 = Math.min(height - 1, Math.ceil(Math.max(...ys)));
  // Half a pixel of slack so that pixels on the rectangle's edge (region pixels themselves) count.
  const c: Point = [(xs[0]! + xs[2]!) / 2, (ys[0]! + ys[2]!) / 2];
  const grown = quad.map(([x, y]) => {
    const dx = x - c[0],
      dy = y - c[1];
    const len = Math.hypot(dx, dy) || 1;
    return [x + (dx / len) * 0.5, y + (dy / len) * 0.5] as Point;
  });
  let sum = 0;
  let n = 0;
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      if (insideConvexQuad(grown, x, y)) {
        sum += map[y * width + x]!;
        n++;
      }
    }
  }
  return n ? sum / n : 0;
}

/**
 * Finds text boxes in a `height`×`width` probability map (row-major). Boxes are in map pixel
 * coordinates; scale them to the original image yourself.
 * @example dbPostprocess(output.data, output.dims[3], output.dims[2], { unclipRatio: 1.5 })
 */
export function dbPostprocess(
  map: ArrayLike<number>,
  width: number,
  height: number,
  options: DbOptions = {},
): DetectedBox[] {
  const o = {
    ...DB_DEFAULTS,
    ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
  } as Required<DbOptions>;
  if (map.length < width * height)
    throw new RangeError(`a ${width}x${height} map needs ${width * height} values, got ${map.length}`);
  const mask = new Uint8Array(width * height);
  for (let i = 0; i < mask.length; i++) mask[i] = map[i]! > o.threshold ? 1 : 0;
  const boxes: DetectedBox[] = [];
  let candidates = 0;
  const rowMin = new Int32Array(height);
  const rowMax = new Int32Array(height);
  forEachRegion(mask, width, height, (pixels, count) => {
    // The hull of a region is the hull of each row's leftmost and rightmost pixel.
    rowMin.fill(width);
    rowMax.fill(-1);
    for (let k = 0; k < count; k++) {
      const i = pixels[k]!;
      const x = i % width;
      const y = (i - x) / width;
      if (x < rowMin[y]!) rowMin[y] = x;
      if (x > rowMax[y]!) rowMax[y] = x;
    }
    const points: Point[] = [];
    for (let y = 0; y < height; y++) {
      if (rowMax[y]! < 0) continue;
      points.push([rowMin[y]!, y]);
      if (rowMax[y] !== rowMin[y]) points.push([rowMax[y]!, y]);
    }
    const rect = minAreaRect(points);
    if (Math.min(rect.width, rect.height) >= o.minSize) {
      const score = meanInside(map, width, height, rectCorners(rect));
      if (score >= o.boxThreshold) {
        const w = rect.width,
          h = rect.height;
        const grown = expandRect(rect, (w * h * o.unclipRatio) / (2 * (w + h)));
        if (Math.min(grown.width, grown.height) >= o.minSize + 2) boxes.push({ box: rectCorners(grown), score });
      }
    }
    return ++candidates < o.maxCandidates;
  });
  return boxes;
}
