// The Open Inference Protocol's binary tensor data extension: a request body is a JSON header of
// `Inference-Header-Content-Length` bytes followed by the raw bytes of each input that declares
// `parameters.binary_data_size`, in input order; outputs may be returned the same way. Raw bytes
// are little-endian; BOOL is one byte per element; BYTES elements are each a 4-byte little-endian
// length followed by that many bytes.
import { allocate, elementCount, type TensorDtype, type TensorValue } from '@ferry/core';
import { FerryError, invalidInput } from '../../errors.js';

export const BINARY_HEADER = 'inference-header-content-length';

const ELEMENT_BYTES: Partial<Record<TensorDtype, number>> = {
  bool: 1,
  uint8: 1,
  int8: 1,
  uint16: 2,
  int16: 2,
  float16: 2,
  uint32: 4,
  int32: 4,
  float32: 4,
  uint64: 8,
  int64: 8,
  float64: 8,
};

/** Splits a binary request into its JSON header and the bytes after it. */
export function splitBinaryBody(
  body: Buffer,
  headerLength: string | string[] | undefined,
): { json: unknown; rest: Buffer } {
  const raw = Array.isArray(headerLength) ? headerLength[0] : headerLength;
  if (raw === undefined || !/^\d+$/.test(raw)) {
    throw new FerryError('invalid-request', {
      detail: `a binary inference request needs an ${BINARY_HEADER} header with the JSON header's length in bytes`,
    });
  }
  const n = Number(raw);
  if (n > body.length)
    throw new FerryError('invalid-request', {
      detail: `${BINARY_HEADER} is ${n} but the body has only ${body.length} bytes`,
    });
  let json: unknown;
  try {
    json = JSON.parse(body.subarray(0, n).toString('utf8'));
  } catch (e) {
    throw new FerryError('invalid-json', { detail: `the JSON header is not valid JSON: ${(e as Error).message}` });
  }
  return { json, rest: body.subarray(n) };
}

/** Decodes one input's raw bytes into a tensor of `dtype` and `shape`. */
export function decodeBinaryTensor(bytes: Buffer, dtype: TensorDtype, shape: number[], pointer: string): TensorValue {
  const count = elementCount(shape);
  if (dtype === 'string') {
    const out: string[] = [];
    let off = 0;
    while (off < bytes.length) {
      if (off + 4 > bytes.length) throw invalidInput([{ pointer, reason: 'BYTES data ends inside a length prefix' }]);
      const len = bytes.readUInt32LE(off);
      off += 4;
      if (off + len > bytes.length)
        throw invalidInput([
          { pointer, reason: `BYTES element ${out.length} claims ${len} bytes, past the end of the data` },
        ]);
      out.push(bytes.toString('utf8', off, off + len));
      off += len;
    }
    if (out.length !== count)
      throw invalidInput([
        { pointer, reason: `shape [${shape.join(', ')}] needs ${count} elements, the binary data has ${out.length}` },
      ]);
    return { dtype, dims: [...shape], data: out };
  }
  const size = ELEMENT_BYTES[dtype]!;
  if (bytes.length !== count * size) {
    throw invalidInput([
      { pointer, reason: `shape [${shape.join(', ')}] of ${dtype} needs ${count * size} bytes, got ${bytes.length}` },
    ]);
  }
  const data = allocate(dtype, count) as Exclude<TensorValue['data'], string[]>;
  // Copy into the typed array's own (aligned) buffer; the body slice may sit at any offset.
  new Uint8Array(data.buffer).set(bytes);
  if (dtype === 'bool')
    for (let i = 0; i < count; i++)
      if ((data as Uint8Array)[i]! > 1)
        throw invalidInput([{ pointer, reason: `BOOL element ${i} is ${(data as Uint8Array)[i]}, not 0 or 1` }]);
  for (let i = 0; i < (dtype.startsWith('float') && dtype !== 'float16' ? count : 0); i++) {
    if (!Number.isFinite((data as Float32Array)[i]))
      throw invalidInput([{ pointer, reason: `element ${i} is NaN or Infinity` }]);
  }
  return { dtype, dims: [...shape], data };
}

/** Raw little-endian bytes of a tensor, as the extension returns them. */
export function encodeBinaryTensor(t: TensorValue): Buffer {
  if (Array.isArray(t.data)) {
    const parts: Buffer[] = [];
    for (const s of t.data) {
      const b = Buffer.from(s, 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32LE(b.length);
      parts.push(len, b);
    }
    return Buffer.concat(parts);
  }
  return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}
