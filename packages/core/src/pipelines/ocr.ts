// A two-model OCR pipeline (PaddleOCR's PP-OCR design) in pure TypeScript: a DB detector finds text
// boxes, each box is cut out (rotated boxes are straightened), and a CTC recogniser reads it. The two
// models run wherever the caller says — `runners` wraps ONNX Runtime sessions in Node, worker
// threads in the server, onnxruntime-web in the browser — and the image arrives already decoded.
import { ctcGreedyDecodeBatch } from '../postprocess/ctc.js';
import { imageChannels, normalizeImage, resizeBilinear, type RgbImage } from '../preprocess/steps-image.js';
import type { TensorValue } from '../tensor.js';
import { dbPostprocess, DB_DEFAULTS, type DbOptions } from './db-postprocess.js';
import { distance, type Point, type Quad } from './geometry.js';

export interface OcrRunners {
  /** Runs the detector on `[1, 3, H, W]` float32; answers its `[1, 1, H, W]` text probability map. */
  detect(input: TensorValue): Promise<TensorValue>;
  /** Runs the recogniser on `[N, 3, recHeight, W]` float32; answers `[N, steps, classes]` probabilities. */
  recognize(input: TensorValue): Promise<TensorValue>;
}

export interface OcrParams extends DbOptions {
  /** Label of each recogniser class, blank included (see `paddleOcrLabels`). */
  readonly labels: readonly string[];
  /** Class index of the CTC blank. Default 0. */
  readonly blankIndex?: number;
  /** The image is shrunk so that its longer side is at most this before detection. Default 960. */
  readonly maxSideLen?: number;
  /** Detector normalisation, per model input channel. Default ImageNet's mean and std. */
  readonly detMean?: readonly [number, number, number];
  readonly detStd?: readonly [number, number, number];
  /** Recogniser normalisation. Default 0.5 and 0.5 (bytes onto [-1, 1]). */
  readonly recMean?: readonly [number, number, number];
  readonly recStd?: readonly [number, number, number];
  /** Channel order both models take. Default `bgr`: PaddleOCR trains on OpenCV-decoded images. */
  readonly channelOrder?: 'rgb' | 'bgr';
  /** Recogniser input height. Default 48 (PP-OCRv3 and v4). */
  readonly recHeight?: number;
  /** Recogniser inputs are padded to at least this width. Default 320. */
  readonly recMinWidth?: number;
  /** Crops are never resized wider than this (very long lines get squeezed). Default 3200. */
  readonly recMaxWidth?: number;
  /** Crops recognised per recogniser run (grouped by similar aspect ratio). Default 6. */
  readonly recBatchSize?: number;
  /** Lines read with a lower confidence are dropped. Default 0.5. */
  readonly minConfidence?: number;
  /**
   * A space is written between two symbols when the space class (the last label, if it is " ") reached
   * this probability in the blank steps between them; 0 = plain greedy decoding. Default 0.005
   * (see `CtcOptions.spaceThreshold` and docs/contract.md for how it was chosen).
   */
  readonly spaceThreshold?: number;
}

export const OCR_DEFAULTS = {
  ...DB_DEFAULTS,
  blankIndex: 0,
  maxSideLen: 960,
  detMean: [0.485, 0.456, 0.406],
  detStd: [0.229, 0.224, 0.225],
  recMean: [0.5, 0.5, 0.5],
  recStd: [0.5, 0.5, 0.5],
  channelOrder: 'bgr',
  recHeight: 48,
  recMinWidth: 320,
  recMaxWidth: 3200,
  recBatchSize: 6,
  minConfidence: 0.5,
  spaceThreshold: 0.005,
} as const satisfies Omit<Required<OcrParams>, 'labels'>;

export type ResolvedOcrParams = Omit<Required<OcrParams>, 'labels'> & { readonly labels: readonly string[] };

export interface OcrLine {
  readonly text: string;
  readonly confidence: number;
  /** Corners in original image pixels: top-left, top-right, bottom-right, bottom-left. */
  readonly box: Quad;
}

/** The parameters with defaults filled in, checked and frozen. */
export function resolveOcrParams(params: OcrParams): ResolvedOcrParams {
  const given = Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined)) as OcrParams;
  const p = { ...OCR_DEFAULTS, ...given };
  if (p.labels.length < 2) throw new RangeError('OCR needs the recogniser labels (at least a blank and one symbol)');
  for (const k of ['maxSideLen', 'recHeight', 'recMinWidth', 'recMaxWidth', 'recBatchSize', 'maxCandidates'] as const) {
    if (!Number.isInteger(p[k]) || p[k] < 1)
      throw new RangeError(`OCR parameter ${k} must be a positive integer, got ${p[k]}`);
  }
  if (typeof p.spaceThreshold !== 'number' || !(p.spaceThreshold >= 0 && p.spaceThreshold < 1))
    throw new RangeError(`OCR parameter spaceThreshold must be a number in [0, 1), got ${String(p.spaceThreshold)}`);
  return Object.freeze(p);
}

