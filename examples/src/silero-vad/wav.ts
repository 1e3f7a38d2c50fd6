// Reads the PCM data of a RIFF/WAVE file (what espeak-ng writes) without decoding the samples:
// @ferry/core's decodePcm16 does that. Enough of the format for tests and examples, no more.

export interface WavPcm {
  sampleRate: number;
  channels: number;
  bitsPerSample: number;
  /** The raw little-endian sample bytes of the `data` chunk. */
  data: Uint8Array;
}

export function readWav(bytes: Uint8Array): WavPcm {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (at: number): string => String.fromCharCode(...bytes.subarray(at, at + 4));
  if (bytes.length < 12 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE') throw new Error('not a RIFF/WAVE file');
  let fmt: Omit<WavPcm, 'data'> | undefined;
  for (let at = 12; at + 8 <= bytes.length;) {
    const id = tag(at);
    // Streamed WAVs (espeak-ng --stdout) leave the data size as 0 or 0xFFFFFFFF: read to the end.
    let size = view.getUint32(at + 4, true);
    const body = at + 8;
    if (id === 'data' && (size === 0 || size === 0xffffffff || body + size > bytes.length)) size = bytes.length - body;
    if (id === 'fmt ') {
      const format = view.getUint16(body, true);
      if (format !== 1) throw new Error(`only PCM WAV files are read (format ${format})`);
      fmt = { channels: view.getUint16(body + 2, true), sampleRate: view.getUint32(body + 4, true), bitsPerSample: view.getUint16(body + 14, true) };
    } else if (id === 'data') {
      if (!fmt) throw new Error('WAV data chunk before its fmt chunk');
      return { ...fmt, data: bytes.subarray(body, body + size - (size % 2)) };
    }
    at = body + size + (size % 2);
  }
  throw new Error('WAV file has no data chunk');
}
