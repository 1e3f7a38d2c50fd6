// Renders text into an image with sharp (SVG text, system fonts through fontconfig) and decodes it
// to the RgbImage @ferry/core takes: the fixtures of the OCR tests and measurements.
import sharp from 'sharp';
import type { RgbImage } from '@ferry/core';

export interface TextSpan {
  text: string;
  x: number;
  /** Baseline. */
  y: number;
  size: number;
  /** Degrees, clockwise, about (rotateX, rotateY) (default: the image centre). */
  rotate?: number;
  color?: string;
  /** Extra space between words, in em (SVG word-spacing). */
  wordSpacingEm?: number;
}

export interface RenderSpec {
  width: number;
  height: number;
  background?: string;
  font?: string;
  spans: TextSpan[];
}

const escapeXml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** PNG bytes of the rendered text. */
export async function renderPng(spec: RenderSpec): Promise<Buffer> {
  const font = spec.font ?? 'DejaVu Sans';
  const texts = spec.spans
    .map((s) => {
      const rotate = s.rotate ? ` transform="rotate(${s.rotate} ${spec.width / 2} ${spec.height / 2})"` : '';
      // librsvg ignores word-spacing: each later word is shifted with dx instead (its space stays in the text).
      const [first, ...rest] = s.text.split(' ');
      const words = s.wordSpacingEm
        ? escapeXml(first!) +
          rest.map((w) => `<tspan dx="${s.wordSpacingEm! * s.size}"> ${escapeXml(w)}</tspan>`).join('')
        : escapeXml(s.text);
      return `<text x="${s.x}" y="${s.y}"${rotate} font-family="${font}" font-size="${s.size}" fill="${s.color ?? '#000000'}" xml:space="preserve">${words}</text>`;
    })
    .join('');
  const svg = `<svg width="${spec.width}" height="${spec.height}" xmlns="http://www.w3.org/2000/svg">${texts}</svg>`;
  return sharp({
    create: { width: spec.width, height: spec.height, channels: 3, background: spec.background ?? '#ffffff' },
  })
    .composite([{ input: Buffer.from(svg) }])
    .png()
    .toBuffer();
}

/** Decodes image bytes (PNG, JPEG, WebP, ...) to RGB: the platform part the server will inject. */
export async function decodeImage(bytes: Uint8Array): Promise<RgbImage> {
  const { data, info } = await sharp(bytes).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

export async function renderImage(spec: RenderSpec): Promise<RgbImage> {
  return decodeImage(await renderPng(spec));
}

/** Bounding box of the pixels darker than `level` in every channel's mean: where the ink is. */
export function inkBounds(
  image: RgbImage,
  level = 128,
): { x0: number; y0: number; x1: number; y1: number } | undefined {
  const ch = image.data.length / (image.width * image.height);
  let x0 = Infinity,
    y0 = Infinity,
    x1 = -Infinity,
    y1 = -Infinity;
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      const i = (y * image.width + x) * ch;
      if ((image.data[i]! + image.data[i + 1]! + image.data[i + 2]!) / 3 < level) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
  }
  return x1 < 0 ? undefined : { x0, y0, x1, y1 };
}