export interface DetectionInput {
  readonly tensor: TensorValue;
  /** Original pixels per detector pixel, horizontally and vertically. */
  readonly scaleX: number;
  readonly scaleY: number;
}

/** Size of the detector input: at most `maxSideLen` on the long side, each side a multiple of 32 (at least 32). */
export function detectionSize(width: number, height: number, maxSideLen: number): { width: number; height: number } {
  const ratio = Math.max(width, height) > maxSideLen ? maxSideLen / Math.max(width, height) : 1;
  const snap = (v: number): number => Math.max(Math.round((v * ratio) / 32) * 32, 32);
  return { width: snap(width), height: snap(height) };
}

/** Resizes and normalises the image into the detector's `[1, 3, H, W]` input. */
export function detectionInput(image: RgbImage, p: ResolvedOcrParams): DetectionInput {
  const size = detectionSize(image.width, image.height, p.maxSideLen);
  const resized = resizeBilinear(image, size.width, size.height);
  const data = normalizeImage(resized, { mean: p.detMean, std: p.detStd, channelOrder: p.channelOrder });
  return {
    tensor: { dtype: 'float32', dims: [1, 3, size.height, size.width], data },
    scaleX: image.width / size.width,
    scaleY: image.height / size.height,
  };
}

/**
 * Cuts the quadrilateral out of the image as an upright `w`×`h` RGB image (w, h: its longer side
 * lengths), mapping its corners onto the output's corners with bilinear sampling, edges repeated.
 * Crops at least 1.5 times taller than wide are turned a quarter counter-clockwise (vertical text).
 */
export function cropQuad(image: RgbImage, quad: Quad): RgbImage | undefined {
  const channels = imageChannels(image);
  const [tl, tr, br, bl] = quad;
  const w = Math.trunc(Math.max(distance(tl, tr), distance(bl, br)));
  const h = Math.trunc(Math.max(distance(tl, bl), distance(tr, br)));
  if (w < 1 || h < 1) return undefined;
  const out = new Uint8Array(w * h * 3);
  const src = image.data;
  const maxX = image.width - 1;
  const maxY = image.height - 1;
  // Output (u, v) ↦ tl + u/w·(tr − tl) + v/h·(bl − tl): exact for the rectangles the detector yields.
  const ux = (tr[0] - tl[0]) / w,
    uy = (tr[1] - tl[1]) / w;
  const vx = (bl[0] - tl[0]) / h,
    vy = (bl[1] - tl[1]) / h;
  for (let v = 0; v < h; v++) {
    for (let u = 0; u < w; u++) {
      const x = Math.min(Math.max(tl[0] + u * ux + v * vx, 0), maxX);
      const y = Math.min(Math.max(tl[1] + u * uy + v * vy, 0), maxY);
      const x0 = Math.floor(x),
        y0 = Math.floor(y);
      const x1 = Math.min(x0 + 1, maxX),
        y1 = Math.min(y0 + 1, maxY);
      const fx = x - x0,
        fy = y - y0;
      const o = (v * w + u) * 3;
      for (let c = 0; c < 3; c++) {
        const a = src[(y0 * image.width + x0) * channels + c]!;
        const b = src[(y0 * image.width + x1) * channels + c]!;
        const d = src[(y1 * image.width + x0) * channels + c]!;
        const e = src[(y1 * image.width + x1) * channels + c]!;
        const top = a + (b - a) * fx;
        const bottom = d + (e - d) * fx;
        out[o + c] = Math.round(top + (bottom - top) * fy);
      }
    }
  }
  const crop = { width: w, height: h, data: out };
  return h / w >= 1.5 ? rotateQuarterCcw(crop) : crop;
}

/** Turns an RGB image a quarter counter-clockwise. */
export function rotateQuarterCcw(image: RgbImage): RgbImage {
  const { width, height, data } = image;
  const out = new Uint8Array(data.length);
  // Source (x, y) lands at (y, width − 1 − x) in the height-wide result.
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const s = (y * width + x) * 3;
      const d = ((width - 1 - x) * height + y) * 3;
      out[d] = data[s]!;
      out[d + 1] = data[s + 1]!;
      out[d + 2] = data[s + 2]!;
    }
  }
  return { width: height, height: width, data: out };
}

/**
 * The recogniser input for a group of crops: each resized to `recHeight` keeping its aspect ratio,
 * normalised, written at the left of a row padded to the widest crop (at least `recMinWidth`).
 */
