// Plane geometry for text detection: convex hull, minimum-area (rotated) rectangle and corner order.
// Coordinates are image pixels with y pointing down; a pixel's centre is at its integer coordinates.

export type Point = [number, number];
/** Four corners clockwise on screen from the top-left: top-left, top-right, bottom-right, bottom-left. */
export type Quad = [Point, Point, Point, Point];

export interface RotatedRect {
  readonly center: Point;
  /** Extent along `axis`. */
  readonly width: number;
  /** Extent along the perpendicular of `axis`. */
  readonly height: number;
  /** Unit vector of the `width` side. */
  readonly axis: Point;
}

const cross = (o: Point, a: Point, b: Point): number => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);

/** Convex hull (Andrew's monotone chain), without collinear points, counter-clockwise in y-up terms. */
export function convexHull(points: readonly Point[]): Point[] {
  const pts = [...points].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const unique = pts.filter((p, i) => i === 0 || p[0] !== pts[i - 1]![0] || p[1] !== pts[i - 1]![1]);
  if (unique.length < 3) return unique;
  const lower: Point[] = [];
  for (const p of unique) {
    while (lower.length >= 2 && cross(lower[lower.length - 2]!, lower[lower.length - 1]!, p) <= 0) lower.pop();
    lower.push(p);
  }
  const upper: Point[] = [];
  for (let i = unique.length - 1; i >= 0; i--) {
    const p = unique[i]!;
    while (upper.length >= 2 && cross(upper[upper.length - 2]!, upper[upper.length - 1]!, p) <= 0) upper.pop();
    upper.push(p);
  }
  return lower.slice(0, -1).concat(upper.slice(0, -1));
}

/**
 * The rectangle of least area that contains the points. One side of it lies along an edge of the
 * convex hull, so every hull edge direction is tried (hulls of text components are small).
 */
export function minAreaRect(points: readonly Point[]): RotatedRect {
  const hull = convexHull(points);
  if (hull.length === 0) throw new RangeError('minAreaRect needs at least one point');
  const directions: Point[] = [];
  for (let i = 0; i < hull.length; i++) {
    const a = hull[i]!;
    const b = hull[(i + 1) % hull.length]!;
    const len = Math.hypot(b[0] - a[0], b[1] - a[1]);
    if (len > 0) directions.push([(b[0] - a[0]) / len, (b[1] - a[1]) / len]);
  }
  if (directions.length === 0) directions.push([1, 0]);
  let best: RotatedRect | undefined;
  let bestArea = Infinity;
  for (const u of directions) {
    let minU = Infinity,
      maxU = -Infinity,
      minV = Infinity,
      maxV = -Infinity;
    for (const p of hull) {
      const pu = p[0] * u[0] + p[1] * u[1];
      const pv = -p[0] * u[1] + p[1] * u[0];
      if (pu < minU) minU = pu;
      if (pu > maxU) maxU = pu;
      if (pv < minV) minV = pv;
      if (pv > maxV) maxV = pv;
    }
    const area = (maxU - minU) * (maxV - minV);
    if (area < bestArea - 1e-9) {
      bestArea = area;
      const cu = (minU + maxU) / 2;
      const cv = (minV + maxV) / 2;
      best = {
        center: [cu * u[0] - cv * u[1], cu * u[1] + cv * u[0]],
        width: maxU - minU,
        height: maxV - minV,
        axis: u,
      };
    }
  }
  return best!;
}

/** The rectangle grown by `d` on every side. */
export function expandRect(r: RotatedRect, d: number): RotatedRect {
  return { ...r, width: r.width + 2 * d, height: r.height + 2 * d };
}

/** The rectangle's corners in reading order (see `orderCorners`). */
export function rectCorners(r: RotatedRect): Quad {
  const [ux, uy] = r.axis;
  const hw = r.width / 2;
  const hh = r.height / 2;
  const [cx, cy] = r.center;
  // v = (−uy, ux) is `axis` turned a quarter.
  const corner = (su: number, sv: number): Point => [
    cx + su * hw * ux - sv * hh * uy,
    cy + su * hw * uy + sv * hh * ux,
  ];
  return orderCorners([corner(-1, -1), corner(1, -1), corner(1, 1), corner(-1, 1)]);
}

/**
 * Orders four corners as top-left, top-right, bottom-right, bottom-left: of the two leftmost points
 * the upper is top-left, of the two rightmost the upper is top-right.
 */
export function orderCorners(corners: readonly Point[]): Quad {
  const byX = [...corners].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const [l0, l1, r0, r1] = byX as [Point, Point, Point, Point];
  const [tl, bl] = l0[1] <= l1[1] ? [l0, l1] : [l1, l0];
  const [tr, br] = r0[1] <= r1[1] ? [r0, r1] : [r1, r0];
  return [tl, tr, br, bl];
}

/** Whether (x, y) lies inside (or on the edge of) a convex quadrilateral given in either winding. */
export function insideConvexQuad(q: readonly Point[], x: number, y: number): boolean {
  let sign = 0;
  for (let i = 0; i < 4; i++) {
    const a = q[i]!;
    const b = q[(i + 1) % 4]!;
    const c = (b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0]);
    if (c === 0) continue;
    const s = c > 0 ? 1 : -1;
    if (sign === 0) sign = s;
    else if (s !== sign) return false;
  }
  return true;
}

export const distance = (a: Point, b: Point): number => Math.hypot(a[0] - b[0], a[1] - b[1]);
