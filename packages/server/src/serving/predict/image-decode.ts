// Decoding an image input (base64 text or raw bytes) into RGB pixels with sharp, checking format,
// encoded size and pixel count first so a decompression bomb is refused before it is decoded.
// sharp works on libuv's thread pool, so decoding does not hold the HTTP thread.
import sharp from 'sharp';
import type { ImageFeature } from '@ferry/core';
import { invalidInput } from '../../errors.js';
import type { RawImage } from '../runtime/protocol.js';
import { decodeGate } from './decode-gate.js';

// libvips' operation cache would keep recent decodes' buffers alive after their request: off, so the
// memory of a burst of large images is returned once they are done.
sharp.cache(false);

const DEFAULT_MAX_PIXELS = 40_000_000;

/** An image input's bytes and header, checked (format, encoded size, pixel count) before any decode. */
interface CheckedImage {
  bytes: Buffer;
  pixels: number;
  maxPixels: number;
}

async function checkImage(value: unknown, f: ImageFeature, pointer: string): Promise<CheckedImage> {
  let bytes: Buffer;
  if (Buffer.isBuffer(value)) bytes = value;
  else if (typeof value === 'string') {
    const text = value.replace(/^data:[^;,]*;base64,/, '');
    if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(text.replace(/\s+/g, '')))
      throw invalidInput([{ pointer, reason: 'not base64 text' }]);
    bytes = Buffer.from(text, 'base64');
  } else throw invalidInput([{ pointer, reason: 'expected an image as base64 text' }]);
  if (bytes.length === 0) throw invalidInput([{ pointer, reason: 'the image is empty' }]);
  if (f.maxBytes !== undefined && bytes.length > f.maxBytes)
    throw invalidInput([{ pointer, reason: `the image has ${bytes.length} bytes; the limit is ${f.maxBytes}` }]);
  const maxPixels = f.maxPixels ?? DEFAULT_MAX_PIXELS;
  let meta: Awaited<ReturnType<ReturnType<typeof sharp>['metadata']>>;
  try {
    meta = await sharp(bytes, { limitInputPixels: maxPixels }).metadata();
  } catch (e) {
    const message = (e as Error).message;
    if (/pixel limit/i.test(message))
      throw invalidInput([{ pointer, reason: `the image has more pixels than allowed: the limit is ${maxPixels}` }]);
    throw invalidInput([{ pointer, reason: `not a decodable image (${message})` }]);
  }
  const format = String(meta.format) === 'jpg' ? 'jpeg' : String(meta.format);
  if (f.formats && !f.formats.includes(format as never))
    throw invalidInput([{ pointer, reason: `${format} images are not accepted; send ${f.formats.join(', ')}` }]);
  if (!meta.width || !meta.height || meta.width * meta.height > maxPixels) {
    throw invalidInput([
      { pointer, reason: `the image has ${meta.width}×${meta.height} pixels; the limit is ${maxPixels}` },
    ]);
  }
  return { bytes, pixels: meta.width * meta.height, maxPixels };
}

export async function decodeImage(value: unknown, f: ImageFeature, pointer: string): Promise<RawImage> {
  const { bytes, pixels, maxPixels } = await checkImage(value, f, pointer);
  // Decodes wait for room in the process's budget of concurrent decodes and pixels in flight.
  return decodeGate.run(pixels, () => decodePixels(bytes, maxPixels, pointer));
}

/**
 * Checks an image as a job submission needs it (the same checks as `decodeImage`, and that every byte
 * of it decodes) without keeping its pixels: libvips reads the file sequentially and shrinks it line by
 * line into a thumbnail, so a 16-megapixel PNG costs a few megabytes, not 48 MB held until the next
 * garbage collection. The job's run decodes it for real.
 */
export async function verifyImage(value: unknown, f: ImageFeature, pointer: string): Promise<void> {
  const { bytes, pixels, maxPixels } = await checkImage(value, f, pointer);
  await decodeGate.run(pixels, async () => {
    try {
      await sharp(bytes, { limitInputPixels: maxPixels, sequentialRead: true })
        .resize(16, 16, { fit: 'fill' })
        .raw()
        .toBuffer();
    } catch (e) {
      throw invalidInput([{ pointer, reason: `the image could not be decoded (${(e as Error).message})` }]);
    }
  });
}

async function decodePixels(bytes: Buffer, maxPixels: number, pointer: string): Promise<RawImage> {
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels: maxPixels })
      .rotate()
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    // A fresh, exactly sized buffer so the pixels can be transferred to a worker thread.
    return { width: info.width, height: info.height, channels: 3, data: new Uint8Array(data) };
  } catch (e) {
    throw invalidInput([{ pointer, reason: `the image could not be decoded (${(e as Error).message})` }]);
  }
}