export function recognitionInput(crops: readonly RgbImage[], p: ResolvedOcrParams): TensorValue {
  const H = p.recHeight;
  const widths = crops.map((c) => Math.min(Math.ceil((H * c.width) / c.height), p.recMaxWidth));
  const W = Math.max(p.recMinWidth, ...widths);
  const per = 3 * H * W;
  const data = new Float32Array(crops.length * per);
  crops.forEach((c, i) => {
    const resized = resizeBilinear(c, widths[i]!, H);
    normalizeImage(
      resized,
      { mean: p.recMean, std: p.recStd, channelOrder: p.channelOrder, padWidth: W },
      data.subarray(i * per, (i + 1) * per),
    );
  });
  return { dtype: 'float32', dims: [crops.length, 3, H, W], data };
}

/** Orders results as read: lines top to bottom (boxes overlapping vertically by half share a line), each left to right.
 */
export function readingOrder<T extends { box: Quad }>(items: readonly T[]): T[] {
  const span = (q: Quad): [number, number] => [Math.min(...q.map((p) => p[1])), Math.max(...q.map((p) => p[1]))];
  const left = (q: Quad): number => Math.min(...q.map((p) => p[0]));
  const sorted = [...items].sort((a, b) => {
    const [a0, a1] = span(a.box),
      [b0, b1] = span(b.box);
    return (a0 + a1) / 2 - (b0 + b1) / 2 || left(a.box) - left(b.box);
  });
  const lines: Array<{ top: number; bottom: number; items: T[] }> = [];
  for (const item of sorted) {
    const [top, bottom] = span(item.box);
    const line = lines.at(-1);
    const overlap = line ? Math.min(bottom, line.bottom) - Math.max(top, line.top) : -1;
    if (line && overlap >= 0.5 * Math.min(bottom - top, line.bottom - line.top)) {
      line.items.push(item);
      line.top = Math.min(line.top, top);
      line.bottom = Math.max(line.bottom, bottom);
    } else {
      lines.push({ top, bottom, items: [item] });
    }
  }
  return lines.flatMap((l) => l.items.sort((a, b) => left(a.box) - left(b.box)));
}

/**
 * Finds and reads the text in an image.
 * @example
 * const lines = await runOcr(image, {
 *   detect: (t) => run(detSession, t),
 *   recognize: (t) => run(recSession, t),
 * }, { labels: paddleOcrLabels(dictionaryText) });
 */
export async function runOcr(image: RgbImage, runners: OcrRunners, params: OcrParams): Promise<OcrLine[]> {
  const p = resolveOcrParams(params);
  imageChannels(image);
  const det = detectionInput(image, p);
  const map = await runners.detect(det.tensor);
  const [mapH, mapW] = map.dims.slice(-2) as [number, number];
  if (map.dims.length !== 4 || !(map.data instanceof Float32Array) || map.data.length !== mapW * mapH) {
    throw new RangeError(
      `the detector must answer a [1, 1, H, W] float32 map, got ${map.dtype} [${map.dims.join(', ')}]`,
    );
  }
  // The map may differ in size from the input (some detectors downsample); scale through it.
  const sx = image.width / mapW,
    sy = image.height / mapH;
  const clampRound = (v: number, max: number): number => Math.min(Math.max(Math.round(v), 0), max);
  const found = dbPostprocess(map.data, mapW, mapH, p).map((b) => ({
    ...b,
    box: b.box.map(([x, y]) => [clampRound(x * sx, image.width), clampRound(y * sy, image.height)] as Point) as Quad,
  }));
  const crops = found
    .map((f) => ({ box: f.box, crop: cropQuad(image, f.box) }))
    .filter((c): c is { box: Quad; crop: RgbImage } => c.crop !== undefined);
  // Similar aspect ratios together, so little of each batch is padding.
  const order = crops
    .map((_, i) => i)
    .sort((a, b) => crops[a]!.crop.width / crops[a]!.crop.height - crops[b]!.crop.width / crops[b]!.crop.height);
  const lines: OcrLine[] = [];
  for (let start = 0; start < order.length; start += p.recBatchSize) {
    const group = order.slice(start, start + p.recBatchSize);
    const out = await runners.recognize(
      recognitionInput(
        group.map((i) => crops[i]!.crop),
        p,
      ),
    );
    const decoded = ctcGreedyDecodeBatch(out, p.labels, {
      blankIndex: p.blankIndex,
      ...(p.labels.at(-1) === ' ' && { spaceIndex: p.labels.length - 1, spaceThreshold: p.spaceThreshold }),
    });
    if (decoded.length !== group.length)
      throw new RangeError(`the recogniser answered ${decoded.length} rows for ${group.length} crops`);
    decoded.forEach((d, k) => {
      if (d.text.trim() && d.confidence >= p.minConfidence)
        lines.push({ text: d.text, confidence: d.confidence, box: crops[group[k]!]!.box });
    });
  }
  return readingOrder(lines);
}
